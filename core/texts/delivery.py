"""Replies and delivery: what a researcher is told about a reply in a participant's thread, and what the thread says
when something could not be delivered or archived."""

from __future__ import annotations

from core.message import Text, cmd, home_only, text


def opted_out_notice(name: str) -> Text:
    return text(f"{name} opted out of all communication. Nothing more will be sent to them from this thread.")


def files_not_relayed() -> Text:
    return text(
        "Files can't be sent to participants (Respondent messages are text only), so the file was not sent. "
        "Share a link in a reply instead."
    )


def edit_not_relayed() -> Text:
    return text(
        "Edits can't be relayed: the participant still has the original message. "
        "Send a new reply if you need to correct it."
    )


def delete_not_relayed() -> Text:
    return text(
        "Deleting here doesn't unsend: the participant still has the message. "
        "Send a new reply if you need to correct it."
    )


def empty_message() -> Text:
    return text("That reply had no text to send, so nothing was sent.")


def not_delivered(reason: str, delivery_id: int | None = None) -> Text:
    if delivery_id is None:
        return text(f"Not delivered to the participant: {reason}. Nothing was sent; fix the cause and reply again.")
    return text(
        f"Not delivered to the participant: {reason}. Nothing was sent. Once the cause is fixed, send it again with ",
        cmd(f"retry {delivery_id}"),
        home_only(" (or Retry on the Home tab of Rally Bridge)"),
        ", or reply again.",
    )


def gave_up(reason: str) -> Text:
    return text(f"Not delivered after retrying for a day: {reason}. Nothing was sent; reply again to retry.")


def archive_failed(reason: str) -> Text:
    return text(f"Sent, but could not be archived to the Rally study record: {reason}.")


# Why a queued relay was stopped when it was about to leave (its author lost the right meanwhile, e.g. removed from
# the team while Respondent was down). Plain ``str``: the reason of a permanent failure, which ``not_delivered``
# shows in the thread (followed by "Once the cause is fixed, send it again with /rally retry <id>") and the home
# shows as the failed delivery's reason. Said about the author, since others read the thread too.


def relay_author_not_on_team(author_name: str, study_name: str) -> str:
    return (
        f'{author_name} is no longer on the team of "{study_name}" in Rally; ask the study owner to add them back '
        "as a teammate with external-panel access"
    )


def relay_author_no_panel_access(author_name: str, study_name: str) -> str:
    return (
        f'{author_name} no longer has external-panel access on "{study_name}" in Rally; ask the study owner to '
        "grant it again"
    )


def relay_author_inactive(author_name: str, status: str) -> str:
    return (
        f"{author_name}'s Rally account is {status.lower()}, not active; ask a Rally admin to reactivate it "
        "(or have a teammate reply instead)"
    )


def relay_author_no_email(author_name: str) -> str:
    return f"no email address is known for {author_name}, so they cannot be matched to a Rally user"


def relay_study_unlinked(study_name: str) -> str:
    return f'"{study_name}" is no longer bridged; link it again to resume'
