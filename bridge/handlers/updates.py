"""``/rally update <audience> -- <message>``: one message to many participants of the channel's study.

The command drafts the update and answers privately with a preview (the first three messages as each participant
will read them, the exact count, who is skipped because they opted out, any link that looks broken) and Confirm /
Cancel buttons. Confirm moves the draft to sending with one conditional update, so a double click or a replayed
submission sends nothing twice, and queues one relay per recipient (keyed by the update and the participant:
each sent exactly once, shown in that participant's own thread, archived as sent by the author), then a summary
row that posts one line in the channel once every relay has finished (sent, skipped, failed with reasons).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import access, compose, outbox
from bridge.apply import Apply
from bridge.reminders.targets import Asker, who
from bridge.services import Services
from core import clock, texts
from core.commands import Command, registry
from core.composed import StudyUpdate, UpdateStatus
from core.domain import Action, Participant
from core.events import CommandIssued
from core.names import Candidate, resolve
from core.placeholders import Unfillable, fill
from core.records import Link, Thread
from core.store import UnitOfWork
from core.when import parse_duration

SAMPLES = 3


async def _study_threads(services: Services, asker: Asker) -> tuple[Link, list[Thread]] | None:
    async with services.store.transaction() as uow:
        links = [
            link
            for link in await uow.links.active()
            if (link.platform, link.channel) == (asker.platform, asker.channel)
        ]
        if len(links) != 1:
            return None
        threads = list((await uow.threads.of_study(links[0].study_id)).values())
    return links[0], sorted(threads, key=lambda t: (t.display_name.casefold(), t.id))


def audience_of(words: str, threads: list[Thread], now: datetime) -> list[Thread] | str:
    """The threads ``words`` names, or why it names none."""
    kind, _, rest = words.strip().partition(" ")
    kind = kind.lower()
    if kind == "all":
        return threads
    if kind == "next24h":
        return [t for t in threads if t.session_starts_at and now <= t.session_starts_at <= now + timedelta(hours=24)]
    if kind == "unbooked":
        return [t for t in threads if t.session_starts_at is None]
    if kind == "silent":
        parsed = parse_duration(rest.split())
        if parsed is None:
            return "silent needs a length, e.g. silent 3d"
        since = now - parsed[0]
        return [t for t in threads if t.last_in_at is None or t.last_in_at < since]
    if kind == "list":
        chosen: list[Thread] = []
        candidates = [Candidate(t.id, t.participant_id, t.display_name, t.study_id) for t in threads]
        for name in (n.strip() for n in rest.split(",")):
            found = resolve(name, candidates).one if name else None
            if found is None:
                return f"no one matches “{name}”"
            chosen += [t for t in threads if t.id == found.thread_id and t not in chosen]
        return chosen
    return f"“{words.strip()}” is not an audience"


@registry.command(
    "update", usage="<audience> -- <message>", summary="one message to many participants, previewed first"
)
async def update(services: Services, command: Command, event: CommandIssued) -> Apply:
    asker = Asker.of(event)
    verb = command.args[0].lower() if command.args else ""
    if verb in ("confirm", "cancel") and len(command.args) == 2:
        return await _decide(services, asker, verb, command.args[1])
    audience, sep, template = command.rest.partition("--")
    if not sep or not template.strip() or not audience.strip():
        return asker.reply(texts.update_usage())
    found = await _study_threads(services, asker)
    if found is None:
        return asker.reply(texts.settings_which_study(None))
    link, threads = found
    chosen = audience_of(audience, threads, clock.now())
    if isinstance(chosen, str):
        return asker.reply(texts.settings_bad(audience.strip(), chosen + "."))
    skipped = [t.display_name for t in chosen if t.opted_out]
    recipients = [t for t in chosen if not t.opted_out]
    if not recipients:
        return asker.reply(texts.update_nobody(audience.strip()))
    user = await who(services, asker)
    decision = await access.may_message(services, user, recipients[0], link, check_opt_out=False)
    if not decision.allowed:  # the study team decides for every participant of the study alike
        return asker.reply(texts.update_not_allowed([t.display_name for t in recipients], decision.reason))
    researcher = decision.rally_user.fullname if decision.rally_user else user.name
    participants = {p.participant_id: p for p in await services.rally.list_participants(link.study_id)}
    filled, unfillable = _fill_all(template.strip(), recipients, participants, link, researcher)
    if unfillable:
        return asker.reply(texts.update_unfillable(unfillable))
    trusted = [t.scheduling_url for t in recipients if t.scheduling_url]
    broken = await compose.link_problems(services, filled[0][1], trusted=trusted)
    author = compose.author_of(
        rally_user_id=decision.rally_user.user_id if decision.rally_user else None,
        email=user.email,
        name=researcher,
        platform=asker.platform,
        external_id="",  # each recipient's own (``_decide``)
        post_id=None,
    )
    draft = StudyUpdate(
        0,
        asker.key,
        asker.platform,
        event.workspace,
        asker.channel,
        link.study_id,
        audience.strip(),
        template.strip(),
        tuple(t.participant_id for t in recipients),
        {**author, "chat_user_id": asker.user_id, "skipped": len(skipped)},
        UpdateStatus.DRAFT.value,
        clock.now(),
    )
    samples = [(t.display_name, body) for t, body in filled[:SAMPLES]]
    preview = texts.update_preview(
        link.study_name, draft.audience, len(recipients), skipped, samples, [(p.url, p.reason) for p in broken]
    )

    async def apply(uow: UnitOfWork) -> None:
        stored = await uow.composed.draft_update(draft)
        confirm = "Send anyway" if broken else f"Confirm: send to {len(recipients)}"
        buttons = (
            Action(confirm, f"update confirm {stored.id}", "danger" if broken else "primary"),
            Action("Cancel", f"update cancel {stored.id}"),
        )
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, preview, actions=buttons)

    return apply


def _fill_all(
    template: str, threads: list[Thread], participants: dict[str, Participant], link: Link, researcher: str
) -> tuple[list[tuple[Thread, str]], list[tuple[str, str]]]:
    filled: list[tuple[Thread, str]] = []
    problems: list[tuple[str, str]] = []
    for thread in threads:
        values = compose.values_for(participants.get(thread.participant_id), thread, link, researcher)
        try:
            filled.append((thread, fill(template, values)))
        except Unfillable as problem:
            problems.append((thread.display_name, str(problem)))
    return filled, problems


async def _decide(services: Services, asker: Asker, verb: str, wanted: str) -> Apply:
    async with services.store.transaction() as uow:
        draft = await uow.composed.update_by_id(int(wanted)) if wanted.isdigit() else None
        link = await uow.links.for_study(draft.study_id) if draft is not None else None
        threads = await uow.threads.of_study(draft.study_id) if draft is not None else {}
    if draft is None or link is None or draft.author.get("chat_user_id") != asker.user_id:
        return asker.reply(texts.update_gone(wanted))
    if verb == "cancel":
        return _cancel(asker, draft)
    recipients = [threads[p] for p in draft.recipients if p in threads and not threads[p].opted_out]
    opted_out = len(draft.recipients) - len(recipients) + int(draft.author.get("skipped") or 0)
    participants = {p.participant_id: p for p in await services.rally.list_participants(link.study_id)}
    author = {k: v for k, v in draft.author.items() if k not in ("chat_user_id", "skipped")}
    filled, _unfillable = _fill_all(draft.body, recipients, participants, link, str(author.get("name")))

    async def apply(uow: UnitOfWork) -> None:
        moved = await uow.composed.move_update(
            draft.id, to=UpdateStatus.SENDING.value, allowed_from=(UpdateStatus.DRAFT.value,)
        )
        if not moved:
            current = await uow.composed.update_by_id(draft.id)
            said = texts.update_already(current.status if current else "gone")
            await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)
            return
        for thread, body in filled:
            key = f"update:{draft.id}:{thread.participant_id}"
            mine = replace_author(author, f"rallybridge:update:{draft.id}:{thread.participant_id}")
            notice = texts.update_sent_notice(str(author.get("name")), body)
            await compose.send(
                uow,
                thread,
                body,
                key=key,
                author=mine,
                chat_user_id=asker.user_id,
                notice=notice,
                extra={"update_id": draft.id},
            )
        await outbox.update_summary(uow, draft.id, link.platform, link.channel, skipped=opted_out)
        said = texts.update_confirmed(len(filled))
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply


def replace_author(author: dict[str, object], external_id: str) -> dict[str, object]:
    return {**author, "external_id": external_id}


def _cancel(asker: Asker, draft: StudyUpdate) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        moved = await uow.composed.move_update(
            draft.id, to=UpdateStatus.CANCELLED.value, allowed_from=(UpdateStatus.DRAFT.value,)
        )
        said = texts.update_cancelled() if moved else texts.update_already(draft.status)
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply
