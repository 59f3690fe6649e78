"""``retry <id>``: send a relay that gave up again, typed in the study's channel or clicked on the home."""

from __future__ import annotations

from bridge import access, home, outbox
from bridge.apply import Answer, Apply
from bridge.handlers.answers import private_answer, say
from bridge.services import Services
from core import texts
from core.commands import Command, registry
from core.domain import Mark
from core.events import CommandIssued
from core.message import home_only, text
from core.records import QueueStatus
from core.store import UnitOfWork


@registry.command(
    "retry",
    usage="<id>",
    summary=text(
        "send a reply that Respondent refused again, once the cause is fixed", home_only(" (the id is on the Home tab)")
    ),
    on_home=True,
)
async def retry(services: Services, command: Command, event: CommandIssued) -> Apply:
    """``retry <id>``: send a relay that gave up again, the very same outbox row (same key: exactly once, and an
    attempt whose outcome was unknown is still verified at Respondent first). Only a failed relay, only by someone
    who may message that participant now; typed, only in the study's channel, and the confirmation comes privately
    in the participant's thread; clicked on the home, for any study of the clicker's workspace, answered there
    (the home published again with a status line, ``bridge/home.py``)."""
    answer: Answer
    if event.from_home:
        who = await home.viewer(services, event.platform, event.workspace, event.user_id)
        answer = home.republish(who, event.key, marker=services.internal_note_marker)
    else:
        answer = private_answer(event)
    from_home = event.from_home
    wanted = (command.args[0] if command.args else "").lstrip("#")
    if not wanted.isdigit():
        return say(answer, texts.retry_usage())
    delivery_id = int(wanted)
    async with services.store.transaction() as uow:
        row = await uow.outbox.get(delivery_id)
        relay = row is not None and row.kind == outbox.Effect.RELAY.value
        thread = await uow.threads.by_id(int(row.payload.get("thread_id") or 0)) if relay and row else None
        link = await uow.links.for_study(thread.study_id) if thread is not None else None
        status = row.status if row is not None else ""
    if thread is None or link is None or thread.platform != event.platform:
        return say(answer, texts.retry_not_found(wanted))
    if (thread.workspace if from_home else thread.channel) != (event.workspace if from_home else event.channel):
        return say(answer, texts.retry_not_found(wanted))
    if status != QueueStatus.FAILED:
        return say(answer, texts.retry_not_failed(delivery_id, status))
    user = await services.chat(event.platform).lookup_user(event.user_id)
    decision = await access.may_message(services, user, thread, link)
    if not decision.allowed:
        return say(answer, decision.reason)
    who_name = decision.rally_user.fullname if decision.rally_user else user.name
    thread_id, name, lane = thread.id, thread.display_name, f"relay:{thread.id}"

    async def apply(uow: UnitOfWork) -> None:
        current = await uow.outbox.get(delivery_id)
        if current is None or current.status != QueueStatus.FAILED:
            await answer(uow, texts.retry_not_failed(delivery_id, current.status if current else "done"))
            return
        if await uow.outbox.working_in_lane(lane):
            await answer(uow, texts.retry_busy(delivery_id, name))  # two relays to one person never overlap
            return
        payload = {**current.payload, "retries": int(current.payload.get("retries") or 0) + 1}
        if not await uow.outbox.requeue_failed(delivery_id, payload=payload):
            await answer(uow, texts.retry_not_failed(delivery_id, "pending"))
            return
        thread_now = await uow.threads.by_id(thread_id)
        assert thread_now is not None
        await uow.messages.reset_failed(int(payload["message_id"]))
        round_ = outbox.delivery_round(payload)
        post_id = outbox.author_post(payload)
        if post_id:  # the reply's ❌ comes off; ✅ (or ❌ again) follows with the new outcome
            await outbox.unmark(uow, thread_now.platform, thread_now.channel, post_id, Mark.FAILED, round_)
        notice = texts.retry_notice(who_name, delivery_id, name)
        await outbox.notice_in_thread(uow, thread_now, f"retry:{delivery_id}{round_}", notice)
        confirmation = texts.retry_queued(delivery_id, name)
        if from_home:
            await answer(uow, confirmation)
        else:
            await outbox.private(
                uow, event.platform, event.key, thread_now.channel, event.user_id, confirmation, thread_now.root_id
            )

    return apply
