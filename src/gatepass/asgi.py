"""Entry point for ASGI servers: `uvicorn --factory gatepass.asgi:create_from_environment`."""

from __future__ import annotations

import logging
from typing import Any

from gatepass.app import create_app
from gatepass.config import load_settings


def create_from_environment() -> Any:
    """The app for the settings in `GATEPASS_CONFIG` and the `GATEPASS_*` variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(load_settings())
