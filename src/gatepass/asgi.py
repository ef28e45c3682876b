"""Entry point for ASGI servers: `uvicorn --factory gatepass.asgi:create_from_environment`."""

from __future__ import annotations

from typing import Any

from gatepass.app import create_app
from gatepass.config import load_settings
from gatepass.logs.structured import configure as configure_logging


def create_from_environment() -> Any:
    """The app for the settings in `GATEPASS_CONFIG` and the `GATEPASS_*` variables."""
    settings = load_settings()
    configure_logging(settings.log_format)
    return create_app(settings)
