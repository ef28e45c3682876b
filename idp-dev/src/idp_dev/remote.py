"""Steer an idp-dev running in another process through its `/_control` endpoints."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2

from idp_dev.config import Client, User
from idp_dev.switches import Switches, switches_from_mapping

READY_PREFIX = "idp-dev: issuer "


class RemoteIdp:
    """The `IdpHandle` API over HTTP; the provider must be reachable on loopback."""

    def __init__(self, base_url: str, issuer: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.issuer = (issuer or base_url).rstrip("/")
        self.http = httpx2.Client(base_url=self.base_url, timeout=10.0)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_control/{path}", json=body)
        if response.status_code >= 400:
            raise ValueError(f"idp-dev control {path}: {response.text}")
        return response.json()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def switches(self) -> Switches:
        return switches_from_mapping(self._call("GET", "switches"))

    def set(self, **switches: Any) -> Switches:
        return switches_from_mapping(self._call("POST", "switches", switches))

    def reset(self) -> Switches:
        return switches_from_mapping(self._call("POST", "reset", {}))

    def restore(self) -> None:
        self._call("POST", "restore", {})

    def rotate_keys(self) -> dict[str, str]:
        result: dict[str, str] = self._call("POST", "rotate-keys", {})
        return result

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "clock", {"advance": seconds})

    def add_user(self, user: User) -> dict[str, Any]:
        data = dataclasses.asdict(user)
        data["claims"] = dict(user.claims)
        result: dict[str, Any] = self._call("POST", "users", data)
        return result

    def update_user(self, who: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"users/{who}", changes)
        return result

    def disable_user(self, who: str) -> dict[str, Any]:
        return self.update_user(who, disabled=True)

    def enable_user(self, who: str) -> dict[str, Any]:
        return self.update_user(who, disabled=False)

    def add_client(self, client: Client) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "clients", dataclasses.asdict(client))
        return result


@contextmanager
def run_idp_process(
    users: str | Path | None = None, args: Sequence[str] = ()
) -> Iterator[RemoteIdp]:
    """Start `python -m idp_dev --port 0` as a subprocess; yields a `RemoteIdp` for it."""
    command = [sys.executable, "-m", "idp_dev", "--port", "0", *args]
    if users is not None:
        command += ["--users", str(users)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()  # the first line names the issuer, or EOF on failure
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"idp-dev did not start: {line!r}")
        issuer, _, listening = line[len(READY_PREFIX) :].strip().partition(" listening on ")
        remote = RemoteIdp(listening or issuer, issuer=issuer)
        try:
            yield remote
        finally:
            remote.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
