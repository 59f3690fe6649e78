"""Who asked and whom for: the asker of a reminder command, and the participant its text names.

Reads only (the channel's threads, the asker from the chat platform, the team and the participant from Rally),
each in its own short transaction or none: the commands (``bridge/reminders/commands.py``) do the writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bridge import access, outbox
from bridge.apply import Apply
from bridge.services import Services
from core import texts
from core.domain import Action, ChatUser, Participant
from core.errors import NotFound
from core.events import CommandIssued
from core.message import Text
from core.names import Candidate, resolve
from core.records import Link, NewReminder, ReminderStatus, Thread
from core.store import UnitOfWork


@dataclass(frozen=True)
class Asker:
    """Who typed the command, where; ``key`` is the command's inbox key."""

    platform: str
    channel: str
    user_id: str
    key: str
    tz: str | None = None  # sent with the command (Teams); else the user lookup's

    @classmethod
    def of(cls, event: CommandIssued) -> Asker:
        return cls(event.platform, event.channel, event.user_id, event.key, event.tz)

    def reply(self, text: Text, actions: Sequence[Action] = ()) -> Apply:
        async def apply(uow: UnitOfWork) -> None:
            await outbox.private(uow, self.platform, self.key, self.channel, self.user_id, text, actions=actions)

        return apply


@dataclass(frozen=True)
class Target:
    """A resolved participant the asker may message, with fresh facts from Rally."""

    thread: Thread
    link: Link
    participant: Participant
    user: ChatUser
    rally_user_id: str | None
    rest: str  # the command text after the participant

    @property
    def session_starts_at(self) -> datetime | None:
        return self.participant.session_starts_at or self.thread.session_starts_at


def reminder_row(
    asker: Asker,
    target: Target,
    *,
    kind: str,
    due_at: datetime,
    body: str,
    spec: str,
    now: datetime,
    status: str = ReminderStatus.PENDING,
    source_key: str | None = None,
) -> NewReminder:
    """A row ``asker`` schedules for ``target``; ``source_key`` (default: the command's key) keeps it once."""
    return NewReminder(
        source_key=source_key or asker.key,
        kind=kind,
        thread_id=target.thread.id,
        study_id=target.thread.study_id,
        participant_id=target.thread.participant_id,
        platform=target.thread.platform,
        channel=target.thread.channel,
        due_at=due_at,
        body=body,
        spec=spec[:200],
        tz=target.user.tz or "UTC",
        created_by_user_id=asker.user_id,
        created_by_name=target.user.name,
        created_by_email=target.user.email,
        created_by_rally_user_id=target.rally_user_id,
        created_at=now,
        status=status,
    )


async def who(services: Services, asker: Asker) -> ChatUser:
    user = await services.chat(asker.platform).lookup_user(asker.user_id)
    return replace(user, tz=asker.tz) if asker.tz else user


async def channel_threads(services: Services, asker: Asker) -> tuple[list[Thread], dict[str, Link]]:
    async with services.store.transaction() as uow:
        threads = await uow.threads.in_channel(asker.platform, asker.channel)
        links = {link.study_id: link for link in await uow.links.active()}
    return threads, links


def _candidates(threads: list[Thread], links: dict[str, Link]) -> list[Candidate]:
    return [
        Candidate(t.id, t.participant_id, t.display_name, links[t.study_id].study_name)
        for t in threads
        if t.study_id in links
    ]


async def pick(services: Services, asker: Asker, text: str) -> tuple[Thread, Link, str] | Apply:
    """The one thread ``text`` names, or a reply listing who there is."""
    threads, links = await channel_threads(services, asker)
    candidates = _candidates(threads, links)
    if not candidates:
        return asker.reply(texts.no_participants_here())
    resolution = resolve(text, candidates)
    chosen = resolution.one
    if chosen is None:
        if resolution.matches:
            return asker.reply(texts.participant_ambiguous(resolution.wanted, [c.label for c in resolution.matches]))
        return asker.reply(texts.participant_unknown(resolution.wanted, [c.label for c in candidates]))
    thread = next(t for t in threads if t.id == chosen.thread_id)
    return thread, links[thread.study_id], resolution.rest


async def target(services: Services, asker: Asker, text: str) -> Target | Apply:
    picked = await pick(services, asker, text)
    if not isinstance(picked, tuple):
        return picked
    thread, link, rest = picked
    user = await who(services, asker)
    # The opt-out is refused below with a sentence about scheduling.
    decision = await access.may_message(services, user, thread, link, check_opt_out=False)
    if not decision.allowed:
        return asker.reply(decision.reason)
    try:
        participant = await services.rally.get_participant(thread.study_id, thread.participant_id)
    except NotFound:
        return asker.reply(texts.participant_gone(thread.display_name))
    if thread.opted_out or participant.has_opted_out:
        return asker.reply(texts.participant_opted_out_nothing_scheduled(thread.display_name))
    rally_user_id = decision.rally_user.user_id if decision.rally_user else None
    return Target(thread, link, participant, user, rally_user_id, rest)
