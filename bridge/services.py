"""What the handlers and the runtime work with: the store (units of work) and the three ports, plus a few
behaviour settings. Built by the application (``bot/app.py``); tests build it with fakes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bridge.metrics import Metrics
from core.errors import PermanentFailure
from core.ports import ChatPlatform, ParticipantChannel, StudyRecord
from core.store import Store


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

    def chat(self, platform: str) -> ChatPlatform:
        try:
            return self.chats[platform]
        except KeyError:
            raise PermanentFailure(f"the {platform} platform is not configured on this bridge") from None
