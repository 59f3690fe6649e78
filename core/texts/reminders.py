"""Reminders, follow-ups and scheduling links (``bridge/reminders``), and the scheduling forms (``core/forms.py``).

:func:`default_reminder`, :func:`default_followup` and :func:`scheduling_message` are words for the participant:
they go to Respondent as the message itself, so they stay plain ``str`` (no chat platform renders them).
"""

from __future__ import annotations

from datetime import datetime

from core.message import Person, Text, at, cmd, join, text

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


def default_noshow(study_name: str, scheduling_url: str | None) -> str:
    """The no-show follow-up's default (``remind <participant> no-show``); the link last, so nothing sticks to it."""
    said = (
        f'We missed you at your session for "{study_name}" today. No worries, these things happen! '
        "If you would still like to take part, reply here to find another time"
    )
    return f"{said}, or pick one yourself: {scheduling_url}" if scheduling_url else f"{said}."


def scheduling_message(study_name: str, url: str, note: str) -> str:
    message = f'Here is your personal link to pick (or change) the time of your session for "{study_name}": {url}'
    return f"{message}\n{note}" if note else message


# --- what the researcher reads ------------------------------------------------------------------------------------

_USAGES = {
    "remind": (
        cmd("remind <participant> <when> [message]"),
        ", e.g. ",
        cmd("remind Jordan tomorrow 9am"),
        "; ",
        cmd("remind Jordan"),
        " alone offers their session's defaults",
    ),
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


_SENT = {"followup": "Follow-up", "reschedule": "Scheduling link", "noshow": "No-show follow-up"}


def reminder_sent_notice(kind: str, name: str, who: str, body: str, late_by: str | None) -> Text:
    what = _SENT.get(kind, "Reminder")
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


# --- session defaults, the no-show follow-up and the team reminder (bridge/reminders/session_defaults.py) -------


def session_defaults_offer(name: str, participant_id: str, session: str, offered: bool, scheduled: list[str]) -> Text:
    """``remind <participant>`` alone, the session still ahead: what the buttons under it do."""
    lines: list[Text | str] = [text(f"{name}'s session: {session}.")]
    if scheduled:
        lines.append("Already scheduled: " + "; ".join(scheduled) + ".")
    if offered:
        lines.append(
            "Pick one below: the reminders send a short message naming the study and the session time. The no-show "
            "follow-up goes to them 10 min after the session starts, only if they have not written since it started "
            '("We missed you…", with their scheduling link when Rally has one); 23h after the session you are '
            "mentioned in the thread to mark them in Rally (attended / no-show) before Rally's no-show window closes."
        )
    else:
        lines.append("The session is too close for its defaults.")
    lines.append(text("Or choose the time yourself: ", cmd(f"remind {participant_id} <when> [message]"), "."))
    return join("\n", lines)


def session_defaults_none(name: str, participant_id: str, passed: str | None, has_link: bool) -> Text:
    """``remind <participant>`` alone without a session ahead: why there is nothing to offer, and what to do."""
    why = (
        f"{name}'s session ({passed}) has already started, so there are no session reminders to offer."
        if passed
        else f"Rally has no session time for {name}, so there are no session reminders to offer."
    )
    lines: list[Text | str] = [
        text(why),
        text("Schedule one at a time you choose: ", cmd(f"remind {participant_id} <when> [message]"), "."),
    ]
    if has_link:
        lines.append(text("Or send them their link to book a session: ", cmd(f"reschedule {participant_id}"), "."))
    else:
        lines.append(text("Rally has no scheduling link for them either; set up scheduling in Rally to send one."))
    return join("\n", lines)


def noshow_not_possible(name: str, passed: str | None) -> Text:
    if passed:
        return text(
            f"{name}'s session started at {passed}, more than 10 min ago: too late for a no-show follow-up. "
            "Write to them in the thread instead."
        )
    return text(f"Rally has no session time for {name}, so there is nothing to count a no-show follow-up from.")


def noshow_already(name: str, reminder_id: int) -> Text:
    return text(f"{name} already has a no-show follow-up for this session: #{reminder_id}. ", cmd("reminders"), ".")


def noshow_set(name: str, noshow: tuple[int, str], team: tuple[int, str], body: str, zone_note: Text | str) -> Text:
    """The confirmation: (id, moment) of the no-show follow-up and of its team reminder."""
    return text(
        f"No-show follow-up #{noshow[0]} for {name} set for {noshow[1]} (10 min after the session starts). It "
        "moves with the session when Rally moves it, and is not sent if they write after the session starts or "
        "Rally clears the session time.",
        zone_note,
        f"\nMessage: {body}\nTeam reminder #{team[0]} for {team[1]} (23h after the session, 1h before Rally's "
        "no-show window closes): you will be mentioned in the thread to mark them in Rally (attended / no-show). "
        "Nothing is sent to them.\nCancel both with ",
        cmd(f"cancel {noshow[0]}"),
        ".",
    )


def team_reminder_body(name: str) -> str:
    """What ``reminders`` and ``status`` show for a team reminder (the row's body; never sent to anyone)."""
    return f"Mark {name} in Rally (attended / no-show) before the no-show window closes. Nothing goes to {name}."


def team_reminder(who: Person, name: str, session_at: datetime, closes_at: datetime, left: str | None) -> Text:
    """The team reminder in the thread, mentioning whoever scheduled the no-show follow-up. ``left``: how long Rally's
    no-show window is still open (None: it closed while the bridge was not running)."""
    if left is None:
        closes = text(" closed at ", at(closes_at), " (the bridge was not running when this reminder was due)")
    else:
        closes = text(f" closes in {left}, at ", at(closes_at))
    return text(
        who,
        f" Rally's no-show window for {name}'s session (",
        at(session_at),
        ")",
        closes,
        ". Please mark them in Rally: attended or no-show.",
    )


def team_reminder_cancelled_too(team_ids: list[int]) -> Text:
    listed = ", ".join(f"#{n}" for n in team_ids)
    return text(f" Its team reminder {listed} was cancelled with it.")


def noshow_skipped_wrote(name: str, moment: str) -> Text:
    return text(
        f"{name} wrote after their session started, so the no-show follow-up planned for {moment} was not sent."
    )


def noshow_skipped_too_late(name: str, moment: str) -> Text:
    return text(
        f"The no-show follow-up to {name} planned for {moment} was not sent: the bridge was not running then, and "
        "a day after the session it would arrive too late."
    )


def session_reminder_skipped(what: str, name: str, moment: str, session: str | None) -> Text:
    """A no-show follow-up or team reminder whose session Rally moved (``session``: the new time) or cleared."""
    if session is None:
        return text(f"Rally no longer has a session time for {name}, so the {what} planned for {moment} was skipped.")
    return text(f"{name}'s session moved to {session}, so the {what} planned for {moment} was skipped.")


def session_reminder_moved(what: str, name: str, reminder_id: int, was: str, now_at: str) -> Text:
    return text(f"{name}'s session moved, so the {what} #{reminder_id} moved with it: now {now_at} (was {was}).")


def session_reminder_session_removed(what: str, name: str, reminder_id: int, moment: str) -> Text:
    return text(
        f"Rally no longer has a session time for {name}. The {what} #{reminder_id} (planned for {moment}) will be "
        "skipped unless the session is back at the same time; cancel it if it no longer applies."
    )


# --- scheduling forms (the thread root's buttons; core/forms.py) ---------------------------------------------


def form_when_missing() -> Text:
    return text("Say when, for example: tomorrow 9am, in 2h, fri 14:30 or 1h before session.")


def form_when_leftover(spec: str, rest: str) -> Text:
    return text(f'I read "{spec}" as the time but not "{rest}". Put words for the participant in the message field.')


def form_after_unreadable(text: str) -> Text:
    return Text((f'"{text}" is not a duration. Write e.g. 2d, 4h or 1d 12h, or leave it empty for 24h.',))


def form_refused(reason: str) -> Text:
    return text(f"That form cannot be used: {reason}")
