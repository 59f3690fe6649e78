"""Messages composed ahead or for many: saved replies, study-wide updates, and messages held back because a link in
them looked broken. Plain frozen records (``storage`` maps its tables to them), as ``core/records.py``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WORKSPACE_WIDE = ""  # the ``study_id`` of a saved reply every study of the workspace offers


@dataclass(frozen=True)
class SavedReply:
    id: int
    platform: str
    workspace: str
    study_id: str  # WORKSPACE_WIDE for the workspace's own
    name: str
    body: str  # with placeholders (``core/placeholders.py``)
    created_by: str
    created_by_name: str
    created_at: datetime


class UpdateStatus(enum.StrEnum):
    DRAFT = "draft"  # previewed, waiting for Confirm
    SENDING = "sending"  # confirmed: one relay per recipient queued
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StudyUpdate:
    """A message to many participants of one study; ``recipients``: participant ids chosen when it was previewed."""

    id: int
    key: str  # the previewing command's inbox key: the same command handled twice drafts one update
    platform: str
    workspace: str
    channel: str
    study_id: str
    audience: str  # as typed (``all``, ``next24h``, ``unbooked``, ``silent 3d``, ``list ...``)
    body: str
    recipients: tuple[str, ...]
    author: dict[str, Any]  # the relay's author (``bridge/outbox.relay``)
    status: str
    created_at: datetime


class HeldStatus(enum.StrEnum):
    HELD = "held"
    SENT = "sent"  # "Send anyway"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class HeldMessage:
    """A message to a participant held back because a link in it looked broken, until its author decides."""

    id: int
    key: str  # what asked for it to be sent (an inbox key): held once however often that is handled
    thread_id: int
    body: str
    author: dict[str, Any]
    problems: tuple[str, ...]  # each "url: reason"
    status: str
    created_at: datetime
