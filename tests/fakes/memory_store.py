"""``core.store`` in memory: the same contract as ``storage.uow`` (keys unique, lanes ordered, leases), no database.

A transaction works on a copy of the state and replaces it on success, so a handler that raises changes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from core import clock
from core.case_changes import CaseChange
from core.composed import HeldMessage, SavedReply, StudyUpdate
from core.domain import Participant
from core.records import (
    OPEN_REMINDER,
    Link,
    Message,
    NewReminder,
    QueuedRow,
    QueueStatus,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Thread,
)
from core.store import RelayContext

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Row:
    row: QueuedRow
    next_attempt_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass
class State:
    links: dict[str, Link] = field(default_factory=dict)
    threads: dict[int, Thread] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    reminders: dict[int, Reminder] = field(default_factory=dict)
    saved: list[SavedReply] = field(default_factory=list)
    updates: dict[int, StudyUpdate] = field(default_factory=dict)
    held: dict[int, HeldMessage] = field(default_factory=dict)
    queues: dict[str, dict[int, _Row]] = field(default_factory=lambda: {"inbox": {}, "outbox": {}})
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class MemoryLinks:
    def __init__(self, state: State) -> None:
        self.s = state

    async def for_study(self, study_id: str) -> Link | None:
        return self.s.links.get(study_id)

    async def active(self) -> list[Link]:
        return [link for link in self.s.links.values() if link.active]

    async def activate(self, *, study_id: str, **values: Any) -> Link:
        existing = self.s.links.get(study_id)
        if existing is None:
            link = Link(id=self.s.new_id(), study_id=study_id, active=True, **values)
        else:
            values.pop("respondent_project_id", None)
            values.pop("platform", None)
            values.pop("workspace", None)
            link = replace(existing, active=True, **values)
        self.s.links[study_id] = link
        return link

    async def deactivate(self, study_id: str) -> None:
        if study_id in self.s.links:
            self.s.links[study_id] = replace(self.s.links[study_id], active=False)

    async def set_nudge_thresholds(self, study_id: str, *, wait_minutes: int | None, soon_minutes: int | None) -> None:
        if study_id in self.s.links:
            link = self.s.links[study_id]
            self.s.links[study_id] = replace(link, nudge_wait_minutes=wait_minutes, nudge_soon_minutes=soon_minutes)


class MemoryThreads:
    def __init__(self, state: State) -> None:
        self.s = state

    def _all(self) -> list[Thread]:
        return list(self.s.threads.values())

    async def by_id(self, thread_id: int) -> Thread | None:
        return self.s.threads.get(thread_id)

    async def by_root(self, platform: str, channel: str, root_id: str) -> Thread | None:
        return next(
            (t for t in self._all() if (t.platform, t.channel, t.root_id) == (platform, channel, root_id)), None
        )

    async def for_participant(self, study_id: str, participant_id: str) -> Thread | None:
        return next((t for t in self._all() if (t.study_id, t.participant_id) == (study_id, participant_id)), None)

    async def of_study(self, study_id: str) -> dict[str, Thread]:
        return {t.participant_id: t for t in self._all() if t.study_id == study_id}

    async def participant_ids(self, study_id: str) -> set[str]:
        return {t.participant_id for t in self._all() if t.study_id == study_id}

    async def for_respondent_user(self, project_id: str, respondent_user_id: str) -> list[Thread]:
        return [
            t
            for t in self._all()
            if (t.respondent_project_id, t.respondent_user_id) == (project_id, respondent_user_id)
        ]

    async def respondent_users(self, project_id: str) -> set[str]:
        return {t.respondent_user_id for t in self._all() if t.respondent_project_id == project_id}

    async def by_email(self, email: str) -> list[Thread]:
        return [t for t in self._all() if t.email == email.strip().casefold()]

    async def without_root(self, platform: str, channel: str) -> list[int]:
        return [t.id for t in self._all() if (t.platform, t.channel, t.root_id) == (platform, channel, None)]

    async def in_channel(self, platform: str, channel: str) -> list[Thread]:
        active = {link.study_id for link in self.s.links.values() if link.active}
        found = [t for t in self._all() if (t.platform, t.channel) == (platform, channel) and t.study_id in active]
        return sorted(found, key=lambda t: (t.display_name.casefold(), t.id))

    async def insert(self, link: Link, participant: Participant) -> tuple[Thread, bool]:
        existing = await self.for_participant(link.study_id, participant.participant_id)
        if existing is not None:
            return existing, False
        assert participant.respondent_user_id
        thread = Thread(
            id=self.s.new_id(),
            study_id=link.study_id,
            participant_id=participant.participant_id,
            person_id=participant.person_id,
            email=participant.email.strip().casefold() if participant.email else None,
            display_name=participant.display_name,
            respondent_project_id=link.respondent_project_id,
            respondent_user_id=participant.respondent_user_id,
            conversation_uid=None,
            scheduling_url=participant.scheduling_url,
            session_starts_at=participant.session_starts_at,
            opted_out=participant.has_opted_out,
            platform=link.platform,
            workspace=link.workspace,
            channel=link.channel,
            root_id=None,
            created_at=clock.now(),
        )
        self.s.threads[thread.id] = thread
        return thread, True

    async def refresh_facts(self, thread_id: int, participant: Participant) -> Thread:
        thread = self.s.threads[thread_id]
        thread = replace(
            thread,
            scheduling_url=participant.scheduling_url,
            session_starts_at=participant.session_starts_at,
            opted_out=thread.opted_out or participant.has_opted_out,
        )
        self.s.threads[thread_id] = thread
        return thread

    async def set_opted_out(self, thread_id: int) -> None:
        self.s.threads[thread_id] = replace(self.s.threads[thread_id], opted_out=True)

    async def set_conversation(self, thread_id: int, conversation_uid: str) -> str:
        thread = self.s.threads[thread_id]
        if thread.conversation_uid is None:
            self.s.threads[thread_id] = thread = replace(thread, conversation_uid=conversation_uid)
        return thread.conversation_uid or conversation_uid

    async def set_root(self, thread_id: int, root_id: str) -> None:
        self.s.threads[thread_id] = replace(self.s.threads[thread_id], root_id=root_id)

    async def change_case(self, thread_id: int, change: Callable[[Thread], CaseChange | None]) -> Thread | None:
        thread = self.s.threads.get(thread_id)
        decided = None if thread is None else change(thread)
        if thread is None or decided is None:
            return None
        version = thread.card_version + (1 if decided.redraw else 0)
        self.s.threads[thread_id] = thread = replace(thread, **decided.values, card_version=version)
        return thread

    async def card_drawn(self, thread_id: int, version: int) -> None:
        thread = self.s.threads.get(thread_id)
        if thread is not None and thread.card_shown < version:
            self.s.threads[thread_id] = replace(thread, card_shown=version)

    async def waiting(self, *, below_stage: int, limit: int = 500) -> list[Thread]:
        found = [t for t in self._all() if t.waiting_since is not None and t.nudged < below_stage]
        return sorted(found, key=lambda t: (t.waiting_since, t.id))[:limit]

    async def sessions_between(self, start: datetime, end: datetime) -> list[Thread]:
        return [t for t in self._all() if t.session_starts_at is not None and start < t.session_starts_at <= end]


class MemoryMessages:
    def __init__(self, state: State) -> None:
        self.s = state

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
        for m in self.s.messages.values():
            if respondent_uid is not None and m.respondent_uid == respondent_uid:
                return None
            if post_id is not None and (m.platform, m.channel, m.post_id) == (thread.platform, thread.channel, post_id):
                return None
        message = Message(
            self.s.new_id(),
            thread.id,
            direction,
            respondent_uid,
            thread.platform,
            thread.channel,
            post_id,
            author_user_id,
            author_name,
            state,
            None,
            sent_at,
        )
        self.s.messages[message.id] = message
        return message.id

    async def set_state(
        self,
        message_id: int,
        *,
        state: str,
        respondent_uid: str | None = None,
        post_id: str | None = None,
        failure_reason: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"state": state}
        for name, value in (
            ("respondent_uid", respondent_uid),
            ("post_id", post_id),
            ("failure_reason", failure_reason),
        ):
            if value is not None:
                changes[name] = value
        self.s.messages[message_id] = replace(self.s.messages[message_id], **changes)

    async def reset_failed(self, message_id: int) -> None:
        self.s.messages[message_id] = replace(self.s.messages[message_id], state="pending", failure_reason=None)

    async def by_post(self, platform: str, channel: str, post_id: str) -> Message | None:
        wanted = (platform, channel, post_id)
        return next((m for m in self.s.messages.values() if (m.platform, m.channel, m.post_id) == wanted), None)

    async def known_respondent_uids(self, uids: list[str]) -> set[str]:
        return {m.respondent_uid for m in self.s.messages.values() if m.respondent_uid in set(uids)}  # type: ignore[misc]

    async def mirrored_respondent_uids(self, uids: list[str]) -> set[str]:
        return {
            m.respondent_uid  # type: ignore[misc]
            for m in self.s.messages.values()
            if m.respondent_uid in set(uids) and m.direction == "FROM_PARTICIPANT"
        }

    async def last_each_way(self, thread_ids: list[int]) -> dict[tuple[int, str], Message]:
        latest: dict[tuple[int, str], Message] = {}
        for m in sorted(self.s.messages.values(), key=lambda m: (m.sent_at, m.id)):
            if m.thread_id in thread_ids:
                latest[(m.thread_id, m.direction)] = m
        return latest

    async def last(self, thread_id: int, direction: str) -> Message | None:
        return (await self.last_each_way([thread_id])).get((thread_id, direction))

    async def times_since(self, study_id: str, since: datetime) -> list[tuple[int, str, datetime]]:
        ours = {t.id for t in self.s.threads.values() if t.study_id == study_id}
        found = [
            (m.thread_id, m.direction, m.sent_at, m.id)
            for m in self.s.messages.values()
            if m.thread_id in ours and m.sent_at >= since and m.state != "failed"
        ]
        return [(t, d, at) for t, d, at, _ in sorted(found, key=lambda x: (x[2], x[3]))]


class MemoryReminders:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, reminder: NewReminder) -> Reminder | None:
        if any(r.source_key == reminder.source_key for r in self.s.reminders.values()):
            return None
        fields = {f.name: getattr(reminder, f.name) for f in dataclasses.fields(NewReminder)}
        row = Reminder(**fields, id=self.s.new_id())
        self.s.reminders[row.id] = row
        return row

    async def by_id(self, reminder_id: int) -> Reminder | None:
        return self.s.reminders.get(reminder_id)

    async def open_with_thread(self, reminder_id: int) -> tuple[Reminder, Thread, Link] | None:
        row = self.s.reminders.get(reminder_id)
        if row is None or row.status not in OPEN_REMINDER:
            return None
        thread, link = self.s.threads.get(row.thread_id), self.s.links.get(row.study_id)
        return None if thread is None or link is None else (row, thread, link)

    def _sorted(self, rows: Any) -> list[Reminder]:
        return sorted(rows, key=lambda r: (r.due_at, r.id))

    async def due(self, now: datetime, limit: int = 100) -> list[Reminder]:
        rows = (r for r in self.s.reminders.values() if r.status == ReminderStatus.PENDING and r.due_at <= now)
        return self._sorted(rows)[:limit]

    async def open_for_threads(self, thread_ids: list[int]) -> list[Reminder]:
        return self._sorted(
            r for r in self.s.reminders.values() if r.thread_id in thread_ids and r.status in OPEN_REMINDER
        )

    async def open_followups(self, thread_id: int, written_at: datetime) -> list[Reminder]:
        return [
            r
            for r in self.s.reminders.values()
            if r.thread_id == thread_id
            and r.kind == ReminderKind.FOLLOWUP
            and r.status in OPEN_REMINDER
            and r.created_at < written_at
        ]

    async def pending_reminds(self, thread_id: int) -> list[Reminder]:
        return [
            r
            for r in self.s.reminders.values()
            if r.thread_id == thread_id and r.kind == ReminderKind.REMIND and r.status == ReminderStatus.PENDING
        ]

    async def transition(
        self, reminder_id: int, *, to: str, allowed_from: Sequence[str], now: datetime, outcome: str | None = None
    ) -> bool:
        row = self.s.reminders.get(reminder_id)
        if row is None or row.status not in allowed_from:
            return False
        finished = now if to in (ReminderStatus.SENT, ReminderStatus.SKIPPED, ReminderStatus.CANCELLED) else None
        self.s.reminders[reminder_id] = replace(
            row,
            status=to,
            finished_at=finished or row.finished_at,
            outcome=outcome if outcome is not None else row.outcome,
        )
        return True

    async def move_pending(self, reminder_id: int, due_at: datetime) -> bool:
        row = self.s.reminders.get(reminder_id)
        if row is None or row.status != ReminderStatus.PENDING:
            return False
        self.s.reminders[reminder_id] = replace(row, due_at=due_at)
        return True


_UNFINISHED = (QueueStatus.PENDING, QueueStatus.WORKING)


class MemoryQueue:
    def __init__(self, state: State, name: str, queued: set[str]) -> None:
        self.s = state
        self.name = name
        self._queued = queued

    @property
    def rows(self) -> dict[int, _Row]:
        return self.s.queues[self.name]

    async def add(self, *, key: str, kind: str, lane: str, payload: dict[str, Any]) -> bool:
        if any(r.row.key == key for r in self.rows.values()):
            return False
        now = clock.now()
        row = QueuedRow(self.s.new_id(), key, kind, lane, copy.deepcopy(payload), 0, False, now, QueueStatus.PENDING)
        self.rows[row.id] = _Row(row, now)
        self._queued.add(self.name)
        return True

    async def add_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> set[str]:
        return {
            key for key, kind, lane, payload in rows if await self.add(key=key, kind=kind, lane=lane, payload=payload)
        }

    async def exists(self, key: str) -> bool:
        return any(r.row.key == key for r in self.rows.values())

    async def with_key_prefix(self, prefix: str) -> list[QueuedRow]:
        return [r.row for _, r in sorted(self.rows.items()) if r.row.key.startswith(prefix)]

    async def get(self, row_id: int) -> QueuedRow | None:
        found = self.rows.get(row_id)
        return found.row if found else None

    def in_lane(self, lane: str) -> list[_Row]:
        return sorted((r for r in self.rows.values() if r.row.lane == lane), key=lambda r: r.row.id)

    async def waiting_in_lane(self, lane: str) -> bool:
        return any(r.row.status in _UNFINISHED and r.row.last_error is not None for r in self.in_lane(lane))

    async def working_in_lane(self, lane: str) -> bool:
        return any(r.row.status == QueueStatus.WORKING for r in self.in_lane(lane))

    async def lane_busy(self, lane: str) -> bool:
        return any(r.row.status in _UNFINISHED for r in self.in_lane(lane))

    async def unfinished_payloads(self, lane: str, *, from_id: int) -> list[dict[str, Any]]:
        return [r.row.payload for r in self.in_lane(lane) if r.row.id >= from_id and r.row.status in _UNFINISHED]

    async def failed_in_lanes(self, kind: str, lanes: list[str]) -> list[QueuedRow]:
        rows = [r.row for r in self.rows.values() if r.row.kind == kind and r.row.lane in lanes]
        return sorted((r for r in rows if r.status == QueueStatus.FAILED), key=lambda r: r.id, reverse=True)

    async def requeue_failed(self, row_id: int, *, payload: dict[str, Any]) -> bool:
        found = self.rows.get(row_id)
        if found is None or found.row.status != QueueStatus.FAILED:
            return False
        created = found.row.created_at if found.row.needs_verify else clock.now()
        found.row = replace(
            found.row, status=QueueStatus.PENDING, payload=payload, created_at=created, finished_at=None
        )
        found.next_attempt_at = clock.now()
        return True

    async def claim(self, *, owner: str, lease: timedelta, limit: int) -> list[QueuedRow]:
        now, claimed = clock.now(), []
        for r in sorted(self.rows.values(), key=lambda r: r.row.id):
            if len(claimed) >= limit:
                break
            expired = r.row.status == QueueStatus.WORKING and r.lease_until is not None and r.lease_until <= now
            due = r.row.status == QueueStatus.PENDING and r.next_attempt_at <= now
            earlier = any(o.row.status in _UNFINISHED and o.row.id < r.row.id for o in self.in_lane(r.row.lane))
            if (due or expired) and not earlier:
                r.row = replace(
                    r.row,
                    status=QueueStatus.WORKING,
                    attempts=r.row.attempts + 1,
                    needs_verify=r.row.needs_verify or expired,
                )
                r.lease_owner, r.lease_until = owner, now + lease
                claimed.append(r.row)
        return claimed

    def _held(self, row_id: int, owner: str) -> _Row | None:
        found = self.rows.get(row_id)
        return found if found and found.row.status == QueueStatus.WORKING and found.lease_owner == owner else None

    async def finish(self, row_id: int, owner: str) -> bool:
        found = self._held(row_id, owner)
        if found:
            found.row = replace(found.row, status=QueueStatus.DONE, finished_at=clock.now())
        return found is not None

    async def retry_later(self, row_id: int, owner: str, *, error: str, delay: float, needs_verify: bool) -> bool:
        found = self._held(row_id, owner)
        if found:
            found.row = replace(found.row, status=QueueStatus.PENDING, last_error=error, needs_verify=needs_verify)
            found.next_attempt_at, found.lease_owner = clock.now() + timedelta(seconds=delay), None
        return found is not None

    async def defer(self, row_id: int, owner: str, *, delay: float) -> bool:
        found = self._held(row_id, owner)
        if found:
            found.row = replace(found.row, status=QueueStatus.PENDING, attempts=found.row.attempts - 1)
            found.next_attempt_at, found.lease_owner = clock.now() + timedelta(seconds=delay), None
        return found is not None

    async def give_up(self, row_id: int, owner: str, *, error: str) -> bool:
        found = self._held(row_id, owner)
        if found:
            found.row = replace(found.row, status=QueueStatus.FAILED, last_error=error, finished_at=clock.now())
        return found is not None

    def nothing_more_due(self) -> None:
        self._queued.discard(self.name)

    def queued_here(self) -> bool:
        return self.name in self._queued


class MemoryComposed:
    """Saved replies, updates and held messages, kept in lists (the handler tests need little of them)."""

    def __init__(self, state: State) -> None:
        self.s = state

    async def save_reply(
        self, *, platform: str, workspace: str, study_id: str, name: str, body: str, by: str, by_name: str, at: datetime
    ) -> SavedReply:
        where = (platform, workspace, study_id, name)
        self.s.saved = [r for r in self.s.saved if (r.platform, r.workspace, r.study_id, r.name) != where]
        reply = SavedReply(self.s.new_id(), platform, workspace, study_id, name, body, by, by_name, at)
        self.s.saved.append(reply)
        return reply

    async def saved_replies(self, platform: str, workspace: str, study_ids: Sequence[str]) -> list[SavedReply]:
        found = [
            r for r in self.s.saved if (r.platform, r.workspace) == (platform, workspace) and r.study_id in study_ids
        ]
        return sorted(found, key=lambda r: (r.name, r.study_id))

    async def remove_reply(self, platform: str, workspace: str, study_id: str, name: str) -> bool:
        before = len(self.s.saved)
        where = (platform, workspace, study_id, name)
        self.s.saved = [r for r in self.s.saved if (r.platform, r.workspace, r.study_id, r.name) != where]
        return len(self.s.saved) < before

    async def draft_update(self, draft: StudyUpdate) -> StudyUpdate:
        found = next((u for u in self.s.updates.values() if u.key == draft.key), None)
        if found is None:
            found = replace(draft, id=self.s.new_id())
            self.s.updates[found.id] = found
        return found

    async def update_by_id(self, update_id: int) -> StudyUpdate | None:
        return self.s.updates.get(update_id)

    async def move_update(self, update_id: int, *, to: str, allowed_from: Sequence[str]) -> bool:
        found = self.s.updates.get(update_id)
        if found is None or found.status not in allowed_from:
            return False
        self.s.updates[update_id] = replace(found, status=to)
        return True

    async def hold(self, message: HeldMessage) -> HeldMessage:
        found = next((h for h in self.s.held.values() if h.key == message.key), None)
        if found is None:
            found = replace(message, id=self.s.new_id())
            self.s.held[found.id] = found
        return found

    async def held(self, held_id: int) -> HeldMessage | None:
        return self.s.held.get(held_id)

    async def decide_held(self, held_id: int, *, to: str, allowed_from: Sequence[str]) -> bool:
        found = self.s.held.get(held_id)
        if found is None or found.status not in allowed_from:
            return False
        self.s.held[held_id] = replace(found, status=to)
        return True


class MemoryUnitOfWork:
    def __init__(self, state: State) -> None:
        self.state = state
        self.queued: set[str] = set()
        self.composed = MemoryComposed(state)
        self.links = MemoryLinks(state)
        self.threads = MemoryThreads(state)
        self.messages = MemoryMessages(state)
        self.reminders = MemoryReminders(state)
        self.inbox = MemoryQueue(state, "inbox", self.queued)
        self.outbox = MemoryQueue(state, "outbox", self.queued)


class MemoryReads:
    """``core.store.Reads`` on the committed state, with the unit of work's own queries (nothing is changed)."""

    def __init__(self, state: State) -> None:
        self.uow = MemoryUnitOfWork(state)

    async def may_concern_a_thread(
        self, platform: str, channel: str, *, root_id: str | None, post_id: str | None, root_lane_prefix: str
    ) -> bool:
        if root_id is not None and await self.uow.threads.by_root(platform, channel, root_id) is not None:
            return True
        if post_id is not None and await self.uow.messages.by_post(platform, channel, post_id) is not None:
            return True
        for thread_id in await self.uow.threads.without_root(platform, channel):
            if any(r.row.status in _UNFINISHED for r in self.uow.outbox.in_lane(f"{root_lane_prefix}{thread_id}")):
                return True
        return False

    async def relay_context(self, thread_id: int, *, archive_lane: str, pending_mark_key: str) -> RelayContext | None:
        thread = await self.uow.threads.by_id(thread_id)
        if thread is None:
            return None
        link = await self.uow.links.for_study(thread.study_id)
        busy = await self.uow.outbox.lane_busy(archive_lane)
        return RelayContext(thread, link, busy, await self.uow.outbox.exists(pending_mark_key))

    async def thread_by_root_with_link(
        self, platform: str, channel: str, root_id: str
    ) -> tuple[Thread, Link | None] | None:
        thread = await self.uow.threads.by_root(platform, channel, root_id)
        return None if thread is None else (thread, await self.uow.links.for_study(thread.study_id))


