"""The Slack adapter: slack-bolt's AsyncApp over Socket Mode or HTTP, answering through ChatService."""

from bots.slack.app import build_slack_app
from bots.slack.runner import SlackRunner, SlackStartupError

__all__ = ["SlackRunner", "SlackStartupError", "build_slack_app"]
