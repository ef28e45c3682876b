"""`gatepass dev`: one command gives a working gateway, fake upstream and idp-dev on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_serves_a_working_gateway_with_a_printed_key(tmp_path: Path) -> None:
    port, upstream, idp = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gatepass",
            "dev",
            "--port",
            str(port),
            "--upstream-port",
            str(upstream),
            "--idp-port",
            str(idp),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("gp-") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = process.stdout.readline()
            assert line, "gatepass dev exited:\n" + "".join(lines)
            lines.append(line)
        key = next(line.strip() for line in lines if line.startswith("gp-"))
        output = "".join(lines)
        assert f'"issuer": "http://127.0.0.1:{port}", "clientId": "claude-desktop"' in output
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx2.get(base + "/readyz").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway never became ready"
            time.sleep(0.1)
        reply = httpx2.post(
            base + "/anthropic/v1/messages",
            headers={"x-api-key": key},
            json={
                "model": "claude-sonnet-4-6",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["content"][0]["text"]
        discovery = httpx2.get(f"http://127.0.0.1:{idp}/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == f"http://127.0.0.1:{idp}"
        assert (tmp_path / ".gatepass" / "dev.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
