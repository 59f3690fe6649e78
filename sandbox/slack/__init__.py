"""A Slack stand-in for offline tests: ``from sandbox.slack import SlackSandbox``."""

from __future__ import annotations

from sandbox.slack.server import SlackSandbox
from sandbox.slack.state import ApiCall, CommandResult, Delivery

__all__ = ["ApiCall", "CommandResult", "Delivery", "SlackSandbox"]
