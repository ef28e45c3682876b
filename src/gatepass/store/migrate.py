"""Run the Alembic migration chain from code (`gatepass migrate`, `gatepass dev`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import gatepass


def migrations_dir() -> Path:
    """The migrations folder: bundled in the wheel, or at the top of a source checkout."""
    bundled = Path(gatepass.__file__).parent / "migrations"
    if bundled.is_dir():
        return bundled
    return Path(gatepass.__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
