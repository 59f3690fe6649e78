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
   (``bridge.outbox.publish_home``), which the platform adapter draws (``core.ports.HomeSurface``).

A click on the home is answered on the home itself: the view is published again with a status line at the top
(no channel message, no DM), so the button the person clicked is gone and the sentence says what happened.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge import outbox
from bridge.apply import Answer, Apply
from bridge.reminders import session_defaults
from bridge.reminders.view import KIND_NAMES
from bridge.services import Services
from core import clock, texts
from core.domain import Action, Direction, RallyUser
from core.errors import NotFound
from core.events import HomeOpened
from core.home import (
    MAX_FAILED,
    MAX_PARTICIPANTS,
    MAX_REMINDERS,
    ClosedStudy,
    FailedDelivery,
    HomeView,
    LastMessage,
    ParticipantLine,
    PendingReminder,
    QueueLine,
    StudyHome,
    preview,
)
from core.message import Text
from core.permissions import Decision, may_act_for_study
from core.records import OPEN_REMINDER, Link, Message, ReminderStatus, Thread
from core.store import UnitOfWork
from core.when import format_moment

__all__ = ["Answer", "Viewer", "build", "cancel", "opened", "republish", "viewer"]

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
    async with services.store.transaction() as uow:
        links = [link for link in await uow.links.active() if _in_workspace(link, platform, workspace)]
    accounts: list[RallyUser] = await services.rally.find_users_by_email(user.email) if user.email else []

    async def decide(link: Link) -> tuple[str, Decision]:
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


def _in_workspace(link: Link, platform: str, workspace: str) -> bool:
    return link.platform == platform and link.workspace == workspace


# --- building the view ------------------------------------------------------------------------------------------


async def build(
    uow: UnitOfWork, who: Viewer, *, marker: str, status: Text | None = None, study_filter: str | None = None
) -> HomeView:
    """``who``'s home as the database stands in ``uow`` (permissions as read by :func:`viewer`); ``study_filter``:
    only that study (when it is one of the workspace's)."""
    links = sorted(
        (link for link in await uow.links.active() if _in_workspace(link, who.platform, who.workspace)),
        key=lambda link: (link.study_name.casefold(), link.study_id),
    )
    if study_filter is not None and any(link.study_id == study_filter for link in links):
        links = [link for link in links if link.study_id == study_filter]
    else:
        study_filter = None
    open_links: list[Link] = []
    closed: list[ClosedStudy] = []
    for link in links:
        decision = who.decisions.get(link.study_id)
        if decision is not None and decision.allowed:
            open_links.append(link)
        else:
            reason = decision.reason if decision is not None else texts.home_not_checked(link.study_name)
            closed.append(ClosedStudy(link.study_id, link.study_name, link.channel, reason))
    studies = [await _study_home(uow, link) for link in open_links]
    return HomeView(
        queue=_queue(studies, {link.study_id: link for link in open_links}),
        study_filter=study_filter,
        filters=_filters(open_links, study_filter) if len(open_links) > 1 or study_filter else (),
        viewer_name=who.name,
        built_at=clock.now(),
        status=status,
        may_act=texts.home_may_act() if studies else Text(),
        studies=tuple(studies),
        closed=tuple(closed),
        closed_intro=texts.home_closed_intro() if closed else Text(),
        empty=texts.home_no_links() if not links else None,
        help=texts.home_help(marker),
    )


def _queue(studies: list[StudyHome], links: dict[str, Link]) -> tuple[QueueLine, ...]:
    """Who waits on the team, longest wait first, across the shown studies."""
    lines = [
        QueueLine(
            p.name,
            p.participant_id,
            s.study_id,
            s.study_name,
            links[s.study_id].channel,
            p.waiting_since,
            p.owner,
            p.session_starts_at,
        )
        for s in studies
        for p in s.participants
        if p.waiting_since is not None and not p.opted_out
    ]
    return tuple(sorted(lines, key=lambda q: q.waiting_since)[:MAX_PARTICIPANTS])


def _filters(links: list[Link], chosen: str | None) -> tuple[Action, ...]:
    buttons = [Action("All studies", "queue", "primary" if chosen is None else None)]
    buttons += [
        Action(link.study_name[:60], f"queue {link.study_id}", "primary" if chosen == link.study_id else None)
        for link in links
    ]
    return tuple(buttons)


def _waiting_first(thread: Thread) -> tuple[int, datetime, str, int]:
    """Participants waiting on the team first, longest wait first; then everyone else by name."""
    if thread.waiting_since is not None and not thread.opted_out:
        return (0, thread.waiting_since, "", thread.id)
    return (1, _EPOCH, thread.display_name.casefold(), thread.id)


