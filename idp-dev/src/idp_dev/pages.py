"""HTML pages: rendered from package templates with headers that keep them unframeable."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.responses import HTMLResponse

PAGE_HEADERS = {
    # Gatepass relies on the browser sending our origin onward to its callback.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    # No form-action here: Chromium applies it to the redirect after the POST to the client.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("idp_dev", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _env.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def error_page(title: str, detail: str, status_code: int = 400) -> HTMLResponse:
    """For errors that must not redirect, e.g. an unregistered redirect_uri (RFC 6749 §4.1.2.1)."""
    return page("error.html", status_code=status_code, title=title, detail=detail)
