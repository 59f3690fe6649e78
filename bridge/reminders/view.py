"""What ``status`` and ``reminders`` show: a ``Text`` (the command hints in it are ``Cmd``s), times in the reader's
zone and in UTC."""

from __future__ import annotations

from core import texts
from core.domain import Direction
from core.message import Text, join
from core.records import Link, Message, Reminder, ReminderKind, Thread
from core.store import UnitOfWork
from core.when import format_moment

KIND_NAMES: dict[str, str] = {
    ReminderKind.REMIND: "reminder",
    ReminderKind.FOLLOWUP: "follow-up",
    ReminderKind.RESCHEDULE: "scheduling link",
    ReminderKind.NOSHOW: "no-show follow-up",
    ReminderKind.TEAM: "team reminder",
}
MAX_THREADS = 25


def _preview(body: str, limit: int = 80) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reminder_line(row: Reminder, name: str, tz: str | None) -> str:
    kind = KIND_NAMES.get(row.kind, row.kind)
    return (
        f"#{row.id} {kind} for {name}, {format_moment(row.due_at, tz)}, by {row.created_by_name}: "
        f'"{_preview(row.body)}"'
    )


def pending_list(rows: list[Reminder], names: dict[int, str], tz: str | None) -> Text:
    lines = ["Scheduled for participants in this channel:"]
    lines += [f"• {reminder_line(row, names.get(row.thread_id, row.participant_id), tz)}" for row in rows]
    return join("\n", [*lines, texts.pending_list_outro()])


def _message_line(label: str, message: Message | None, tz: str | None) -> str:
    if message is None:
        return f"{label}: none yet"
    state = ""
    if message.direction == Direction.TO_PARTICIPANT.value:
        state = f", {message.state}"
        if message.state == "failed" and message.failure_reason:
            state += f" ({message.failure_reason})"
    return f"{label}: {format_moment(message.sent_at, tz)}{state}"


async def status(uow: UnitOfWork, threads: list[Thread], links: dict[str, Link], tz: str | None) -> Text:
    """Per participant: session, last message each way with its delivery state, what is scheduled."""
    shown = threads[:MAX_THREADS]
    pending = await uow.reminders.open_for_threads([t.id for t in shown])
    blocks: list[str | Text] = []
    for thread in shown:
        study = links[thread.study_id].study_name if thread.study_id in links else thread.study_id
        lines = [
            f"{thread.display_name} ({thread.participant_id}, {study})" + (" · opted out" if thread.opted_out else "")
        ]
        session_at = thread.session_starts_at
        lines.append(f"  Session: {format_moment(session_at, tz) if session_at else 'not scheduled'}")
        last_in = await uow.messages.last(thread.id, Direction.FROM_PARTICIPANT.value)
        last_out = await uow.messages.last(thread.id, Direction.TO_PARTICIPANT.value)
        lines.append("  " + _message_line("Last from them", last_in, tz))
        lines.append("  " + _message_line("Last to them", last_out, tz))
        mine = [r for r in pending if r.thread_id == thread.id]
        if mine:
            lines += [f"  Scheduled: {reminder_line(r, thread.display_name, tz)}" for r in mine]
        else:
            lines.append("  Scheduled: nothing")
        blocks.append("\n".join(lines))
    if len(threads) > MAX_THREADS:
        blocks.append(texts.status_more(len(threads) - MAX_THREADS))
    return join("\n\n", blocks)