_EPOCH = datetime.min.replace(tzinfo=UTC)


async def _study_home(uow: UnitOfWork, link: Link) -> StudyHome:
    threads = sorted((await uow.threads.of_study(link.study_id)).values(), key=_waiting_first)
    by_id = {t.id: t for t in threads}
    shown = threads[:MAX_PARTICIPANTS]
    latest = await uow.messages.last_each_way([t.id for t in shown])
    participants = tuple(
        ParticipantLine(
            name=t.display_name,
            participant_id=t.participant_id,
            opted_out=t.opted_out,
            last_from=_last_message(latest.get((t.id, Direction.FROM_PARTICIPANT.value))),
            last_to=_last_message(latest.get((t.id, Direction.TO_PARTICIPANT.value))),
            waiting_since=t.waiting_since,
            owner=t.owner_name,
            session_starts_at=t.session_starts_at,
        )
        for t in shown
    )
    gave_up = await uow.outbox.failed_in_lanes(outbox.Effect.RELAY.value, [f"relay:{t.id}" for t in threads])
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
    pending = await uow.reminders.open_for_threads([t.id for t in threads])
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


def _last_message(message: Message | None) -> LastMessage | None:
    if message is None:
        return None
    if message.direction == Direction.TO_PARTICIPANT.value:
        return LastMessage(message.sent_at, message.state, message.author_name)
    return LastMessage(message.sent_at)


# --- publishing -------------------------------------------------------------------------------------------------


def republish(who: Viewer, key: str, *, marker: str, study_filter: str | None = None) -> Answer:
    """An answer given on the home: ``who``'s view built afresh with ``status`` on top, queued for publishing."""

    async def answer(uow: UnitOfWork, status: Text) -> None:
        view = await build(uow, who, marker=marker, status=status or None, study_filter=study_filter)
        await outbox.publish_home(uow, who.platform, key, who.user_id, view.to_dict())

    return answer


async def opened(services: Services, event: HomeOpened) -> Apply:
    """``HOME_OPENED``: publish the viewer's home."""
    who = await viewer(services, event.platform, event.workspace, event.user_id)
    publish = republish(who, event.key, marker=services.internal_note_marker)

    async def apply(uow: UnitOfWork) -> None:
        await publish(uow, Text())

    return apply


async def cancel(services: Services, who: Viewer, rest: str, answer: Answer) -> Apply:
    """``cancel <id>`` clicked on the home: like the typed command (``bridge/reminders/commands.py``, whose
    registered ``cancel`` calls this for a click on the home), but the
    reminder may be of any channel of the viewer's workspace, since the home has none; the same R2 check."""
    wanted = rest.lstrip("#").split(" ")[0]
    if not wanted.isdigit():
        return _say(answer, texts.reminder_usage("cancel"))
    async with services.store.transaction() as uow:
        found = await uow.reminders.open_with_thread(int(wanted))
    if found is None or not found[2].active or not _in_workspace(found[2], who.platform, who.workspace):
        return _say(answer, texts.home_reminder_not_found(wanted))
    row, thread, link = found
    decision = who.decisions.get(row.study_id)
    if decision is None or not decision.allowed:
        return _say(answer, decision.reason if decision is not None else texts.home_not_checked(link.study_name))
    notice = texts.reminder_cancelled_by(who.name, row.id, thread.display_name, format_moment(row.due_at, who.tz))
    reminder_id, thread_id = row.id, thread.id

    async def apply(uow: UnitOfWork) -> None:
        moved = await uow.reminders.transition(
            reminder_id,
            to=ReminderStatus.CANCELLED,
            allowed_from=OPEN_REMINDER,
            now=clock.now(),
            outcome=f"by {who.name}",
        )
        if not moved:
            await answer(uow, texts.home_reminder_not_found(wanted))
            return
        current = await uow.threads.by_id(thread_id)
        assert current is not None
        # A no-show follow-up takes its team reminder with it, as the typed cancel does.
        team = await session_defaults.cancel_team(uow, row, who.name, clock.now())
        said = notice + texts.team_reminder_cancelled_too(team) if team else notice
        # The same key as the typed cancel's notice: however it was cancelled, the thread says so once.
        await outbox.notice_in_thread(uow, current, f"reminder-cancelled:{reminder_id}", said)
        await answer(uow, said)

    return apply


def _say(answer: Answer, text: Text) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        await answer(uow, text)

    return apply
