"""How a thread's case changes (``core/case.py`` says what it means): each function takes the thread as it is
(read under a row lock) and says which of its case fields to set, or None when nothing changes.

Times decide, not arrival order: a participant message that reaches the bridge after the team already answered it
(a late webhook, a reconcile) does not make the participant wait again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.records import Thread

# The thread fields a case change may set (the repositories refuse others).
CASE_FIELDS = frozenset(
    {
        "owner_user_id",
        "owner_name",
        "owner_tz",
        "waiting_since",
        "last_in_at",
        "last_out_at",
        "seen_message_id",
        "nudged",
    }
)


@dataclass(frozen=True)
class CaseChange:
    """Fields to set; ``redraw``: what the root card shows changed (its version goes up, a redraw is queued)."""

    values: dict[str, Any] = field(default_factory=dict)
    redraw: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.values) - CASE_FIELDS
        if unknown:
            raise ValueError(f"not case fields: {sorted(unknown)}")


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def participant_wrote(thread: Thread, at: datetime) -> CaseChange:
    """The participant wrote at ``at``: they wait on the team from then, unless the team wrote after it."""
    values: dict[str, Any] = {"last_in_at": _later(thread.last_in_at, at)}
    answered = thread.last_out_at is not None and thread.last_out_at >= at
    if thread.waiting_since is None and not answered:
        values.update(waiting_since=at, nudged=0)
    return CaseChange(values)


def team_wrote(thread: Thread, at: datetime) -> CaseChange:
    """Someone of the team wrote to the participant at ``at`` (a reply, a scheduled send, a message from outside
    the thread): a wait that began before it is over, and what the participant had seen is no longer the last."""
    values: dict[str, Any] = {"last_out_at": _later(thread.last_out_at, at), "seen_message_id": None}
    if thread.waiting_since is not None and thread.waiting_since <= at:
        values.update(waiting_since=None, nudged=0)
    return CaseChange(values)


def not_answered(thread: Thread) -> CaseChange | None:
    """A reply that ended the wait failed for good: the participant waits again, since their last message."""
    if thread.waiting_since is not None or thread.last_in_at is None:
        return None
    return CaseChange({"waiting_since": thread.last_in_at, "nudged": 0})


def assigned(thread: Thread, user_id: str, name: str, tz: str | None) -> CaseChange | None:
    if thread.owner_user_id == user_id and thread.owner_name == name and thread.owner_tz == tz:
        return None
    return CaseChange({"owner_user_id": user_id, "owner_name": name, "owner_tz": tz})


def seen(thread: Thread, message_id: int) -> CaseChange | None:
    """Respondent says the participant has read the conversation, whose last message of ours is ``message_id``."""
    if thread.seen_message_id == message_id:
        return None
    return CaseChange({"seen_message_id": message_id})


def nudged(thread: Thread, waiting_since: datetime, stage: int) -> CaseChange | None:
    """Nudge ``stage`` of the wait that began at ``waiting_since`` is queued: None when that wait is over (someone
    answered) or the stage was queued already (by another replica)."""
    if thread.waiting_since != waiting_since or thread.nudged >= stage:
        return None
    return CaseChange({"nudged": stage}, redraw=False)


def time_passed() -> CaseChange:
    """Nothing stored changed, but what the card says did (a session came close, or is over)."""
    return CaseChange({})
