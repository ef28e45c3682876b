"""Server-rendered pages: one Jinja2 environment and the security headers every page carries.

Pages cannot be framed (clickjacking), are never cached, run no script but the one carrying
the per-response nonce, and by default send no referrer. A page that must let its origin
through (the last hop to a loopback redirect, which Claude Desktop checks) passes
`referrer_policy="origin"`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    referrer_policy: str = "no-referrer",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `template` with a CSP nonce available as `csp_nonce`."""
    nonce = secrets.token_urlsafe(16)
    body = _environment.get_template(template).render({**(context or {}), "csp_nonce": nonce})
    security = {
        "content-security-policy": (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            f"script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": referrer_policy,
        "cache-control": "no-store",
    }
    return HTMLResponse(body, status_code=status, headers={**security, **(headers or {})})
