"""Gatepass benchmark: every configuration side by side, one command, one machine.

    python bench/run.py            # full run (~10 minutes): table + bench/results/<date>-<host>.json
    python bench/run.py --quick    # under a minute: shorter runs, no peers, no scale curves
    python bench/run.py --configs direct,gatepass-key --duration 3

Run it with Gatepass's own virtualenv (`.venv/bin/python bench/run.py`). Peers live in their
own virtualenvs under `bench/.venvs/` (created on first use); see bench/README.md for CPU
placement, what each configuration is, and how each figure is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
PY = sys.executable
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CLAUDE = ROOT / ".cache/node/node_modules/.bin/claude"

# CPU placement (2 cores): the server under test alone on SERVER_CPU; the load generator and
# the fake upstream share LOAD_CPU. See README for the trade-off.
SERVER_CPU = "1"
LOAD_CPU = "0"


def _free_port() -> int:
    """A port nothing listens on now (ports are picked per run so two runs, or a run and
    anything else on the machine, cannot collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORTS = {
    name: _free_port()
    for name in (
        "direct",  # the fake upstream measured directly (its own process, on SERVER_CPU)
        "upstream",  # the fake upstream every proxy forwards to (on LOAD_CPU)
        "ceiling-httpx2",
        "ceiling-aiohttp",
        "gatepass",
        "litellm",
        "claude-gateway",
        "claude-gateway-spend",
        "claude-idp",
        "static-upstream",  # nginx, for the workers curve
    )
}
MODEL = "claude-sonnet-4-6"
BODY = json.dumps(
    {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "Say hello"}]}
)
UPSTREAM_KEY = "sk-ant-bench"
LITELLM_MASTER_KEY = "sk-litellm-bench-master"
DELTAS = 30
TOKEN_DELAY = 0.002  # seconds between deltas in the slow streaming run


@dataclass
class Config:
    name: str
    description: str
    url: str  # the Messages endpoint
    server: str  # which process's CPU and RSS are measured ("" for none)
    api_key: str = ""
    bearer: str = ""
    results: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- processes


class Processes:
    """Every process the run starts, each in its own session, stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cpu: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc.pid

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open within {timeout} s")


def post(url: str, api_key: str = "", bearer: str = "", body: str = BODY) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if api_key:
        headers["x-api-key"] = api_key
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (uvicorn/LiteLLM workers are children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    """user+sys CPU seconds of the process tree, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mib(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


# ---------------------------------------------------------------- load generators


def apt_install(package: str) -> None:
    """Install a Debian package (best effort: the caller checks for what it needed)."""
    if shutil.which("apt-get") is None:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {package} (apt-get install {package}) …", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", package], env=env, check=False)


def ensure_tools() -> bool:
    """wrk (Debian's package) and taskset (util-linux); wrk is installed when missing."""
    global WRK
    if shutil.which("wrk") is None:
        apt_install("wrk")
    WRK = shutil.which("wrk") or WRK
    return Path(WRK).exists() and shutil.which("taskset") is not None


def wrk(
    cfg: Config, connections: int, duration: float, *, cpus: str = LOAD_CPU, threads: int = 1
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_BODY": BODY,
        "BENCH_API_KEY": cfg.api_key,
        "BENCH_BEARER": cfg.bearer,
    }
    argv = [
        "taskset", "-c", cpus, WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
        "--timeout", "10s", "-s", str(BENCH / "post.lua"), cfg.url,
    ]  # fmt: skip
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"BENCH_JSON (\{.*\})", out.stdout)
    if match is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": errors,
    }


