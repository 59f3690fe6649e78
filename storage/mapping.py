"""ORM rows -> the core's records (``core.records``): what leaves the storage package.

A record's fields are the row's columns of the same name; the few the core names in its own words (a thread's
``root_id`` is the ``thread_ts`` column, a message's ``post_id`` the ``platform_ts`` column) are listed where the
record is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from core.records import Link, Message, QueuedRow, Reminder, Thread
from storage import reminders as store
from storage.models import ChatMessage, ParticipantThread, StudyLink

T = TypeVar("T")


def _record(kind: type[T], row: Any, **columns: str) -> T:
    """``kind`` from ``row``: each field from the column of its name, or of the name ``columns`` gives it."""
    fields = dataclasses.fields(kind)  # type: ignore[arg-type]
    return kind(**{f.name: getattr(row, columns.get(f.name, f.name)) for f in fields})


def link_record(row: StudyLink) -> Link:
    return _record(Link, row)


def thread_record(row: ParticipantThread) -> Thread:
    return _record(Thread, row, root_id="thread_ts")


def message_record(row: ChatMessage) -> Message:
    return _record(Message, row, post_id="platform_ts")


def reminder_record(row: store.Reminder) -> Reminder:
    return _record(Reminder, row)


def queued_record(row: Any) -> QueuedRow:
    return _record(QueuedRow, row)


def maybe(convert: Callable[[Any], T], row: Any) -> T | None:
    return None if row is None else convert(row)
