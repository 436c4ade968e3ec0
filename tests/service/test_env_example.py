"""deploy/.env.example documents exactly the settings `Settings` reads, each with its default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic_core import PydanticUndefined

from core.config import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / ".env.example"
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def env_names() -> dict[str, str]:
    """Env variable name -> field name, for every setting."""
    names = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names[str(alias.choices[0]) if isinstance(alias, AliasChoices) else field_name.upper()] = field_name
    return names


def documented() -> dict[str, str]:
    found = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if match := ASSIGNMENT.match(line):
            found[match.group(1)] = match.group(2)
    return found


def test_every_setting_is_documented():
    missing = sorted(set(env_names()) - set(documented()))
    assert not missing, f"add these to deploy/.env.example: {missing}"


def test_nothing_documented_that_settings_does_not_read():
    unknown = sorted(set(documented()) - set(env_names()))
    assert not unknown, f"deploy/.env.example names settings that do not exist: {unknown}"


def test_each_documented_value_is_the_default_and_every_entry_has_a_description():
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    names = env_names()
    for index, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if not match:
            continue
        name, shown = match.groups()
        assert line.startswith("# "), f"{name} is set, not documented: keep it commented out"
        assert lines[index - 1].startswith("# ") and not ASSIGNMENT.match(lines[index - 1]), name
        default = Settings.model_fields[names[name]].default
        assert default is not PydanticUndefined
        # The shown value parses to the default (unset and empty defaults are shown empty).
        if default in (None, ()):
            assert shown == "", name
        else:
            parsed = Settings(_env_file=None, **{names[name]: shown})
            assert getattr(parsed, names[name]) == default, name
