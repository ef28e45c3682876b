"""The real Claude Code CLI signed in through `gatepass login` as its `apiKeyHelper`:
device flow approved in a browser at Gatepass and idp-dev, then a prompt with that token."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gatepass.cli.login import obtain_token
from tests.conftest import SignIn
from tests.e2e.test_claude_code import find_claude, messages_posts, result_of, run_claude
from tests.integration.test_device_cli import WAIT, Watched
from tests.integration.test_device_support import Browser


def test_claude_code_runs_a_prompt_with_a_token_from_gatepass_login(
    make_signin: Callable[..., SignIn], tmp_path: Path
) -> None:
    claude = find_claude()
    signin = make_signin(sign_in={"device_poll_interval": 1})
    base = signin.gatepass.base
    cache = tmp_path / "credentials.json"

    # First sign-in: `gatepass login` shows a code; the user approves it in the browser.
    watched = Watched()
    browser = Browser(signin.issuer)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(obtain_token, base, cache, http=watched.http)
            browser.approve_code(watched.next_code())
            token = pending.result(timeout=WAIT)
    finally:
        watched.http.close()
        browser.http.close()
    assert token.count(".") == 2

    # Claude Code asks the helper for a credential: it prints the cached token.
    helper = f"{sys.executable} -m gatepass login --url {base} --cache {cache}"
    completed = run_claude(claude, tmp_path / "home", base, None, settings={"apiKeyHelper": helper})
    result = result_of(completed)
    assert completed.returncode == 0, completed.stderr
    assert result["is_error"] is False, result
    assert "Hello from the fake upstream" in result["result"]

    sent = messages_posts(signin.gatepass)[-1]
    assert token not in str(sent.headers)
    row = signin.gatepass.wait_for_logs(1)[-1]
    assert row.user_email == "alice@corp.example"
    assert row.key_name == "eng-key"
    assert row.status == 200
