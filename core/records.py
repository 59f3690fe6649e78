"""What the bridge keeps, as the handlers see it: plain frozen records, whatever stores them.

``storage`` maps its tables to these; the in-memory unit of work of the handler tests builds them directly.
Changing a record is a repository call (``uow.threads.set_opted_out(...)``), never an assignment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Link:
    """A Rally study bridged to one chat channel. One channel may hold several studies."""

    id: int
    study_id: str
    study_name: str
    respondent_project_id: str
    platform: str
    workspace: str
    channel: str
    active: bool
    linked_by: str
    linked_at: datetime
    # ``/rally settings``: how long a participant may wait before the team is nudged (None: the default,
    # ``core.case.NudgePolicy``); ``nudge_wait_minutes`` in working hours, ``nudge_soon_minutes`` near a session.
    nudge_wait_minutes: int | None = None
    nudge_soon_minutes: int | None = None


@dataclass(frozen=True)
class Thread:
    """One approved participant of a linked study and the one chat thread that carries their conversation.

    ``root_id`` is the platform's id of the thread's root post (Slack ``ts``, Teams message id); None until posted.
    """

    id: int
    study_id: str
    participant_id: str
    person_id: str | None
    email: str | None
    display_name: str
    respondent_project_id: str
    respondent_user_id: str
    conversation_uid: str | None
    scheduling_url: str | None
    session_starts_at: datetime | None
    opted_out: bool
    platform: str
    workspace: str
    channel: str
    root_id: str | None
    created_at: datetime
    # The case (``core/case.py``, ``bridge/case.py``): who owns it, since when the participant waits on the team, the
    # last message each way, whether the participant has read the team's last message (its id), how many nudges this
    # waiting period has had, and the root card's version (each change) and the version last drawn.
    owner_user_id: str | None = None
    owner_name: str | None = None
    owner_tz: str | None = None
    waiting_since: datetime | None = None
    last_in_at: datetime | None = None
    last_out_at: datetime | None = None
    seen_message_id: int | None = None
    nudged: int = 0
    card_version: int = 0
    card_shown: int = 0


class MessageState(enum.StrEnum):
    PENDING = "pending"  # a researcher's message on its way to the participant
    DELIVERED = "delivered"
    FAILED = "failed"
    MIRRORED = "mirrored"  # a participant's message shown in the thread


@dataclass(frozen=True)
class Message:
    """One message of a participant conversation, either direction, with its ids on every side.

    ``post_id`` is the platform's id of the message in the thread (Slack ``ts``)."""

    id: int
    thread_id: int
    direction: str
    respondent_uid: str | None
    platform: str
    channel: str
    post_id: str | None
    author_user_id: str | None
    author_name: str | None
    state: str
    failure_reason: str | None
    sent_at: datetime


class ReminderKind(enum.StrEnum):
    REMIND = "remind"
    FOLLOWUP = "followup"
    RESCHEDULE = "reschedule"
    NOSHOW = "noshow"  # to the participant 10 min after the session started, unless they wrote since it started
    TEAM = "team"  # to nobody outside: a notice in the thread before Rally's no-show window closes (with a NOSHOW)


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its time
    QUEUED = "queued"  # its time came: an inbox event will send it (exactly one replica moves it here)
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


OPEN_REMINDER = (ReminderStatus.PENDING, ReminderStatus.QUEUED)


@dataclass(frozen=True)
class NewReminder:
    """A scheduled send to one participant, asked for by one researcher; ``source_key`` is the asking command's
    inbox key, so a command handled twice still schedules once."""

    source_key: str
    kind: str
    thread_id: int
    study_id: str
    participant_id: str
    platform: str
    channel: str
    due_at: datetime
    body: str
    spec: str  # what the researcher typed for <when>
    tz: str
    created_by_user_id: str
    created_by_name: str
    created_by_email: str | None
    created_by_rally_user_id: str | None
    created_at: datetime
    status: str = ReminderStatus.PENDING


@dataclass(frozen=True)
class Reminder(NewReminder):
    id: int = 0
    finished_at: datetime | None = None
    outcome: str | None = None


class QueueStatus(enum.StrEnum):
    PENDING = "pending"
    WORKING = "working"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class QueuedRow:
    """A row of the inbox or the outbox: keyed (exactly once), ordered in its ``lane``, leased while worked on."""

    id: int
    key: str
    kind: str
    lane: str
    payload: dict[str, Any]
    attempts: int
    needs_verify: bool
    created_at: datetime
    status: str = QueueStatus.WORKING
    last_error: str | None = None
    finished_at: datetime | None = None