def stream_load(cfg: Config, connections: int, duration: float) -> dict[str, Any]:
    argv = [
        "taskset", "-c", LOAD_CPU, PY, str(BENCH / "stream_client.py"), cfg.url,
        "--connections", str(connections), "--duration", str(duration),
        "--api-key", cfg.api_key, "--bearer", cfg.bearer,
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {"connections": connections, "error": (out.stderr or out.stdout)[-500:]}


# ---------------------------------------------------------------- configurations


def start_upstream(procs: Processes, token_delay: float) -> None:
    procs.stop("upstream")
    argv = [PY, "-m", "gatepass.devtools.fake_upstream", "--port", str(PORTS["upstream"]),
            "--no-record", "--deltas", str(DELTAS), "--token-delay", str(token_delay)]  # fmt: skip
    procs.start("upstream", LOAD_CPU, argv)
    wait_for_port(PORTS["upstream"], 20, procs.procs["upstream"])


def start_direct(procs: Processes, token_delay: float = 0.0) -> Config:
    procs.stop("direct")
    argv = [PY, "-m", "gatepass.devtools.fake_upstream", "--port", str(PORTS["direct"]),
            "--no-record", "--deltas", str(DELTAS), "--token-delay", str(token_delay)]  # fmt: skip
    procs.start("direct", SERVER_CPU, argv)
    wait_for_port(PORTS["direct"], 20, procs.procs["direct"])
    return Config(
        "direct",
        "wrk → fake upstream (no proxy)",
        f"http://127.0.0.1:{PORTS['direct']}/v1/messages",
        "direct",
    )


def start_ceiling(procs: Processes, client: str) -> Config:
    name = f"ceiling-{client}"
    argv = [PY, "-m", "uvicorn", "bench.ceiling:app", "--port", str(PORTS[name]),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip
    env = {"CEILING_CLIENT": client, "CEILING_UPSTREAM": f"http://127.0.0.1:{PORTS['upstream']}"}
    procs.start(name, SERVER_CPU, argv, env)
    wait_for_port(PORTS[name], 20, procs.procs[name])
    return Config(
        name,
        f"thinnest passthrough: raw ASGI on uvicorn+uvloop+httptools, {client} client",
        f"http://127.0.0.1:{PORTS[name]}/anthropic/v1/messages",
        name,
    )


def prepare_gatepass(
    workdir: Path, *, extra_keys: int = 0, upstream_url: str | None = None
) -> dict[str, str]:
    """A migrated SQLite store with the fake upstream as provider, three credentials:
    a minimal key (allow-list only), a governed key (allow-list, rpm limit, budget), and a
    signed-in user's bearer token minted by Gatepass's own issuer code. Returns env + secrets.
    """
    from gatepass.store.migrate import upgrade

    db = workdir / "gatepass.db"
    database_url = f"sqlite+aiosqlite:///{db}"
    secret_key = secrets.token_urlsafe(32)
    public_url = f"http://127.0.0.1:{PORTS['gatepass']}"
    upgrade(database_url)
    upstream_url = upstream_url or f"http://127.0.0.1:{PORTS['upstream']}"
    credentials = asyncio.run(_seed_gatepass(database_url, secret_key, public_url, upstream_url))
    if extra_keys:
        add_filler_keys(db, extra_keys)
    return {
        "GATEPASS_DATABASE_URL": database_url,
        "GATEPASS_SECRET_KEY": secret_key,
        "GATEPASS_PUBLIC_URL": public_url,
        **credentials,
    }


async def _seed_gatepass(
    database_url: str, secret_key: str, public_url: str, upstream_url: str
) -> dict[str, str]:
    from decimal import Decimal

    from gatepass import manage
    from gatepass.config import load_settings
    from gatepass.crypto import Keyring
    from gatepass.limits.spec import LimitSpec
    from gatepass.manage import identity as identity_ops
    from gatepass.oauth.keys import SigningKeys
    from gatepass.oauth.tokens import Grant, TokenMinter
    from gatepass.store.db import create_engine, session_maker
    from gatepass.store.identity import User

    settings = load_settings(
        None, environ={}, database_url=database_url, secret_key=secret_key, public_url=public_url
    )
    keyring = Keyring(secret_key)
    engine = create_engine(database_url)
    sessions = session_maker(engine)
    models = [MODEL, "claude-haiku-4-5"]
    governed = LimitSpec(rpm=10**9, budget_usd=Decimal(10**6), per_user_rpm=10**9)
    try:
        async with sessions() as session:
            await manage.add_provider(
                session,
                keyring,
                name="fake",
                kind="anthropic",
                base_url=upstream_url,
                api_key=UPSTREAM_KEY,
            )
            for model in models:
                await manage.add_model(session, model_id=model, provider="fake", display_name=model)
            minimal = await manage.create_key(session, keyring, name="bench-minimal", models=models)
            key = await manage.create_key(
                session, keyring, name="bench-governed", models=models, limits=governed
            )
            team = await manage.create_key(
                session, keyring, name="bench-team", models=models, limits=governed
            )
            idp = await identity_ops.add_idp(
                session,
                keyring,
                name="bench",
                issuer="https://idp.bench.invalid",
                client_id="gatepass",
                client_secret="unused",
            )
            assert idp.id is not None
            assert team.key.id is not None
            user = User(
                public_id="u_" + secrets.token_hex(8),
                idp_id=idp.id,
                issuer=idp.issuer,
                subject="alice",
                email="alice@corp.example",
                groups=["engineering"],
            )
            session.add(user)
            await session.commit()
            team_key_id = team.key.id
        # What a completed sign-in yields: an RS256 access token from the issuer's signing key.
        signing_keys = SigningKeys(sessions, keyring)
        await signing_keys.ensure()
        minter = TokenMinter(signing_keys, settings.issuer, ttl=86_400)
        grant = Grant(
            client_id="claude-code",
            subject=user.public_id,
            key_id=team_key_id,
            family_id="bench-" + secrets.token_hex(8),
            scope="openid email",
            auth_time=int(time.time()),
            email=user.email,
            name="Alice",
            groups=("engineering",),
        )
        token = minter.access_token(grant)
    finally:
        await engine.dispose()
    return {"minimal_key": minimal.secret, "governed_key": key.secret, "token": token}


def add_filler_keys(db: Path, count: int) -> None:
    """`count` more virtual keys (random hashes), in one transaction, straight into SQLite."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        columns = {row[1]: row for row in conn.execute("PRAGMA table_info(virtual_key)")}
        sample = conn.execute("SELECT * FROM virtual_key LIMIT 1").fetchone()
        names = list(columns)
        rows = []
        for i in range(count):
            row = dict(zip(names, sample, strict=True))
            row.pop("id")
            row["name"] = f"filler-{i}"
            row["secret_hash"] = secrets.token_hex(32)
            if "prefix" in row:
                row["prefix"] = f"gp-{i:08d}"
            rows.append(tuple(row.values()))
        cols = [n for n in names if n != "id"]
        conn.executemany(
            f"INSERT INTO virtual_key ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
            rows,
        )


def start_gatepass(
    procs: Processes,
    workdir: Path,
    extra_keys: int = 0,
    *,
    workers: int = 1,
    cpus: str = SERVER_CPU,
    upstream_url: str | None = None,
    redis_url: str | None = None,
) -> list[Config]:
    env = prepare_gatepass(workdir, extra_keys=extra_keys, upstream_url=upstream_url)
    server_env = {k: v for k, v in env.items() if k.startswith("GATEPASS_")}
    if redis_url:
        server_env["GATEPASS_REDIS_URL"] = redis_url
    gatepass = str(Path(PY).parent / "gatepass")
    argv = [gatepass, "serve", "--host", "127.0.0.1", "--port", str(PORTS["gatepass"]),
            "--workers", str(workers)]  # fmt: skip
    procs.start("gatepass", cpus, argv, server_env)
    wait_for_port(PORTS["gatepass"], 30, procs.procs["gatepass"])
    url = f"http://127.0.0.1:{PORTS['gatepass']}/anthropic/v1/messages"
    return [
        Config(
            "gatepass-minimal",
            "`gatepass serve`, 1 worker: virtual key, allow-list, request log",
            url,
            "gatepass",
            api_key=env["minimal_key"],
        ),
        Config(
            "gatepass-key",
            "`gatepass serve`: virtual key, allow-list, rpm limit, USD budget metering, request log",
            url,
            "gatepass",
            api_key=env["governed_key"],
        ),
        Config(
            "gatepass-token",
            "`gatepass serve`: signed-in user's RS256 bearer token, same governance as -key",
            url,
            "gatepass",
            bearer=env["token"],
        ),
    ]


def ensure_litellm() -> Path | None:
    venv = VENVS / "litellm"
    exe = venv / "bin" / "litellm"
    if exe.exists():
        return exe
    print("creating bench/.venvs/litellm (pip install 'litellm[proxy]') …", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=False
    )
    return exe if result.returncode == 0 and exe.exists() else None


def start_litellm(procs: Processes, workdir: Path) -> Config | None:
    exe = ensure_litellm()
    if exe is None:
        return None
    config = workdir / "litellm.yaml"
    config.write_text(
        f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: anthropic/{MODEL}
      api_base: http://127.0.0.1:{PORTS["upstream"]}
      api_key: {UPSTREAM_KEY}
general_settings:
  master_key: {LITELLM_MASTER_KEY}
litellm_settings:
  telemetry: false
"""
    )
    argv = [str(exe), "--config", str(config), "--port", str(PORTS["litellm"]),
            "--host", "127.0.0.1", "--num_workers", "1"]  # fmt: skip
    procs.start("litellm", SERVER_CPU, argv, {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"})
    wait_for_port(PORTS["litellm"], 120, procs.procs["litellm"])
    return Config(
        "litellm",
        "LiteLLM proxy (own venv), 1 worker, master key, no database (no spend logs)",
        f"http://127.0.0.1:{PORTS['litellm']}/v1/messages",
        "litellm",
        api_key=LITELLM_MASTER_KEY,
    )


# ---------------------------------------------------------------- measuring


def measure(
    procs: Processes, cfg: Config, connections: list[int], duration: float
) -> dict[str, Any]:
    status, body = post(cfg.url, cfg.api_key, cfg.bearer)
    if status != 200:
        return {"error": f"sanity request: HTTP {status}: {body[:300]!r}"}
    pid = procs.pid(cfg.server)
    wrk(cfg, 16, min(1.0, duration))  # warm-up, not counted
    runs = []
    for n in connections:
        before = cpu_seconds(pid)
        result = wrk(cfg, n, duration)
        used = cpu_seconds(pid) - before
        result["cpu_us_per_request"] = (
            round(used / result["requests"] * 1e6, 1) if result["requests"] else None
        )
        runs.append(result)
    return {"http": runs, "rss_mib_after": rss_mib(pid)}


def measure_streams(cfg: Config, connections: list[int], duration: float) -> list[dict[str, Any]]:
    return [stream_load(cfg, n, duration) for n in connections]


# ---------------------------------------------------------------- scale curves


def scale_keys(procs: Processes, workdir: Path, counts: list[int], duration: float) -> list[Any]:
    """Gatepass overhead (governed key, 16 connections) with `count` extra keys in the store."""
    out = []
    for count in counts:
        procs.stop("gatepass")
        sub = workdir / f"keys-{count}"
        sub.mkdir()
        started = time.perf_counter()
        cfg = start_gatepass(procs, sub, extra_keys=count)[1]
        seeded = time.perf_counter() - started
        result = measure(procs, cfg, [1, 16], duration)
        out.append({"keys": count + 3, "seed_seconds": round(seeded, 1), **result})
        print(f"  keys={count + 3}: {_short(result)}", flush=True)
    procs.stop("gatepass")
    return out


def _short(result: dict[str, Any]) -> str:
    if "error" in result:
        return str(result["error"])
    return ", ".join(
        f"c{r['connections']}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms"
        for r in result["http"]
    )


async def _hold_streams(url: str, api_key: str, count: int, hold: float) -> int:
    """Open `count` streaming requests and keep reading them for `hold` seconds."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    body = json.dumps({**json.loads(BODY), "stream": True}).encode()
    request = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\ncontent-type: application/json\r\n"
        f"anthropic-version: 2023-06-01\r\nx-api-key: {api_key}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    opened = 0

    async def one() -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(request)
        first = await reader.read(65536)
        if first.startswith(b"HTTP/1.1 200"):
            opened += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hold):
                while await reader.read(65536):
                    pass
        writer.close()

    await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return opened


def slow_streams(procs: Processes, workdir: Path, count: int) -> dict[str, Any]:
    """RSS of Gatepass with `count` streams held open (the upstream sends one delta a second)."""
    procs.stop("upstream")
    argv = [PY, "-m", "gatepass.devtools.fake_upstream", "--port", str(PORTS["upstream"]),
            "--no-record", "--deltas", "600", "--token-delay", "1.0"]  # fmt: skip
    procs.start("upstream", LOAD_CPU, argv)
    wait_for_port(PORTS["upstream"], 20, procs.procs["upstream"])
    sub = workdir / "slow"
    sub.mkdir()
    cfg = start_gatepass(procs, sub)[0]
    pid = procs.pid("gatepass")
    post(cfg.url, cfg.api_key)
    idle = rss_mib(pid)
    holder = [PY, "-c", (
        "import asyncio,sys; sys.path.insert(0, 'bench'); import run; "
        f"print(asyncio.run(run._hold_streams({cfg.url!r}, {cfg.api_key!r}, {count}, 40)))"
    )]  # fmt: skip
    proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, *holder], cwd=ROOT, stdout=subprocess.PIPE)
    time.sleep(25)  # all streams opened and relaying by now
    held = rss_mib(pid)
    opened = proc.communicate(timeout=60)[0].decode().strip()
    procs.stop("gatepass")
    procs.stop("upstream")
    return {
        "streams": count,
        "opened": int(opened) if opened.isdigit() else opened,
        "rss_idle_mib": idle,
        "rss_held_mib": held,
        "added_mib": round(held - idle, 1),
        "kib_per_stream": round((held - idle) * 1024 / count, 1),
    }


STATIC_MESSAGE = json.dumps(
    {
        "id": "msg_bench_static",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello from the static upstream."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 26, "output_tokens": 30},
    }
)
WORKERS_REDIS_URL = "redis://127.0.0.1:6379/13"  # limits must be shared with several workers


def start_static_upstream(procs: Processes, workdir: Path, cpus: str) -> str | None:
    """nginx answering every request with one fixed Messages response: a compiled upstream
    costing ~10 µs a request, for the workers curve, where everything shares the two cores."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        apt_install("nginx-light")
    if not Path(nginx).exists():
        return None
    home = workdir / "nginx"
    home.mkdir(exist_ok=True)
    temp = " ".join(
        f"{kind}_temp_path {home}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = home / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  {temp}
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{PORTS["static-upstream"]};
    location / {{
      default_type application/json;
      add_header request-id req_static_upstream always;
      return 200 '{STATIC_MESSAGE}';
    }}
  }}
}}
"""
    )
    procs.start("static-upstream", cpus, [nginx, "-e", str(home / "error.log"), "-c", str(conf)])
    wait_for_port(PORTS["static-upstream"], 20, procs.procs["static-upstream"])
    return f"http://127.0.0.1:{PORTS['static-upstream']}"


def workers_curve(procs: Processes, workdir: Path, duration: float) -> dict[str, Any]:
    """One `gatepass serve` worker against two, with the same placement: nothing pinned apart
    (server, nginx upstream and a two-thread wrk all on both cores), limits in Redis for both.

    On a 2-core machine the load generator and upstream take CPU from the workers; a compiled
    upstream keeps that small. CPU per request shows whether a second worker costs extra.
    """
    both = "0,1"
    upstream_url = start_static_upstream(procs, workdir, both)
    if upstream_url is None:
        return {"error": "nginx is missing and could not be installed"}
    out: dict[str, Any] = {
        "placement": "every process on CPUs 0-1; wrk -t2; upstream: nginx, one fixed answer",
        "runs": [],
    }
    for workers in (1, 2):
        sub = workdir / f"workers-{workers}"
        sub.mkdir()
        configs = start_gatepass(procs, sub, workers=workers, cpus=both,
                                 upstream_url=upstream_url, redis_url=WORKERS_REDIS_URL)  # fmt: skip
        time.sleep(1.0)  # every worker has started and loaded its caches
        pid = procs.pid("gatepass")
        for cfg in configs[:2]:  # minimal and governed
            status, body = post(cfg.url, cfg.api_key)
            if status != 200:
                return {**out, "error": f"sanity request: HTTP {status}: {body[:200]!r}"}
            wrk(cfg, 64, 1.0, cpus=both, threads=2)  # warm-up: every worker gets connections
            for connections in (16, 64):
                nginx = procs.pid("static-upstream")
                before = cpu_seconds(pid), cpu_seconds(nginx), _children_cpu()
                result = wrk(cfg, connections, duration, cpus=both, threads=2)
                after = cpu_seconds(pid), cpu_seconds(nginx), _children_cpu()
                requests = max(1, result["requests"])
                used = [(a - b) / requests * 1e6 for a, b in zip(after, before, strict=True)]
                result["cpu_us_per_request"] = round(used[0], 1)
                result["machine_cpu_us_per_request"] = round(sum(used), 1)  # + nginx + wrk
                out["runs"].append({"workers": workers, "config": cfg.name, **result})
                print(f"  workers={workers} {cfg.name} c{connections}: {result['rps']:.0f} req/s, "
                      f"{result['cpu_us_per_request']:.0f} µs CPU", flush=True)  # fmt: skip
        out.setdefault("rss_mib", {})[workers] = rss_mib(pid)
        procs.stop("gatepass")
    procs.stop("static-upstream")
    one = {(r["config"], r["connections"]): r["rps"] for r in out["runs"] if r["workers"] == 1}
    out["speedup"] = {
        f"{r['config']} c{r['connections']}": round(
            r["rps"] / one[r["config"], r["connections"]], 2
        )
        for r in out["runs"]
        if r["workers"] == 2
    }
    # What two cores allow when the upstream and wrk share them: 2 s of CPU a second divided
    # by the machine's CPU per request (server + nginx + wrk). Reaching it means the second
    # worker scales; what is left to 2x is the load generator's and upstream's share.
    out["two_core_bound"] = {
        f"{r['config']} c{r['connections']}": {
            "rps": r["rps"],
            "bound_rps": round(2e6 / r["machine_cpu_us_per_request"]),
            "share": round(r["rps"] * r["machine_cpu_us_per_request"] / 2e6, 2),
        }
        for r in out["runs"]
        if r["workers"] == 2
    }
    return out


def _children_cpu() -> float:
    """user+sys CPU seconds of this process's waited-for children (wrk runs)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def log_queries(workdir: Path, rows: int) -> dict[str, Any]:
    """p50/p99 of the `/logs` page's queries (filters, totals, content search) over `rows`
    request-log rows and one captured body in ten (SQLite, the default store); the seeding and
    the queries are in bench/logs_bench.py (runnable alone: `python bench/logs_bench.py`)."""
    if str(BENCH) not in sys.path:  # run.py imported as a module rather than run as a script
        sys.path.insert(0, str(BENCH))
    from logs_bench import log_queries as measure

    return measure(workdir, rows)


