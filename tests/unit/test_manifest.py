"""manifest.yml declares what the bridge needs from Slack, points every URL at the bridge, and is exactly what
`rallybridge manifest --url https://rallybridge.example.com` writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.manifest import PLACEHOLDER_URL, ManifestError, build_manifest
from adapters.slack.oauth import BOT_EVENTS, BOT_SCOPES

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
RALLYBRIDGE = str(Path(sys.executable).with_name("rallybridge"))


def _manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def test_manifest_has_the_scopes_a_thread_bridge_needs() -> None:
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    needed = {"chat:write", "channels:history", "groups:history", "commands", "users:read", "users:read.email"}
    assert needed <= scopes
    assert "reactions:write" in scopes  # delivery acknowledgements
    assert scopes == set(BOT_SCOPES)  # exactly what the code (and the OAuth install) asks for


def test_manifest_subscribes_to_thread_replies_and_routes_everything_to_slack_events() -> None:
    manifest = _manifest()
    settings = manifest["settings"]
    assert {"message.channels", "message.groups"} <= set(settings["event_subscriptions"]["bot_events"])
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(command["url"] for command in manifest["features"]["slash_commands"]),
    ]
    assert all(url == f"{PLACEHOLDER_URL}/slack/events" for url in urls)
    assert settings["interactivity"]["is_enabled"] is True
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == ["/rally"]


def test_manifest_hears_uninstalls_and_redirects_oauth_to_the_bridge() -> None:
    manifest = _manifest()
    assert {"app_uninstalled", "tokens_revoked"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)
    assert manifest["oauth_config"]["redirect_urls"] == [f"{PLACEHOLDER_URL}/slack/oauth_redirect"]


@pytest.mark.slow
def test_committed_manifest_is_the_command_output_for_the_placeholder_url(tmp_path: Path) -> None:
    out = tmp_path / "manifest.yml"
    result = subprocess.run(
        [RALLYBRIDGE, "manifest", "--url", PLACEHOLDER_URL, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == MANIFEST.read_text()


@pytest.mark.slow
def test_manifest_command_writes_the_given_url_and_name(tmp_path: Path) -> None:
    out = tmp_path / "slack.yml"
    result = subprocess.run(
        [RALLYBRIDGE, "manifest", "--url", "https://bridge.acme.test/rally/", "--name", "Acme: Research", "--out", out],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(out.read_text())
    assert manifest["display_information"]["name"] == "Acme: Research"
    assert manifest["features"]["bot_user"]["display_name"] == "Acme: Research"
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://bridge.acme.test/rally/slack/events"
    assert manifest["oauth_config"]["redirect_urls"] == ["https://bridge.acme.test/rally/slack/oauth_redirect"]


@pytest.mark.slow
def test_manifest_command_refuses_a_url_slack_would_refuse_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "manifest.yml"
    for url in ("http://bridge.example.com", "bridge.example.com", "https://bridge.example.com/?x=1"):
        result = subprocess.run(
            [RALLYBRIDGE, "manifest", "--url", url, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, (url, result.stdout)
        assert "--url" in result.stderr
        assert not out.exists()


@pytest.mark.parametrize("name", ["", "x" * 36, "two\nlines"])
def test_manifest_refuses_names_slack_would_refuse(name: str) -> None:
    with pytest.raises(ManifestError, match="--name"):
        build_manifest(PLACEHOLDER_URL, name=name)
