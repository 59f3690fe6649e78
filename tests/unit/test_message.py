"""The core's words as a structure (``core/message.py``): built, stored as JSON in the outbox, rebuilt by the effect,
and rendered by each platform: Slack's ``/rally`` and escaping, Teams' @mention and no home; legacy string payloads
as they were rendered before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.slack import format as slack
from adapters.teams import format as teams
from bridge import effects, outbox
from core import texts
from core.message import CHAT, EMAIL_ACCESS, Cmd, Hint, HomeOnly, Text, cmd, home_only, join, text
from core.records import QueuedRow
from tests.fakes.bridge import Bridge

BOT = "Rally Bridge"


def test_the_builder_flattens_texts_and_joins_neighbouring_strings() -> None:
    built = text("Run ", cmd("link <studyId>"), "", text(" in ", CHAT), ".") + " Thanks."
    assert built.parts == ("Run ", Cmd("link <studyId>"), " in ", CHAT, ". Thanks.")
    assert "Hi " + text("you") == text("Hi you")
    assert join("\n", ["a", text(cmd("help")), "b"]).parts == ("a\n", Cmd("help"), "\nb")
    assert not Text() and not text("") and text(home_only("x"))


def test_a_text_survives_the_outbox_as_json() -> None:
    said = text(
        "Send it with ",
        cmd("retry 12"),
        home_only(" (or Retry on the Home tab in ", CHAT, ")"),
        ". ",
        Hint(EMAIL_ACCESS, "Ask an admin."),
    )
    stored = json.loads(json.dumps(said.to_json()))
    assert Text.from_json(stored) == said
    assert isinstance(Text.from_json(stored).parts[2], HomeOnly)
    with pytest.raises(ValueError):
        Text.from_json([{"type": "mystery"}])


def test_plain_is_the_neutral_reading_with_every_clause() -> None:
    said = text("Use ", cmd("retry 12"), home_only(" (or the Home tab)"), " in ", CHAT, ".")
    assert said.plain() == "Use /rally retry 12 (or the Home tab) in the chat."


def test_slack_renders_commands_as_slash_rally_and_escapes_every_part() -> None:
    said = text("Hi <!channel> & co: ", cmd("retry 12"), " or ", cmd("link <studyId>"), home_only(" (Home tab)"))
    assert slack.render(said) == (
        "Hi &lt;!channel&gt; &amp; co: /rally retry 12 or /rally link &lt;studyId&gt; (Home tab)"
    )
    assert slack.wording(said) == "Hi <!channel> & co: /rally retry 12 or /rally link <studyId> (Home tab)"
    assert "with the same email as in Slack. Ask the study owner" in slack.render(texts.not_on_team("S"))


def test_teams_renders_commands_as_a_mention_and_drops_what_only_a_home_has() -> None:
    said = texts.not_delivered("Respondent said <no>", 12)
    assert teams.render(said, BOT) == (
        "Not delivered to the participant: Respondent said &lt;no&gt;. Nothing was sent. Once the cause is fixed, "
        "send it again with @Rally Bridge retry 12, or reply again."
    )
    assert slack.render(said).endswith("/rally retry 12 (or Retry on the Home tab of Rally Bridge), or reply again.")
    usage = "Usage: @Rally Bridge retry &lt;id&gt; (the id of a failed delivery)."
    assert teams.render(texts.retry_usage(), BOT) == usage
    assert "in Teams, so I can't match you" in teams.wording(texts.no_email("Ana"), BOT)
    assert "Ask a Teams admin" in teams.wording(texts.no_email("Ana"), BOT)
    assert "users:read.email" in slack.wording(texts.no_email("Ana"))
    assert teams.render(text("a\nb"), BOT) == "a<br>b"


def test_outside_words_in_a_text_are_never_read_as_a_command() -> None:
    """A researcher's reminder body saying "/rally x" is theirs: Teams no longer rewrites it (it did by replacement)."""
    said = texts.reminder_sent_notice("remind", "Jo", "Ana", "try /rally help", None)
    assert teams.wording(said, BOT) == "Reminder to Jo, scheduled by Ana:\ntry /rally help"


# A notice queued before texts had a structure: the old core's Slack wording, as a plain string.
LEGACY = (
    "Not delivered to the participant: bad <x>. Nothing was sent. Once the cause is fixed, send it again with "
    "/rally retry 12 (or Retry on the Home tab of Rally Bridge), or reply again. I can't see an email address for Ana "
    "in Slack, so I can't match you to a Rally user. Ask a workspace admin to make sure the app has the "
    "users:read.email scope."
)


def test_a_legacy_string_payload_renders_as_before() -> None:
    legacy = Text.from_json(LEGACY)
    assert slack.render(legacy) == slack.escape(LEGACY)  # Slack escaped the whole string
    before = (  # what teams_wording made of it: /rally -> @Rally Bridge, Slack -> Teams, the Teams admin hint
        LEGACY.replace("/rally ", "@Rally Bridge ")
        .replace("in Slack, so", "in Teams, so")
        .replace(
            "Ask a workspace admin to make sure the app has the users:read.email scope.",
            "Ask a Teams admin to make sure your account has an email or user principal name.",
        )
    )
    assert teams.render(legacy, BOT) == teams.escape(before)
    assert slack.wording(legacy) == LEGACY


async def test_the_effect_rebuilds_the_text_of_a_payload_old_or_new() -> None:
    bridge = Bridge()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    new = {"platform": "slack", "channel": "C1", "text": text("Use ", cmd("help"), ".").to_json()}
    old = {"platform": "slack", "channel": "C1", "text": "Use /rally help."}
    for n, payload in enumerate((new, old)):
        row = QueuedRow(n, f"notice:{n}", outbox.Effect.NOTICE.value, "l", payload, 0, False, now)
        await effects.perform(bridge.services, row)
    assert [post for _channel, _root, post in bridge.chat.posts] == ["Use /rally help.", "Use /rally help."]
