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
    return HELP.format(marker=marker)


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
