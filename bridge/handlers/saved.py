"""Saved replies: ``/rally replies``, ``/rally reply add|study|remove``, ``/rally reply <participant> <name>``, the
card's ``Saved reply`` button (``replies <participant id>``: one button per saved reply), and ``held send|cancel``
for a message held back because a link in it looked broken (``bridge/compose.py``)."""

from __future__ import annotations

import re
from typing import Any

from bridge import compose, outbox
from bridge.apply import Apply
from bridge.handlers.links import study_permission
from bridge.reminders.targets import Asker, Target, pick, target
from bridge.services import Services
from core import clock, texts
from core.commands import Command, registry
from core.composed import WORKSPACE_WIDE, HeldMessage, HeldStatus, SavedReply
from core.domain import Action
from core.events import CommandIssued
from core.links import LinkProblem
from core.placeholders import Unfillable, fill, unknown_in
from core.records import Link
from core.store import UnitOfWork

_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
THREAD = "thread:"  # ``replies thread:<root id>``: what the Slack message shortcut runs


async def _channel_links(services: Services, asker: Asker) -> list[Link]:
    async with services.store.transaction() as uow:
        links = await uow.links.active()
    return [link for link in links if (link.platform, link.channel) == (asker.platform, asker.channel)]


async def _saved_here(services: Services, event: CommandIssued, links: list[Link]) -> list[SavedReply]:
    async with services.store.transaction() as uow:
        ids = [WORKSPACE_WIDE, *(link.study_id for link in links)]
        return await uow.composed.saved_replies(event.platform, event.workspace, ids)


def _where(reply: SavedReply, links: list[Link]) -> str:
    if reply.study_id == WORKSPACE_WIDE:
        return "the workspace"
    return next((link.study_name for link in links if link.study_id == reply.study_id), reply.study_id)


