"""Fixtures for driving the `gatepass` CLI against a fresh database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI must only see the configuration each test gives it."""
    for name in list(os.environ):
        if name.startswith("GATEPASS_"):
            monkeypatch.delenv(name)


def write_config(path: Path, database_url: str, secret_key: str | None = SECRET_KEY) -> Path:
    lines = [f'database_url = "{database_url}"']
    if secret_key is not None:
        lines.append(f'secret_key = "{secret_key}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, migrated_template: Path) -> Path:
    """A config file for a fresh, migrated SQLite database."""
    db = tmp_path / "cli.db"
    shutil.copy(migrated_template, db)
    return write_config(tmp_path / "gatepass.toml", f"sqlite:///{db}")
