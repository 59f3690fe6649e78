"""manifest.yml declares what the bridge needs from Slack, and points every URL at the one route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def _manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def test_manifest_has_the_scopes_a_thread_bridge_needs() -> None:
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    needed = {"chat:write", "channels:history", "groups:history", "commands", "users:read", "users:read.email"}
    assert needed <= scopes
    assert "reactions:write" in scopes  # delivery acknowledgements


def test_manifest_subscribes_to_thread_replies_and_routes_everything_to_slack_events() -> None:
    manifest = _manifest()
    settings = manifest["settings"]
    assert {"message.channels", "message.groups"} <= set(settings["event_subscriptions"]["bot_events"])
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(command["url"] for command in manifest["features"]["slash_commands"]),
    ]
    assert all(url.endswith("/slack/events") for url in urls)
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == ["/rally"]
