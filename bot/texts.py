"""Every sentence a person reads, written once. Plain text: adapters escape it for their platform."""

from __future__ import annotations

from datetime import datetime

HELP = (
    "Rally Bridge brings your Respondent participants' chat into this channel.\n"
    "• /rally link <studyId>: bridge a Rally study (it must recruit from Respondent) to this channel.\n"
    "• /rally unlink <studyId>: stop bridging it here (threads stay; nothing more is relayed).\n"
    "• /rally help: this message.\n"
    "Each approved participant gets one thread. Reply in the thread to message them; "
    "start a reply with {marker} to keep it as an internal note that is never sent."
)


def help_text(marker: str) -> str:
    return HELP.format(marker=marker) + "\n\n" + REMINDER_HELP


def unknown_command(word: str, marker: str) -> str:
    return f'I don\'t know the command "{word}".\n\n' + help_text(marker)


def link_usage() -> str:
    return "Tell me which study: /rally link <studyId> (the id is in the study's URL in Rally, e.g. st_123)."


def unlink_usage() -> str:
    return "Tell me which study: /rally unlink <studyId>."


def study_not_found(study_id: str) -> str:
    return (
        f'Rally has no study "{study_id}". Check the id in the study\'s URL in Rally '
        "(it looks like st_123) and try again."
    )


def study_not_respondent(study_id: str, name: str) -> str:
    return (
        f'"{name}" ({study_id}) does not recruit from Respondent, so there is no participant chat to bridge. '
        "Only studies whose external panel is Respondent can be linked."
    )


def no_email(user_name: str) -> str:
    return (
        f"I can't see an email address for {user_name} in Slack, so I can't match you to a Rally user. "
        "Ask a workspace admin to make sure the app has the users:read.email scope."
    )


def not_on_team(study_name: str) -> str:
    return (
        f'You\'re not on the team of "{study_name}" in Rally with the same email as in Slack. '
        "Ask the study owner to add you as a teammate with external-panel access."
    )


def no_panel_access(study_name: str) -> str:
    return (
        f'You\'re on the team of "{study_name}" but without external-panel access, which messaging '
        "Respondent participants needs. Ask the study owner to grant it in Rally."
    )


def rally_user_inactive(status: str) -> str:
    return f"Your Rally account is {status.lower()}, not active. Ask your Rally admin to reactivate it."


def already_linked_elsewhere(study_name: str) -> str:
    return (
        f'"{study_name}" is already bridged to another channel. A study has one channel: run /rally unlink there first.'
    )


def already_linked_here(study_name: str) -> str:
    return f'"{study_name}" is already bridged to this channel.'


def linked(study_name: str, study_id: str, who: str, approved: int) -> str:
    people = "participant" if approved == 1 else "participants"
    return (
        f'{who} linked Rally study "{study_name}" ({study_id}) to this channel. '
        f"{approved} approved {people} so far; each gets a thread here. Reply in a thread to message them."
    )


def not_linked_here(study_id: str) -> str:
    return f"Study {study_id} is not bridged to this channel, so there is nothing to unlink."


def unlinked(study_name: str, who: str) -> str:
    return f'{who} unlinked "{study_name}". Its threads stay, but nothing more is relayed from or to them.'


def study_unlinked_refusal(study_name: str) -> str:
    return f'"{study_name}" is no longer bridged, so this reply was not sent. Link it again to resume.'


def participant_opted_out(name: str) -> str:
    return f"{name} has opted out of all communication, so this message was not sent."


def opted_out_notice(name: str) -> str:
    return f"{name} opted out of all communication. Nothing more will be sent to them from this thread."


def files_not_relayed() -> str:
    return (
        "Files can't be sent to participants (Respondent messages are text only), so the file was not sent. "
        "Share a link in a reply instead."
    )


def edit_not_relayed() -> str:
    return (
        "Edits can't be relayed: the participant still has the original message. "
        "Send a new reply if you need to correct it."
    )


def delete_not_relayed() -> str:
    return (
        "Deleting here doesn't unsend: the participant still has the message. "
        "Send a new reply if you need to correct it."
    )


def empty_message() -> str:
    return "That reply had no text to send, so nothing was sent."


def not_delivered(reason: str) -> str:
    return f"Not delivered to the participant: {reason}. Nothing was sent; fix the cause and reply again."


def gave_up(reason: str) -> str:
    return f"Not delivered after retrying for a day: {reason}. Nothing was sent; reply again to retry."


def archive_failed(reason: str) -> str:
    return f"Sent, but could not be archived to the Rally study record: {reason}."


def rally_unavailable() -> str:
    return "Rally did not answer, so I couldn't check the study. Please try again in a minute."


def format_session(starts_at: datetime | None) -> str | None:
    if starts_at is None:
        return None
    return starts_at.strftime("%a %d %b %Y, %H:%M UTC")


# --- reminders, follow-ups, scheduling links (bot/reminders) ------------------------------------------

