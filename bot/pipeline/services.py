"""What the pipeline works with: the database and the three ports, plus a few behaviour settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.ports import ChatPlatform, ParticipantChannel, StudyRecord
from storage.db import Database


@dataclass
class Services:
    db: Database
    chat: ChatPlatform
    respondent: ParticipantChannel
    rally: StudyRecord
    platform: str = "slack"
    workspace: str = ""
    internal_note_marker: str = "//"
    respondent_researcher_id: str = "rally-bridge"
    # Set whenever new inbox or outbox rows exist, so workers start at once instead of at their next poll.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
