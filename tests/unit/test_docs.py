"""The README stays true: every setting and every CLI command is documented in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from gatepass.cli import app
from gatepass.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def setting_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(setting_names(annotation, f"{prefix}{name}."))
        else:
            names.append(prefix + name)
    return names


@pytest.mark.parametrize("name", setting_names(Settings))
def test_every_setting_is_documented(name: str) -> None:
    leaf = name.rsplit(".", 1)[-1]
    if name in ("providers", "models", "environment", "limits.prices"):
        return  # documented as tables/sections rather than as single keys
    documented = (f"{leaf} =", f"`{leaf}`", f"`{name}`", f"[{name}]")
    assert any(form in README for form in documented), name


def command_names() -> list[str]:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    for group in app.registered_groups:
        names.extend(
            f"{group.name} {c.name or (c.callback.__name__ if c.callback else '')}".replace(
                "_", "-"
            )
            for c in group.typer_instance.registered_commands
        )
    return names


@pytest.mark.parametrize("command", command_names())
def test_every_command_is_documented(command: str) -> None:
    """`gatepass GROUP SUB` appears on one README line (`gatepass keys list|revoke` counts)."""
    *group, sub = command.split()
    if not group:
        assert f"gatepass {sub}" in README, command
        return
    prefix = f"gatepass {group[0]} "
    word = re.compile(rf"(?<![\w-]){re.escape(sub)}(?![\w-])")
    rests = [rest for line in README.splitlines() for rest in line.split(prefix)[1:]]
    assert any(word.match(rest) or word.search(rest.split(" ", 1)[0]) for rest in rests), command
