"""`idp-dev` / `python -m idp_dev`: run the provider in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from idp_dev.app import create_app
from idp_dev.config import ConfigError, IdpConfig, load_config
from idp_dev.remote import READY_PREFIX
from idp_dev.server import bind, make_server, socket_url


def _switch(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep:
        return name, True
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw  # a bare string, e.g. callback_error=access_denied


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="idp-dev", description="A development OpenID Connect provider. Not for production."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9000, help="port; 0 picks a free one")
    parser.add_argument("--users", help="users/clients file (.toml or .json); default: demo")
    parser.add_argument("--issuer", help="issuer URL, if not http://HOST:PORT")
    parser.add_argument(
        "--switch",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="turn on a misbehaviour switch at start-up (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.issuer:
        overrides["issuer"] = args.issuer
    try:
        config = load_config(args.users, **overrides) if args.users else IdpConfig.demo(**overrides)
        switches = config.switches.changed(**dict(_switch(s) for s in args.switch))
    except (ConfigError, ValueError, OSError) as exc:
        print(f"idp-dev: {exc}", file=sys.stderr)
        return 2
    # Start-up switches become what `reset()` returns to.
    config = dataclasses.replace(config, switches=switches)
    sock = bind(args.host, args.port)
    base_url = socket_url(sock)
    app = create_app(config, base_url)
    issuer = app.state.provider.issuer
    print(f"{READY_PREFIX}{issuer} listening on {base_url}", flush=True)
    if not args.users:
        print("idp-dev: demo users alice@corp.example / alice-password, bob@corp.example / "
              "bob-password; client gatepass / gatepass-dev-secret", flush=True)  # fmt: skip
    asyncio.run(make_server(app).serve(sockets=[sock]))
    return 0
