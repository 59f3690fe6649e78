"""A participant's thread root as Slack shows it: the live card, posted once (``chat.postMessage``) and redrawn in
place (``chat.update``) as the case changes, both from :func:`root_message`.

The card is Block Kit: a section with the facts (who, study, session, scheduling link), a section with the status
lines (``ThreadRoot.status``, each the bridge's own words rendered with ``format.render``: moments as date tokens in
each reader's zone, people as mentions), a context line with the hint, and the buttons: Remind / Follow up / Send
scheduling link (``interactive.root_actions``, each opening a form) and ``Assign to me``, a button of the same kind
as a private reply's (``interactive.RUN_ACTION``): its value is the command ``assign <participant id>`` and a click
is stored exactly like that command typed in the channel.

Outside words (names, the study, the zone, a URL that is no web address) are escaped, so nothing on the card can
mention anyone or disguise a link. The message's ``text`` (notifications, clients without blocks) says the same
in plain words: no date tokens and no mentions (a mention there would ping on every redraw).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ButtonElement

from adapters.local_time import in_zone
from adapters.slack import format as fmt
from adapters.slack import interactive
from core.message import At, Text
from core.ports import ThreadRoot

HINT = "Reply in this thread to message them."
ASSIGN_LABEL = "Assign to me"
ASSIGN_ACTION = f"{interactive.RUN_ACTION}assign"  # the run-a-command kind of button (interactive.run_event)
SAVED_REPLY_ACTION = f"{interactive.RUN_ACTION}replies"


def assign_command(participant_id: str) -> str:
    return f"assign {participant_id}"


def _session(root: ThreadRoot) -> tuple[str, str] | None:
    """The session line as mrkdwn (a date token: each reader's zone) and in plain words (UTC)."""
    if root.session_starts_at is None:
        return None
    moment = At(root.session_starts_at, "date_time")
    local = in_zone(root.session_starts_at, root.participant_tz)
    theirs = f" ({local})" if local else ""
    return (
        f"Session: {fmt.date_token(moment)}{fmt.escape(theirs)}",
        f"Session: {fmt.format_session_time(moment.when)}{theirs}",
    )


def _scheduling(url: str) -> str:
    if url.startswith(("https://", "http://")) and " " not in url:
        safe = fmt.escape(url).replace("|", "%7C")
        return f"Scheduling: <{safe}|scheduling link>"
    return f"Scheduling: {fmt.escape(url)}"


def status_mrkdwn(status: tuple[Text, ...]) -> str:
    """The status lines as mrkdwn, one line each (a line's own newlines kept: it is the bridge's words)."""
    return "\n".join(fmt.render(line) for line in status if line)


def assign_button(participant_id: str) -> dict[str, Any]:
    return ButtonElement(text=ASSIGN_LABEL, action_id=ASSIGN_ACTION, value=assign_command(participant_id)).to_dict()


def saved_reply_button(participant_id: str) -> dict[str, Any]:
    """``Saved reply``: the saved replies for this participant, one button each (``replies <participant id>``)."""
    return ButtonElement(text="Saved reply", action_id=SAVED_REPLY_ACTION, value=f"replies {participant_id}").to_dict()


def actions(root: ThreadRoot) -> dict[str, Any] | None:
    """The root's buttons (none without the participant's id: an old root names nobody a command could)."""
    if not root.participant_id:
        return None
    block = interactive.root_actions(root.participant_id, root.participant_name, root.study_name)
    if root.assignable:
        block["elements"] += [assign_button(root.participant_id), saved_reply_button(root.participant_id)]
    return block


def root_message(root: ThreadRoot) -> tuple[str, list[dict[str, Any]]]:
    """``(text, blocks)`` of the root card: the same for the first post and every redraw."""
    lines = [f"*{fmt.escape(root.participant_name)}* · {fmt.escape(root.study_name)}"]
    plain = [f"{root.participant_name} · {root.study_name}"]
    session = _session(root)
    if session is not None:
        lines.append(session[0])
        plain.append(session[1])
    if root.scheduling_url:
        lines.append(_scheduling(root.scheduling_url))
        plain.append(f"Scheduling: {root.scheduling_url}")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    status = status_mrkdwn(root.status)
    if status:
        blocks += interactive._sections(status)  # within Slack's 3,000 characters a section, cut between lines
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": HINT}]})
    buttons = actions(root)
    if buttons is not None:
        blocks.append(buttons)
    fallback = [fmt.escape(line) for line in plain] + [fmt.fallback(line) for line in root.status if line]
    return "\n".join([*fallback, HINT]), blocks