# ---------------------------------------------------------------- claude gateway


CLAUDE_SESSION_SECRET = "bench-claude-gateway-session-secret-0123456789"
CLAUDE_DB = "claude_gateway_bench"


def claude_session_token(public_url: str) -> str:
    """The session JWT `claude gateway` hands out at the end of its device flow, minted here
    with its `session.jwt_secret` the way the gateway signs it (HS256, `kid` = first 8 bytes of
    SHA-256 of the secret, `aud` "claude-gateway", `iss` its public URL)."""
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    secret = CLAUDE_SESSION_SECRET.encode()
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": hashlib.sha256(secret).digest()[:8].hex()}
    claims = {
        "sub": "alice",
        "email": "alice@corp.example",
        "name": "Alice",
        "groups": ["engineering"],
        "aud": "claude-gateway",
        "iss": public_url,
        "iat": now,
        "exp": now + 86_400,
    }
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def start_claude_gateway(procs: Processes, workdir: Path, *, spend: bool = False) -> Config | None:
    """`claude gateway` (npm @anthropic-ai/claude-code) on PostgreSQL, with idp-dev as its IdP.

    With `spend`, an `admin:` section is configured, which turns its spend meter on (every
    request priced and recorded in PostgreSQL, limits prechecked).
    """
    if not CLAUDE.exists() or shutil.which("psql") is None:
        return None
    name = "claude-gateway-spend" if spend else "claude-gateway"
    database = CLAUDE_DB + ("_spend" if spend else "")
    psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres"]
    for sql in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
        if subprocess.run([*psql, "-c", sql], capture_output=True, check=False).returncode:
            return None
    idp_port = PORTS["claude-idp"]
    if "claude-idp" not in procs.procs:
        idp = [str(Path(PY).parent / "idp-dev"), "--port", str(idp_port)]
        procs.start("claude-idp", LOAD_CPU, idp)
        wait_for_port(idp_port, 20, procs.procs["claude-idp"])
    port = PORTS[name]
    public_url = f"http://127.0.0.1:{port}"
    admin = "admin:\n  write_keys:\n    - id: bench\n      key: " + "b" * 40 + "\n" if spend else ""
    config = workdir / f"{name}.yaml"
    config.write_text(
        f"""listen:
  host: 127.0.0.1
  port: {port}
  public_url: {public_url}
upstreams:
  - provider: anthropic
    base_url: http://127.0.0.1:{PORTS["upstream"]}
    auth:
      api_key: {UPSTREAM_KEY}
oidc:
  issuer: http://127.0.0.1:{idp_port}
  client_id: claude-gateway
  client_secret: claude-gateway-secret
session:
  jwt_secret: {CLAUDE_SESSION_SECRET}
store:
  postgres_url: postgresql://postgres@127.0.0.1:5432/{database}
{admin}"""
    )
    argv = [str(CLAUDE), "gateway", "--config", str(config)]
    # loopback upstream and IdP are refused unless this is set (an SSRF guard)
    procs.start(name, SERVER_CPU, argv, {"CLAUDE_GATEWAY_ALLOW_LOOPBACK": "1"})
    wait_for_port(port, 60, procs.procs[name])
    meter = "spend meter on (admin section)" if spend else "no admin section, no spend meter"
    return Config(
        name,
        f"`claude gateway` (Bun binary), PostgreSQL store, session JWT as bearer, {meter}",
        f"{public_url}/v1/messages",
        name,
        bearer=claude_session_token(public_url),
    )


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    packages = {}
    for name in ("gatepass", "uvicorn", "uvloop", "httptools", "starlette", "aiohttp", "httpx2",
                 "orjson", "sqlalchemy", "aiosqlite", "joserfc", "cryptography"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    litellm = VENVS / "litellm" / "bin" / "python"
    if litellm.exists():
        out = subprocess.run(
            [str(litellm), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        packages["litellm (own venv)"] = out.stdout.strip()
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True, check=False)
    return {
        "hostname": socket.gethostname(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0],
        "packages": packages,
        "placement": {
            "server_under_test_cpu": SERVER_CPU,
            "load_generator_cpu": LOAD_CPU,
            "fake_upstream_cpu": LOAD_CPU,
            "direct_fake_upstream_cpu": SERVER_CPU,
        },
    }


def table(report: dict[str, Any]) -> str:
    configs = report["configs"]
    direct = configs.get("direct", {}).get("http")
    direct_p50 = direct[0]["p50_ms"] if direct else None
    lines = [
        "| config | req/s c1 | req/s c16 | req/s c64 | p50/p99 ms c16 | added p50 c1 | CPU µs/req c16 | RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in configs.items():
        if "http" not in result:
            lines.append(f"| {name} | {result.get('error', 'not run')} |||||||")
            continue
        runs = {r["connections"]: r for r in result["http"]}
        c1, c16 = runs.get(1), runs.get(16)

        def rps(n: int, runs: dict[int, Any] = runs) -> str:
            return f"{runs[n]['rps']:.0f}" if n in runs else "-"

        added = f"{c1['p50_ms'] - direct_p50:+.2f}" if c1 and direct_p50 is not None else "-"
        latency = f"{c16['p50_ms']:.2f}/{c16['p99_ms']:.2f}" if c16 else "-"
        cpu = f"{c16['cpu_us_per_request']:.0f}" if c16 and c16["cpu_us_per_request"] else "-"
        lines.append(
            f"| {name} | {rps(1)} | {rps(16)} | {rps(64)} | {latency} | {added} | {cpu} "
            f"| {result['rss_mib_after']} |"
        )
    for phase in ("streams", "streams_slow"):
        rows = [(n, r[phase]) for n, r in configs.items() if r.get(phase)]
        if not rows:
            continue
        title = f"{DELTAS} deltas" + (
            f", {TOKEN_DELAY * 1000:.0f} ms between" if phase == "streams_slow" else ", no delay"
        )
        lines += [
            "",
            f"Streaming ({title}): p50/p99 ms",
            "",
            "| config | conns | streams/s | TTFB | first delta | total | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, runs in rows:
            for r in runs:
                if "error" in r:
                    lines.append(f"| {name} | {r['connections']} | {r['error'][:80]} |||||")
                    continue
                lines.append(
                    f"| {name} | {r['connections']} | {r['streams_per_s']} "
                    f"| {r['ttfb_p50_ms']}/{r['ttfb_p99_ms']} "
                    f"| {r['first_delta_p50_ms']}/{r['first_delta_p99_ms']} "
                    f"| {r['total_p50_ms']}/{r['total_p99_ms']} | {r['errors']} |"
                )
    lines += scale_table(report.get("scale") or {})
    lines += targets_table(report)
    return "\n".join(lines)


def scale_table(scale: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if scale.get("keys"):
        lines += ["", "Keys in the store (governed key)", "",
                  "| keys | req/s c16 | p50 ms c16 | CPU µs/req c16 |", "|---|---|---|---|"]  # fmt: skip
        for point in scale["keys"]:
            c16 = {r["connections"]: r for r in point.get("http", [])}.get(16)
            if c16:
                lines.append(f"| {point['keys']:,} | {c16['rps']:.0f} | {c16['p50_ms']:.2f} "
                             f"| {c16['cpu_us_per_request']:.0f} |")  # fmt: skip
    workers = scale.get("workers") or {}
    if workers.get("runs"):
        lines += ["", f"Workers ({workers['placement']})", "",
                  "| workers | config | conns | req/s | p50/p99 ms | CPU µs/req | machine CPU µs/req |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in workers["runs"]:
            lines.append(f"| {r['workers']} | {r['config']} | {r['connections']} | {r['rps']:.0f} "
                         f"| {r['p50_ms']:.2f}/{r['p99_ms']:.2f} | {r['cpu_us_per_request']:.0f} "
                         f"| {r.get('machine_cpu_us_per_request', 0):.0f} |")  # fmt: skip
        lines.append(f"\nspeed-up with two workers: {workers.get('speedup')}; share of what two "
                     f"cores allow with wrk and nginx on them: {workers.get('two_core_bound')}")  # fmt: skip
    slow = scale.get("slow_streams")
    if slow:
        lines.append(f"\n{slow['opened']} of {slow['streams']} slow streams held open: RSS "
                     f"{slow['rss_idle_mib']} → {slow['rss_held_mib']} MiB (+{slow['added_mib']} MiB)")  # fmt: skip
    logs = scale.get("log_queries") or {}
    timed = {k: v for k, v in logs.items() if isinstance(v, dict) and "p99_ms" in v}
    if timed:
        lines += ["", f"/logs queries over {logs.get('rows', 0):,} rows ({logs.get('store')})", "",
                  "| query | p50 ms | p99 ms |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in timed.items()]
    return lines


def _http(report: dict[str, Any], name: str, connections: int) -> dict[str, Any] | None:
    runs = report["configs"].get(name, {}).get("http") or []
    return next((r for r in runs if r["connections"] == connections and not r["errors"]), None)


def _first_delta(report: dict[str, Any], name: str, connections: int = 1) -> float | None:
    runs = report["configs"].get(name, {}).get("streams") or []
    run = next((r for r in runs if r.get("connections") == connections and "error" not in r), None)
    return None if run is None else float(run["first_delta_p50_ms"])


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Each target of the performance issue: (target, measured, met); met is None when a
    figure it needs was not measured in this run. Ratios compare configurations of this run."""
    out: list[tuple[str, str, bool | None]] = []

    def ratio(label: str, ours: str, theirs: str, minimum: float, conns: int = 16) -> None:
        a, b = _http(report, ours, conns), _http(report, theirs, conns)
        if a is None or b is None:
            out.append((label, "not measured", None))
            return
        value = a["rps"] / b["rps"]
        out.append(
            (label, f"{a['rps']:.0f} / {b['rps']:.0f} req/s = {value:.2f}x", value >= minimum)
        )

    for governed in ("gatepass-key", "gatepass-token"):
        ratio(f"{governed} ≥ 1.5 x claude-gateway-spend", governed, "claude-gateway-spend", 1.5)
        ratio(f"{governed} ≥ 20 x litellm", governed, "litellm", 20)
    ratio("gatepass-minimal ≥ 0.9 x claude-gateway", "gatepass-minimal", "claude-gateway", 0.9)
    ceiling = max(("ceiling-aiohttp", "ceiling-httpx2"),
                  key=lambda n: (_http(report, n, 16) or {}).get("rps", 0))  # fmt: skip
    ratio(f"gatepass-minimal ≥ 0.9 x {ceiling}", "gatepass-minimal", ceiling, 0.9)
    minimal = _http(report, "gatepass-minimal", 16)
    out.append(("gatepass-minimal CPU ≤ 350 µs/request",
                "not measured" if minimal is None else f"{minimal['cpu_us_per_request']:.0f} µs",
                None if minimal is None else minimal["cpu_us_per_request"] <= 350))  # fmt: skip
    direct = _http(report, "direct", 1)
    direct_delta = _first_delta(report, "direct")
    for name in ("gatepass-minimal", "gatepass-key", "gatepass-token"):
        c1 = _http(report, name, 1)
        if c1 is None or direct is None:
            out.append((f"{name} added p50 at c1 ≤ 0.6 ms", "not measured", None))
        else:
            added = c1["p50_ms"] - direct["p50_ms"]
            out.append((f"{name} added p50 at c1 ≤ 0.6 ms", f"{added:+.2f} ms", added <= 0.6))
        delta = _first_delta(report, name)
        if delta is None or direct_delta is None:
            out.append((f"{name} first delta added ≤ 1 ms", "not measured", None))
        else:
            added = delta - direct_delta
            out.append((f"{name} first delta added ≤ 1 ms", f"{added:+.2f} ms", added <= 1.0))
    streams = {name: max((r.get("streams_per_s", 0) for r in
                          report["configs"].get(name, {}).get("streams") or []), default=0)
               for name in ("gatepass-minimal", "claude-gateway")}  # fmt: skip
    if streams["gatepass-minimal"] and streams["claude-gateway"]:
        value = streams["gatepass-minimal"] / streams["claude-gateway"]
        out.append(("streams/s ≥ 0.9 x claude-gateway",
                    f"{streams['gatepass-minimal']:.0f} / {streams['claude-gateway']:.0f} = {value:.2f}x",
                    value >= 0.9))  # fmt: skip
    rss = [report["configs"][n].get("rss_mib_after") for n in ("gatepass-minimal", "gatepass-key",
           "gatepass-token") if n in report["configs"]]  # fmt: skip
    rss = [r for r in rss if r]
    if rss:
        out.append(("RSS ≤ 150 MiB after the load", f"{max(rss)} MiB", max(rss) <= 150))
    scale = report.get("scale") or {}
    slow = scale.get("slow_streams")
    if slow:
        out.append(("1,000 slow streams add ≤ 100 MiB", f"+{slow['added_mib']} MiB",
                    slow["added_mib"] <= 100 and slow["opened"] == slow["streams"]))  # fmt: skip
    points = [p for p in scale.get("keys") or [] if "http" in p]
    if len(points) >= 2:
        first, last = (
            {r["connections"]: r for r in p["http"]}[16]["rps"] for p in (points[0], points[-1])
        )
        change = last / first - 1
        out.append((f"{points[-1]['keys']:,} keys within 10 % of {points[0]['keys']}",
                    f"{change:+.1%} req/s", abs(change) <= 0.10 or change > 0))  # fmt: skip
    logs = scale.get("log_queries") or {}
    filtered = {k: v["p99_ms"] for k, v in logs.items()
                if isinstance(v, dict) and "p99_ms" in v
                and "search" not in k and k != "all_time"}  # fmt: skip
    if filtered:
        worst = max(filtered, key=filtered.__getitem__)
        out.append((f"/logs filtered query p99 ≤ 200 ms on {logs.get('rows', 0):,} rows",
                    f"worst {worst}: {filtered[worst]} ms", filtered[worst] <= 200))  # fmt: skip
    speedup = (scale.get("workers") or {}).get("speedup") or {}
    if speedup:
        best = max(v for k, v in speedup.items() if "minimal" in k)
        out.append(("two workers ≥ 1.6 x one (minimal path)", f"{best:.2f}x", best >= 1.6))
    return out


def targets_table(report: dict[str, Any]) -> list[str]:
    mark = {True: "met", False: "**not met**", None: "-"}
    lines = ["", "Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {mark[ok]} |" for t, m, ok in targets(report)]
    return lines


# ---------------------------------------------------------------- main


ALL = [
    "direct",
    "ceiling-httpx2",
    "ceiling-aiohttp",
    "gatepass",
    "litellm",
    "claude-gateway",
    "claude-gateway-spend",
]
QUICK = ["direct", "gatepass"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="DIRECT + GATEPASS, short runs")
    parser.add_argument("--configs", help="comma-separated: " + ",".join(ALL))
    parser.add_argument(
        "--duration", type=float, help="seconds per measurement (default 10; quick 2)"
    )
    parser.add_argument(
        "--scale", action="store_true", help="also run the scale curves (default: full runs only)"
    )
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="JSON path (default bench/results/<date>-<host>.json)"
    )
    args = parser.parse_args(argv)

    quick = args.quick
    names = args.configs.split(",") if args.configs else (QUICK if quick else ALL)
    duration = args.duration or (2.0 if quick else 10.0)
    stream_duration = max(1.0, duration / 2)
    connections = [1, 16, 64]
    scale = (args.scale or not quick) and not args.no_scale
    if not ensure_tools():
        print("wrk or taskset is missing and could not be installed", file=sys.stderr)
        sys.exit(3)

    workdir = Path(tempfile.mkdtemp(prefix="gatepass-bench-"))
    procs = Processes(workdir)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "duration_s": duration,
        "machine": machine(),
        "configs": {},
    }
    started = time.perf_counter()
    try:
        start_upstream(procs, 0.0)
        configs: list[Config] = []
        for name in names:
            try:
                if name == "direct":
                    configs.append(start_direct(procs))
                elif name.startswith("ceiling-"):
                    configs.append(start_ceiling(procs, name.removeprefix("ceiling-")))
                elif name == "gatepass":
                    configs.extend(start_gatepass(procs, workdir))
                elif name in ("claude-gateway", "claude-gateway-spend"):
                    cfg = start_claude_gateway(procs, workdir, spend=name.endswith("-spend"))
                    if cfg is None:
                        report["configs"][name] = {"error": "claude CLI or PostgreSQL missing"}
                    else:
                        configs.append(cfg)
                elif name == "litellm":
                    cfg = start_litellm(procs, workdir)
                    if cfg is None:
                        report["configs"]["litellm"] = {"error": "could not install LiteLLM"}
                    else:
                        configs.append(cfg)
                else:
                    sys.exit(f"unknown configuration {name!r}")
            except RuntimeError as exc:
                report["configs"][name] = {"error": f"did not start: {exc}; {procs.tail(name, 5)}"}
        for cfg in configs:
            print(f"{cfg.name}: {cfg.description}", flush=True)
            result = measure(procs, cfg, connections, duration)
            result["description"] = cfg.description
            print(f"  {_short(result)}", flush=True)
            report["configs"][cfg.name] = result
        for cfg in configs:
            if "http" in report["configs"][cfg.name]:
                report["configs"][cfg.name]["streams"] = measure_streams(
                    cfg, [1, 16], stream_duration
                )
        if not quick:
            start_upstream(procs, TOKEN_DELAY)
            if "direct" in procs.procs:
                start_direct(procs, TOKEN_DELAY)  # DIRECT's own upstream slows down too
            for cfg in configs:
                if "http" in report["configs"][cfg.name]:
                    report["configs"][cfg.name]["streams_slow"] = measure_streams(
                        cfg, [1, 16], stream_duration
                    )
        procs.stop_all()
        if scale:
            print("scale: keys in the store", flush=True)
            start_upstream(procs, 0.0)
            report["scale"] = {"keys": scale_keys(procs, workdir, [7, 10_000, 1_000_000], duration)}
            print("scale: one worker against two", flush=True)
            report["scale"]["workers"] = workers_curve(procs, workdir, duration)
            print("scale: 1,000 slow streams", flush=True)
            report["scale"]["slow_streams"] = slow_streams(procs, workdir, 1000)
            print("scale: request-log queries", flush=True)
            report["scale"]["log_queries"] = log_queries(workdir, 1_000_000)
    finally:
        procs.stop_all()
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(report)]
    out = args.out or RESULTS / (
        f"{datetime.now(UTC):%Y-%m-%d}-{socket.gethostname()}{'-quick' if quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"\nJSON: {out}  (logs in {workdir})")
    return report


if __name__ == "__main__":
    main()