REMINDER_HELP = (
    "• /rally remind <participant> <when> [message]: remind them (when: in 2h, tomorrow 9am, fri 14:30, "
    "2026-12-01 10:00, 1h before session).\n"
    "• /rally followup <participant> [after <duration>] [message]: nudge them if they haven't written by then "
    "(default 24h after your last message); cancelled as soon as they write.\n"
    "• /rally reschedule <participant> [note]: send them their scheduling link now.\n"
    "• /rally status [participant] · /rally reminders · /rally cancel <id>\n"
    "<participant> is the name on the thread (Jordan L., Jordan) or the Rally participant id."
)


def reminder_usage(command: str) -> str:
    usages = {
        "remind": "/rally remind <participant> <when> [message], e.g. /rally remind Jordan tomorrow 9am",
        "followup": "/rally followup <participant> [after <duration>] [message], e.g. /rally followup Jordan after 2d",
        "reschedule": "/rally reschedule <participant> [note]",
        "cancel": "/rally cancel <id> (the id is in /rally reminders)",
    }
    return "Usage: " + usages.get(command, REMINDER_HELP)


def no_participants_here() -> str:
    return "No participant threads in this channel yet. Link a study first: /rally link <studyId>."


def participant_unknown(wanted: str, choices: list[str]) -> str:
    listed = "\n".join(f"• {c}" for c in choices)
    return f'Nobody called "{wanted}" has a thread in this channel. Participants here:\n{listed}'


def participant_ambiguous(wanted: str, choices: list[str]) -> str:
    listed = "\n".join(f"• {c}" for c in choices)
    return f'"{wanted}" could be several participants. Run the command again with the full name or the id:\n{listed}'


def default_reminder(study_name: str, session: str | None) -> str:
    when = f" on {session}" if session else ""
    return f'A friendly reminder about your session for "{study_name}"{when}. We look forward to talking with you!'


def default_followup(study_name: str) -> str:
    return (
        f'Just checking in about "{study_name}": did you see our last message? '
        "A quick reply whenever you have a moment would help us a lot."
    )


def scheduling_message(study_name: str, url: str, note: str) -> str:
    text = f'Here is your personal link to pick (or change) the time of your session for "{study_name}": {url}'
    return f"{text}\n{note}" if note else text


def no_scheduling_link(name: str) -> str:
    return f"Rally has no scheduling link for {name}, so there is nothing to send. Set up scheduling in Rally first."


def reminder_set(kind: str, name: str, moment: str, reminder_id: int, body: str, zone_note: str) -> str:
    what = "Follow-up" if kind == "followup" else "Reminder"
    extra = " It is cancelled automatically if they write before then." if kind == "followup" else ""
    return (
        f"{what} #{reminder_id} for {name} set for {moment}.{extra}{zone_note}\n"
        f"Message: {body}\nCancel it with /rally cancel {reminder_id}."
    )


def no_tz_note() -> str:
    return " (Your profile has no time zone, so times are read as UTC.)"


def followup_counted_from_now(length: str) -> str:
    return f" Your last message was more than {length} ago, so it counts from now."


def scheduling_link_queued(name: str) -> str:
    return f"Sending {name} their scheduling link now."


def reminder_sent_notice(kind: str, name: str, who: str, body: str, late_by: str | None) -> str:
    what = {"followup": "Follow-up", "reschedule": "Scheduling link"}.get(kind, "Reminder")
    text = f"{what} to {name}, scheduled by {who}:\n{body}"
    if late_by:
        text += f"\n(Sent late by {late_by}: the bridge was not running when it was due.)"
    return text


def reminder_skipped_session_started(name: str, moment: str) -> str:
    return f"The reminder for {name} due {moment} was not sent: their session has already started."


def followup_cancelled_participant_wrote(name: str, moment: str) -> str:
    return f"{name} wrote, so the follow-up planned for {moment} was cancelled."


def reminder_cancelled_opted_out(name: str, moment: str) -> str:
    return f"{name} has opted out of all communication, so the message planned for {moment} was cancelled."


def reminder_cancelled_permission(who: str, name: str, moment: str, reason: str) -> str:
    return (
        f"The message to {name} that {who} scheduled for {moment} was cancelled: {who} may no longer message "
        f"participants of this study. ({reason})"
    )


def reminder_cancelled_unlinked(name: str, moment: str) -> str:
    return f"The message to {name} planned for {moment} was cancelled: the study is no longer bridged here."


def reminder_cancelled_gone(name: str, moment: str) -> str:
    return f"The message to {name} planned for {moment} was cancelled: Rally no longer has them in the study."


def reminder_cancelled_by(who: str, reminder_id: int, name: str, moment: str) -> str:
    return f"{who} cancelled #{reminder_id}, the message to {name} planned for {moment}."


def reminder_not_found(reminder_id: str) -> str:
    return f"There is no pending reminder #{reminder_id} in this channel. /rally reminders lists them."


def no_pending_reminders() -> str:
    return "Nothing is scheduled for the participants in this channel."


def participant_opted_out_nothing_scheduled(name: str) -> str:
    return f"{name} has opted out of all communication, so nothing was scheduled or sent."


def participant_gone(name: str) -> str:
    return f"Rally no longer has {name} in this study, so nothing was scheduled or sent."
