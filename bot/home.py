"""The bridge's home: what one person sees on the chat platform's page for the bridge (Slack's App Home).

Platform-neutral. Opening the home (``EventKind.HOME_OPENED``) or clicking one of its buttons (a command with
``origin`` ``home``) is processed like any inbox row:

1. Outside reads, no transaction open (:func:`viewer`): who the viewer is (name, email, time zone) and, from Rally,
   for every active link of the viewer's workspace, whether they may act for the study (R2, as for ``link`` and
   ``cancel``; the viewer's Rally accounts are read once, each study's team once).
2. In the row's ``Apply`` (:func:`build`), from the database as that transaction sees it, so a Retry or Cancel
   applied in the same transaction is already reflected: per permitted study its participants with their last
   message each way, the relays that gave up (with their reason and a **Retry** action) and the pending
   reminders (with **Cancel**); the other studies by name, with why the viewer may not act and what to do; a
   short "what you can do" section. The :class:`HomeView` goes into one ``chat.home`` outbox row
   (``bot.pipeline.outbox.publish_home``), which the platform adapter draws (``bot.ports.HomeSurface``).

A click on the home is answered on the home itself: the view is published again with a status line at the top
(no channel message, no DM), so the button the person clicked is gone and the sentence says what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import Action, Direction, RallyUser
from bot.errors import NotFound
from bot.permissions import Decision, may_act_for_study
from bot.pipeline import outbox
from bot.pipeline.services import Services
from bot.reminders import clock
from bot.reminders.view import KIND_NAMES
from bot.reminders.when import format_moment
from storage import queue, repo
from storage import reminders as store
from storage.models import ChatMessage, OutboxItem, StudyLink

Apply = Callable[[AsyncSession], Awaitable[None]]
Answer = Callable[[AsyncSession, str], Awaitable[None]]

# Per study, at most this many of each are carried in the view (the rest are counted); the adapter may show fewer.
MAX_PARTICIPANTS = 50
MAX_FAILED = 20
MAX_REMINDERS = 20
PREVIEW = 80


def preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- the model ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastMessage:
    at: datetime
    state: str | None = None  # messages to the participant: pending | delivered | failed
    author: str | None = None


@dataclass(frozen=True)
class ParticipantLine:
    name: str
    participant_id: str
    opted_out: bool
    last_from: LastMessage | None
    last_to: LastMessage | None


@dataclass(frozen=True)
class FailedDelivery:
    """A relay that gave up: ``delivery_id`` is its outbox row (what ``retry <id>`` names)."""

    delivery_id: int
    participant_name: str
    reason: str
    failed_at: datetime | None
    author: str | None
    preview: str
    action: Action | None  # Retry; None when it can't be sent (``note`` says why)
    note: str | None = None


@dataclass(frozen=True)
class PendingReminder:
    reminder_id: int
    participant_name: str
    kind: str
    due_at: datetime
    created_by: str
    preview: str
    action: Action  # Cancel


@dataclass(frozen=True)
class StudyHome:
    """A linked study the viewer may act for."""

    study_id: str
    study_name: str
    channel: str
    participants: tuple[ParticipantLine, ...] = ()
    more_participants: int = 0
    failed: tuple[FailedDelivery, ...] = ()
    more_failed: int = 0
    reminders: tuple[PendingReminder, ...] = ()
    more_reminders: int = 0


@dataclass(frozen=True)
class ClosedStudy:
    """A linked study of the workspace the viewer may not act for; ``reason`` says why and what to do."""

    study_id: str
    study_name: str
    channel: str
    reason: str


@dataclass(frozen=True)
class HomeView:
    viewer_name: str
    built_at: datetime
    status: str | None = None
    may_act: str = ""
    studies: tuple[StudyHome, ...] = ()
    closed: tuple[ClosedStudy, ...] = ()
    closed_intro: str = ""
    empty: str | None = None  # nothing is linked in the workspace: how to start
    help: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the outbox payload)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HomeView:
        return HomeView(
            viewer_name=data["viewer_name"],
            built_at=datetime.fromisoformat(data["built_at"]),
            status=data.get("status"),
            may_act=data.get("may_act") or "",
            studies=tuple(_study(s) for s in data.get("studies") or ()),
            closed=tuple(ClosedStudy(**c) for c in data.get("closed") or ()),
            closed_intro=data.get("closed_intro") or "",
            empty=data.get("empty"),
            help=tuple(data.get("help") or ()),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Action):
        return {"label": value.label, "command": value.command, "style": value.style}
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _action(data: dict[str, Any] | None) -> Action | None:
    return Action(data["label"], data["command"], data.get("style")) if data else None


def _last(data: dict[str, Any] | None) -> LastMessage | None:
    return LastMessage(datetime.fromisoformat(data["at"]), data.get("state"), data.get("author")) if data else None


def _study(data: dict[str, Any]) -> StudyHome:
    return StudyHome(
        study_id=data["study_id"],
        study_name=data["study_name"],
        channel=data["channel"],
        participants=tuple(
            ParticipantLine(p["name"], p["participant_id"], p["opted_out"], _last(p["last_from"]), _last(p["last_to"]))
            for p in data.get("participants") or ()
        ),
        more_participants=int(data.get("more_participants") or 0),
        failed=tuple(
            FailedDelivery(
                f["delivery_id"],
                f["participant_name"],
                f["reason"],
                _time(f.get("failed_at")),
                f.get("author"),
                f["preview"],
                _action(f.get("action")),
                f.get("note"),
            )
            for f in data.get("failed") or ()
        ),
        more_failed=int(data.get("more_failed") or 0),
        reminders=tuple(
            PendingReminder(
                r["reminder_id"],
                r["participant_name"],
                r["kind"],
                datetime.fromisoformat(r["due_at"]),
                r["created_by"],
                r["preview"],
                Action(r["action"]["label"], r["action"]["command"], r["action"].get("style")),
            )
            for r in data.get("reminders") or ()
        ),
        more_reminders=int(data.get("more_reminders") or 0),
    )


# --- who is looking ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """The person whose home is built, and what Rally says they may do for each study linked in their workspace."""

    platform: str
    workspace: str
    user_id: str
    name: str
    email: str | None
    tz: str | None
    decisions: dict[str, Decision]  # study id -> may act for it (R2)


async def viewer(services: Services, platform: str, workspace: str, user_id: str) -> Viewer:
    """Read the viewer and their permissions (no transaction open). One Rally user lookup, one team read a study."""
    user = await services.chat(platform).lookup_user(user_id)
    async with services.db.transaction() as session:
        links = [link for link in await repo.active_links(session) if _in_workspace(link, platform, workspace)]
    accounts: list[RallyUser] = await services.rally.find_users_by_email(user.email) if user.email else []

    async def decide(link: StudyLink) -> tuple[str, Decision]:
        try:
            team = await services.rally.get_team(link.study_id)
        except NotFound:
            return link.study_id, Decision(False, texts.home_study_gone(link.study_name))
        decision = may_act_for_study(
            email=user.email, chat_name=user.name, study_name=link.study_name, team=team, rally_users=accounts
        )
        return link.study_id, decision

    decided = await asyncio.gather(*(decide(link) for link in links))
    return Viewer(platform, workspace, user_id, user.name, user.email, user.tz, dict(decided))


def _in_workspace(link: StudyLink, platform: str, workspace: str) -> bool:
    return link.platform == platform and link.workspace == workspace


# --- building the view ------------------------------------------------------------------------------------------


async def build(session: AsyncSession, who: Viewer, *, marker: str, status: str | None = None) -> HomeView:
    """``who``'s home as the database stands in ``session`` (permissions as read by :func:`viewer`)."""
    links = sorted(
        (link for link in await repo.active_links(session) if _in_workspace(link, who.platform, who.workspace)),
        key=lambda link: (link.study_name.casefold(), link.study_id),
    )
    open_links: list[StudyLink] = []
    closed: list[ClosedStudy] = []
    for link in links:
        decision = who.decisions.get(link.study_id)
        if decision is not None and decision.allowed:
            open_links.append(link)
        else:
            reason = decision.reason if decision is not None else texts.home_not_checked(link.study_name)
            closed.append(ClosedStudy(link.study_id, link.study_name, link.channel, reason))
    studies = [await _study_home(session, link) for link in open_links]
    return HomeView(
        viewer_name=who.name,
        built_at=clock.now(),
        status=status,
        may_act=texts.home_may_act() if studies else "",
        studies=tuple(studies),
        closed=tuple(closed),
        closed_intro=texts.home_closed_intro() if closed else "",
        empty=texts.home_no_links() if not links else None,
        help=texts.home_help(marker),
    )


