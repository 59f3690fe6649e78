"""The thread as a live case: the root card's status lines, owners, nudges, thresholds and outside messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.case import CaseState, case_state, format_wait
from core.message import Text, at, cmd, person, text
from core.records import Thread


def _moment(when: datetime, now: datetime) -> Text:
    """A time for today's events, a date and time for older ones (each reader sees their own zone)."""
    return text(at(when, "time" if now - when < timedelta(hours=12) else "date_time"))


def card_lines(thread: Thread, now: datetime, *, seen: bool) -> tuple[Text, ...]:
    """What the root card says under the participant's name: the state, the owner, the last message each way, and
    whether the participant has seen the team's last message."""
    state = case_state(
        opted_out=thread.opted_out,
        waiting_since=thread.waiting_since,
        last_out_at=thread.last_out_at,
        session_starts_at=thread.session_starts_at,
        now=now,
    )
    lines: list[Text] = []
    if state is CaseState.WAITING_ON_TEAM and thread.waiting_since is not None:
        lines.append(text("🔴 Waiting on the team since ", _moment(thread.waiting_since, now)))
    elif state is CaseState.SESSION_SOON and thread.session_starts_at is not None:
        lines.append(text("🗓 Session soon: ", at(thread.session_starts_at)))
    else:
        lines.append(text(_STATE_WORDS[state]))
    lines.append(text(f"Owner: {thread.owner_name}") if thread.owner_name else text("Owner: nobody yet"))
    last: list[Text] = []
    if thread.last_in_at is not None:
        last.append(text("from participant ", _moment(thread.last_in_at, now)))
    if thread.last_out_at is not None:
        last.append(text("from team ", _moment(thread.last_out_at, now)))
    if last:
        lines.append(text("Last message: ", *_joined(last, " · ")))
    if seen:
        lines.append(text("👀 Seen by participant"))
    return tuple(lines)


def _joined(items: list[Text], separator: str) -> list[Text | str]:
    out: list[Text | str] = []
    for index, item in enumerate(items):
        if index:
            out.append(separator)
        out.append(item)
    return out


_STATE_WORDS = {
    CaseState.NEW: "⚪ Nobody has written yet",
    CaseState.WAITING_ON_TEAM: "🔴 Waiting on the team",
    CaseState.WAITING_ON_PARTICIPANT: "🟢 Waiting on the participant",
    CaseState.SESSION_SOON: "🗓 Session soon",
    CaseState.SESSION_OVER: "✅ Session over",
    CaseState.OPTED_OUT: "⛔ Opted out",
}


def owner_changed(participant: str, new_owner: str, by: str, previous: str | None) -> Text:
    if previous is None:
        return text(f"{new_owner} now owns {participant}'s thread (assigned by {by}).")
    return text(f"{participant}'s thread moved from {previous} to {new_owner} (by {by}).")


def assign_usage() -> Text:
    return text(
        "Say whose thread to take, and optionally who takes it: ",
        cmd("assign <participant> [@person]"),
        ". Without a person, it is yours.",
    )


def assign_unknown_person(typed: str) -> Text:
    return text(
        f"I can't tell who “{typed}” is. Mention them (type @ and pick their name), "
        "or leave the person out to take the thread yourself."
    )


def assign_already(participant: str, owner: str) -> Text:
    return text(f"{owner} already owns {participant}'s thread.")


def assign_done(participant: str, owner: str) -> Text:
    return text(f"Done: {owner} owns {participant}'s thread.")


def nudge_direct(participant: str, study: str, waited: timedelta) -> Text:
    return text(
        f"{participant} ({study}) has waited {format_wait(waited)} for an answer. Reply in their thread to answer them."
    )


def nudge_note(participant: str, waited: timedelta, people: list[tuple[str, str]]) -> Text:
    mentions: list[Text | str] = []
    for index, (user_id, name) in enumerate(people):
        if index:
            mentions.append(", ")
        mentions.append(text(person(user_id, name)))
    return text(
        *mentions,
        f" {participant} has waited {format_wait(waited)} for an answer and nobody has replied yet.",
    )


def outside_message(by: str | None, body: str) -> Text:
    """A message the team sent the participant from outside the thread (Respondent's or Rally's own chat), as the
    thread shows it: attributed, the body as written (escaped like any outside text)."""
    said = f"sent from Respondent by {by}" if by else "sent from Respondent"
    return text(f"📨 To the participant, {said}:\n", body)


def settings_usage() -> Text:
    return text(
        "Set when the team is nudged about a participant waiting for an answer: ",
        cmd("settings <study> wait=30m soon=10m"),
        " (wait: working hours 09:00-18:00 in the owner's zone; soon: when the session is less than 24 h away; "
        "default resets one). ",
        cmd("settings <study>"),
        " shows them.",
    )


def settings_shown(study: str, wait: timedelta, soon: timedelta, custom: bool) -> Text:
    origin = "set for this study" if custom else "the defaults"
    return text(
        f"{study}: the owner is nudged after {format_wait(wait)} of waiting in working hours, "
        f"or {format_wait(soon)} when the session is less than 24 h away; the thread after twice that ({origin})."
    )


def settings_bad(typed: str, problem: str) -> Text:
    return text(f"“{typed}” is not a setting I can use: {problem} ", cmd("settings <study> wait=30m soon=10m"), ".")


def first_response(study: str, median: timedelta | None, count: int) -> Text:
    if median is None:
        return text(f"{study}: no answered waits in the last 7 days.")
    return text(f"{study}: median first response {format_wait(median)} over the last 7 days ({count} answered).")


def assign_not_allowed(name: str, reason: Text) -> Text:
    return text(f"{name} can't own this thread: only people who may message the participant can. ", reason)


def settings_which_study(wanted: str | None) -> Text:
    if wanted:
        return text(
            f"No study {wanted} is linked to this channel. Use the study id shown by ",
            cmd("status"),
            ", for example ",
            cmd("settings <studyId> wait=30m"),
            ".",
        )
    return text(
        "Say which study: this channel has none linked, or more than one. ", cmd("settings <studyId> wait=30m soon=10m")
    )


def queue_line(participant: str, study: str, waiting_since: datetime, owner: str | None) -> Text:
    who = f" · owner {owner}" if owner else " · no owner"
    return text(f"• {participant} ({study}): waiting since ", at(waiting_since), who)


def queue_list(lines: list[Text]) -> Text:
    if not lines:
        return text("Nobody is waiting for an answer here. 🎉")
    return text("Waiting for an answer, longest first:\n", *_joined(lines, "\n"))
