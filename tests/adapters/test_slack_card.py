"""The live root card on Slack: posted, redrawn with ``chat.update``, direct messages; SlackPlatform with the real
AsyncWebClient against the Slack sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from adapters.slack import card
from adapters.slack import format as fmt
from adapters.slack.interactive import RUN_ACTION, run_event
from adapters.slack.pacing import SlackPacer
from adapters.slack.platform import EMOJI, SlackPlatform, build_client
from core.domain import Mark
from core.errors import NotFound, Paced, PermanentFailure, TemporaryFailure
from core.message import at, cmd, person, text
from core.ports import ThreadRoot
from sandbox.slack import SlackSandbox

CH = "C0RESEARCH"
WAITING = datetime(2026, 12, 5, 10, 42, tzinfo=UTC)
SESSION = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


@pytest.fixture
async def sandbox() -> AsyncIterator[SlackSandbox]:
    box = SlackSandbox(rate_limit=False)
    box.add_channel(CH, "research")
    box.add_user("U123", "Dana Researcher", "dana@lab.test", tz="Europe/Berlin", display_name="Dana")
    await box.start()
    yield box
    await box.stop()


@pytest.fixture
async def slack(sandbox: SlackSandbox) -> AsyncIterator[SlackPlatform]:
    platform = SlackPlatform(build_client(sandbox.token, base_url=f"{sandbox.base_url}/api/", timeout=5))
    yield platform
    await platform.close()


def root(*status: object, **changes: object) -> ThreadRoot:
    base: dict[str, object] = {
        "participant_name": "<!channel> & Bob",
        "study_name": "Checkout <https://evil.test|bank> study",
        "session_starts_at": SESSION,
        "scheduling_url": "https://cal.test/book?a=1&b=2",
        "participant_id": "pa_1",
        "status": tuple(status),
        "participant_tz": "America/Chicago",
    }
    return ThreadRoot(**{**base, **changes})  # type: ignore[arg-type]


def _buttons(message: dict[str, object]) -> list[dict[str, object]]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_the_root_card_shows_status_lines_and_stays_inert(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    status = (
        text("Waiting since ", at(WAITING), " <!here>"),
        text("Assigned to ", person("U123", "Dana <!channel>")),
    )
    posted = await slack.post_thread_root(CH, root(*status), key="root-1")
    [message] = sandbox.messages(CH)
    assert message["ts"] == posted.post_id
    header, lines = message["blocks"][0]["text"]["text"], message["blocks"][1]["text"]["text"]
    assert header.startswith("*&lt;!channel&gt; &amp; Bob* · Checkout &lt;https://evil.test|bank&gt; study")
    assert (
        "Session: <!date^1795798800^{date_short_pretty} {time}|Fri 27 Nov 2026, 17:00 UTC> (11:00 in America/Chicago)"
        in header
    )
    assert lines == (
        "Waiting since <!date^1796467320^{date_short_pretty} {time}|Sat 5 Dec 2026, 10:42 UTC> &lt;!here&gt;\n"
        "Assigned to <@U123>"
    )
    shown = [b for b in message["blocks"] if b["type"] != "actions"]  # a button's value is data, never shown
    everything = message["text"] + json.dumps(shown)
    assert "<!channel>" not in everything and "<!here>" not in everything and "<https://evil" not in everything
    # The fallback text says the status lines in plain words: no date token, no mention that would ping.
    assert "Waiting since Sat 5 Dec 2026, 10:42 UTC &lt;!here&gt;" in message["text"]
    assert "Assigned to @Dana &lt;!channel&gt;" in message["text"] and "<@U123>" not in message["text"]
    labels = [b["text"]["text"] for b in _buttons(message)]  # type: ignore[index]
    assert labels == ["Remind", "Follow up", "Send scheduling link", "Assign to me", "Saved reply"]


async def test_update_redraws_the_stored_message_and_keeps_a_history(
    slack: SlackPlatform, sandbox: SlackSandbox
) -> None:
    posted = await slack.post_thread_root(CH, root(text("New")), key="root-1")
    await slack.update_thread_root(CH, posted.post_id, root(text("Waiting since ", at(WAITING, "time"))))
    await slack.update_thread_root(CH, posted.post_id, root(text("Replied"), assignable=False))
    [message] = sandbox.messages(CH)
    assert message["ts"] == posted.post_id and "edited" in message
    assert message["blocks"][1]["text"]["text"] == "Replied"
    assert "Assign to me" not in json.dumps(message["blocks"])
    history = sandbox.update_history(CH, posted.post_id)
    assert len(history) == 2 == sandbox.calls("chat.update")
    assert history[0]["blocks"][1]["text"]["text"] == "Waiting since <!date^1796467320^{time}|10:42 UTC>"
    assert message["metadata"]["event_payload"] == {"key": "root-1"}  # still found by find_post
    assert await slack.find_post(CH, "root-1") == posted
    assert "&lt;!channel&gt; &amp; Bob" in message["text"] and "<!channel>" not in message["text"]


async def test_the_assign_button_runs_the_assign_command(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    posted = await slack.post_thread_root(CH, root(), key="root-1")
    [message] = sandbox.messages(CH)
    (button,) = [b for b in _buttons(message) if b["text"]["text"] == "Assign to me"]  # type: ignore[index]
    assert str(button["action_id"]).startswith(RUN_ACTION) and button["value"] == "assign pa_1"
    body = {"user": {"id": "U123"}, "team": {"id": sandbox.team_id}, "channel": {"id": CH}, "trigger_id": "t1"}
    event = run_event(body, dict(button))
    assert event.payload["text"] == "assign pa_1" and event.payload["channel"] == CH
    assert posted.channel == CH


def test_a_root_without_participant_id_has_no_buttons() -> None:
    _text, blocks = card.root_message(root(participant_id=None))
    assert not [b for b in blocks if b["type"] == "actions"]
    _text, blocks = card.root_message(root(assignable=False))
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Remind", "Follow up", "Send scheduling link"]


def test_dialect_moments_and_mentions() -> None:
    assert fmt.render(text(at(WAITING))) == "<!date^1796467320^{date_short_pretty} {time}|Sat 5 Dec 2026, 10:42 UTC>"
    assert fmt.render(text(at(datetime(2026, 12, 5, 10, 42), "time"))) == "<!date^1796467320^{time}|10:42 UTC>"
    assert fmt.render(text(person("U0ABC12", "Dana"))) == "<@U0ABC12>"
    assert fmt.render(text(person("W0ABC12", "Dana"))) == "<@W0ABC12>"
    for bad in ("U123>|<!channel", "u123", "", "C0RESEARCH", "U123\n"):
        assert fmt.render(text(person(bad, "<!here> Ann"))) == "@&lt;!here&gt; Ann"
    assert fmt.wording(text(person("U1", "Ann"), " at ", at(WAITING), " ", cmd("help"))) == (
        "@Ann at Sat 5 Dec 2026, 10:42 UTC /rally help"
    )


async def test_update_of_an_unknown_root_is_a_permanent_failure(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    with pytest.raises(NotFound):
        await slack.update_thread_root(CH, "1234.000001", root())
    # A message the app did not post cannot be changed by it.
    ts = sandbox.new_ts()
    sandbox.store_message(CH, {"type": "message", "ts": ts, "user": "U123", "text": "hello"})
    with pytest.raises(PermanentFailure) as refused:
        await slack.update_thread_root(CH, ts, root())
    assert "change that message" in refused.value.reason
    sandbox.fail_next(1, status=200, method="chat.update", error="edit_window_closed")
    posted = await slack.post_thread_root(CH, root(), key="root-1")
    with pytest.raises(PermanentFailure) as closed:
        await slack.update_thread_root(CH, posted.post_id, root())
    assert type(closed.value) is PermanentFailure and "edit window" in closed.value.reason


async def test_sandbox_chat_update_wire_shape(sandbox: SlackSandbox, slack: SlackPlatform) -> None:
    posted = await slack.post_thread_root(CH, root(), key="root-1")
    url = f"{sandbox.base_url}/api/chat.update"
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    async with aiohttp.ClientSession() as session:
        form = {"channel": CH, "ts": posted.post_id, "text": "plain now"}
        async with session.post(url, data=form, headers=headers) as resp:
            answer = await resp.json()
        assert answer["ok"] and answer["channel"] == CH and answer["ts"] == posted.post_id
        assert answer["text"] == "plain now" and "blocks" not in answer["message"]  # text alone drops the blocks
        for params, error in (
            ({"channel": "research", "ts": posted.post_id, "text": "x"}, "channel_not_found"),  # ids only
            ({"channel": CH, "ts": "1.000009", "text": "x"}, "message_not_found"),
            ({"channel": CH, "ts": posted.post_id}, "no_text"),
        ):
            async with session.post(url, json=params, headers=headers) as resp:
                assert (await resp.json()) == {"ok": False, "error": error}


async def test_update_is_paced_and_a_429_holds_the_channel(sandbox: SlackSandbox) -> None:
    pacer = SlackPacer(channel_rate=1.0, channel_burst=1, horizon=0.05, workspace_rate=0)
    slack = SlackPlatform(build_client(sandbox.token, base_url=f"{sandbox.base_url}/api/", timeout=5), pacer=pacer)
    try:
        posted = await slack.post_thread_root(CH, root(), key="root-1")
        with pytest.raises(Paced):  # the post used the channel's budget: the redraw waits its turn
            await slack.update_thread_root(CH, posted.post_id, root(text("x")))
        assert sandbox.calls("chat.update") == 0
        pacer.clock = lambda: 1e9  # much later
        sandbox.rate_limit_next(1, retry_after=7, method="chat.update")
        with pytest.raises(TemporaryFailure) as limited:
            await slack.update_thread_root(CH, posted.post_id, root(text("x")))
        assert limited.value.retry_after == 7 and not isinstance(limited.value, Paced)
        assert pacer.delay(CH) > 6  # the channel is held for Retry-After
    finally:
        await slack.close()


async def test_sandbox_models_the_tier_3_limit_of_chat_update(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    posted = await slack.post_thread_root(CH, root(), key="root-1")
    sandbox.limit_updates(per_minute=50, burst=2)
    await slack.update_thread_root(CH, posted.post_id, root(text("1")))
    await slack.update_thread_root(CH, posted.post_id, root(text("2")))
    with pytest.raises(TemporaryFailure) as limited:
        await slack.update_thread_root(CH, posted.post_id, root(text("3")))
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    assert len(sandbox.update_history(CH, posted.post_id)) == 2


async def test_post_direct_lands_in_the_users_dm(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    assert sandbox.direct_messages("U123") == [] and sandbox.dm_channel("U123") is None
    await slack.post_direct(
        "U123", text("Jordan <!here> waits since ", at(WAITING), ": ", cmd("assign pa_1")), key="d1"
    )
    await slack.post_direct("U123", text("again"), key="d2")
    dm = sandbox.dm_channel("U123")
    assert dm is not None and dm.startswith("D")
    first, second = sandbox.direct_messages("U123")
    assert first["text"] == (
        "Jordan &lt;!here&gt; waits since <!date^1796467320^{date_short_pretty} {time}|Sat 5 Dec 2026, 10:42 UTC>: "
        "/rally assign pa_1"
    )
    assert first["metadata"]["event_payload"] == {"key": "d1"} and second["text"] == "again"
    assert sandbox.messages(CH) == []
    with pytest.raises(NotFound):
        await slack.post_direct("U999", text("nobody"), key="d3")


async def test_seen_is_the_eyes_reaction(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    assert EMOJI[Mark.SEEN] == "eyes"
    posted = await slack.post_thread_root(CH, root(), key="root-1")
    await slack.add_mark(CH, posted.post_id, Mark.SEEN)
    await slack.add_mark(CH, posted.post_id, Mark.SEEN)
    assert sandbox.reactions(CH, posted.post_id) == {"eyes"}
    await slack.remove_mark(CH, posted.post_id, Mark.SEEN)
    assert sandbox.reactions(CH, posted.post_id) == set()