class _Writer:
    def __init__(
        self, store: MemoryStore, write: Callable[[Any, Sequence[Any]], Awaitable[Sequence[Any]]], urgent: bool
    ) -> None:
        self.store, self.write, self.urgent = store, write, urgent

    async def submit(self, item: Any) -> Any:
        async with self.store.transaction(urgent=self.urgent) as uow:
            return (await self.write(uow, [item]))[0]


class MemoryStore:
    """``core.store.Store`` in memory. ``state`` is what is committed; read it in assertions."""

    def __init__(self) -> None:
        self.state = State()
        self._events: dict[str, asyncio.Event] = {}
        self.commits = 0
        self.reads = 0
        self.read_error: Exception | None = None

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[MemoryUnitOfWork]:
        uow = MemoryUnitOfWork(copy.deepcopy(self.state))
        yield uow
        self.state = uow.state
        self.commits += 1
        for name in uow.queued:
            self.new_rows(name).set()

    def group_writer(
        self, write: Callable[[Any, Sequence[T]], Awaitable[Sequence[R]]], *, urgent: bool = False
    ) -> _Writer:
        return _Writer(self, write, urgent)

    def new_rows(self, queue: str) -> asyncio.Event:
        return self._events.setdefault(queue, asyncio.Event())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MemoryReads]:
        """Reads of the committed state; ``read_error`` (if set) is raised instead, as a database that is down."""
        if self.read_error is not None:
            raise self.read_error
        self.reads += 1
        yield MemoryReads(self.state)

    # --- for assertions -------------------------------------------------------------------------------------------

    def rows(self, queue: str, kind: str | None = None) -> list[QueuedRow]:
        rows = sorted((r.row for r in self.state.queues[queue].values()), key=lambda r: r.id)
        return [r for r in rows if kind is None or r.kind == kind]

    def outbox(self, kind: str | None = None) -> list[QueuedRow]:
        return self.rows("outbox", kind)
