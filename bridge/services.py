"""What the handlers and the runtime work with: the store (units of work) and the three ports, plus a few
behaviour settings. Built by the application (``bot/app.py``); tests build it with fakes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bridge.metrics import Metrics
from bridge.team_cache import TeamCache
from core.errors import PermanentFailure
from core.links import LinkChecker
from core.ports import ChatPlatform, ParticipantChannel, StudyRecord
from core.records import QueuedRow
from core.store import Store


class Taker(Protocol):
    """A queue's worker in this process, to which a transaction that queued rows may hand them, claimed."""

    owner: str
    lease: timedelta

    def room(self) -> int: ...

    def take(self, rows: list[QueuedRow]) -> None: ...


@dataclass
class Services:
    store: Store
    chats: dict[str, ChatPlatform]  # by platform name: "slack", "teams"
    respondent: ParticipantChannel
    rally: StudyRecord
    internal_note_marker: str = "//"
    respondent_researcher_id: str = "rally-bridge"
    # Set whenever new inbox or outbox rows exist, so workers start at once instead of at their next poll.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Metrics = field(default_factory=Metrics)
    # Study teams and Rally accounts for a short time, this process only (bridge/team_cache.py): the send-time check.
    team_cache: TeamCache = field(default_factory=TeamCache)
    # Links in a message to a participant are checked before it leaves (``core/links.py``); None: the check is off.
    link_checker: LinkChecker | None = None

    def chat(self, platform: str) -> ChatPlatform:
        try:
            return self.chats[platform]
        except KeyError:
            raise PermanentFailure(f"the {platform} platform is not configured on this bridge") from None
