"""The Slack app manifest (``manifest.yml``) for a bridge at a given public URL: ``rallybridge manifest --url``.

Scopes and bot events come from ``adapters/slack/app_spec.py`` (what the code uses), so the manifest, the OAuth
install request and the code cannot drift apart. Written as text to keep the comments; every value that comes
from outside is a JSON string, which YAML reads as a double-quoted scalar.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from adapters.slack.app_spec import BOT_EVENTS, BOT_SCOPES, EVENTS_PATH, REDIRECT_PATH

PLACEHOLDER_URL = "https://rallybridge.example.com"
DEFAULT_NAME = "Rally Bridge"


class ManifestError(ValueError):
    """The URL or name cannot go into a manifest; the message says why."""


def public_base(url: str) -> str:
    """``url`` as the base of the bridge's routes: https, a host, no query or fragment, no trailing slash."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ManifestError(f"--url must start with https:// (Slack only sends requests to HTTPS URLs), got {url!r}")
    if not parts.hostname:
        raise ManifestError(f"--url has no host name: {url!r}")
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        raise ManifestError(f"--url must be a plain base URL without spaces, query or fragment: {url!r}")
    return url.rstrip("/")


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/%~+-]*(?::[A-Za-z0-9/][A-Za-z0-9 ._/%~+-]*)*")


def _q(value: str) -> str:
    """``value`` as a YAML scalar: plain when that reads back unchanged, else double-quoted (JSON)."""
    return value if _PLAIN.fullmatch(value) and not value.endswith(" ") else json.dumps(value, ensure_ascii=False)


def build_manifest(url: str, *, name: str = DEFAULT_NAME) -> str:
    """The manifest text for a bridge reachable at ``url`` (``https://bridge.example.com``)."""
    base = public_base(url)
    name = name.strip()
    if not name or len(name) > 35 or any(c in name for c in "\n\r\t"):
        raise ManifestError("--name must be 1 to 35 characters on one line (Slack's limit for app names)")
    events = _q(f"{base}{EVENTS_PATH}")
    redirect = _q(f"{base}{REDIRECT_PATH}")
    width = max(len(scope) for scope in BOT_SCOPES)
    scopes = "\n".join(f"      - {scope.ljust(width)}  # {why}" for scope, why in BOT_SCOPES.items())
    bot_events = "\n".join(f"      - {event}" for event in BOT_EVENTS)
    return f"""# Slack app manifest for Rally Bridge. Written by: rallybridge manifest --url <public URL of the bridge>
# Create the app at https://api.slack.com/apps -> "Create New App" -> "From an app manifest" and paste this file.
# One workspace: install the app from its page there and set SLACK_BOT_TOKEN.
# Several workspaces: set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and RALLYBRIDGE_PUBLIC_URL, turn on distribution
# ("Manage Distribution"), then each workspace installs at <public URL>/slack/install.
# For Socket Mode (no public URL), set socket_mode_enabled: true and remove the request_url lines.
display_information:
  name: {_q(name)}
  description: Chat with your Respondent study participants from Slack threads, archived to Rally.
  background_color: "#1f2a44"
  long_description: >-
    Rally Bridge gives every approved Respondent participant of a Rally study one thread in the study's
    channel. Participant messages appear in the thread; replies from study teammates with external-panel access
    are relayed to the participant and every message, both ways, is archived on the study record in Rally.
    Link a study with /rally link <studyId>. Start a reply with // to keep it as an internal note.
features:
  bot_user:
    display_name: {_q(name)}
    always_online: true
  app_home:  # the Home tab: who waits, linked studies, failed deliveries, scheduled messages; the Messages tab: nudges
    home_tab_enabled: true
    messages_tab_enabled: true
    messages_tab_read_only_enabled: true
  shortcuts:  # a message's menu in a participant's thread: the saved replies for that participant
    - name: Send a saved reply
      type: message
      callback_id: rallybridge_saved_reply
      description: Pick a saved reply for this participant
  slash_commands:
    - command: /rally
      url: {events}
      description: Link a Rally study to this channel, own a participant's thread, or get help
      usage_hint: link <studyId> | assign <participant> [@person] | queue | help
      should_escape: false
oauth_config:
  redirect_urls:
    - {redirect}
  scopes:
    bot:
{scopes}
settings:
  event_subscriptions:
    request_url: {events}
    bot_events:
{bot_events}
  interactivity:
    is_enabled: true
    request_url: {events}
  org_deploy_enabled: false
  socket_mode_enabled: false
  token_rotation_enabled: false
"""
