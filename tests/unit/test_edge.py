"""Chat events the handlers would ignore are answered without being stored (bridge/edge.py, issue 13): on fakes, what
``record`` stores and what the handlers then do; on SQLite and PostgreSQL, the read itself (one statement, outside
any transaction: it never waits for the writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text

from bridge import edge, outbox
from bridge.inbox import record
from bridge.services import Services
from core import events
from core.errors import StorageUnavailable, TemporaryFailure
from core.events import InboundEvent
from storage.db import Database
from storage.uow import SqlStore
from tests.fakes.bridge import CHANNEL, STUDY, Bridge, participant, researcher, study

ROOT = "100.000"


@pytest.fixture
def bridge() -> Bridge:
    b = Bridge()
    b.rally.studies[STUDY] = study()
    b.rally.participants[STUDY] = [participant("pa_1")]
    researcher(b, "U_OWNER", "Ana Ortiz", role="OWNER")
    return b


async def _linked(bridge: Bridge, *, root: str | None = ROOT) -> int:
    """The study linked in CHANNEL: one participant thread, its root recorded as ``root`` (None: not yet)."""
    link = f"link {STUDY}"
    await bridge.process(
        events.chat_command(
            platform="slack", request_id="t1", workspace="T1", channel=CHANNEL, user_id="U_OWNER", text=link
        )
    )
    (thread,) = bridge.store.state.threads.values()
    if root is not None:
        async with bridge.store.transaction() as uow:
            await uow.threads.set_root(thread.id, root)
            (root_row,) = [
                r for r in await uow.outbox.claim(owner="w", lease=_LEASE, limit=10) if r.kind == "chat.root"
            ]
            await uow.outbox.finish(root_row.id, "w")
    return thread.id


async def _root_claimed(bridge: Bridge) -> int:
    """The root row is being worked on: posted in the chat, its id not recorded yet. Returns the row's id."""
    async with bridge.store.transaction() as uow:
        claimed = await uow.outbox.claim(owner="w", lease=_LEASE, limit=10)
    (root_row,) = [r for r in claimed if r.kind == "chat.root"]
    return root_row.id


_LEASE = timedelta(minutes=1)


def post(
    ts: str, *, root: str | None, channel: str = CHANNEL, text: str = "hello", user: str = "U_OWNER"
) -> InboundEvent:
    return events.chat_message(
        platform="slack",
        event_id=f"Ev{ts}",
        workspace="T1",
        channel=channel,
        user_id=user,
        ts=ts,
        thread_ts=root,
        text=text,
    )


def change(ts: str, *, root: str | None, kind: str = "edited", channel: str = CHANNEL, n: int = 1) -> InboundEvent:
    return events.chat_message_changed(
        platform="slack",
        event_id=f"EvC{ts}:{n}",
        workspace="T1",
        channel=channel,
        user_id="U_OWNER",
        ts=ts,
        thread_ts=root,
        change=kind,
    )


def _inbox_keys(bridge: Bridge) -> list[str]:
    return [r.key for r in bridge.store.rows("inbox")]


def _ignored(services: Services, kind: str = "chat.message") -> float:
    value = services.metrics.registry.get_sample_value(
        "rallybridge_inbound_events_total", {"kind": kind, "result": "ignored"}
    )
    return value or 0.0


# --- what is not stored -----------------------------------------------------------------------------------------


async def test_a_top_level_message_is_answered_without_a_write_or_even_a_read(bridge: Bridge) -> None:
    await _linked(bridge)
    services, before = bridge.services, _inbox_keys(bridge)
    commits = bridge.store.commits

    assert await record(services, post("300.000", root=None)) is False
    assert await record(services, post(ROOT, root=ROOT)) is False  # a thread's root itself: not a reply either

    assert _inbox_keys(bridge) == before and bridge.store.commits == commits and bridge.store.reads == 0
    assert _ignored(services) == 2


@pytest.mark.parametrize(
    "event",
    [
        post("301.000", root="555.000"),  # a thread of the linked channel that is not a participant's
        post("302.000", root=ROOT, channel="C_RANDOM"),  # a channel linked to no study, same root id
        change("303.000", root=None),  # an edit of a top-level post
        change("304.000", root="555.000", kind="deleted"),  # a delete in another thread
    ],
    ids=["reply-elsewhere", "unlinked-channel", "edit-top-level", "delete-elsewhere"],
)
async def test_chat_events_that_concern_no_participant_thread_are_not_stored(
    bridge: Bridge, event: InboundEvent
) -> None:
    await _linked(bridge)
    services, before = bridge.services, _inbox_keys(bridge)

    assert await record(services, event) is False

    assert _inbox_keys(bridge) == before and bridge.store.reads == 1
    assert _ignored(services, event.kind.value) == 1


# --- what is still stored, and what then happens ----------------------------------------------------------------


async def test_a_reply_in_a_participant_thread_is_stored_and_relayed(bridge: Bridge) -> None:
    await _linked(bridge)
    services = bridge.services

    assert await record(services, post("310.000", root=ROOT, text="See you Tuesday")) is True
    await bridge.process_due()

    assert [p["body"] for p in bridge.outbox("respondent.send")] == ["See you Tuesday"]
    assert _ignored(services) == 0


