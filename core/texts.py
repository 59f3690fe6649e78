"""Every sentence a person reads, written once. Plain text: adapters escape it for their platform."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.commands import CommandSpec

HELP_INTRO = "Rally Bridge brings your Respondent participants' chat into this channel."
HELP_OUTRO = (
    "Each approved participant gets one thread. Reply in the thread to message them; "
    "start a reply with {marker} to keep it as an internal note that is never sent.\n"
    "<participant> is the name on the thread (Jordan L., Jordan) or the Rally participant id."
)


def help_text(marker: str, specs: Iterable[CommandSpec] = ()) -> str:
    """The commands of ``specs`` (the registry's, in its order) as ``• /rally <word> <usage>: <summary>.``"""
    lines = [f"• /rally {' '.join(filter(None, (s.word, s.usage)))}: {s.summary}." for s in specs if s.in_help]
    return "\n".join([HELP_INTRO, *lines, HELP_OUTRO.format(marker=marker)])


def unknown_command(word: str, marker: str, specs: Iterable[CommandSpec] = ()) -> str:
    return f'I don\'t know the command "{word}".\n\n' + help_text(marker, specs)


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


def not_delivered(reason: str, delivery_id: int | None = None) -> str:
    if delivery_id is None:
        return f"Not delivered to the participant: {reason}. Nothing was sent; fix the cause and reply again."
    return (
        f"Not delivered to the participant: {reason}. Nothing was sent. Once the cause is fixed, send it again with "
        f"/rally retry {delivery_id} (or Retry on the Home tab of Rally Bridge), or reply again."
    )


def gave_up(reason: str) -> str:
    return f"Not delivered after retrying for a day: {reason}. Nothing was sent; reply again to retry."


def archive_failed(reason: str) -> str:
    return f"Sent, but could not be archived to the Rally study record: {reason}."


def format_session(starts_at: datetime | None) -> str | None:
    if starts_at is None:
        return None
    return starts_at.strftime("%a %d %b %Y, %H:%M UTC")


# --- reminders, follow-ups, scheduling links (bridge/reminders) ------------------------------------------


def reminder_usage(command: str) -> str:
    usages = {
        "remind": "/rally remind <participant> <when> [message], e.g. /rally remind Jordan tomorrow 9am",
        "followup": "/rally followup <participant> [after <duration>] [message], e.g. /rally followup Jordan after 2d",
        "reschedule": "/rally reschedule <participant> [note]",
        "cancel": "/rally cancel <id> (the id is in /rally reminders)",
    }
    return "Usage: " + usages.get(command, f"/rally {command}")


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


def reminder_moved_with_session(name: str, spec: str, reminder_id: int, was: str, now_at: str) -> str:
    return f'{name}\'s session moved, so reminder #{reminder_id} ("{spec}") moved with it: now {now_at} (was {was}).'


def reminder_session_removed(name: str, spec: str, reminder_id: int, moment: str) -> str:
    return (
        f'Rally no longer has a session time for {name}. Reminder #{reminder_id} ("{spec}") stays at {moment}; '
        "cancel it if it no longer applies."
    )


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


# --- scheduling forms (the thread root's buttons; core/forms.py) ---------------------------------------------


def form_when_missing() -> str:
    return "Say when, for example: tomorrow 9am, in 2h, fri 14:30 or 1h before session."


def form_when_leftover(spec: str, rest: str) -> str:
    return f'I read "{spec}" as the time but not "{rest}". Put words for the participant in the message field.'


def form_after_unreadable(text: str) -> str:
    return f'"{text}" is not a duration. Write e.g. 2d, 4h or 1d 12h, or leave it empty for 24h.'


def form_refused(reason: str) -> str:
    return f"That form cannot be used: {reason}"


# --- App Home and retrying failed deliveries (bridge/home.py, ``retry <id>``) -------------------------------------


def retry_usage() -> str:
    return "Usage: /rally retry <id> (the id of a failed delivery, shown on the bridge's Home tab in Slack)."


def retry_not_found(delivery_id: str) -> str:
    return (
        f"There is no failed delivery #{delivery_id} for a participant in this channel. "
        "The Home tab of Rally Bridge lists the failed ones."
    )


def retry_not_failed(delivery_id: int, state: str) -> str:
    if state == "done":
        return f"Delivery #{delivery_id} was delivered already; nothing to retry."
    return f"Delivery #{delivery_id} has not failed: it is still being delivered. Nothing to retry."


def retry_busy(delivery_id: int, name: str) -> str:
    return f"A message to {name} is being sent right now; retry #{delivery_id} in a moment so the two don't cross."


def retry_queued(delivery_id: int, name: str) -> str:
    return (
        f"Sending #{delivery_id} to {name} again. The reply in the thread shows the outcome: "
        "✅ when delivered, or a notice with the reason if it fails again."
    )


def retry_notice(who: str, delivery_id: int, name: str) -> str:
    return f"{who} asked to send #{delivery_id}, the reply to {name} that was not delivered, again."


def home_not_here(word: str) -> str:
    return f"\"{word}\" can't be done from the Home tab. Type /rally {word} in the study's channel instead."


def home_no_links() -> str:
    return (
        "No Rally study is bridged in this workspace yet. Invite @Rally Bridge to a channel "
        "(/invite @Rally Bridge) and run /rally link <studyId> there."
    )


def home_may_act() -> str:
    return "You may message these participants, schedule reminders and retry failed deliveries."


def home_closed_intro() -> str:
    return "Bridged in this workspace, but you may not act for them:"


def home_study_gone(study_name: str) -> str:
    return f'Rally no longer has "{study_name}", so nobody can act for it. Unlink it in its channel.'


def home_not_checked(study_name: str) -> str:
    return f'"{study_name}" was linked a moment ago and your access is not checked yet. Open this tab again.'


def home_reminder_not_found(reminder_id: str) -> str:
    return f"There is no pending reminder #{reminder_id} that you can see here; it may have been sent or cancelled."


def home_opted_out_no_retry(name: str) -> str:
    return f"{name} has opted out: it can't be sent."


HOME_HELP = (
    "Reply in a participant's thread in the study channel to message them; start with {marker} to keep "
    "the reply as an internal note that is never sent.",
    "/rally link <studyId> in a channel bridges a study there. You must be on its Rally team with "
    "external-panel access, with the same email as in Slack.",
    "/rally remind, /rally followup, /rally reschedule schedule messages (or use the buttons on a thread's first "
    "message); /rally status and /rally reminders show what is planned; /rally help lists everything.",
    "Retry sends a reply that Respondent refused again, once the cause is fixed (/rally retry <id>); "
    "Cancel stops a scheduled message (/rally cancel <id>).",
)


def home_help(marker: str) -> tuple[str, ...]:
    return tuple(line.format(marker=marker) for line in HOME_HELP)