async def _study_home(session: AsyncSession, link: StudyLink) -> StudyHome:
    threads = sorted(
        (await repo.threads_of_study(session, link.study_id)).values(),
        key=lambda t: (t.display_name.casefold(), t.id),
    )
    by_id = {t.id: t for t in threads}
    shown = threads[:MAX_PARTICIPANTS]
    latest = await repo.last_messages(session, [t.id for t in shown])
    participants = tuple(
        ParticipantLine(
            name=t.display_name,
            participant_id=t.participant_id,
            opted_out=t.opted_out,
            last_from=_last_message(latest.get((t.id, Direction.FROM_PARTICIPANT.value))),
            last_to=_last_message(latest.get((t.id, Direction.TO_PARTICIPANT.value))),
        )
        for t in shown
    )
    gave_up = await queue.failed_in_lanes(
        session, OutboxItem, outbox.Effect.RELAY.value, [f"relay:{t.id}" for t in threads]
    )
    failed = []
    for row in gave_up[:MAX_FAILED]:
        thread = by_id.get(int(row.payload.get("thread_id") or 0))
        if thread is None:
            continue
        author = row.payload.get("author") or {}
        action = None if thread.opted_out else Action("Retry", f"retry {row.id}", "primary")
        failed.append(
            FailedDelivery(
                delivery_id=row.id,
                participant_name=thread.display_name,
                reason=row.last_error or "unknown",
                failed_at=row.finished_at,
                author=author.get("name"),
                preview=preview(str(row.payload.get("body") or "")),
                action=action,
                note=texts.home_opted_out_no_retry(thread.display_name) if thread.opted_out else None,
            )
        )
    pending = await store.open_for_threads(session, [t.id for t in threads])
    reminders = tuple(
        PendingReminder(
            reminder_id=r.id,
            participant_name=by_id[r.thread_id].display_name if r.thread_id in by_id else r.participant_id,
            kind=KIND_NAMES.get(r.kind, r.kind),
            due_at=r.due_at,
            created_by=r.created_by_name,
            preview=preview(r.body),
            action=Action(f"Cancel #{r.id}", f"cancel {r.id}", "danger"),
        )
        for r in pending[:MAX_REMINDERS]
    )
    return StudyHome(
        study_id=link.study_id,
        study_name=link.study_name,
        channel=link.channel,
        participants=participants,
        more_participants=len(threads) - len(shown),
        failed=tuple(failed),
        more_failed=max(0, len(gave_up) - MAX_FAILED),
        reminders=reminders,
        more_reminders=max(0, len(pending) - MAX_REMINDERS),
    )


