"""Rows for tests that seed the database directly: a linked study, a participant's thread, a reminder.

Each factory returns an unsaved ORM object with sensible defaults; pass only what a test is about as overrides.
The defaults are consistent with each other (a thread takes its study, project and channel from its link; a reminder
takes its study, participant and channel from its thread) and with the test world's cast: a reminder is scheduled
by the cast's owner, Ana Ortiz, who is on the team of the world's study, so it fires in a world too.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from storage import reminders as store
from storage.models import ParticipantThread, StudyLink

_serial = itertools.count(1)


def study_link(**overrides: Any) -> StudyLink:
    """A study linked to a Slack channel (``st_1`` in ``C1`` of workspace ``T1``), active."""
    values: dict[str, Any] = {
        "study_id": "st_1",
        "study_name": "Study",
        "respondent_project_id": "proj",
        "platform": "slack",
        "workspace": "T1",
        "channel": "C1",
        "active": True,
        "linked_by": "U1",
        "linked_at": datetime.now(UTC),
    }
    return StudyLink(**{**values, **overrides})


def participant_thread(link: StudyLink, **overrides: Any) -> ParticipantThread:
    """Jordan's thread under ``link``: same study, project, platform, workspace and channel; a thread ts of its own."""
    values: dict[str, Any] = {
        "study_id": link.study_id,
        "participant_id": "pa_jordan",
        "person_id": None,
        "email": "jordan@example.net",
        "display_name": "Jordan L.",
        "respondent_project_id": link.respondent_project_id,
        "respondent_user_id": "ru_jordan",
        "conversation_uid": None,
        "scheduling_url": None,
        "session_starts_at": None,
        "opted_out": False,
        "platform": link.platform,
        "workspace": link.workspace,
        "channel": link.channel,
        "thread_ts": f"1700000000.{next(_serial):06d}",
        "created_at": datetime.now(UTC),
    }
    return ParticipantThread(**{**values, **overrides})


def reminder(thread: ParticipantThread, **overrides: Any) -> store.Reminder:
    """A pending ``remind`` for ``thread`` (flushed: it needs its id), due now, scheduled by Ana Ortiz."""
    assert thread.id is not None, "flush the thread first: a reminder points at its id"
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "source_key": f"test:reminder:{next(_serial)}",
        "kind": store.REMIND,
        "thread_id": thread.id,
        "study_id": thread.study_id,
        "participant_id": thread.participant_id,
        "platform": thread.platform,
        "channel": thread.channel,
        "due_at": now,
        "body": "See you soon",
        "spec": "in 1h",
        "tz": "UTC",
        "created_by_user_id": "U0ANA",
        "created_by_name": "Ana Ortiz",
        "created_by_email": "ana@example.com",
        "created_by_rally_user_id": "usr_ana",
        "created_at": now,
        "status": store.PENDING,
    }
    return store.Reminder(**{**values, **overrides})
