"""The live root card on Teams: posted, redrawn with a Bot Framework activity update (``PUT``), mentions, direct
messages; ``TeamsPlatform`` with its connector client against the connector stand-in over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from botbuilder.schema import Activity

from adapters.teams import card as teams_card
from adapters.teams import format as fmt
from adapters.teams.connector import ConnectorClient
from adapters.teams.inbound import event_of
from adapters.teams.pacing import ThreadPacer
from adapters.teams.platform import TeamsPlatform, thread_conversation
from core.domain import Mark
from core.errors import NotFound, Paced, PermanentFailure, TemporaryFailure
from core.events import EventKind
from core.message import at, cmd, person, text
from core.ports import ThreadRoot
from sandbox.teams.connector import ACTIVITY_NOT_FOUND, TeamsConnectorSandbox
from storage.db import Database
from storage.teams import ConversationContext, TeamsStore, UserContext

CHANNEL = "19:unit@thread.tacv2"
WAITING = datetime(2026, 12, 5, 10, 42, tzinfo=UTC)
SESSION = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
FUNCTIONS = "{{DATE(2026-12-05T10:42:00Z, SHORT)}} {{TIME(2026-12-05T10:42:00Z)}}"


@dataclass
class Rig:
    platform: TeamsPlatform
    connector: TeamsConnectorSandbox
    store: TeamsStore
    client: ConnectorClient


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    sandbox = TeamsConnectorSandbox(app_id=None, app_password=None, limits=False)
    await sandbox.start()
    assert sandbox.base_url is not None
    sandbox.add_channel(CHANNEL, "unit")
    sandbox.add_member("29:chloe", "Chloe Park", email="chloe@example.com")
    db = Database(database_url)
    store = TeamsStore(db)
    reference = {"bot": {"id": "28:bot", "name": "Rally Bridge"}, "serviceUrl": sandbox.base_url}
    await store.remember(
        ConversationContext(CHANNEL, "tenant", "team", sandbox.base_url, reference),
        f"channel:{CHANNEL}",
        UserContext("29:chloe", "Chloe", None, CHANNEL, sandbox.base_url),
    )

    async def no_token() -> str | None:
        return None

    client = ConnectorClient(no_token, pacer=ThreadPacer(max_wait=0.5), timeout=2)
    try:
        yield Rig(TeamsPlatform(client, store, app_id="bot"), sandbox, store, client)
    finally:
        await client.close()
        await sandbox.stop()
        await db.dispose()


def root(*status: object, **changes: object) -> ThreadRoot:
    base: dict[str, object] = {
        "participant_name": "<!channel> & Bob [x](https://evil.example) {{TIME(2026-01-01T00:00:00Z)}}",
        "study_name": "Checkout *study*",
        "session_starts_at": SESSION,
        "scheduling_url": "https://cal.test/book?a=1&b=2",
        "participant_id": "pa_1",
        "status": tuple(status),
        "participant_tz": "America/Chicago",
    }
    return ThreadRoot(**{**base, **changes})  # type: ignore[arg-type]


def _card(activity: dict[str, Any]) -> dict[str, Any]:
    content = activity["attachments"][0]["content"]
    assert isinstance(content, dict)
    return content


def _lines(card: dict[str, Any]) -> list[str]:
    return [str(b["text"]) for b in card["body"] if b["type"] == "TextBlock"]


async def test_the_root_card_shows_status_lines_in_each_viewers_zone(rig: Rig) -> None:
    status = (text("Waiting since ", at(WAITING), " *now*"), text("Assigned to ", person("29:chloe", "Chloe [x](y)")))
    posted = await rig.platform.post_thread_root(CHANNEL, root(*status), key="root:1")
    (activity,) = rig.connector.roots(CHANNEL)
    assert activity["id"] == posted.post_id
    card = _card(activity)
    name, waiting, assigned, hint = _lines(card)
    assert name.startswith("<!channel> & Bob \\[x\\](https://evil.example)")  # cards read no HTML: only Markdown
    assert "{{TIME(2026-01-01" not in name  # outside words never become a date function
    assert waiting == f"Waiting since {FUNCTIONS} \\*now\\*"
    assert assigned == "Assigned to @Chloe \\[x\\](y)"  # named, not mentioned: a redraw must not notify again
    assert hint == "Reply in this thread to message them."
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Study": "Checkout \\*study\\*",
        "Session": "Fri 27 Nov 2026, 17:00 UTC (11:00 in America/Chicago)",
    }
    assert [a["title"] for a in card["actions"]] == [
        "Remind",
        "Follow up",
        "Send scheduling link",
        "Assign to me",
        "Saved reply",
        "Scheduling link",
    ]
    assign = card["actions"][3]
    assert assign["type"] == "Action.Submit"
    assert assign["data"] == {"rallybridge": {"command": "assign pa_1", "channel": CHANNEL}}
    assert "Waiting since Sat 5 Dec 2026, 10:42 UTC" in activity["summary"]


def test_a_click_on_assign_is_the_assign_command_in_the_channel() -> None:
    card = teams_card.thread_root_card(root(), CHANNEL, "Rally Bridge")
    (assign,) = [a for a in card["actions"] if a["title"] == "Assign to me"]
    clicked = Activity().deserialize(
        {
            "type": "message",
            "id": "1700000000009",
            "channelId": "msteams",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "from": {"id": "29:chloe", "name": "Chloe"},
            "recipient": {"id": "28:bot", "name": "Rally Bridge"},
            "conversation": {"id": f"{CHANNEL};messageid=1700000000001", "conversationType": "channel"},
            "channelData": {"channel": {"id": CHANNEL}, "tenant": {"id": "tenant-1"}},
            "replyToId": "1700000000001",
            "value": assign["data"],
        }
    )
    event = event_of(clicked)
    assert event is not None and event.kind is EventKind.CHAT_COMMAND
    assert (event.payload["text"], event.payload["channel"], event.payload["user_id"]) == (
        "assign pa_1",
        CHANNEL,
        "29:chloe",
    )
    unassignable = teams_card.thread_root_card(root(assignable=False), CHANNEL, "Rally Bridge")
    assert "Assign to me" not in json.dumps(unassignable)
    assert "actions" not in teams_card.thread_root_card(root(participant_id=None, scheduling_url=None), CHANNEL, "B")


async def test_update_replaces_the_root_post_in_place(rig: Rig) -> None:
    posted = await rig.platform.post_thread_root(CHANNEL, root(text("New")), key="root:1")
    await rig.platform.update_thread_root(CHANNEL, posted.post_id, root(text("Waiting since ", at(WAITING, "time"))))
    await rig.platform.update_thread_root(CHANNEL, posted.post_id, root(text("Replied"), assignable=False))
    (activity,) = rig.connector.roots(CHANNEL)  # still one post: changed, not added
    assert activity["id"] == posted.post_id and _lines(_card(activity))[1] == "Replied"
    history = rig.connector.updates_of(posted.post_id)
    assert len(history) == 2
    assert _lines(_card(history[0]))[1] == "Waiting since {{TIME(2026-12-05T10:42:00Z)}}"
    assert rig.connector.find_activity(posted.post_id) == activity
    puts = [r for r in rig.connector.request_log if r.method == "PUT"]
    assert [r.status for r in puts] == [200, 200]
    # The root post's own thread, as create_conversation named it (the path as the stand-in decoded it).
    path = f"/v3/conversations/{thread_conversation(CHANNEL, posted.post_id)}/activities/{posted.post_id}"
    assert all(r.path == path for r in puts)
    assert await rig.platform.find_post(CHANNEL, "root:1") == posted


async def test_update_of_an_unknown_root_is_a_permanent_failure(rig: Rig) -> None:
    await rig.platform.post_thread_root(CHANNEL, root(), key="root:1")
    with pytest.raises(NotFound) as missing:
        await rig.platform.update_thread_root(CHANNEL, "1234567", root())
    assert isinstance(missing.value, PermanentFailure) and missing.value.status == 404
    assert rig.connector.base_url is not None
    (posted,) = rig.connector.roots(CHANNEL)
    url = f"{rig.connector.base_url}/v3/conversations/{CHANNEL};messageid={posted['id']}/activities/999"
    async with aiohttp.ClientSession() as session, session.put(url, json={"type": "message"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == ACTIVITY_NOT_FOUND


async def test_update_is_paced_and_a_429_is_temporary_with_retry_after(rig: Rig) -> None:
    posted = await rig.platform.post_thread_root(CHANNEL, root(), key="root:1")
    rig.connector.rate_limit_next(1, retry_after=3, path_contains="/activities/")
    with pytest.raises(TemporaryFailure) as limited:
        await rig.platform.update_thread_root(CHANNEL, posted.post_id, root(text("x")))
    assert limited.value.retry_after == 3 and not isinstance(limited.value, Paced)
    assert rig.connector.updates_of(posted.post_id) == []
    # Our own pacer counts a redraw as a send into the root's thread.
    rig.client.pacer = ThreadPacer(limits=((1.0, 1),), max_wait=0.05)
    await rig.platform.update_thread_root(CHANNEL, posted.post_id, root(text("1")))
    with pytest.raises(Paced):
        await rig.platform.update_thread_root(CHANNEL, posted.post_id, root(text("2")))
    assert len(rig.connector.updates_of(posted.post_id)) == 1


async def test_a_person_in_a_notice_is_mentioned_with_its_entity(rig: Rig) -> None:
    posted = await rig.platform.post_thread_root(CHANNEL, root(), key="root:1")
    notice = text(person("29:chloe", "Chloe <b>Park</b>"), " took ", person("29:chloe", "Chloe <b>Park</b>"), " at ")
    await rig.platform.post_notice(CHANNEL, notice + at(WAITING), key="n:1", root_id=posted.post_id)
    (sent,) = rig.connector.replies(CHANNEL, posted.post_id)
    mention = "<at>Chloe &lt;b&gt;Park&lt;/b&gt;</at>"
    assert sent["text"] == f"{mention} took {mention} at Sat 5 Dec 2026, 10:42 UTC"
    assert sent["entities"] == [
        {"type": "mention", "text": mention, "mentioned": {"id": "29:chloe", "name": "Chloe <b>Park</b>"}}
    ]
    await rig.platform.post_notice(CHANNEL, text("no one"), key="n:2", root_id=posted.post_id)
    assert "entities" not in rig.connector.replies(CHANNEL, posted.post_id)[1]


def test_only_a_teams_user_id_is_mentioned() -> None:
    for bad in ("", "Ann", "29:x<at>", "U123"):
        assert fmt.render(text(person(bad, "<at>Ann</at>")), "B") == "@&lt;at&gt;Ann&lt;/at&gt;"
        assert fmt.mention_entities(text(person(bad, "Ann"))) == []
    aad = "00000000-0000-0000-0000-000000000001"
    assert fmt.render(text(person(aad, "Ann")), "B") == "<at>Ann</at>"
    assert fmt.wording(text(person("29:a", "Ann"), " ", at(WAITING, "time"), " ", cmd("help")), "B") == (
        "@Ann 10:42 UTC @B help"
    )


async def test_post_direct_lands_in_the_personal_chat(rig: Rig) -> None:
    await rig.platform.post_direct("29:chloe", text("Jordan waits since ", at(WAITING), " <b>"), key="d:1")
    await rig.platform.post_direct("29:chloe", text("again ", person("29:chloe", "Chloe")), key="d:2")
    first, second = rig.connector.personal_messages("29:chloe")
    assert first == "Jordan waits since Sat 5 Dec 2026, 10:42 UTC &lt;b&gt;"
    assert second == "again <at>Chloe</at>"
    assert rig.connector.roots(CHANNEL) == []
    assert await rig.platform.find_post(CHANNEL, "d:1") is not None
    with pytest.raises(NotFound):
        await rig.platform.post_direct("29:never-seen", text("hi"), key="d:3")


async def test_seen_posts_nothing_in_teams(rig: Rig) -> None:
    posted = await rig.platform.post_thread_root(CHANNEL, root(), key="root:1")
    await rig.platform.add_mark(CHANNEL, posted.post_id, Mark.SEEN)
    await rig.platform.remove_mark(CHANNEL, posted.post_id, Mark.SEEN)
    assert rig.connector.replies(CHANNEL, posted.post_id) == []
    assert [r.method for r in rig.connector.request_log] == ["POST"]