def _last_message(message: ChatMessage | None) -> LastMessage | None:
    if message is None:
        return None
    if message.direction == Direction.TO_PARTICIPANT.value:
        return LastMessage(message.sent_at, message.state, message.author_name)
    return LastMessage(message.sent_at)


# --- publishing -------------------------------------------------------------------------------------------------


def republish(who: Viewer, key: str, *, marker: str) -> Answer:
    """An answer given on the home: ``who``'s view built afresh with ``status`` on top, queued for publishing."""

    async def answer(session: AsyncSession, status: str) -> None:
        view = await build(session, who, marker=marker, status=status or None)
        await outbox.publish_home(session, who.platform, key, who.user_id, view.to_dict())

    return answer


async def opened(services: Services, key: str, payload: dict[str, Any]) -> Apply:
    """``HOME_OPENED``: publish the viewer's home."""
    who = await viewer(services, payload["platform"], payload["workspace"], payload["user_id"])
    publish = republish(who, key, marker=services.internal_note_marker)

    async def apply(session: AsyncSession) -> None:
        await publish(session, "")

    return apply


async def cancel(services: Services, who: Viewer, rest: str, answer: Answer) -> Apply:
    """``cancel <id>`` clicked on the home: like the typed command (``bot/reminders/commands.py``), but the
    reminder may be of any channel of the viewer's workspace, since the home has none; the same R2 check."""
    wanted = rest.lstrip("#").split(" ")[0]
    if not wanted.isdigit():
        return _say(answer, texts.reminder_usage("cancel"))
    async with services.db.transaction() as session:
        found = await store.open_with_thread(session, int(wanted))
    if found is None or not found[2].active or not _in_workspace(found[2], who.platform, who.workspace):
        return _say(answer, texts.home_reminder_not_found(wanted))
    row, thread, link = found
    decision = who.decisions.get(row.study_id)
    if decision is None or not decision.allowed:
        return _say(answer, decision.reason if decision is not None else texts.home_not_checked(link.study_name))
    notice = texts.reminder_cancelled_by(who.name, row.id, thread.display_name, format_moment(row.due_at, who.tz))
    reminder_id, thread_id = row.id, thread.id

    async def apply(session: AsyncSession) -> None:
        moved = await store.transition(
            session,
            reminder_id,
            to=store.CANCELLED,
            allowed_from=store.OPEN,
            now=clock.now(),
            outcome=f"by {who.name}",
        )
        if not moved:
            await answer(session, texts.home_reminder_not_found(wanted))
            return
        current = await repo.thread_by_id(session, thread_id)
        assert current is not None
        # The same key as the typed cancel's notice: however it was cancelled, the thread says so once.
        await outbox.notice_in_thread(session, current, f"reminder-cancelled:{reminder_id}", notice)
        await answer(session, notice)

    return apply


def _say(answer: Answer, text: str) -> Apply:
    async def apply(session: AsyncSession) -> None:
        await answer(session, text)

    return apply