@pytest.mark.parametrize("outcome_known", [True, False], ids=["being-posted", "retrying-after-unknown-outcome"])
async def test_a_reply_while_a_root_of_the_channel_is_being_posted_is_stored_then_relayed(
    bridge: Bridge, outcome_known: bool
) -> None:
    thread_id = await _linked(bridge, root=None)
    root_row = await _root_claimed(bridge)
    if not outcome_known:  # the post timed out: the row waits for its retry, the root may be in the channel already
        async with bridge.store.transaction() as uow:
            await uow.outbox.retry_later(root_row, "w", error="timeout", delay=60, needs_verify=True)

    assert await record(bridge.services, post("320.000", root=ROOT, text="Thursday then?")) is True
    if outcome_known:  # the handler looks again shortly (a root being worked on)
        with pytest.raises(TemporaryFailure):
            await bridge.process_due()

    async with bridge.store.transaction() as uow:  # the root's id is recorded, its row finished, together
        await uow.threads.set_root(thread_id, ROOT)
        if outcome_known:
            await uow.outbox.finish(root_row, "w")
    await bridge.process_due()
    assert [p["body"] for p in bridge.outbox("respondent.send")] == ["Thursday then?"]


async def test_edits_and_deletes_of_a_relayed_reply_are_stored_and_explained(bridge: Bridge) -> None:
    await _linked(bridge)
    services = bridge.services
    await record(services, post("330.000", root=ROOT, text="See you Tuesday"))
    await bridge.process_due()

    assert await record(services, change("330.000", root=ROOT)) is True  # in the thread
    # Without the thread (as a platform may send a delete): found by its post, a message of ours.
    assert await record(services, change("330.000", root=None, kind="deleted", n=2)) is True
    await bridge.process_due()

    texts = bridge.private_texts()
    assert any("Edits can't be relayed" in t for t in texts) and any("doesn't unsend" in t for t in texts)


async def test_an_edit_that_follows_its_reply_into_the_inbox_is_stored(bridge: Bridge) -> None:
    """The reply is not relayed yet (still in the inbox, ahead of the edit in its thread's lane): the edit is kept
    because its thread is a participant's, and explained once the reply has been relayed."""
    await _linked(bridge)
    services = bridge.services
    await record(services, post("340.000", root=ROOT, text="See you Tuesday"))

    assert await record(services, change("340.000", root=ROOT)) is True
    await bridge.process_due()
    await bridge.process_due()

    assert any("Edits can't be relayed" in t for t in bridge.private_texts())


async def test_other_events_are_stored_without_a_read(bridge: Bridge) -> None:
    services = bridge.services
    webhook = events.respondent_message_created(
        delivery_uuid="d1", message_id="m1", conversation_uid="c", project_id="p"
    )

    assert await record(services, webhook) is True
    assert bridge.store.reads == 0


# --- errors -----------------------------------------------------------------------------------------------------


