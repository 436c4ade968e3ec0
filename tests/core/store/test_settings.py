"""Settings by scope: the most specific scope that has a value wins."""

from __future__ import annotations

import pytest

from core.store.base import SettingError, Store


async def test_user_beats_channel_beats_workspace(store: Store) -> None:
    await store.set_setting("effort", "low", "workspace", "slack", "T1")
    assert await store.resolve_setting("effort", "slack", "T1", "C1", "U1") == ("low", "workspace")

    await store.set_setting("effort", "medium", "channel", "slack", "C1")
    assert await store.resolve_setting("effort", "slack", "T1", "C1", "U1") == ("medium", "channel")

    await store.set_setting("effort", "high", "user", "slack", "U1")
    assert await store.resolve_setting("effort", "slack", "T1", "C1", "U1") == ("high", "user")

    assert await store.resolve_setting("effort", "slack", "T1", "C1", "U2") == ("medium", "channel")
    assert await store.resolve_setting("effort", "slack", "T1", "C2", "U2") == ("low", "workspace")
    assert await store.resolve_setting("effort", "slack", "T2", "C2", "U2") is None
    assert await store.resolve_setting("effort", "discord", "T1", "C1", "U1") is None


async def test_clearing_a_scope_falls_back_to_the_next_one(store: Store) -> None:
    await store.set_setting("effort", "low", "channel", "slack", "C1")
    await store.set_setting("effort", "high", "user", "slack", "U1")

    await store.set_setting("effort", None, "user", "slack", "U1")

    assert await store.get_setting("effort", "user", "slack", "U1") is None
    assert await store.resolve_setting("effort", "slack", "T1", "C1", "U1") == ("low", "channel")


async def test_setting_again_replaces_the_value(store: Store) -> None:
    await store.set_setting("system_prompt", "Be brief.", "channel", "discord", "C9")
    await store.set_setting("system_prompt", "  Answer in French.  ", "channel", "discord", "C9")
    assert await store.get_setting("system_prompt", "channel", "discord", "C9") == "Answer in French."


async def test_values_are_normalised(store: Store) -> None:
    await store.set_setting("effort", " HIGH ", "user", "slack", "U1")
    await store.set_setting("user_daily_budget_usd", "$0.50", "workspace", "slack", "T1")
    await store.set_setting("workspace_monthly_budget_usd", "Unlimited", "workspace", "slack", "T1")

    assert await store.get_setting("effort", "user", "slack", "U1") == "high"
    assert await store.get_setting("user_daily_budget_usd", "workspace", "slack", "T1") == "0.50"
    assert await store.get_setting("workspace_monthly_budget_usd", "workspace", "slack", "T1") == "unlimited"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("effort", "extreme", "effort must be one of low, medium, high"),
        ("system_prompt", "   ", "cannot be empty"),
        ("system_prompt", "x" * 9000, "limited to 8,000 characters"),
        ("user_daily_budget_usd", "-1", "amount in US dollars"),
        ("workspace_monthly_budget_usd", "lots", "amount in US dollars"),
        ("colour", "blue", "unknown setting 'colour'"),
    ],
)
async def test_bad_values_are_refused_with_a_clear_message(
    store: Store, name: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingError, match=expected):
        await store.set_setting(name, value, "user", "slack", "U1")
    assert await store.get_setting(name, "user", "slack", "U1") is None


async def test_clearing_an_unknown_setting_is_refused(store: Store) -> None:
    with pytest.raises(SettingError, match="unknown setting"):
        await store.set_setting("colour", None, "user", "slack", "U1")
