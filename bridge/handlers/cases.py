"""``assign`` and ``settings``: who owns a participant's thread, and when the team is nudged about a wait.

``/rally assign <participant> [@person]`` (and the card's ``Assign to me`` button, which runs ``assign <participant
id>``): the owner must be someone allowed to message the participant, and so must whoever assigns; the thread says
who it moved from and to. ``/rally settings [study] [wait=30m] [soon=10m]`` shows or sets a study's thresholds.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bridge import access, case, home, outbox
from bridge.apply import Apply
from bridge.handlers.answers import say
from bridge.handlers.links import study_permission
from bridge.reminders.targets import Asker, channel_threads, pick, who
from bridge.services import Services
from core import case_changes, texts
from core.case import NudgePolicy, parse_threshold
from core.commands import Command, registry
from core.domain import ChatUser, TeamMember
from core.errors import NotFound
from core.events import CommandIssued
from core.message import Text
from core.records import Link
from core.store import UnitOfWork

# A mention as a platform sends it in command text (Slack ``<@U123>`` or ``<@U123|ana>``), or "@words" / an email.
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_PERSON_START = re.compile(r"(?:^|\s)(<@|@\S|\S+@\S+\.\S+)")


def split_person(rest: str) -> tuple[str, str | None]:
    """``"Jordan @Ana Ortiz"`` -> ``("Jordan", "@Ana Ortiz")``: the participant's words and the person's, if any."""
    found = _PERSON_START.search(rest)
    if found is None:
        return rest.strip(), None
    return rest[: found.start(1)].strip(), rest[found.start(1) :].strip()


def _team_match(words: str, team: list[TeamMember]) -> list[TeamMember]:
    """The study team's members that ``words`` (a name after ``@``, or an email) names; whether they may own the
    thread is the permission check's to say, with its reason."""
    wanted = words.lstrip("@").strip().casefold()
    if "@" in wanted:
        return [m for m in team if m.email.strip().casefold() == wanted]
    tokens = wanted.replace(".", " ").split()
    return [
        m
        for m in team
        if tokens
        and all(any(part.startswith(t) for part in f"{m.fullname} {m.email}".casefold().split()) for t in tokens)
    ]


async def _person(services: Services, asker: Asker, words: str, study_id: str) -> ChatUser | str:
    """The chat user ``words`` names, or what to tell the asker."""
    chat = services.chat(asker.platform)
    mention = _MENTION.fullmatch(words.strip())
    if mention:
        try:
            return await chat.lookup_user(mention.group(1))
        except NotFound:
            return words
    matches = _team_match(words, await services.rally.get_team(study_id))
    if len(matches) != 1:
        return words
    found = await chat.find_user_by_email(matches[0].email, channel=asker.channel)
    return found if found is not None else words