async def test_a_failed_read_stores_the_event_as_before(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    await _linked(bridge)
    services = bridge.services
    bridge.store.read_error = ConnectionRefusedError("database down")

    assert await record(services, post("350.000", root="555.000")) is True  # could not tell: stored
    assert await record(services, post("351.000", root=ROOT, text="still relayed")) is True
    bridge.store.read_error = None  # back by the time the rows are handled (the handlers read too)
    await bridge.process_due()

    assert [p["body"] for p in bridge.outbox("respondent.send")] == ["still relayed"]
    assert "storing it" in caplog.text and _ignored(services) == 0


class _DownWriter:
    async def submit(self, item: object) -> bool:
        raise ConnectionRefusedError("database down")


async def test_a_failed_read_and_a_failed_write_answer_storage_unavailable(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = bridge.services
    bridge.store.read_error = ConnectionRefusedError("database down")
    monkeypatch.setattr(bridge.store, "group_writer", lambda *_args, **_kw: _DownWriter())

    with pytest.raises(StorageUnavailable):
        await record(services, post("360.000", root="555.000"))


# --- the rule against the handlers ------------------------------------------------------------------------------

Setup = Callable[[Bridge], Awaitable[object]]


async def _participant_thread(b: Bridge) -> None:
    await _linked(b)


async def _rooting(b: Bridge) -> None:
    await _linked(b, root=None)
    await _root_claimed(b)


async def _relayed(b: Bridge) -> None:
    await _linked(b)
    await b.process(post("400.000", root=ROOT, text="relayed"))


SITUATIONS: dict[str, Setup] = {"participant-thread": _participant_thread, "rooting": _rooting, "relayed": _relayed}
EVENTS = {
    "top-level": post("500.000", root=None),
    "reply-participant": post("501.000", root=ROOT),
    "reply-other": post("502.000", root="555.000"),
    "reply-other-channel": post("503.000", root=ROOT, channel="C_RANDOM"),
    "edit-relayed": change("400.000", root=ROOT),
    "edit-relayed-no-root": change("400.000", root=None),
    "edit-top-level": change("504.000", root=None),
    "edit-other": change("505.000", root="555.000"),
}


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
@pytest.mark.parametrize("name", sorted(EVENTS))
async def test_an_event_left_unstored_is_one_its_handler_does_nothing_with(situation: str, name: str) -> None:
    b = Bridge()
    b.rally.studies[STUDY] = study()
    b.rally.participants[STUDY] = [participant("pa_1")]
    researcher(b, "U_OWNER", "Ana Ortiz", role="OWNER")
    await SITUATIONS[situation](b)
    event = EVENTS[name]
    if await edge.worth_storing(b.services, event):
        return  # stored as before: the handler decides
    outbox_before, messages_before = b.store.rows("outbox"), dict(b.store.state.messages)
    await b.process(event)  # no exception (no retry), nothing queued, nothing kept
    assert b.store.rows("outbox") == outbox_before and b.store.state.messages == messages_before


def test_the_root_lane_prefix_is_the_thread_lane() -> None:
    assert outbox.thread_lane(42) == f"{edge.ROOT_LANE_PREFIX}42"


# --- the read on SQLite and PostgreSQL --------------------------------------------------------------------------


async def _seed(db: Database) -> int:
    """Two threads in C1: one with root 100.1 (and a message 200.1 of ours), one without a root; their id."""
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO participant_threads (study_id, participant_id, display_name, respondent_project_id, "
                "respondent_user_id, opted_out, platform, workspace, channel, thread_ts, created_at) VALUES "
                "('st', 'p1', 'A', 'pr', 'ru1', false, 'slack', 'T', 'C1', '100.1', '2026-01-01'), "
                "('st', 'p2', 'B', 'pr', 'ru2', false, 'slack', 'T', 'C1', NULL, '2026-01-01')"
            )
        )
        rooted = (await session.execute(text("SELECT id FROM participant_threads WHERE thread_ts = '100.1'"))).scalar()
        await session.execute(
            text(
                "INSERT INTO chat_messages (thread_id, direction, platform, channel, platform_ts, state, sent_at, "
                "created_at) VALUES (:t, 'to_participant', 'slack', 'C1', '200.1', 'delivered', '2026-01-01', "
                "'2026-01-01')"
            ),
            {"t": rooted},
        )
        rootless = (await session.execute(text("SELECT id FROM participant_threads WHERE thread_ts IS NULL"))).scalar()
    assert isinstance(rootless, int)
    return rootless


async def _ask(store: SqlStore, channel: str = "C1", *, root: str | None = None, post_id: str | None = None) -> bool:
    async with store.read() as reads:
        return await reads.may_concern_a_thread(
            "slack", channel, root_id=root, post_id=post_id, root_lane_prefix=edge.ROOT_LANE_PREFIX
        )


async def _set_root_row(db: Database, thread_id: int, status: str | None) -> None:
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM outbox"))
        if status is not None:
            await session.execute(
                text(
                    "INSERT INTO outbox (key, kind, lane, payload, status, attempts, next_attempt_at, needs_verify, "
                    "created_at) VALUES ('root', 'chat.root', :lane, '{}', :status, 1, '2026-01-01', false, "
                    "'2026-01-01')"
                ),
                {"lane": outbox.thread_lane(thread_id), "status": status},
            )


async def test_the_read_answers_from_one_statement_on_each_database(database_url: str) -> None:
    db = Database(database_url)
    store = SqlStore(db)
    try:
        rootless = await _seed(db)
        assert await _ask(store, root="100.1") and await _ask(store, post_id="200.1")
        assert not await _ask(store, root="555.5", post_id="555.6")
        assert not await _ask(store, "C2", root="100.1", post_id="200.1")  # another channel
        for status, rooting in (
            ("working", True),
            ("pending", True),
            ("done", False),
            ("failed", False),
            (None, False),
        ):
            await _set_root_row(db, rootless, status)
            assert await _ask(store, root="555.5") is rooting, status
            assert not await _ask(store, "C2", root="555.5")
    finally:
        await db.dispose()


async def test_the_read_does_not_wait_for_the_writer(database_url: str) -> None:
    """A write transaction holds the writer lock (SQLite: BEGIN IMMEDIATE and this process's WriterLock): the read
    is answered meanwhile, from what is committed."""
    db = Database(database_url)
    store = SqlStore(db)
    try:
        await _seed(db)
        async with db.transaction(urgent=True) as session:
            await session.execute(text("UPDATE participant_threads SET thread_ts = '777.7' WHERE thread_ts = '100.1'"))
            assert await asyncio.wait_for(_ask(store, root="100.1"), timeout=5)  # the committed root
            assert not await asyncio.wait_for(_ask(store, root="777.7"), timeout=5)  # not the uncommitted one
        assert await _ask(store, root="777.7")
        services = Services(store=store, chats={}, respondent=None, rally=None)  # type: ignore[arg-type]
        assert await record(services, post("1.5", root="777.7"))  # the connections went back to the pool usable
    finally:
        await db.dispose()
