"""The real Claude Code CLI, one prompt, through Gatepass to the fake upstream, on loopback only.

The CLI comes from `GATEPASS_CLAUDE_BIN` or `<repo>/.cache/node/node_modules/.bin/claude`
(`npm install --prefix .cache/node @anthropic-ai/claude-code`). Without it these tests fail,
unless `GATEPASS_SKIP_CLAUDE_CODE=1` says to skip them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gatepass.devtools.fake_upstream import RecordedRequest
from tests.conftest import UPSTREAM_KEY, Harness

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".cache" / "node" / "node_modules" / ".bin" / "claude"
# Claude Code's default model changes by release; pin one the seeded catalog knows.
MODEL = "claude-sonnet-4-6"
PROMPT = "Say hello."
# Generous: a ~250 MB binary on a small machine. A revoked key must end well within it.
TIMEOUT = 60
# What Claude Code sends that Gatepass must pass on untouched (compared with a direct run).
CLIENT_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "anthropic-dangerous-direct-browser-access",
    "x-app",
    "user-agent",
)


def find_claude() -> Path:
    """The CLI to run; a missing one fails the test (CI installs it) unless told to skip."""
    configured = os.environ.get("GATEPASS_CLAUDE_BIN")
    path = Path(configured) if configured else DEFAULT_BIN
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = (
        f"Claude Code CLI not found at {path}. Install it with "
        "`npm install --no-audit --no-fund --prefix .cache/node @anthropic-ai/claude-code` "
        "in the repository root, or point GATEPASS_CLAUDE_BIN at a `claude` binary "
        "(GATEPASS_SKIP_CLAUDE_CODE=1 skips these tests)."
    )
    if os.environ.get("GATEPASS_SKIP_CLAUDE_CODE") == "1":
        pytest.skip(message)
    pytest.fail(message)


def run_claude(
    claude: Path,
    home: Path,
    base_url: str,
    api_key: str | None,
    settings: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT --output-format json`, offline, in an empty HOME, as a user would.

    `settings` becomes the user's `settings.json` (e.g. an `apiKeyHelper`).
    """
    home.mkdir()
    work = home / "work"
    work.mkdir()
    (home / "tmp").mkdir()
    if settings is not None:
        (home / ".claude").mkdir()
        (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    # Built from scratch, not from os.environ: no proxies, no stray ANTHROPIC_* settings.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "NO_PROXY": "127.0.0.1,localhost",
        "ANTHROPIC_BASE_URL": base_url,
        **({"ANTHROPIC_API_KEY": api_key} if api_key is not None else {}),
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    return subprocess.run(
        [str(claude), "-p", PROMPT, "--output-format", "json", "--model", MODEL],
        env=env,
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def result_of(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON result object Claude Code prints last on stdout."""
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert lines, f"no output; stderr: {completed.stderr!r}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def messages_posts(harness: Harness) -> list[RecordedRequest]:
    return [r for r in harness.fake.requests if r.method == "POST" and r.path == "/v1/messages"]


def test_claude_code_answers_a_prompt_through_gatepass_with_the_provider_key(
    gatepass: Harness, tmp_path: Path
) -> None:
    claude_bin = find_claude()
    # First Claude Code straight at the fake upstream, to learn what it sends on its own.
    direct = run_claude(claude_bin, tmp_path / "direct", gatepass.upstream.url, UPSTREAM_KEY)
    assert direct.returncode == 0, (direct.stdout, direct.stderr)
    own = messages_posts(gatepass)[0]
    gatepass.fake.reset()
    secret = gatepass.create_key("claude-code-user")

    completed = run_claude(claude_bin, tmp_path / "via-gatepass", gatepass.base, secret)

    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    result = result_of(completed)
    assert result["is_error"] is False
    assert "Hello from the fake upstream." in result["result"]

    posts = messages_posts(gatepass)
    assert posts, [(r.method, r.path) for r in gatepass.fake.requests]
    sent = posts[0]
    assert sent.query == "beta=true"
    assert sent.header_values("x-api-key") == [UPSTREAM_KEY]
    assert sent.header("authorization") is None
    assert all(secret not in value for _, value in sent.headers)
    assert "claude-code-20250219" in (own.header("anthropic-beta") or "").split(",")
    for name in CLIENT_HEADERS:
        assert sent.header_values(name) == own.header_values(name), name
    body = sent.json()
    assert body["model"] == MODEL
    assert body["stream"] is True

    logs = gatepass.wait_for_logs(len(posts))
    row = next(r for r in logs if r.path == "/v1/messages" and r.model == MODEL)
    assert row.key_name == "claude-code-user"
    assert row.status == 200
    assert row.stream is True
    # The usage Gatepass logged is the usage Claude Code was told about.
    usage = result["usage"]
    assert row.input_tokens == usage["input_tokens"] > 0
    assert row.output_tokens == usage["output_tokens"] > 0


def test_claude_code_gives_up_at_once_when_its_key_is_revoked(
    gatepass: Harness, tmp_path: Path
) -> None:
    claude_bin = find_claude()
    secret = gatepass.create_key("former-employee")
    gatepass.revoke_key("former-employee")

    completed = run_claude(claude_bin, tmp_path / "home", gatepass.base, secret)

    assert completed.returncode != 0, (completed.stdout, completed.stderr)
    result = result_of(completed)
    assert result["is_error"] is True
    assert result["api_error_status"] == 401
    message = result["result"].lower()
    assert "authenticate" in message, message
    assert "revoked" in message, message
    assert messages_posts(gatepass) == []
