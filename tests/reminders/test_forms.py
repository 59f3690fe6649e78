"""The pieces under the buttons: which command a filled form stands for, and how a private reply's actions are
rendered within Slack's and Teams' limits (checked by the Slack stand-in's Web API, as Slack would)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import format as slack_fmt
from adapters.slack import interactive
from adapters.slack.platform import SlackPlatform
from adapters.teams import format as teams_fmt
from bridge.reminders.commands import message_part
from core import forms, message
from core.commands import parse_command
from core.domain import Action
from sandbox.slack import SlackSandbox

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("form", "values", "command"),
    [
        (forms.REMIND, {"when": " tomorrow  9am ", "note": None}, "remind pa_9 tomorrow 9am"),
        (forms.REMIND, {"when": "1h before session", "note": "See you!\nBring ID"}, None),
        (forms.REMIND, {"when": "17:00", "note": ""}, "remind pa_9 17:00"),  # "passed" depends on their zone
        (forms.FOLLOWUP, {"after": "", "note": "Any news?"}, "followup pa_9 -- Any news?"),
        (forms.FOLLOWUP, {"after": "1d 12h", "note": None}, "followup pa_9 after 1d 12h"),
        (forms.FOLLOWUP, {"after": "after 2d"}, "followup pa_9 after 2d"),
        (forms.RESCHEDULE, {"note": "Sorry!"}, "reschedule pa_9 -- Sorry!"),
        (forms.RESCHEDULE, {}, "reschedule pa_9"),
    ],
)
def test_a_filled_form_is_the_command_one_could_type(
    form: str, values: dict[str, str | None], command: str | None
) -> None:
    filled = forms.fill(form, "pa_9", values, now=NOW)
    assert filled.errors == {}
    expected = command or "remind pa_9 1h before session -- See you!\nBring ID"
    assert filled.command == expected
    assert parse_command(expected).name == form


@pytest.mark.parametrize(
    ("form", "values", "field", "part"),
    [
        (forms.REMIND, {"when": None}, "when", "Say when"),
        (forms.REMIND, {"when": "next week"}, "when", "can't read"),
        (forms.REMIND, {"when": "in 2h please"}, "when", 'not "please"'),
        (forms.REMIND, {"when": "2h"}, "when", "before session"),
        (forms.FOLLOWUP, {"after": "2"}, "after", "not a duration"),
        (forms.FOLLOWUP, {"after": "0m"}, "after", "not a duration"),
    ],
)
def test_what_a_form_refuses_is_said_next_to_the_field(
    form: str, values: dict[str, str | None], field: str, part: str
) -> None:
    filled = forms.fill(form, "pa_9", values, now=NOW)
    assert filled.command is None and part in filled.errors[field].plain()


def test_a_form_must_name_one_participant_and_be_known() -> None:
    assert "form" in forms.fill("delete", "pa_9", {}, now=NOW).errors
    assert "form" in forms.fill(forms.RESCHEDULE, "pa 9", {}, now=NOW).errors


def test_the_separator_only_separates() -> None:
    assert message_part(" -- 30 min early ") == "30 min early"
    assert message_part("30 min early") == "30 min early"
    assert message_part("") == ""


def test_slack_buttons_stay_within_block_kit_limits() -> None:
    text = "\n".join(f"• #{i} reminder for <Jordan> & co " + "x" * 90 for i in range(100))
    actions = [Action(f"Cancel #{i} " + "y" * 80, f"cancel {i}", "danger") for i in range(1300)]
    blocks = interactive.private_blocks(slack_fmt.render(message.text(text)), actions)
    assert len(blocks) == 50
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert "\n".join(b["text"]["text"] for b in sections) == text.replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;"
    )
    rows = [b for b in blocks if b["type"] == "actions"]
    assert all(len(r["elements"]) <= 25 for r in rows)
    buttons = [e for r in rows for e in r["elements"]]
    assert len(buttons) == len(rows) * 25 and all(len(b["text"]["text"]) <= 75 for b in buttons)
    assert len({b["action_id"] for b in buttons}) == len(buttons)
    assert buttons[0]["value"] == "cancel 0" and buttons[0]["style"] == "danger"


def test_the_root_buttons_name_the_participant() -> None:
    block = interactive.root_actions("pa_9", "Jordan L.", "Study <x>")
    assert [e["text"]["text"] for e in block["elements"]] == ["Remind", "Follow up", "Send scheduling link"]
    assert {e["action_id"] for e in block["elements"]} == {
        "rallybridge_open_remind",
        "rallybridge_open_followup",
        "rallybridge_open_reschedule",
    }
    assert json.loads(block["elements"][0]["value"]) == {
        "participant": "pa_9",
        "name": "Jordan L.",
        "study": "Study <x>",
    }


def test_a_modal_escapes_the_names_it_shows() -> None:
    target = interactive.FormTarget(forms.REMIND, "C1", "pa_9", "<!channel> Jo", "Study & <https://x|y>")
    view = interactive.form_view(target)
    context = view["blocks"][0]["elements"][0]["text"]
    assert "&lt;!channel&gt; Jo" in context and "&amp; &lt;https://x|y&gt;" in context
    assert interactive.FormTarget.from_json(view["private_metadata"]) == target
    with pytest.raises(interactive.BadInteraction):
        interactive.FormTarget.from_json('{"form": "remind"}')


@pytest.fixture
async def sandbox() -> AsyncIterator[SlackSandbox]:
    box = SlackSandbox(rate_limit=False)
    await box.start()
    box.add_channel("C1", "study")
    box.add_user("U1", "Ana Ortiz", "ana@example.com")
    try:
        yield box
    finally:
        await box.stop()


async def test_slack_accepts_a_private_reply_with_many_buttons(sandbox: SlackSandbox) -> None:
    client = AsyncWebClient(token=sandbox.token, base_url=f"{sandbox.base_url}/api/", retry_handlers=[])
    platform = SlackPlatform(client)
    actions = [Action(f"Cancel #{i}", f"cancel {i}", "danger") for i in range(60)]
    scheduled = message.text("Scheduled:\n" + "\n".join(f"#{i}" for i in range(60)))
    await platform.post_private("C1", "U1", scheduled, actions=actions)
    (sent,) = sandbox.ephemerals
    rows = [b for b in sent["blocks"] if b["type"] == "actions"]
    assert [len(r["elements"]) for r in rows] == [25, 25, 10]
    assert sent["text"].startswith("Scheduled:")  # the notification / fallback text is kept


def test_teams_card_buttons_carry_the_command_and_channel() -> None:
    actions = [(f"Cancel #{i}", f"cancel {i}", "danger") for i in range(7)]
    card = teams_fmt.private_card("Scheduled:\n• #1 for *Jo* [x](y)", actions, "19:c@thread.tacv2")
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert texts == ["Scheduled:", "• #1 for \\*Jo\\* \\[x\\](y)"]
    sets = [b["actions"] for b in card["body"] if b["type"] == "ActionSet"]
    assert [len(s) for s in sets] == [5, 2]
    first = sets[0][0]
    assert (first["type"], first["title"], first["style"]) == ("Action.Submit", "Cancel #0", "destructive")
    assert teams_fmt.submitted_command(first["data"]) == ("cancel 0", "19:c@thread.tacv2")
    many = teams_fmt.private_card("x", [(f"C{i}", f"cancel {i}", None) for i in range(40)], "19:c")
    assert sum(len(b["actions"]) for b in many["body"] if b["type"] == "ActionSet") == 25
    for value in (None, "cancel 1", {"rallybridge": "cancel 1"}, {"rallybridge": {"command": " ", "channel": "19:c"}}):
        assert teams_fmt.submitted_command(value) is None
