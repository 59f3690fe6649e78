"""``TeamsPlatform`` against the connector stand-in: verification record, error mapping, people, private notes."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from adapters.teams.connector import ConnectorClient
from adapters.teams.pacing import ThreadPacer
from adapters.teams.platform import TeamsPlatform
from core.errors import NotFound, PermanentFailure, TemporaryFailure, UnknownOutcome
from core.message import text
from core.ports import ThreadRoot
from sandbox.teams.connector import TeamsConnectorSandbox
from storage.db import Database
from storage.teams import ConversationContext, TeamsStore, UserContext

CHANNEL = "19:unit@thread.tacv2"


@dataclass
class Rig:
    platform: TeamsPlatform
    connector: TeamsConnectorSandbox
    store: TeamsStore


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    sandbox = TeamsConnectorSandbox(app_id=None, app_password=None, limits=False)
    await sandbox.start()
    assert sandbox.base_url is not None
    sandbox.add_channel(CHANNEL, "unit")
    sandbox.add_member("29:ana", "Ana Ortiz", email="ana@example.com")
    sandbox.add_member("29:chloe", "Chloe Park", email=None, upn="chloe@example.com")
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

    connector = ConnectorClient(no_token, pacer=ThreadPacer(max_wait=0.5), timeout=2)
    try:
        yield Rig(TeamsPlatform(connector, store, app_id="bot"), sandbox, store)
    finally:
        await connector.close()
        await sandbox.stop()
        await db.dispose()


async def test_posts_are_recorded_so_find_post_can_answer_after_an_unknown_outcome(rig: Rig) -> None:
    root = await rig.platform.post_thread_root(CHANNEL, ThreadRoot("Jordan L.", "Study", None, None), key="root:1")
    assert await rig.platform.find_post(CHANNEL, "root:1") == root
    posted = await rig.platform.post_participant_message(CHANNEL, root.post_id, "Jordan L.", "hi", key="mirror:1")
    assert await rig.platform.find_post(CHANNEL, "mirror:1", root_id=root.post_id) == posted
    assert await rig.platform.find_post(CHANNEL, "mirror:never") is None


async def test_a_dropped_connection_is_an_unknown_outcome_and_is_posted_again(rig: Rig) -> None:
    """The connector cannot list posts: when the answer is lost the record says 'sending', find_post finds
    nothing, and the next attempt posts again. At-least-once in that window, documented in docs/teams.md."""
    root = await rig.platform.post_thread_root(CHANNEL, ThreadRoot("Jordan L.", "Study", None, None), key="root:1")
    rig.connector.drop_next_send(1)
    with pytest.raises(UnknownOutcome):
        await rig.platform.post_participant_message(CHANNEL, root.post_id, "Jordan L.", "hi", key="mirror:1")
    assert await rig.platform.find_post(CHANNEL, "mirror:1", root_id=root.post_id) is None
    await rig.platform.post_participant_message(CHANNEL, root.post_id, "Jordan L.", "hi", key="mirror:1")
    assert len(rig.connector.replies(CHANNEL, root.post_id)) == 2
    assert await rig.platform.find_post(CHANNEL, "mirror:1") is not None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, TemporaryFailure),
        (412, TemporaryFailure),
        (502, TemporaryFailure),
        (504, TemporaryFailure),
        (403, PermanentFailure),
        (404, NotFound),
        (400, PermanentFailure),
    ],
)
async def test_connector_errors_map_to_the_cores_errors(rig: Rig, status: int, error: type[Exception]) -> None:
    root = await rig.platform.post_thread_root(CHANNEL, ThreadRoot("Jordan L.", "Study", None, None), key="root:1")
    if status == 429:
        rig.connector.rate_limit_next(1, retry_after=3, path_contains="/activities")
    else:
        rig.connector.fail_next(1, status=status, path_contains="/activities")
    with pytest.raises(error) as raised:
        await rig.platform.post_notice(CHANNEL, text("note"), key="n1", root_id=root.post_id)
    assert type(raised.value) is error
    if status == 429:
        assert isinstance(raised.value, TemporaryFailure) and raised.value.retry_after == 3


async def test_a_participants_markdown_link_reaches_the_connector_as_plain_characters(rig: Rig) -> None:
    root = await rig.platform.post_thread_root(CHANNEL, ThreadRoot("Jordan L.", "Study", None, None), key="root:1")
    await rig.platform.post_participant_message(
        CHANNEL, root.post_id, "Jo [bank](https://evil.example)", "[label](https://evil.example) *now*", key="m:1"
    )
    (sent,) = rig.connector.replies(CHANNEL, root.post_id)
    assert sent["textFormat"] == "xml"
    assert "[label]" not in sent["text"] and "[bank]" not in sent["text"] and "](" not in sent["text"]
    assert "*" not in sent["text"]
    shown = html.unescape(sent["text"])  # what Teams' HTML shows: the words as typed
    assert shown == "<b>Jo [bank](https://evil.example)</b> (participant):<br>[label](https://evil.example) *now*"


async def test_lookup_user_reads_the_roster_email_or_upn(rig: Rig) -> None:
    chloe = await rig.platform.lookup_user("29:chloe")
    assert (chloe.name, chloe.email) == ("Chloe Park", "chloe@example.com")
    with pytest.raises(NotFound):
        await rig.platform.lookup_user("29:never-seen")


async def test_private_notes_go_to_a_personal_chat_or_fall_back_to_a_mention(rig: Rig) -> None:
    await rig.platform.post_private(CHANNEL, "29:ana", text("only for Ana <b>"))
    assert rig.connector.personal_messages("29:ana") == ["only for Ana &lt;b&gt;"]
    await rig.platform.post_private(CHANNEL, "29:ana", text("again"))
    assert len(rig.connector.personal_messages("29:ana")) == 2  # the personal chat is reused
    # Teams refuses a personal chat with someone outside the roster: told in the channel, with a mention.
    await rig.platform.post_private(CHANNEL, "29:stranger", text("you may not"))
    (post,) = rig.connector.roots(CHANNEL)
    assert "couldn't message you privately" in post["text"] and post["entities"][0]["mentioned"]["id"] == "29:stranger"


async def test_pacing_beyond_max_wait_is_a_temporary_failure_with_retry_after() -> None:
    now = [100.0]
    pacer = ThreadPacer(max_wait=5, clock=lambda: now[0])
    for _ in range(8):
        await pacer.acquire("t")
        now[0] += 0.01
    assert 1.9 < pacer.delay("t") < 2.3  # 8 in 2 s used: wait for the oldest to leave the 2 s window
    pacer = ThreadPacer(max_wait=5, clock=lambda: now[0])
    for _ in range(60):  # 2.5 per second: within 7 / 1 s and 8 / 2 s, but 60 in 24 s
        now[0] += 0.4
        await pacer.acquire("t")
    with pytest.raises(TemporaryFailure) as raised:
        await pacer.acquire("t")  # 60 in 30 s used
    assert raised.value.retry_after is not None and raised.value.retry_after > 5
    assert pacer.delay("other") == 0
