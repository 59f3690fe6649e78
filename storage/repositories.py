"""The core's repositories (``core.store``: links, threads, messages, reminders) on one SQLAlchemy session."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.case_changes import CaseChange
from core.domain import Participant
from core.records import Link, Message, NewReminder, Reminder, Thread
from storage import cases, repo
from storage import reminders as store
from storage.mapping import link_record, maybe, message_record, reminder_record, thread_record
from storage.models import ParticipantThread, StudyLink


class SqlLinks:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_study(self, study_id: str) -> Link | None:
        return maybe(link_record, await repo.link_for_study(self.session, study_id))

    async def active(self) -> list[Link]:
        return [link_record(row) for row in await repo.active_links(self.session)]

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
        row = await repo.link_for_study(self.session, study_id)
        if row is None:
            row = StudyLink(
                study_id=study_id,
                study_name=study_name,
                linked_at=linked_at,
                respondent_project_id=respondent_project_id,
                platform=platform,
                workspace=workspace,
                channel=channel,
                active=True,
                linked_by=linked_by,
            )
            self.session.add(row)
        else:
            row.active, row.channel, row.linked_by, row.linked_at = True, channel, linked_by, linked_at
            row.study_name = study_name
        await self.session.flush()
        return link_record(row)

    async def deactivate(self, study_id: str) -> None:
        await self.session.execute(update(StudyLink).where(StudyLink.study_id == study_id).values(active=False))

    async def set_nudge_thresholds(self, study_id: str, *, wait_minutes: int | None, soon_minutes: int | None) -> None:
        await cases.set_thresholds(self.session, study_id, wait_minutes, soon_minutes)


class SqlThreads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_id(self, thread_id: int) -> Thread | None:
        return maybe(thread_record, await repo.thread_by_id(self.session, thread_id))

    async def by_root(self, platform: str, channel: str, root_id: str) -> Thread | None:
        return maybe(thread_record, await repo.thread_by_ts(self.session, platform, channel, root_id))

    async def for_participant(self, study_id: str, participant_id: str) -> Thread | None:
        return maybe(thread_record, await repo.thread_for_participant(self.session, study_id, participant_id))

    async def of_study(self, study_id: str) -> dict[str, Thread]:
        rows = await repo.threads_of_study(self.session, study_id)
        return {pid: thread_record(row) for pid, row in rows.items()}

    async def participant_ids(self, study_id: str) -> set[str]:
        return await repo.participants_with_threads(self.session, study_id)

    async def for_respondent_user(self, project_id: str, respondent_user_id: str) -> list[Thread]:
        rows = await repo.threads_for_respondent_user(self.session, project_id, respondent_user_id)
        return [thread_record(row) for row in rows]

    async def respondent_users(self, project_id: str) -> set[str]:
        return await repo.respondent_users_with_threads(self.session, project_id)

    async def by_email(self, email: str) -> list[Thread]:
        return [thread_record(row) for row in await repo.threads_by_email(self.session, email)]

    async def without_root(self, platform: str, channel: str) -> list[int]:
        query = select(ParticipantThread.id).where(
            ParticipantThread.platform == platform,
            ParticipantThread.channel == channel,
            ParticipantThread.thread_ts.is_(None),
        )
        return list((await self.session.execute(query)).scalars())

    async def in_channel(self, platform: str, channel: str) -> list[Thread]:
        return [thread_record(row) for row in await store.threads_in_channel(self.session, platform, channel)]

    async def insert(self, link: Link, participant: Participant) -> tuple[Thread, bool]:
        row, created = await repo.insert_thread(self.session, link, participant)
        return thread_record(row), created

    async def refresh_facts(self, thread_id: int, participant: Participant) -> Thread:
        row = await repo.thread_by_id(self.session, thread_id)
        assert row is not None, f"thread {thread_id} vanished inside its transaction"
        await repo.refresh_thread_facts(self.session, row, participant)
        await self.session.flush()
        return thread_record(row)

    async def set_opted_out(self, thread_id: int) -> None:
        await self._set(thread_id, opted_out=True)

    async def set_conversation(self, thread_id: int, conversation_uid: str) -> str:
        row = await repo.thread_by_id(self.session, thread_id)
        if row is None:
            return conversation_uid
        if row.conversation_uid is None:
            row.conversation_uid = conversation_uid
            await self.session.flush()
        return row.conversation_uid

    async def set_root(self, thread_id: int, root_id: str) -> None:
        await self._set(thread_id, thread_ts=root_id)

    async def change_case(self, thread_id: int, change: Callable[[Thread], CaseChange | None]) -> Thread | None:
        return await cases.change_case(self.session, thread_id, change)

    async def card_drawn(self, thread_id: int, version: int) -> None:
        await cases.card_drawn(self.session, thread_id, version)

    async def waiting(self, *, below_stage: int, limit: int = 500) -> list[Thread]:
        return await cases.waiting(self.session, below_stage=below_stage, limit=limit)

    async def sessions_between(self, start: datetime, end: datetime) -> list[Thread]:
        return await cases.sessions_between(self.session, start, end)

    async def _set(self, thread_id: int, **values: Any) -> None:
        row = await repo.thread_by_id(self.session, thread_id)  # through the identity map: later reads see it
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)
            await self.session.flush()


class SqlMessages:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        return await repo.add_message(
            self.session,
            thread=thread,
            direction=direction,
            state=state,
            sent_at=sent_at,
            respondent_uid=respondent_uid,
            platform_ts=post_id,
            author_user_id=author_user_id,
            author_name=author_name,
        )

    async def set_state(
        self,
        message_id: int,
        *,
        state: str,
        respondent_uid: str | None = None,
        post_id: str | None = None,
        failure_reason: str | None = None,
    ) -> None:
        await repo.set_message_state(
            self.session,
            message_id,
            state=state,
            respondent_uid=respondent_uid,
            platform_ts=post_id,
            failure_reason=failure_reason,
        )

    async def reset_failed(self, message_id: int) -> None:
        await repo.reset_failed_message(self.session, message_id)

    async def by_post(self, platform: str, channel: str, post_id: str) -> Message | None:
        return maybe(message_record, await repo.message_by_platform_ts(self.session, platform, channel, post_id))

    async def known_respondent_uids(self, uids: list[str]) -> set[str]:
        return await repo.known_respondent_uids(self.session, uids)

    async def mirrored_respondent_uids(self, uids: list[str]) -> set[str]:
        return await repo.mirrored_respondent_uids(self.session, uids)

    async def last_each_way(self, thread_ids: list[int]) -> dict[tuple[int, str], Message]:
        latest = await repo.last_messages(self.session, thread_ids)
        return {key: message_record(row) for key, row in latest.items()}

    async def last(self, thread_id: int, direction: str) -> Message | None:
        return maybe(message_record, await store.last_message(self.session, thread_id, direction))

    async def times_since(self, study_id: str, since: datetime) -> list[tuple[int, str, datetime]]:
        return await cases.message_times(self.session, study_id, since)


class SqlReminders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, reminder: NewReminder) -> Reminder | None:
        fields = {f.name: getattr(reminder, f.name) for f in dataclasses.fields(NewReminder)}
        added = await store.add(self.session, store.Reminder(**fields))
        return maybe(reminder_record, added)

    async def by_id(self, reminder_id: int) -> Reminder | None:
        return maybe(reminder_record, await store.by_id(self.session, reminder_id))

    async def open_with_thread(self, reminder_id: int) -> tuple[Reminder, Thread, Link] | None:
        found = await store.open_with_thread(self.session, reminder_id)
        if found is None:
            return None
        row, thread, link = found
        return reminder_record(row), thread_record(thread), link_record(link)

    async def due(self, now: datetime, limit: int = 100) -> list[Reminder]:
        return [reminder_record(row) for row in await store.due(self.session, now, limit)]

    async def open_for_threads(self, thread_ids: list[int]) -> list[Reminder]:
        return [reminder_record(row) for row in await store.open_for_threads(self.session, thread_ids)]

    async def open_followups(self, thread_id: int, written_at: datetime) -> list[Reminder]:
        return [reminder_record(row) for row in await store.open_followups(self.session, thread_id, written_at)]

    async def pending_reminds(self, thread_id: int) -> list[Reminder]:
        query = select(store.Reminder).where(
            store.Reminder.thread_id == thread_id,
            store.Reminder.kind == store.REMIND,
            store.Reminder.status == store.PENDING,
        )
        return [reminder_record(row) for row in (await self.session.execute(query)).scalars()]

    async def transition(
        self, reminder_id: int, *, to: str, allowed_from: Sequence[str], now: datetime, outcome: str | None = None
    ) -> bool:
        return await store.transition(
            self.session, reminder_id, to=to, allowed_from=tuple(allowed_from), now=now, outcome=outcome
        )

    async def move_pending(self, reminder_id: int, due_at: datetime) -> bool:
        result = await self.session.execute(
            update(store.Reminder)
            .where(store.Reminder.id == reminder_id, store.Reminder.status == store.PENDING)
            .values(due_at=due_at)
        )
        return bool(getattr(result, "rowcount", 0))