@registry.command(
    "assign",
    usage="<participant> [@person]",
    summary="make yourself (or a teammate) the owner of a participant's thread",
)
async def assign(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    participant_words, person_words = split_person(command.rest)
    if not participant_words:
        return asker.reply(texts.assign_usage())
    picked = await pick(services, asker, participant_words)
    if not isinstance(picked, tuple):
        return picked
    thread, link, leftover = picked
    if leftover.strip() and person_words is None:
        return asker.reply(texts.assign_unknown_person(leftover.strip()))
    assigner = await who(services, asker)
    decision = await access.may_message(services, assigner, thread, link, check_opt_out=False)
    if not decision.allowed:
        return asker.reply(decision.reason)
    owner = assigner
    if person_words is not None:
        found = await _person(services, asker, person_words, thread.study_id)
        if isinstance(found, str):
            return asker.reply(texts.assign_unknown_person(found))
        owner = found
        if owner.user_id != assigner.user_id:
            allowed = await access.may_message(services, owner, thread, link, check_opt_out=False)
            if not allowed.allowed:
                return asker.reply(texts.assign_not_allowed(owner.name, allowed.reason))
    thread_id, key, by = thread.id, event.key, assigner.name

    async def apply(uow: UnitOfWork) -> None:
        before = await uow.threads.by_id(thread_id)
        assert before is not None
        changed = await case.change(
            uow, thread_id, lambda t: case_changes.assigned(t, owner.user_id, owner.name, owner.tz)
        )
        if changed is None:
            said = texts.assign_already(before.display_name, owner.name)
            await outbox.private(uow, asker.platform, key, asker.channel, asker.user_id, said)
            return
        previous = before.owner_name if before.owner_user_id else None
        moved = texts.owner_changed(before.display_name, owner.name, by, previous)
        await outbox.notice_in_thread(uow, changed, f"owner:{key}", moved)

    return apply


def _threshold_args(args: list[str]) -> tuple[dict[str, int | None], str | None, list[str]]:
    """``wait=30m soon=10m`` -> minutes by name (None: back to the default); the first problem; the other words."""
    values: dict[str, int | None] = {}
    others: list[str] = []
    for word in args:
        name, sep, value = word.partition("=")
        if not sep:
            others.append(word)
            continue
        if name.lower() not in ("wait", "soon"):
            return {}, texts.settings_bad(word, "I know wait= and soon=.").plain(), others
        if value.lower() in ("default", ""):
            values[name.lower()] = None
            continue
        try:
            values[name.lower()] = int(parse_threshold(value).total_seconds() // 60)
        except ValueError as exc:
            return {}, str(exc), others
    return values, None, others


async def _link_for(services: Services, asker: Asker, words: list[str]) -> Link | None:
    async with services.store.transaction() as uow:
        links = [
            link
            for link in await uow.links.active()
            if link.platform == asker.platform and link.channel == asker.channel
        ]
    if words:
        wanted = words[0]
        return next((link for link in links if link.study_id == wanted), None)
    return links[0] if len(links) == 1 else None


@registry.command(
    "settings",
    usage="[studyId] [wait=30m] [soon=10m]",
    summary="when the team is nudged about a participant waiting for an answer",
)
async def settings(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    values, problem, others = _threshold_args(list(command.args))
    if problem is not None:
        return asker.reply(texts.settings_bad(" ".join(command.args), problem))
    link = await _link_for(services, asker, others)
    if link is None:
        return asker.reply(texts.settings_which_study(others[0] if others else None))
    default = NudgePolicy()
    if not values:
        return asker.reply(_shown(link, link.nudge_wait_minutes, link.nudge_soon_minutes, default))
    user = await who(services, asker)
    study = await services.rally.get_study(link.study_id)
    decision = await study_permission(services, study, user.email, user.name)
    if not decision.allowed:
        return asker.reply(decision.reason)
    wait = values.get("wait", link.nudge_wait_minutes)
    soon = values.get("soon", link.nudge_soon_minutes)
    study_id = link.study_id
    said = _shown(link, wait, soon, default)

    async def apply(uow: UnitOfWork) -> None:
        await uow.links.set_nudge_thresholds(study_id, wait_minutes=wait, soon_minutes=soon)
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply


def _shown(link: Link, wait: int | None, soon: int | None, default: NudgePolicy) -> Text:
    return texts.settings_shown(
        link.study_name,
        timedelta(minutes=wait) if wait else default.wait,
        timedelta(minutes=soon) if soon else default.soon,
        custom=bool(wait or soon),
    )


@registry.command(
    "queue",
    usage="[studyId]",
    summary="who is waiting for an answer, longest wait first",
    on_home=True,
)
async def queue(services: Services, command: Command, event: CommandIssued) -> Apply:
    """On the home: the home again, showing only ``studyId`` (or every study); in a channel: its waiting list."""
    study_filter = command.args[0] if command.args else None
    if event.from_home:
        viewer = await home.viewer(services, event.platform, event.workspace, event.user_id)
        answer = home.republish(viewer, event.key, marker=services.internal_note_marker, study_filter=study_filter)
        return say(answer, Text())
    asker = Asker.of(event)
    threads, links = await channel_threads(services, asker)
    waiting = sorted(
        (t for t in threads if t.waiting_since is not None and not t.opted_out and t.study_id in links),
        key=lambda t: (t.waiting_since, t.id),
    )
    if study_filter is not None:
        waiting = [t for t in waiting if t.study_id == study_filter]
    lines = [
        texts.queue_line(t.display_name, links[t.study_id].study_name, t.waiting_since, t.owner_name)
        for t in waiting
        if t.waiting_since is not None
    ]
    return asker.reply(texts.queue_list(lines))
