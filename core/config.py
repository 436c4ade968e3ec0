"""Settings: the public environment-variable contract of seedbot.

Every knob is read from the environment or an optional `.env` file. The variable names are a public
contract (deployments set them); rename a field freely, never its alias.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.llm.types import Effort

EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")

CommaList = Annotated[tuple[str, ...], NoDecode]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
ADMIN_TOKEN_MIN_CHARS = 24


def _env(name: str, default: Any = None, **kwargs: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(name), **kwargs)


class ConfigError(Exception):
    """Settings that cannot be used; `str()` is fit to print as it is (one line per problem)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        # `SLACK_BOT_TOKEN=` (nothing after it) means "not set", as people write it in .env files.
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- model API ---
    aiml_api_key: SecretStr | None = _env("AIML_API_KEY")
    aiml_base_url: str = _env("AIML_BASE_URL", "https://api.aimlapi.com/v1")
    model: str = _env("SEEDBOT_MODEL", "bytedance/dola-seed-2-0-lite")
    max_tokens: int = _env("SEEDBOT_MAX_TOKENS", 8192, ge=1, le=256_000)
    default_effort: Effort = _env("SEEDBOT_DEFAULT_EFFORT", "medium")
    system_prompt: str = _env(
        "SEEDBOT_SYSTEM_PROMPT",
        "You are Seed, a helpful assistant in a team chat. Answer concisely in Markdown.",
    )
    connect_timeout_s: float = _env("SEEDBOT_CONNECT_TIMEOUT_S", 10.0, gt=0)
    # Reasoning models can go quiet for a long while between chunks; this bounds the silence, not the answer.
    idle_timeout_s: float = _env("SEEDBOT_IDLE_TIMEOUT_S", 120.0, gt=0)
    max_retries: int = _env("SEEDBOT_MAX_RETRIES", 3, ge=0, le=10)
    retry_max_wait_s: float = _env("SEEDBOT_RETRY_MAX_WAIT_S", 30.0, ge=0)
    context_tokens: int = _env("SEEDBOT_CONTEXT_TOKENS", 256_000, ge=1024)
    price_input_per_m: Decimal = _env("SEEDBOT_PRICE_INPUT_PER_M", Decimal("0.325"), ge=0)
    price_output_per_m: Decimal = _env("SEEDBOT_PRICE_OUTPUT_PER_M", Decimal("2.60"), ge=0)

    # --- storage, retention, budgets ---
    # A PostgreSQL URL carries a password: kept secret so no repr, log line or error message shows it.
    database_url: SecretStr = _env("DATABASE_URL", SecretStr("sqlite:///seedbot.db"))
    # What instances agree on right now: the platforms' rate budgets (Slack counts most methods per
    # workspace, whichever instance calls). Several instances need it; it may carry a password.
    redis_url: SecretStr | None = _env("REDIS_URL", None)
    retention_days: int | None = _env("SEEDBOT_RETENTION_DAYS", None, ge=1)
    user_daily_budget_usd: Decimal | None = _env("SEEDBOT_USER_DAILY_BUDGET_USD", None, ge=0)
    workspace_monthly_budget_usd: Decimal | None = _env("SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD", None, ge=0)
    # How many of the most recent turns may re-send their media; older media become a text mention.
    context_media_turns: int = _env("SEEDBOT_CONTEXT_MEDIA_TURNS", 4, ge=0)

    # --- replies ---
    footer: bool = _env("SEEDBOT_FOOTER", True)
    show_reasoning: bool = _env("SEEDBOT_SHOW_REASONING", True)
    # Long enough for a burst of answers in one Slack workspace: 100 finals at chat.update's 50 a
    # minute take two minutes.
    final_edit_deadline_s: float = _env("SEEDBOT_FINAL_EDIT_DEADLINE_S", 180.0, gt=0)

    # --- media ---
    max_file_mb: float = _env("SEEDBOT_MAX_FILE_MB", 25.0, gt=0)
    max_files: int = _env("SEEDBOT_MAX_FILES", 10, ge=1)
    image_max_side: int = _env("SEEDBOT_IMAGE_MAX_SIDE", 2048, ge=64)
    video_max_seconds: float = _env("SEEDBOT_VIDEO_MAX_SECONDS", 180.0, gt=0)
    video_max_mb: float = _env("SEEDBOT_VIDEO_MAX_MB", 20.0, gt=0)
    text_file_max_chars: int = _env("SEEDBOT_TEXT_FILE_MAX_CHARS", 40_000, ge=100)
    # Prepared media kept on disk by platform file id, so a file is downloaded once (0: no disk cache).
    media_cache_mb: float = _env("SEEDBOT_MEDIA_CACHE_MB", 512.0, ge=0)
    media_cache_dir: Path | None = _env("SEEDBOT_MEDIA_CACHE_DIR", None)
    # What a summary may send of the media shared in its range; past it, the newest win.
    summary_max_images: int = _env("SEEDBOT_SUMMARY_MAX_IMAGES", 20, ge=0)
    summary_max_videos: int = _env("SEEDBOT_SUMMARY_MAX_VIDEOS", 2, ge=0)
    summary_media_tokens: int = _env("SEEDBOT_SUMMARY_MEDIA_TOKENS", 60_000, ge=0)

    # --- tools ---
    tools_enabled: bool = _env("SEEDBOT_TOOLS_ENABLED", True)
    tool_max_rounds: int = _env("SEEDBOT_TOOL_MAX_ROUNDS", 8, ge=1, le=50)
    tool_timeout_s: float = _env("SEEDBOT_TOOL_TIMEOUT_S", 30.0, gt=0)
    tool_confirm_timeout_s: float = _env("SEEDBOT_TOOL_CONFIRM_TIMEOUT_S", 120.0, gt=0)
    tool_answer_timeout_s: float = _env("SEEDBOT_TOOL_ANSWER_TIMEOUT_S", 300.0, gt=0)
    tool_result_max_chars: int = _env("SEEDBOT_TOOL_RESULT_MAX_CHARS", 20_000, ge=500)
    fetch_allow_hosts: CommaList = _env("SEEDBOT_FETCH_ALLOW_HOSTS", ())
    # A path to a JSON file, or the JSON itself: {"mcpServers": {"NAME": {...}}}.
    mcp_config: str | None = _env("SEEDBOT_MCP_CONFIG", None)

    # --- Slack ---
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_api_url: str = _env("SLACK_API_URL", "https://slack.com/api/")
    slack_allowed_channels: CommaList = _env("SLACK_ALLOWED_CHANNELS", ())
    slack_allowed_users: CommaList = _env("SLACK_ALLOWED_USERS", ())
    slack_require_mention: bool = _env("SLACK_REQUIRE_MENTION", False)
    slack_ignore_bots: bool = _env("SLACK_IGNORE_BOTS", True)
    slack_stream_mode: Literal["native", "edit"] = _env("SLACK_STREAM_MODE", "native")

    # --- Discord ---
    discord_bot_token: SecretStr | None = _env("DISCORD_BOT_TOKEN")
    discord_api_base: str = _env("DISCORD_API_BASE", "https://discord.com/api/v10")
    discord_gateway_url: str | None = _env("DISCORD_GATEWAY_URL")
    discord_allowed_guilds: CommaList = _env("DISCORD_ALLOWED_GUILDS", ())
    discord_allowed_channels: CommaList = _env("DISCORD_ALLOWED_CHANNELS", ())
    discord_allowed_roles: CommaList = _env("DISCORD_ALLOWED_ROLES", ())
    discord_guild_ids: CommaList = _env("DISCORD_GUILD_IDS", ())
    discord_thread_per_conversation: bool = _env("DISCORD_THREAD_PER_CONVERSATION", False)
    # Unset: one unsharded gateway connection. A number, or "auto" (Discord's recommendation).
    discord_shard_count: int | Literal["auto"] | None = _env("DISCORD_SHARD_COUNT", None)
    # The shards this process runs (empty: every shard of the count).
    discord_shard_ids: Annotated[tuple[int, ...], NoDecode] = _env("DISCORD_SHARD_IDS", ())
    # Requests a second Discord allows the bot across all its shards (50 unless Discord raised it).
    discord_global_rate_limit: int = _env("DISCORD_GLOBAL_RATE_LIMIT", 50, ge=2)

    # --- service ---
    admins: CommaList = _env("SEEDBOT_ADMINS", ())
    http_port: int | None = _env("SEEDBOT_HTTP_PORT", None, ge=1, le=65535)
    admin_token: SecretStr | None = _env("SEEDBOT_ADMIN_TOKEN")
    log_format: Literal["text", "json"] = _env("SEEDBOT_LOG_FORMAT", "text")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env("SEEDBOT_LOG_LEVEL", "INFO")
    shutdown_grace_s: float = _env("SEEDBOT_SHUTDOWN_GRACE_S", 30.0, ge=0)

    @field_validator(
        "slack_allowed_channels",
        "slack_allowed_users",
        "discord_allowed_guilds",
        "discord_allowed_channels",
        "discord_allowed_roles",
        "discord_guild_ids",
        "admins",
        "fetch_allow_hosts",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("discord_shard_count", mode="before")
    @classmethod
    def _shard_count(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if value == "auto":
                return value
            if not value.isdigit():
                raise ValueError("must be a number of shards (1 or more) or auto")
            value = int(value)
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a number of shards (1 or more) or auto")
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_id_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise ValueError("must be comma-separated shard numbers, e.g. 0,1")
        return tuple(int(part) for part in parts)

    @field_validator("discord_shard_ids")
    @classmethod
    def _shard_ids_in_count(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if not value:
            return value
        if len(set(value)) != len(value):
            raise ValueError("lists a shard twice")
        count = info.data.get("discord_shard_count")
        if count is None and "discord_shard_count" in info.data:
            raise ValueError("needs DISCORD_SHARD_COUNT (a number, or auto)")
        if isinstance(count, int) and max(value) >= count:
            raise ValueError(f"shard ids go from 0 to {count - 1} with DISCORD_SHARD_COUNT={count}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The console is one guessable secret away from every budget: refuse a short one outright.
        if value is not None and len(value.get_secret_value()) < ADMIN_TOKEN_MIN_CHARS:
            raise ValueError(
                f"must be at least {ADMIN_TOKEN_MIN_CHARS} characters; make one with: openssl rand -hex 32"
            )
        return value

    @field_validator("default_effort", mode="before")
    @classmethod
    def _lower_effort(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("aiml_base_url", "discord_api_base")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("slack_api_url")
    @classmethod
    def _with_trailing_slash(cls, value: str) -> str:
        # slack-sdk joins method names onto this base by plain concatenation.
        return value if value.endswith("/") else value + "/"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file `DATABASE_URL` names, or None for another kind of database."""
        return sqlite_path(self.database_url.get_secret_value())

    @property
    def media_cache_folder(self) -> Path:
        """SEEDBOT_MEDIA_CACHE_DIR, else a folder next to the SQLite file (or the working directory)."""
        if self.media_cache_dir is not None:
            return self.media_cache_dir
        database = self.sqlite_path
        return (database.parent if database is not None else Path()) / "seedbot-media-cache"

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL URL `DATABASE_URL` names (password included: never print it), or None."""
        url = self.database_url.get_secret_value()
        return url if is_postgres_url(url) else None

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and (
            self.slack_app_token is not None or self.slack_signing_secret is not None
        )

    @property
    def discord_configured(self) -> bool:
        return self.discord_bot_token is not None


def sqlite_path(url: str) -> Path | None:
    """The SQLite file a database URL (or a bare path) names, or None for another kind of database."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if "://" not in url:
        return Path(url)
    return None


def is_postgres_url(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def _fields_by_env_name() -> dict[str, tuple[str, Any]]:
    """Environment variable name (and field name) -> (env name, field), as errors report either."""
    found: dict[str, tuple[str, Any]] = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env_name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else field_name.upper()
        found[env_name] = found[field_name] = (env_name, field)
    return found


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable: its name and what is expected, never the value of a secret."""
    fields = _fields_by_env_name()
    lines = []
    for problem in error.errors():
        location = str(problem["loc"][0]) if problem["loc"] else ""
        name, field = fields.get(location, (location, None))
        expected = problem["msg"].removeprefix("Value error, ")
        is_secret = field is not None and "SecretStr" in str(field.annotation)
        shown = "" if is_secret or "input" not in problem else f" (got {problem['input']!r})"
        lines.append(f"{name}: {expected}{shown}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, raising ConfigError with a printable message instead of a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
