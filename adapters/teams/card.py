"""A participant's thread root as Teams shows it: the live Adaptive Card, posted once as a new post in the channel
and redrawn in place (a Bot Framework activity update) as the case changes, both from :func:`root_card`.

The card: the participant's name, a FactSet (study, session in UTC plus the participant's own clock when known),
the status lines (``ThreadRoot.status``, one ``TextBlock`` each), the hint, and the actions: Remind / Follow up /
Send scheduling link (``Action.ShowCard`` forms, ``format.form_card``), ``Assign to me`` (an ``Action.Submit`` of
the kind a private reply's buttons are, ``format.ACTION_KEY``: its data names the command ``assign <participant id>``
and the channel, so a click runs that command there exactly as if typed), and the scheduling link
(``Action.OpenUrl``, only for an ``http(s)`` URL).

A moment in a status line uses the card's date functions, ``{{DATE(2026-12-05T10:42:00Z, SHORT)}}`` and
``{{TIME(2026-12-05T10:42:00Z)}}``, which Teams shows in each viewer's own zone (only ``TextBlock`` text reads them:
the session fact stays in UTC words). A person is named, not mentioned: a mention in a card redrawn again and again
would notify again and again. Outside words are Markdown-escaped, and a ``{{`` in them is broken up, so a name cannot
turn into a date function either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from adapters.local_time import in_zone
from adapters.teams import format as fmt
from core.message import At, Dialect, Person, Text
from core.ports import ThreadRoot

HINT = "Reply in this thread to message them."
SAVED_REPLY_TITLE = "Saved reply"
ASSIGN_TITLE = "Assign to me"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def format_session_time(when: datetime) -> str:
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return f"{when:%a} {when.day} {when:%b %Y, %H:%M} UTC"


def rfc3339(when: datetime) -> str:
    """``2026-12-05T10:42:00Z``: the strict RFC 3339 UTC form the card's date functions read (naive = UTC)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}Z"


def date_functions(moment: At) -> str:
    """The moment as the card's date functions: each viewer sees it in their own zone."""
    stamp = rfc3339(moment.when)
    if moment.style == "time":
        return f"{{{{TIME({stamp})}}}}"
    return f"{{{{DATE({stamp}, SHORT)}}}} {{{{TIME({stamp})}}}}"


def escape_card(text: str) -> str:
    """Outside words in a card ``TextBlock``: Markdown-escaped, and ``{{`` broken up (a zero-width space) so that no
    words can become a date function."""
    return fmt.escape_markdown(text).replace("{{", "{\u200b{").replace("}}", "}\u200b}")


def _named(person: Person) -> str:
    return escape_card(f"@{person.name}")


@lru_cache(maxsize=8)
def card_dialect(bot_name: str) -> Dialect:
    """How the root card says the core's inline elements: as Teams' messages do, with moments as date functions and
    people by name."""
    base = fmt.dialect(bot_name)
    return Dialect(
        command=base.command, chat_name=base.chat_name, home=False, hints=base.hints, at=date_functions, person=_named
    )


def card_text(text: Text, bot_name: str) -> str:
    """The bridge's words for a card ``TextBlock``."""
    return text.render(card_dialect(bot_name), escape_card)


def _web_url(url: str) -> bool:
    """An absolute ``http(s)`` URL with a host and no whitespace or control characters: safe to open from a button."""
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        return False
    try:
        parsed = urlsplit(url)
        return parsed.scheme in ("https", "http") and bool(parsed.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def assign_action(participant_id: str, channel: str) -> dict[str, Any]:
    """``Assign to me``: an ``Action.Submit`` whose data is the command and its channel (read back by
    ``format.submitted_command``, as a private reply's buttons are)."""
    return _run(ASSIGN_TITLE, f"assign {participant_id}", channel)


def saved_reply_action(participant_id: str, channel: str) -> dict[str, Any]:
    """``Saved reply``: the saved replies for this participant, one button each (``replies <participant id>``)."""
    return _run(SAVED_REPLY_TITLE, f"replies {participant_id}", channel)


def _run(title: str, command: str, channel: str) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": title, "data": {fmt.ACTION_KEY: {"command": command, "channel": channel}}}


def root_card(
    participant_name: str,
    study_name: str,
    session_starts_at: datetime | None,
    scheduling_url: str | None,
    participant_id: str | None = None,
    *,
    status: tuple[Text, ...] = (),
    participant_tz: str | None = None,
    assignable: bool = False,
    channel: str | None = None,
    bot_name: str = "Rally Bridge",
) -> dict[str, Any]:
    """The Adaptive Card of a participant's thread root: the same facts as the Slack root message. The scheduling
    link is the card's ``Action.OpenUrl`` button, not a fact: a URL is not text to escape (a Markdown-escaped
    ``pa\\_1`` would show its backslash where Teams does not honour the escape), and only an ``http(s)`` URL is
    offered at all. With ``participant_id``, the card also carries Slack's root buttons (Remind, Follow up, Send
    scheduling link), each an ``Action.ShowCard`` holding its form (``format.form_card``), and, when ``assignable``
    and the ``channel`` is given, ``Assign to me``."""
    facts = [{"title": "Study", "value": escape_card(study_name)}]
    if session_starts_at is not None:
        local = in_zone(session_starts_at, participant_tz)
        theirs = f" ({fmt.escape_markdown(local)})" if local else ""
        facts.append({"title": "Session", "value": format_session_time(session_starts_at) + theirs})
    actions: list[dict[str, Any]] = []
    if participant_id:
        actions += [
            {"type": "Action.ShowCard", "title": label, "card": fmt.form_card(form, participant_id, participant_name)}
            for form, label in fmt.ROOT_BUTTONS
        ]
        if assignable and channel:
            actions += [assign_action(participant_id, channel), saved_reply_action(participant_id, channel)]
    if scheduling_url and _web_url(scheduling_url):
        actions.append({"type": "Action.OpenUrl", "title": "Scheduling link", "url": scheduling_url})
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": escape_card(participant_name),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "FactSet", "facts": facts},
    ]
    body += [
        {"type": "TextBlock", "text": card_text(line, bot_name), "wrap": True, "spacing": "Small"}
        for line in status
        if line
    ]
    body.append({"type": "TextBlock", "text": HINT, "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def thread_root_card(root: ThreadRoot, channel: str, bot_name: str) -> dict[str, Any]:
    """:func:`root_card` for ``root`` in ``channel``."""
    return root_card(
        root.participant_name,
        root.study_name,
        root.session_starts_at,
        root.scheduling_url,
        root.participant_id,
        status=root.status,
        participant_tz=root.participant_tz,
        assignable=root.assignable,
        channel=channel,
        bot_name=bot_name,
    )


def root_summary(root: ThreadRoot, bot_name: str) -> str:
    """Plain summary shown in notifications and by clients that cannot render the card (its status lines too)."""
    status = "".join(f" {fmt.wording(line, bot_name)}" for line in root.status if line)
    return f"{root.participant_name} · {root.study_name}.{status} {HINT}"
