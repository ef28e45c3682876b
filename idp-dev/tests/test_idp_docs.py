"""The README stays honest: every switch and every setting is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from idp_dev import Client, IdpConfig, User
from idp_dev import switches as sw

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sw.names())
def test_every_switch_has_a_row_in_the_readme(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize(
    "name",
    [f.name for cls in (IdpConfig, User, Client) for f in dataclasses.fields(cls)],
)
def test_every_setting_is_documented(name: str) -> None:
    assert f"| `{name}` |" in README
