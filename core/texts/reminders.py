"""Reminders, follow-ups and scheduling links (``bridge/reminders``), and the scheduling forms (``core/forms.py``).

:func:`default_reminder`, :func:`default_followup` and :func:`scheduling_message` are words for the participant:
they go to Respondent as the message itself, so they stay plain ``str`` (no chat platform renders them).
"""

from __future__ import annotations

from datetime import datetime

from core.message import Text, cmd, text

# --- what the participant reads (plain text, sent to Respondent) ---------------------------------------------------


def format_session(starts_at: datetime | None) -> str | None:
    if starts_at is None:
        return None
    return starts_at.strftime("%a %d %b %Y, %H:%M UTC")


def default_reminder(study_name: str, session: str | None) -> str:
    when = f" on {session}" if session else ""
    return f'A friendly reminder about your session for "{study_name}"{when}. We look forward to talking with you!'


def default_followup(study_name: str) -> str:
    return (
        f'Just checking in about "{study_name}": did you see our last message? '
        "A quick reply whenever you have a moment would help us a lot."
    )


def scheduling_message(study_name: str, url: str, note: str) -> str:
    message = f'Here is your personal link to pick (or change) the time of your session for "{study_name}": {url}'
    return f"{message}\n{note}" if note else message


# --- what the researcher reads ------------------------------------------------------------------------------------

_USAGES = {
    "remind": (cmd("remind <participant> <when> [message]"), ", e.g. ", cmd("remind Jordan tomorrow 9am")),
    "followup": (
        cmd("followup <participant> [after <duration>] [message]"),
        ", e.g. ",
        cmd("followup Jordan after 2d"),
    ),
    "reschedule": (cmd("reschedule <participant> [note]"),),
    "cancel": (cmd("cancel <id>"), " (the id is in ", cmd("reminders"), ")"),
}


def reminder_usage(command: str) -> Text:
    return text("Usage: ", *_USAGES.get(command, (cmd(command),)))


def no_participants_here() -> Text:
    return text("No participant threads in this channel yet. Link a study first: ", cmd("link <studyId>"), ".")


def participant_unknown(wanted: str, choices: list[str]) -> Text:
    listed = "\n".join(f"• {c}" for c in choices)
    return text(f'Nobody called "{wanted}" has a thread in this channel. Participants here:\n{listed}')


def participant_ambiguous(wanted: str, choices: list[str]) -> Text:
    listed = "\n".join(f"• {c}" for c in choices)
    return text(
        f'"{wanted}" could be several participants. Run the command again with the full name or the id:\n{listed}'
    )


def no_scheduling_link(name: str) -> Text:
    return text(
        f"Rally has no scheduling link for {name}, so there is nothing to send. Set up scheduling in Rally first."
    )


def reminder_set(kind: str, name: str, moment: str, reminder_id: int, body: str, zone_note: Text | str) -> Text:
    what = "Follow-up" if kind == "followup" else "Reminder"
    extra = " It is cancelled automatically if they write before then." if kind == "followup" else ""
    return text(
        f"{what} #{reminder_id} for {name} set for {moment}.{extra}",
        zone_note,
        f"\nMessage: {body}\nCancel it with ",
        cmd(f"cancel {reminder_id}"),
        ".",
    )


def no_tz_note() -> Text:
    return text(" (Your profile has no time zone, so times are read as UTC.)")


def followup_counted_from_now(length: str) -> Text:
    return text(f" Your last message was more than {length} ago, so it counts from now.")


def scheduling_link_queued(name: str) -> Text:
    return text(f"Sending {name} their scheduling link now.")


def reminder_sent_notice(kind: str, name: str, who: str, body: str, late_by: str | None) -> Text:
    what = {"followup": "Follow-up", "reschedule": "Scheduling link"}.get(kind, "Reminder")
    said = f"{what} to {name}, scheduled by {who}:\n{body}"
    if late_by:
        said += f"\n(Sent late by {late_by}: the bridge was not running when it was due.)"
    return text(said)


def reminder_skipped_session_started(name: str, moment: str) -> Text:
    return text(f"The reminder for {name} due {moment} was not sent: their session has already started.")


def reminder_moved_with_session(name: str, spec: str, reminder_id: int, was: str, now_at: str) -> Text:
    return text(
        f'{name}\'s session moved, so reminder #{reminder_id} ("{spec}") moved with it: now {now_at} (was {was}).'
    )


def reminder_session_removed(name: str, spec: str, reminder_id: int, moment: str) -> Text:
    return text(
        f'Rally no longer has a session time for {name}. Reminder #{reminder_id} ("{spec}") stays at {moment}; '
        "cancel it if it no longer applies."
    )


def followup_cancelled_participant_wrote(name: str, moment: str) -> Text:
    return text(f"{name} wrote, so the follow-up planned for {moment} was cancelled.")


def reminder_cancelled_opted_out(name: str, moment: str) -> Text:
    return text(f"{name} has opted out of all communication, so the message planned for {moment} was cancelled.")


def reminder_cancelled_permission(who: str, name: str, moment: str, reason: Text | str) -> Text:
    return text(
        f"The message to {name} that {who} scheduled for {moment} was cancelled: {who} may no longer message "
        "participants of this study. (",
        reason,
        ")",
    )


def reminder_cancelled_unlinked(name: str, moment: str) -> Text:
    return text(f"The message to {name} planned for {moment} was cancelled: the study is no longer bridged here.")


def reminder_cancelled_gone(name: str, moment: str) -> Text:
    return text(f"The message to {name} planned for {moment} was cancelled: Rally no longer has them in the study.")


def reminder_cancelled_by(who: str, reminder_id: int, name: str, moment: str) -> Text:
    return text(f"{who} cancelled #{reminder_id}, the message to {name} planned for {moment}.")


def reminder_not_found(reminder_id: str) -> Text:
    return text(f"There is no pending reminder #{reminder_id} in this channel. ", cmd("reminders"), " lists them.")


def no_pending_reminders() -> Text:
    return text("Nothing is scheduled for the participants in this channel.")


def participant_opted_out_nothing_scheduled(name: str) -> Text:
    return text(f"{name} has opted out of all communication, so nothing was scheduled or sent.")


def participant_gone(name: str) -> Text:
    return text(f"Rally no longer has {name} in this study, so nothing was scheduled or sent.")


def pending_list_outro() -> Text:
    """The last line of ``reminders`` (``bridge/reminders/view.py``)."""
    return text("Cancel one with its button or ", cmd("cancel <id>"), ".")


def status_more(more: int) -> Text:
    """The last line of ``status`` when it shows only some participants (``bridge/reminders/view.py``)."""
    return text(f"…and {more} more; ask for one: ", cmd("status <participant>"), ".")


# --- scheduling forms (the thread root's buttons; core/forms.py) ---------------------------------------------


def form_when_missing() -> Text:
    return text("Say when, for example: tomorrow 9am, in 2h, fri 14:30 or 1h before session.")


def form_when_leftover(spec: str, rest: str) -> Text:
    return text(f'I read "{spec}" as the time but not "{rest}". Put words for the participant in the message field.')


def form_after_unreadable(text: str) -> Text:
    return Text((f'"{text}" is not a duration. Write e.g. 2d, 4h or 1d 12h, or leave it empty for 24h.',))


def form_refused(reason: str) -> Text:
    return text(f"That form cannot be used: {reason}")
