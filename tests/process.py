"""Running the real `seedbot` command in a subprocess, with an environment of our own making."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.fakes.model_server import API_KEY, FakeModelServer

REPO = Path(__file__).resolve().parents[1]
SEEDBOT = [sys.executable, "-m", "bots.cli"]


def without_seedbot_settings() -> dict[str, str]:
    """This process's environment without any seedbot setting (a test's own must not leak in)."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("AIML_", "SEEDBOT_", "SLACK_", "DISCORD_"))
    }


def seedbot_environment(model_server: FakeModelServer, database: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any seedbot setting, pointed at the fake model API."""
    env = without_seedbot_settings()
    env.update(
        AIML_API_KEY=API_KEY,
        AIML_BASE_URL=model_server.base_url,
        DATABASE_URL=f"sqlite:///{database}",
        SEEDBOT_MAX_TOKENS="2048",
    )
    env.update(extra)
    return env
