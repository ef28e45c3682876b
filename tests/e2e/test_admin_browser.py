"""The security team's pages in real headless Chromium (Debian's package): sign in through
idp-dev as an admin, create a key, add a mapping, find a request by its content in /logs,
and see the audit events for those actions. With GATEPASS_SCREENSHOTS=1 it refreshes
docs/logs.png."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import SignIn
from tests.integration.admin_support import make_alice_admin

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium package is needed (scripts/services installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def ask(signin: SignIn, key: str, text: str) -> None:
    reply = httpx2.post(
        signin.gatepass.base + "/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "claude-haiku-4-5", "max_tokens": 16,
              "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/admin")
    page.fill("#login", "alice@corp.example")
    page.fill("#password", "alice-password")
    page.click("#submit")
    page.wait_for_url(url + "/admin/keys")


def test_an_admin_manages_keys_and_mappings_and_finds_a_request_in_logs_in_chromium(
    make_signin: Callable[..., SignIn], browser: Browser
) -> None:
    signin = make_signin(logs={"capture": "full"})
    make_alice_admin(signin)
    ask(signin, signin.eng_key, "How many legs does an octopus have?")
    ask(signin, signin.sales_key, "Draft a renewal email for the Contoso account")
    ask(signin, signin.eng_key, "Explain the quick brown fox pangram")
    signin.gatepass.wait_for_logs(3)
    url = signin.gatepass.url
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, url)

        page.fill("#create-key input[name=name]", "browser-key")
        page.fill("#create-key input[name=models]", "claude-haiku-4-5")
        page.click("#create-key button")
        secret = page.text_content("#new-secret") or ""
        assert secret.startswith("gp-")
        assert page.locator('tr[data-key="browser-key"]').count() == 1
        page.reload()
        assert page.locator("#new-secret").count() == 0  # shown once

        page.goto(url + "/admin/mappings")
        page.fill("#add-mapping input[name=target]", "contractors")
        page.select_option("#add-mapping select[name=key]", "browser-key")
        page.fill("#add-mapping input[name=priority]", "30")
        page.click("#add-mapping button")
        assert "contractors" in (page.text_content("#mappings") or "")

        page.goto(url + "/logs")
        assert page.locator("tr.log").count() == 3
        page.fill("#q", "brown fox")
        page.click("#apply")
        page.wait_for_url("**/logs?**")
        assert page.locator("tr.log").count() == 1
        assert "1</b> requests" in page.inner_html("#totals")
        if os.environ.get("GATEPASS_SCREENSHOTS") == "1":  # refreshes docs/logs.png
            page.goto(url + "/logs")
            page.screenshot(path=str(DOCS / "logs.png"), full_page=True)
            page.go_back()
        page.click("tr.log a")
        assert "quick brown fox" in (page.text_content("#request-text") or "")

        page.goto(url + "/admin/audit")
        actions = {
            (row.get_attribute("data-action"), row.text_content())
            for row in page.locator("tr.event").all()
        }
        created = [text for action, text in actions if action == "key.create"]
        mapped = [text for action, text in actions if action == "mapping.create"]
        assert any("browser-key" in t and "alice@corp.example" in t for t in created)
        assert any("contractors" in t and "alice@corp.example" in t for t in mapped)
        assert any(action == "admin.sign_in" for action, _ in actions)
        assert secret not in page.content()
    finally:
        context.close()
