"""Settings: the environment-variable contract and its error messages."""

import pytest

from core.config import ConfigError, load_settings


def test_defaults_match_the_public_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(_env_file=None)
    assert settings.model == "bytedance/dola-seed-2-0-lite"
    assert settings.aiml_base_url == "https://api.aimlapi.com/v1"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.default_effort == "medium"


def test_comma_separated_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_ALLOWED_USERS", "U1, U2,,U3 ")
    assert load_settings(_env_file=None).slack_allowed_users == ("U1", "U2", "U3")


def test_bad_value_names_the_variable_and_what_is_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDBOT_DEFAULT_EFFORT", "extreme")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("SEEDBOT_DEFAULT_EFFORT:")
    assert "'low', 'medium' or 'high'" in message
    assert "\n" not in message


def test_secrets_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIML_API_KEY", "sk-very-secret")
    settings = load_settings(_env_file=None)
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())
    assert settings.aiml_api_key is not None
    assert settings.aiml_api_key.get_secret_value() == "sk-very-secret"


def test_a_secret_of_the_wrong_type_is_named_but_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, AIML_API_KEY=["sk-listed-secret"])
    assert str(caught.value).startswith("AIML_API_KEY:")
    assert "sk-listed-secret" not in str(caught.value)
