"""The admin surface's one error envelope and its one renderer.

{"error": {"type": "<ErrorType>", "message": "<sentence>", "details": {...} | null}}
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.responses import JSONResponse

ErrorType = Literal[
    "invalid_request",  # 400: the body or query cannot be used
    "authentication_required",  # 401: no, unknown or revoked credential
    "forbidden",  # 403: not an admin, read-only token, CSRF token missing
    "not_found",  # 404
    "method_not_allowed",  # 405
    "conflict",  # 409: the operation refused on the current state
]


class AdminError(Exception):
    """An admin request refused; rendered by `render` and nowhere else."""

    def __init__(
        self, status: int, type: ErrorType, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details


def render(error: AdminError) -> JSONResponse:
    headers = {"cache-control": "no-store"}
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="gatepass-admin"'
    return JSONResponse(
        {"error": {"type": error.type, "message": error.message, "details": error.details}},
        status_code=error.status,
        headers=headers,
    )
