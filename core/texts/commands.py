"""Help, usage and the answers to ``link`` / ``unlink``; why someone may not act for a study (``core.permissions``)."""

from __future__ import annotations

from collections.abc import Iterable

from core.commands import CommandSpec
from core.message import CHAT, EMAIL_ACCESS, Hint, Text, cmd, join, text

HELP_INTRO = "Rally Bridge brings your Respondent participants' chat into this channel."
HELP_OUTRO = (
    "Each approved participant gets one thread. Reply in the thread to message them; "
    "start a reply with {marker} to keep it as an internal note that is never sent.\n"
    "<participant> is the name on the thread (Jordan L., Jordan) or the Rally participant id."
)


def help_text(marker: str, specs: Iterable[CommandSpec] = ()) -> Text:
    """The commands of ``specs`` (the registry's, in its order) as ``• /rally <word> <usage>: <summary>.``"""
    lines = [
        text("• ", cmd(" ".join(filter(None, (s.word, s.usage)))), ": ", s.summary, ".") for s in specs if s.in_help
    ]
    return join("\n", [HELP_INTRO, *lines, HELP_OUTRO.format(marker=marker)])


def unknown_command(word: str, marker: str, specs: Iterable[CommandSpec] = ()) -> Text:
    return text(f'I don\'t know the command "{word}".\n\n', help_text(marker, specs))


def command_failed(word: str, reason: str) -> Text:
    """A command that could not be done for good (after it was acknowledged): the reason and what to do."""
    return text(
        f'"{word}" could not be done: {reason}. Nothing was changed. ',
        "If Rally or Respondent refused the bridge's access (401 or 403), ask whoever runs Rally Bridge to check its "
        "API keys (",
        "rallybridge check-config",
        "); otherwise try ",
        cmd(word),
        " again in a few minutes.",
    )


def link_usage() -> Text:
    return text(
        "Tell me which study: ", cmd("link <studyId>"), " (the id is in the study's URL in Rally, e.g. st_123)."
    )


def unlink_usage() -> Text:
    return text("Tell me which study: ", cmd("unlink <studyId>"), ".")


def study_not_found(study_id: str) -> Text:
    return text(
        f'Rally has no study "{study_id}". Check the id in the study\'s URL in Rally '
        "(it looks like st_123) and try again."
    )


def study_not_respondent(study_id: str, name: str) -> Text:
    return text(
        f'"{name}" ({study_id}) does not recruit from Respondent, so there is no participant chat to bridge. '
        "Only studies whose external panel is Respondent can be linked."
    )


def already_linked_elsewhere(study_name: str) -> Text:
    return text(
        f'"{study_name}" is already bridged to another channel. A study has one channel: run ',
        cmd("unlink"),
        " there first.",
    )


def already_linked_here(study_name: str) -> Text:
    return text(f'"{study_name}" is already bridged to this channel.')


def linked(study_name: str, study_id: str, who: str, approved: int) -> Text:
    people = "participant" if approved == 1 else "participants"
    return text(
        f'{who} linked Rally study "{study_name}" ({study_id}) to this channel. '
        f"{approved} approved {people} so far; each gets a thread here. Reply in a thread to message them."
    )


def not_linked_here(study_id: str) -> Text:
    return text(f"Study {study_id} is not bridged to this channel, so there is nothing to unlink.")


def unlinked(study_name: str, who: str) -> Text:
    return text(f'{who} unlinked "{study_name}". Its threads stay, but nothing more is relayed from or to them.')


# --- why someone may not act for a study or message a participant (core/permissions.py) ---------------------------


def no_email(user_name: str) -> Text:
    return text(
        f"I can't see an email address for {user_name} in ",
        CHAT,
        ", so I can't match you to a Rally user. ",
        Hint(EMAIL_ACCESS, "Ask an admin to make sure the bridge can see your email address."),
    )


def not_on_team(study_name: str) -> Text:
    return text(
        f'You\'re not on the team of "{study_name}" in Rally with the same email as in ',
        CHAT,
        ". Ask the study owner to add you as a teammate with external-panel access.",
    )


def no_panel_access(study_name: str) -> Text:
    return text(
        f'You\'re on the team of "{study_name}" but without external-panel access, which messaging '
        "Respondent participants needs. Ask the study owner to grant it in Rally."
    )


def rally_user_inactive(status: str) -> Text:
    return text(f"Your Rally account is {status.lower()}, not active. Ask your Rally admin to reactivate it.")


def study_unlinked_refusal(study_name: str) -> Text:
    return text(f'"{study_name}" is no longer bridged, so this reply was not sent. Link it again to resume.')


def participant_opted_out(name: str) -> Text:
    return text(f"{name} has opted out of all communication, so this message was not sent.")
