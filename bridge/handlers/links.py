"""``link <studyId>`` and ``unlink <studyId>``: bridge a Rally study to the channel the command was typed in, or
stop bridging it there.

Both read the study and the asker's right to act for it (R2: on the study's team with external-panel access)
from Rally first, no transaction open; ``link`` also reads the study's participants, so every approved one gets
a thread (its root queued) in the same unit of work that makes the link, plus one catch-up read of what they
wrote before.
"""

from __future__ import annotations

from bridge import outbox
from bridge.apply import Apply
from bridge.handlers.answers import reply
from bridge.services import Services
from bridge.thread import bridgeable, catch_up, ensure_thread
from core import clock, texts
from core.commands import Command, registry
from core.domain import Study
from core.errors import NotFound
from core.events import CommandIssued
from core.permissions import Decision, may_act_for_study
from core.store import UnitOfWork


@registry.command(
    "link",
    usage="<studyId>",
    summary="bridge a Rally study (it must recruit from Respondent) to this channel",
    reserved_in_threads=True,
    ack="Checking the study in Rally…",
)
async def link(services: Services, command: Command, event: CommandIssued) -> Apply:
    found = await _study_for(services, command, event)
    if not isinstance(found, tuple):
        return found
    study, who = found
    participants = [p for p in await services.rally.list_participants(study.study_id) if bridgeable(p)]
    channel, user_id = event.channel, event.user_id

    async def apply(uow: UnitOfWork) -> None:
        current = await uow.links.for_study(study.study_id)
        if current is not None and current.active and current.channel != channel:
            await reply(event, texts.already_linked_elsewhere(study.name))(uow)
            return
        if current is not None and current.active:
            await reply(event, texts.already_linked_here(study.name))(uow)
            return
        linked = await uow.links.activate(
            study_id=study.study_id,
            study_name=study.name,
            respondent_project_id=study.respondent_project_id or "",
            platform=event.platform,
            workspace=event.workspace,
            channel=channel,
            linked_by=user_id,
            linked_at=clock.now(),
        )
        await outbox.notice_in_channel(
            uow,
            event.platform,
            channel,
            event.key,
            texts.linked(study.name, study.study_id, who, len(participants)),
        )
        created = [await ensure_thread(uow, linked, participant) for participant in participants]
        await catch_up(uow, linked, [thread for thread, is_new in created if is_new], event.key)

    return apply


@registry.command(
    "unlink",
    usage="<studyId>",
    summary="stop bridging it here (threads stay; nothing more is relayed)",
    reserved_in_threads=True,
    ack="Unlinking…",
)
async def unlink(services: Services, command: Command, event: CommandIssued) -> Apply:
    found = await _study_for(services, command, event)
    if not isinstance(found, tuple):
        return found
    study, who = found
    channel = event.channel

    async def apply(uow: UnitOfWork) -> None:
        current = await uow.links.for_study(study.study_id)
        if current is None or not current.active or current.channel != channel:
            await reply(event, texts.not_linked_here(study.study_id))(uow)
            return
        await uow.links.deactivate(study.study_id)
        await outbox.notice_in_channel(uow, event.platform, channel, event.key, texts.unlinked(study.name, who))

    return apply


async def _study_for(services: Services, command: Command, event: CommandIssued) -> tuple[Study, str] | Apply:
    """The study the command names and the asker's name, when they may act for it; else the reply saying why."""
    if not command.args:
        return reply(event, texts.link_usage() if command.name == "link" else texts.unlink_usage())
    study_id = command.args[0]
    try:
        study = await services.rally.get_study(study_id)
    except NotFound:
        return reply(event, texts.study_not_found(study_id))
    if command.name == "link" and study.respondent_project_id is None:
        return reply(event, texts.study_not_respondent(study.study_id, study.name))
    user = await services.chat(event.platform).lookup_user(event.user_id)
    decision = await study_permission(services, study, user.email, user.name)
    if not decision.allowed:
        return reply(event, decision.reason)
    return study, user.name


async def study_permission(services: Services, study: Study, email: str | None, name: str) -> Decision:
    team = await services.rally.get_team(study.study_id)
    users = await services.rally.find_users_by_email(email) if email else []
    return may_act_for_study(email=email, chat_name=name, study_name=study.name, team=team, rally_users=users)
