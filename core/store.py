"""The unit of work: what the handlers may read and change in one transaction, as Protocols.

``storage.uow`` implements them on SQLAlchemy (SQLite, PostgreSQL); ``tests/fakes`` in memory. A handler gets a
``UnitOfWork`` for its writes (everything it does there commits together with the inbox or outbox row that
caused it, or not at all) and opens short read-only ones with ``Store.transaction()``: never a network call
inside one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from core.case_changes import CaseChange
from core.composed import HeldMessage, SavedReply, StudyUpdate
from core.domain import Participant
from core.records import Link, Message, NewReminder, QueuedRow, Reminder, Thread

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

INBOX, OUTBOX = "inbox", "outbox"  # the two queues


class Links(Protocol):
    async def for_study(self, study_id: str) -> Link | None: ...

    async def active(self) -> list[Link]: ...

    async def activate(
        self,
        *,
        study_id: str,
        study_name: str,
        respondent_project_id: str,
        platform: str,
        workspace: str,
        channel: str,
        linked_by: str,
        linked_at: datetime,
    ) -> Link:
        """Create the study's link, or make the existing one active in ``channel`` again."""
        ...

    async def deactivate(self, study_id: str) -> None: ...

    async def set_nudge_thresholds(self, study_id: str, *, wait_minutes: int | None, soon_minutes: int | None) -> None:
        """``/rally settings``: None puts a threshold back to its default."""
        ...


class Threads(Protocol):
    async def by_id(self, thread_id: int) -> Thread | None: ...

    async def by_root(self, platform: str, channel: str, root_id: str) -> Thread | None: ...

    async def for_participant(self, study_id: str, participant_id: str) -> Thread | None: ...

    async def of_study(self, study_id: str) -> dict[str, Thread]:
        """Every thread of the study by participant id."""
        ...

    async def participant_ids(self, study_id: str) -> set[str]: ...

    async def for_respondent_user(self, project_id: str, respondent_user_id: str) -> list[Thread]: ...

    async def respondent_users(self, project_id: str) -> set[str]:
        """Respondent user ids with a thread in ``project_id``: whose messages the bridge mirrors."""
        ...

    async def by_email(self, email: str) -> list[Thread]: ...

    async def without_root(self, platform: str, channel: str) -> list[int]:
        """Ids of the threads of ``channel`` whose root has no id recorded (not posted yet, or being posted)."""
        ...

    async def in_channel(self, platform: str, channel: str) -> list[Thread]:
        """The threads of the active links of one channel, by name."""
        ...

    async def insert(self, link: Link, participant: Participant) -> tuple[Thread, bool]:
        """The participant's thread, created once ever. Returns (thread, created)."""
        ...

    async def refresh_facts(self, thread_id: int, participant: Participant) -> Thread:
        """Session time, scheduling link and opt-out from Rally (opting back in is Rally's call, not ours)."""
        ...

    async def set_opted_out(self, thread_id: int) -> None: ...

    async def set_conversation(self, thread_id: int, conversation_uid: str) -> str:
        """Remember the participant's Respondent conversation unless one is known; returns the one kept."""
        ...

    async def set_root(self, thread_id: int, root_id: str) -> None: ...

    async def change_case(self, thread_id: int, change: Callable[[Thread], CaseChange | None]) -> Thread | None:
        """Change the thread's case (``core/case_changes.py``) on the thread as it is, read under a row lock so that
        concurrent changes (a participant message and a reply) do not overwrite each other. The changed thread, or
        None when ``change`` changed nothing. A change the card shows raises ``card_version``."""
        ...

    async def card_drawn(self, thread_id: int, version: int) -> None:
        """The root card was drawn as of ``version`` (a later version drawn already stays)."""
        ...

    async def waiting(self, *, below_stage: int, limit: int = 500) -> list[Thread]:
        """Threads whose participant waits on the team, with fewer than ``below_stage`` nudges, longest wait first."""
        ...

    async def sessions_between(self, start: datetime, end: datetime) -> list[Thread]:
        """Threads whose session starts after ``start`` and at or before ``end``."""
        ...


class Messages(Protocol):
    async def add(
        self,
        *,
        thread: Thread,
        direction: str,
        state: str,
        sent_at: datetime,
        respondent_uid: str | None = None,
        post_id: str | None = None,
        author_user_id: str | None = None,
        author_name: str | None = None,
    ) -> int | None:
        """A new message mapping; its id, or None when either of its ids is mapped already (a duplicate)."""
        ...

    async def set_state(
        self,
        message_id: int,
        *,
        state: str,
        respondent_uid: str | None = None,
        post_id: str | None = None,
        failure_reason: str | None = None,
    ) -> None: ...

    async def reset_failed(self, message_id: int) -> None:
        """A message whose delivery is retried: pending again, its failure reason cleared."""
        ...

    async def by_post(self, platform: str, channel: str, post_id: str) -> Message | None: ...

    async def known_respondent_uids(self, uids: list[str]) -> set[str]:
        """Which of ``uids`` are mapped to a message of ours already (either direction)."""
        ...

    async def mirrored_respondent_uids(self, uids: list[str]) -> set[str]:
        """Which of ``uids`` are participant messages the bridge mirrored (not relays of ours)."""
        ...

    async def last_each_way(self, thread_ids: list[int]) -> dict[tuple[int, str], Message]: ...

    async def last(self, thread_id: int, direction: str) -> Message | None: ...

    async def times_since(self, study_id: str, since: datetime) -> list[tuple[int, str, datetime]]:
        """(thread id, direction, sent at) of the study's messages since ``since`` (not failed ones), in time order."""
        ...


class Reminders(Protocol):
    async def add(self, reminder: NewReminder) -> Reminder | None:
        """Insert unless its ``source_key`` exists; None for a duplicate."""
        ...

    async def by_id(self, reminder_id: int) -> Reminder | None: ...

    async def open_with_thread(self, reminder_id: int) -> tuple[Reminder, Thread, Link] | None: ...

    async def due(self, now: datetime, limit: int = 100) -> list[Reminder]:
        """Pending rows whose time has come, locked for this transaction where the database can."""
        ...

    async def open_for_threads(self, thread_ids: list[int]) -> list[Reminder]: ...

    async def open_followups(self, thread_id: int, written_at: datetime) -> list[Reminder]: ...

    async def pending_reminds(self, thread_id: int) -> list[Reminder]:
        """The thread's pending ``remind`` rows (those counted back from the session follow it)."""
        ...

    async def transition(
        self, reminder_id: int, *, to: str, allowed_from: Sequence[str], now: datetime, outcome: str | None = None
    ) -> bool:
        """Move the row to ``to`` if it is in one of ``allowed_from``; False if another path moved it first."""
        ...

    async def move_pending(self, reminder_id: int, due_at: datetime) -> bool: ...


class Composed(Protocol):
    """Saved replies, study-wide updates and held messages (``core/composed.py``)."""

    async def save_reply(
        self, *, platform: str, workspace: str, study_id: str, name: str, body: str, by: str, by_name: str, at: datetime
    ) -> SavedReply:
        """Save (or replace) the reply ``name`` of the workspace (``study_id`` ``WORKSPACE_WIDE``) or of one study."""
        ...

    async def saved_replies(self, platform: str, workspace: str, study_ids: Sequence[str]) -> list[SavedReply]:
        """The saved replies of ``study_ids`` (``WORKSPACE_WIDE`` among them for the workspace's own), by name."""
        ...

    async def remove_reply(self, platform: str, workspace: str, study_id: str, name: str) -> bool: ...

    async def draft_update(self, draft: StudyUpdate) -> StudyUpdate:
        """Keep ``draft`` unless one with its key exists; the stored one."""
        ...

    async def update_by_id(self, update_id: int) -> StudyUpdate | None: ...

    async def move_update(self, update_id: int, *, to: str, allowed_from: Sequence[str]) -> bool:
        """Move the update to ``to`` if it is in one of ``allowed_from``: False when another click moved it first."""
        ...

    async def hold(self, message: HeldMessage) -> HeldMessage:
        """Keep ``message`` unless one with its key is held already; the stored one."""
        ...

    async def held(self, held_id: int) -> HeldMessage | None: ...

    async def decide_held(self, held_id: int, *, to: str, allowed_from: Sequence[str]) -> bool: ...


class Queue(Protocol):
    """The inbox or the outbox: keyed rows (a duplicate key is a no-op), ordered lanes, leases."""

    async def add(self, *, key: str, kind: str, lane: str, payload: dict[str, Any]) -> bool:
        """Queue a row unless its key exists; True when it is new."""
        ...

    async def with_key_prefix(self, prefix: str) -> list[QueuedRow]:
        """Rows whose key starts with ``prefix`` (all the relays of one study-wide update), in id order."""
        ...

    async def add_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> set[str]:
        """Queue (key, kind, lane, payload) rows in one statement, skipping stored keys; the keys that were new."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def get(self, row_id: int) -> QueuedRow | None: ...

    async def waiting_in_lane(self, lane: str) -> bool:
        """Whether a row of ``lane`` is waiting out a failure (attempted, not finished)."""
        ...

    async def working_in_lane(self, lane: str) -> bool: ...

    async def lane_busy(self, lane: str) -> bool:
        """Whether ``lane`` has an unfinished row (pending or being worked on)."""
        ...

    async def unfinished_payloads(self, lane: str, *, from_id: int) -> list[dict[str, Any]]: ...

    async def failed_in_lanes(self, kind: str, lanes: list[str]) -> list[QueuedRow]: ...

    async def requeue_failed(self, row_id: int, *, payload: dict[str, Any]) -> bool: ...

    async def claim(self, *, owner: str, lease: timedelta, limit: int) -> list[QueuedRow]: ...

    async def finish(self, row_id: int, owner: str) -> bool: ...

    async def retry_later(self, row_id: int, owner: str, *, error: str, delay: float, needs_verify: bool) -> bool: ...

    async def defer(self, row_id: int, owner: str, *, delay: float) -> bool: ...

    async def give_up(self, row_id: int, owner: str, *, error: str) -> bool: ...

    def nothing_more_due(self) -> None:
        """This transaction's committer claimed what it queued: no need to wake this queue's worker on commit."""
        ...

    def queued_here(self) -> bool:
        """Whether this transaction queued rows into this queue (so far)."""
        ...


class UnitOfWork(Protocol):
    @property
    def links(self) -> Links: ...

    @property
    def threads(self) -> Threads: ...

    @property
    def messages(self) -> Messages: ...

    @property
    def reminders(self) -> Reminders: ...

    @property
    def composed(self) -> Composed: ...

    @property
    def inbox(self) -> Queue: ...

    @property
    def outbox(self) -> Queue: ...


class GroupWriter(Protocol[T_contra, R_co]):
    async def submit(self, item: T_contra) -> R_co: ...


class RelayContext(NamedTuple):
    thread: Thread
    link: Link | None  # None when the study was never linked
    archive_busy: bool  # the archive lane has an unfinished row
    pending_shown: bool  # a row keyed with the pending mark's key was queued


class Reads(Protocol):
    """Questions answered outside any transaction (``Store.read``), for an answer someone is waiting for. Each is one
    statement, so it sees one committed state; it takes no writer lock and waits for none."""

    async def may_concern_a_thread(
        self, platform: str, channel: str, *, root_id: str | None, post_id: str | None, root_lane_prefix: str
    ) -> bool:
        """Whether a chat event of ``channel`` may concern a participant thread: ``root_id`` (if given) is the root
        of one of the channel's threads, ``post_id`` (if given) is a message of the bridge's there, or one of the
        channel's threads has no root recorded and an unfinished outbox row in its lane (``root_lane_prefix`` and
        its id): its root may be being posted right now, and replies to it may come in before its id is recorded."""
        ...

    async def relay_context(self, thread_id: int, *, archive_lane: str, pending_mark_key: str) -> RelayContext | None:
        """What a relay reads before it sends (``bridge/relay.py``), in one statement; None when the thread is gone."""
        ...

    async def thread_by_root_with_link(
        self, platform: str, channel: str, root_id: str
    ) -> tuple[Thread, Link | None] | None:
        """The participant thread whose root is ``root_id`` in ``channel``, and its study's link; None for none."""
        ...


class Store(Protocol):
    def transaction(self, *, urgent: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """One transaction: committed on success, rolled back on any error. ``urgent``: someone waits for it."""
        ...

    def group_writer(
        self, write: Callable[[UnitOfWork, Sequence[T]], Awaitable[Sequence[R]]], *, urgent: bool = False
    ) -> GroupWriter[T, R]:
        """Items submitted while a transaction is being written go together into the next one (group commit)."""
        ...

    def new_rows(self, queue: str) -> asyncio.Event:
        """Set when a transaction of this process that queued rows into ``queue`` has committed."""
        ...

    def read(self) -> AbstractAsyncContextManager[Reads]:
        """Reads outside any transaction: never the writer lock, never behind the group commit or the workers. What
        they answer may change with the next commit: ask only what errs safely that way."""
        ...


__all__ = ["INBOX", "OUTBOX", "Composed", "GroupWriter", "Queue", "Reads", "Store", "UnitOfWork"]
