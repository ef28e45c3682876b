"""SIGTERM with a stream open: the open stream finishes, and its usage is written to the
request log before the process exits."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx2

from gatepass.devtools.fake_upstream import StreamScript
from tests.conftest import Upstream
from tests.integration.conftest import write_config
from tests.integration.test_cli import (
    free_port,
    gatepass_command,
    process_env,  # noqa: F401  (fixture)
    run,
    served,  # noqa: F401  (fixture)
    wait_until_ready,
)
from tests.integration.test_streaming import STOP, delta, message_delta, message_start


def test_sigterm_lets_an_open_stream_finish_and_records_its_usage(
    tmp_path: Path,
    upstream: Upstream,
    process_env: dict[str, str],  # noqa: F811
    served: list[subprocess.Popen[Any]],  # noqa: F811
) -> None:
    database = tmp_path / "gatepass.db"
    config = write_config(tmp_path / "gatepass.toml", f"sqlite:///{database}")
    run(["migrate"], config, process_env)
    run(
        [
            "providers",
            "add",
            "fake",
            "--base-url",
            upstream.url,
            "--api-key-env",
            "GP_TEST_UPSTREAM_KEY",
        ],
        config,
        process_env,
    )
    run(["models", "add", "claude-haiku-4-5", "--provider", "fake"], config, process_env)
    secret = (
        run(["keys", "create", "--name", "k", "--models", "*"], config, process_env)
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*gatepass_command(), "serve", "--port", str(port), "--config", str(config)],
            env=process_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, url, log)

    # A stream that takes about a second and a half, with its usage at both ends.
    events = (
        [(0.0, message_start(33))]
        + [(0.15, delta("x"))] * 10
        + [(0.0, message_delta(10)), (0.0, STOP)]
    )
    upstream.fake.script(StreamScript(events))
    first_delta = threading.Event()
    received: list[bytes] = []

    def read_stream() -> None:
        with httpx2.stream(
            "POST",
            url + "/anthropic/v1/messages",
            headers={"x-api-key": secret},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 10,
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            },
            timeout=30,
        ) as response:
            for chunk in response.iter_bytes():
                received.append(chunk)
                if b"content_block_delta" in chunk:
                    first_delta.set()

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert first_delta.wait(15), log.read_text()
    process.send_signal(signal.SIGTERM)
    reader.join(30)
    assert not reader.is_alive()
    assert b"".join(received).decode().endswith(STOP)
    returncode = process.wait(timeout=30)
    assert returncode in (0, -signal.SIGTERM), log.read_text()

    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT status, input_tokens, output_tokens, client_disconnected FROM request_log"
        ).fetchall()
    assert rows == [(200, 33, 10, 0)]
