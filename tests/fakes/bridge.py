"""A bridge on fakes: ``Services`` over the in-memory store and fake ports, and a one-call way to process an event
exactly as the inbox worker does (outside reads, then the handler's writes in one transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bridge.handlers import handle
from bridge.services import Services
from bridge.team_cache import TeamCache
from core.domain import ChatUser, ExternalPanel, Participant, RallyUser, Study, TeamMember
from core.events import InboundEvent, lane_for
from core.records import QueuedRow
from tests.fakes.memory_store import MemoryStore
from tests.fakes.ports import FakeChat, FakeRally, FakeRespondent

STUDY = "st_1"
PROJECT = "pr_1"
CHANNEL = "C1"


@dataclass
class Bridge:
    store: MemoryStore = field(default_factory=MemoryStore)
    chat: FakeChat = field(default_factory=FakeChat)
    rally: FakeRally = field(default_factory=FakeRally)
    respondent: FakeRespondent = field(default_factory=FakeRespondent)
    # Per process in the product: one for this bridge, kept across the Services each call builds.
    team_cache: TeamCache = field(default_factory=TeamCache)

    @property
    def services(self) -> Services:
        return Services(
            store=self.store,
            chats={"slack": self.chat},
            respondent=self.respondent,
            rally=self.rally,
            team_cache=self.team_cache,
        )

    async def process(self, event: InboundEvent) -> QueuedRow | None:
        """Store ``event`` in the inbox (a duplicate key is a no-op: None) and handle it once, as the worker does."""
        async with self.store.transaction() as uow:
            if not await uow.inbox.add(
                key=event.key, kind=event.kind.value, lane=lane_for(event), payload=event.payload
            ):
                return None
            # Earlier events may have queued rows of their own (a catch-up read): only this one is handled here.
            claimed = await uow.inbox.claim(owner="test", lease=_LEASE, limit=100)
            (row,) = [r for r in claimed if r.key == event.key]
            for other in claimed:
                if other.key != event.key:
                    await uow.inbox.defer(other.id, "test", delay=0.0)
        await self._handle(row)
        return row

    async def process_due(self) -> int:
        """Handle the inbox rows that are due now (a retry whose time has come), as the worker's next claim would."""
        async with self.store.transaction() as uow:
            rows = await uow.inbox.claim(owner="test", lease=_LEASE, limit=100)
        for row in rows:
            await self._handle(row)
        return len(rows)

    async def _handle(self, row: QueuedRow) -> None:
        try:
            apply = await handle(self.services, row)
        except Exception as exc:  # the worker retries the row later; here: at once, when asked
            async with self.store.transaction() as uow:
                await uow.inbox.retry_later(row.id, "test", error=str(exc), delay=0.0, needs_verify=False)
            raise
        async with self.store.transaction() as uow:
            await apply(uow)
            await uow.inbox.finish(row.id, "test")

    def outbox(self, kind: str | None = None) -> list[dict]:
        return [row.payload for row in self.store.outbox(kind)]

    def private_texts(self) -> list[str]:
        return [text_of(p) for p in self.outbox("chat.private")]

    def notice_texts(self) -> list[str]:
        return [text_of(p) for p in self.outbox("chat.notice")]


def text_of(payload: dict) -> str:
    """What a queued notice says, as plain text (payloads carry the core's neutral text structure)."""
    text = payload["text"]
    if isinstance(text, str):
        return text
    from core.message import Text

    return Text.from_json(text).plain()


from datetime import timedelta  # noqa: E402

_LEASE = timedelta(minutes=5)


def study(study_id: str = STUDY, *, respondent: bool = True, name: str = "Checkout study") -> Study:
    panel = ExternalPanel("RESPONDENT", PROJECT) if respondent else ExternalPanel("USER_INTERVIEWS", "ui_1")
    return Study(study_id, name, "ACTIVE", "EXTERNAL_PANEL", panel)


def participant(
    pid: str = "pa_1", *, first: str = "Alex", last: str = "Kim", approved: bool = True, **kw
) -> Participant:
    values = dict(
        participant_id=pid,
        person_id=f"pe_{pid}",
        study_id=STUDY,
        approval_status="APPROVED" if approved else "PENDING",
        status=None,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}@example.com",
        respondent_user_id=f"ru_{pid}",
        screener_response_id=None,
        scheduling_url=None,
        session_starts_at=None,
    )
    values.update(kw)
    return Participant(**values)  # type: ignore[arg-type]


def researcher(
    bridge: Bridge, user_id: str, name: str, *, role: str = "TEAMMATE", panel: bool = True, on_team: bool = True
) -> None:
    """A chat user; on the study's team (with or without external-panel access) with an active Rally account."""
    email = f"{name.split()[0].lower()}@lab.example"
    bridge.chat.users[user_id] = ChatUser(user_id, name, email, "Europe/Berlin")
    bridge.rally.users.append(RallyUser(f"ru_{user_id}", email, name, "ACTIVE"))
    if on_team:
        bridge.rally.teams.setdefault(STUDY, []).append(TeamMember(f"ru_{user_id}", email, name, role, panel))


NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
