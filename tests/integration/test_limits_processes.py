"""Two `gatepass serve` processes sharing PostgreSQL and Redis enforce one budget exactly.

The other replica tests run two gateways in one test process (so they can share an injected
clock); this one runs the real command twice, as an operator would behind a load balancer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import orjson
import pytest
from typer.testing import CliRunner

from gatepass.cli import app
from tests.conftest import SECRET_KEY, UPSTREAM_KEY, Upstream
from tests.integration.test_limits_replicas import redis_prefix  # noqa: F401  (fixture)
from tests.integration.test_postgres import pg_empty, pg_url  # noqa: F401  (fixtures)
from tests.unit.test_limits_backends import REDIS_URL

K = 4  # requests the budget pays for
N = 12  # requests sent at once, split across the two processes


def exact_body() -> bytes:
    """A request whose admission estimate (bytes / 4 + max_tokens) is exactly what the fake
    upstream will report (bytes // 4 input, 5 output), so each one uses what it reserved."""
    text = "Hi"
    while True:
        body = orjson.dumps(
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": text}],
            }
        )
        if len(body) % 4 == 0:
            return body
        text += "!"


BODY = exact_body()
TOKENS = len(BODY) // 4 + 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def config(tmp_path: Path, pg_url: str, redis_prefix: str) -> Path:  # noqa: F811
    path = tmp_path / "gatepass.toml"
    path.write_text(
        f'database_url = "{pg_url}"\nsecret_key = "{SECRET_KEY}"\nredis_url = "{REDIS_URL}"\n'
        f'key_cache_ttl = 3600.0\n\n[limits]\nredis_prefix = "{redis_prefix}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def processes(config: Path) -> Iterator[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    ports = [free_port(), free_port()]
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gatepass",
                "serve",
                "--port",
                str(port),
                "--config",
                str(config),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url, process in zip(urls, started, strict=True):
            while True:
                assert process.poll() is None, "gatepass serve exited"
                try:
                    if httpx2.get(url + "/readyz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, "gatepass serve never became ready"
                time.sleep(0.1)
        yield urls
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_two_processes_admit_exactly_the_budget(
    config: Path, upstream: Upstream, processes: list[str]
) -> None:
    cli(config, "providers", "add", "fake", "--base-url", upstream.url, "--api-key", UPSTREAM_KEY)
    cli(config, "models", "add", "claude-haiku-4-5", "--provider", "fake")
    key = (
        cli(
            config,
            "keys",
            "create",
            "--name",
            "shared",
            "--models",
            "*",
            "--budget-tokens",
            str(K * TOKENS),
            "--period",
            "1mo",
            "--reset",
            "rolling",
        )
        .strip()
        .splitlines()[-1]
    )

    # Each process notices the new model and key within about a second (the change epoch).
    deadline = time.monotonic() + 10
    for url in processes:
        while (
            "claude-haiku-4-5"
            not in httpx2.get(url + "/anthropic/v1/models", headers={"x-api-key": key}).text
        ):
            assert time.monotonic() < deadline, f"{url} never served the new model"
            time.sleep(0.1)

    def send(i: int) -> httpx2.Response:
        return httpx2.post(
            processes[i % 2] + "/anthropic/v1/messages",
            headers={"x-api-key": key, "content-type": "application/json"},
            content=BODY,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=N) as pool:
        answers = list(pool.map(send, range(N)))
    assert sum(r.status_code == 200 for r in answers) == K
    assert all(r.status_code == 429 for r in answers if r.status_code != 200)
    # Once the K answers are settled the budget is spent, on both processes.
    for i in (0, 1):
        refused = send(i)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] in ("billing_error", "rate_limit_error")
    deadline = time.monotonic() + 10
    while (refused := send(0)).json()["error"]["type"] != "billing_error":
        assert time.monotonic() < deadline, refused.text
        time.sleep(0.1)
    assert refused.headers["x-should-retry"] == "false"
    assert len([r for r in upstream.fake.requests if r.path == "/v1/messages"]) == K
