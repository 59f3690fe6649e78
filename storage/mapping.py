"""ORM rows -> the core's records (``core.records``): what leaves the storage package."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from core.records import Link, Message, QueuedRow, Reminder, Thread
from storage import reminders as store
from storage.models import ChatMessage, ParticipantThread, StudyLink

T = TypeVar("T")


def link_record(row: StudyLink) -> Link:
    return Link(
        id=row.id,
        study_id=row.study_id,
        study_name=row.study_name,
        respondent_project_id=row.respondent_project_id,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        active=row.active,
        linked_by=row.linked_by,
        linked_at=row.linked_at,
    )


def thread_record(row: ParticipantThread) -> Thread:
    return Thread(
        id=row.id,
        study_id=row.study_id,
        participant_id=row.participant_id,
        person_id=row.person_id,
        email=row.email,
        display_name=row.display_name,
        respondent_project_id=row.respondent_project_id,
        respondent_user_id=row.respondent_user_id,
        conversation_uid=row.conversation_uid,
        scheduling_url=row.scheduling_url,
        session_starts_at=row.session_starts_at,
        opted_out=row.opted_out,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        root_id=row.thread_ts,
        created_at=row.created_at,
    )


def message_record(row: ChatMessage) -> Message:
    return Message(
        id=row.id,
        thread_id=row.thread_id,
        direction=row.direction,
        respondent_uid=row.respondent_uid,
        platform=row.platform,
        channel=row.channel,
        post_id=row.platform_ts,
        author_user_id=row.author_user_id,
        author_name=row.author_name,
        state=row.state,
        failure_reason=row.failure_reason,
        sent_at=row.sent_at,
    )


_REMINDER_FIELDS = [f.name for f in dataclasses.fields(Reminder)]


def reminder_record(row: store.Reminder) -> Reminder:
    return Reminder(**{name: getattr(row, name) for name in _REMINDER_FIELDS})


def maybe(convert: Callable[[Any], T], row: Any) -> T | None:
    return None if row is None else convert(row)


def queued_record(row: Any) -> QueuedRow:
    return QueuedRow(
        id=row.id,
        key=row.key,
        kind=row.kind,
        lane=row.lane,
        payload=row.payload,
        attempts=row.attempts,
        needs_verify=row.needs_verify,
        created_at=row.created_at,
        status=row.status,
        last_error=getattr(row, "last_error", None),
        finished_at=getattr(row, "finished_at", None),
    )