@registry.command("replies", usage="[participant]", summary="the saved replies you can send here")
async def replies(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    links = await _channel_links(services, asker)
    saved = await _saved_here(services, event, links)
    if not command.rest:
        return asker.reply(texts.saved_replies_list([(r.name, _where(r, links), r.body) for r in saved]))
    if command.rest.startswith(THREAD):  # the message shortcut names the thread it was used in
        async with services.store.transaction() as uow:
            found = await uow.threads.by_root(asker.platform, asker.channel, command.rest[len(THREAD) :])
        if found is None:
            return asker.reply(texts.not_a_participant_thread())
        thread = found
    else:
        picked = await pick(services, asker, command.rest)
        if not isinstance(picked, tuple):
            return picked
        thread = picked[0]
    mine = sorted((r for r in saved if r.study_id in (WORKSPACE_WIDE, thread.study_id)), key=lambda r: r.study_id == "")
    offered = sorted({r.name: r for r in reversed(mine)}.values(), key=lambda r: r.name)  # the study's wins a name
    buttons = [Action(f"Send “{r.name}”", f"reply {thread.participant_id} {r.name}", "primary") for r in offered[:10]]
    return asker.reply(texts.saved_replies_for(thread.display_name, len(offered)), buttons)


@registry.command(
    "reply",
    usage="add <name> <text> | study <name> <text> | remove <name> | <participant> <name>",
    summary="save a reply (workspace or study), remove one, or send one to a participant",
)
async def reply(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    words = command.rest.split(maxsplit=2)
    if not words:
        return asker.reply(texts.reply_usage())
    if words[0].lower() in ("add", "study", "remove"):
        return await _manage(services, asker, event, words)
    return await _send_saved(services, asker, event, command.rest)


async def _manage(services: Services, asker: Asker, event: CommandIssued, words: list[str]) -> Apply:
    verb = words[0].lower()
    if len(words) < (2 if verb == "remove" else 3):
        return asker.reply(texts.reply_usage())
    name = words[1]
    if not _NAME.fullmatch(name):
        return asker.reply(texts.reply_name_bad(name))
    links = await _channel_links(services, asker)
    if not links:
        return asker.reply(texts.no_participants_here())
    user = await services.chat(asker.platform).lookup_user(asker.user_id)
    study = await services.rally.get_study(links[0].study_id)
    decision = await study_permission(services, study, user.email, user.name)
    if not decision.allowed:
        return asker.reply(decision.reason)
    study_id = WORKSPACE_WIDE if verb == "add" else links[0].study_id
    where = "the workspace" if verb == "add" else links[0].study_name
    if verb == "remove":

        async def remove(uow: UnitOfWork) -> None:
            gone = await uow.composed.remove_reply(event.platform, event.workspace, study_id, name)
            if not gone:
                gone = await uow.composed.remove_reply(event.platform, event.workspace, WORKSPACE_WIDE, name)
            said = texts.reply_removed(name) if gone else texts.reply_not_found(name, [])
            await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

        return remove
    body = words[2].strip()
    unknown = unknown_in(body)
    if unknown:
        return asker.reply(texts.reply_unknown_placeholders(unknown))

    async def save(uow: UnitOfWork) -> None:
        await uow.composed.save_reply(
            platform=event.platform,
            workspace=event.workspace,
            study_id=study_id,
            name=name,
            body=body,
            by=asker.user_id,
            by_name=user.name,
            at=clock.now(),
        )
        await outbox.private(
            uow, asker.platform, asker.key, asker.channel, asker.user_id, texts.reply_saved(name, where)
        )

    return save


async def _send_saved(services: Services, asker: Asker, event: CommandIssued, rest: str) -> Apply:
    chosen = await target(services, asker, rest)
    if not isinstance(chosen, Target):
        return chosen  # who is meant is unclear, or the asker may not message them: the answer says which
    thread, link, name = chosen.thread, chosen.link, chosen.rest.strip()
    links = await _channel_links(services, asker)
    saved = [r for r in await _saved_here(services, event, links) if r.study_id in (WORKSPACE_WIDE, thread.study_id)]
    # The study's own reply of that name wins over the workspace's.
    found = sorted((r for r in saved if r.name == name), key=lambda r: r.study_id != thread.study_id)
    if not found:
        return asker.reply(texts.reply_not_found(name, sorted({r.name for r in saved})))
    researcher = chosen.user.name
    try:
        body = fill(found[0].body, compose.values_for(chosen.participant, thread, link, researcher))
    except Unfillable as problem:
        return asker.reply(texts.cannot_fill(thread.display_name, str(problem)))
    author = compose.author_of(
        rally_user_id=chosen.rally_user_id,
        email=chosen.user.email,
        name=researcher,
        platform=asker.platform,
        external_id=f"rallybridge:saved:{asker.key}",
        post_id=None,
    )
    notice = texts.saved_sent_notice(researcher, found[0].name, body)
    broken = await compose.link_problems(services, body, trusted=[u for u in (thread.scheduling_url,) if u])
    if broken:
        return hold(asker, thread.id, body, author, broken, saved_reply=found[0].name)

    async def apply(uow: UnitOfWork) -> None:
        await compose.send(uow, thread, body, key=asker.key, author=author, chat_user_id=asker.user_id, notice=notice)

    return apply


def hold(
    asker: Asker,
    thread_id: int,
    body: str,
    author: dict[str, Any],
    broken: list[LinkProblem],
    *,
    saved_reply: str | None = None,
    root_id: str | None = None,
) -> Apply:
    """Keep the message back and ask its author, privately: ``Send anyway`` or ``Cancel`` (``held send|cancel``)."""
    problems = tuple(f"{p.url}: {p.reason}" for p in broken)
    kept = {**author, "chat_user_id": asker.user_id, "saved_reply": saved_reply}

    async def apply(uow: UnitOfWork) -> None:
        held = await uow.composed.hold(
            HeldMessage(0, asker.key, thread_id, body, kept, problems, HeldStatus.HELD.value, clock.now())
        )
        buttons = (Action("Send anyway", f"held send {held.id}", "danger"), Action("Cancel", f"held cancel {held.id}"))
        said = texts.links_held([(p.url, p.reason) for p in broken])
        await outbox.private(
            uow, asker.platform, asker.key, asker.channel, asker.user_id, said, root_id=root_id, actions=buttons
        )

    return apply


@registry.command(
    "held", usage="send|cancel <id>", summary="send or drop a message held for a broken link", in_help=False
)
async def held(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    verb, wanted = (*command.args, "", "")[:2]
    if verb not in ("send", "cancel") or not wanted.isdigit():
        return asker.reply(texts.held_gone())
    async with services.store.transaction() as uow:
        found = await uow.composed.held(int(wanted))
        thread = await uow.threads.by_id(found.thread_id) if found is not None else None
    if found is None or thread is None or found.author.get("chat_user_id") != asker.user_id:
        return asker.reply(texts.held_gone())
    author = {k: v for k, v in found.author.items() if k not in ("chat_user_id", "saved_reply")}
    saved = found.author.get("saved_reply")
    notice = texts.saved_sent_notice(str(author.get("name")), str(saved), found.body) if saved else None
    to = HeldStatus.SENT if verb == "send" else HeldStatus.CANCELLED

    async def apply(uow: UnitOfWork) -> None:
        if not await uow.composed.decide_held(found.id, to=to.value, allowed_from=(HeldStatus.HELD.value,)):
            said = texts.held_gone()  # a second click, or the other button first: nothing more happens
        elif to is HeldStatus.CANCELLED:
            said = texts.held_cancelled()
        else:
            await compose.send(
                uow, thread, found.body, key=found.key, author=author, chat_user_id=asker.user_id, notice=notice
            )
            said = texts.held_sent()
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply
