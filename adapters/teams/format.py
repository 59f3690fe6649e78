"""Teams text in both directions, and the Adaptive Cards of private replies and of the root's forms (the root card
itself: ``adapters/teams/card.py``).

Outgoing messages are sent with ``textFormat: "xml"`` (Teams' HTML subset). The bridge's own words
(``core.message.Text``) are rendered by :func:`render`: commands as ``@<bot name> <words>``, "Teams" for the
platform's name, no home-only clauses (Teams has no home). Every part, and all text from outside (participants,
Rally names, failure reasons), is HTML-escaped, so ``<at>...</at>`` cannot mention anyone, ``<a href>`` cannot
disguise a link and no markup reaches the channel; newlines become ``<br>``. Teams may also read Markdown in a
message, so the characters Markdown builds links and formatting from (``[ ] \\ * _ ` ~ |``, a ``(`` after ``]``,
a heading, list or rule marker at the start of a line) are sent as numeric character references: Teams' HTML
shows them as the characters, and a Markdown reader takes a character reference as a literal character, never as
syntax. So ``[label](https://evil.example)`` reads as typed and is no link. Adaptive Card text blocks render a
Markdown subset and no HTML, so outside text placed in a card is Markdown-escaped with backslashes instead.

Incoming researcher messages arrive as Teams text: ``<at>Name</at>`` mentions, sometimes HTML (``<p>``,
``<a href>``, ``<br>``) and entities. :func:`to_plain_text` turns that into what the participant reads.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from core import forms
from core.message import EMAIL_ACCESS, At, Dialect, Person, Text, utc_words

_MENTION = re.compile(r"<at[^<>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(r"<a\s[^<>]*?href\s*=\s*(\"[^\"]*\"|'[^']*')[^<>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^<>]*>|</div>\s*<div[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9:-]*(\s[^<>]*)?/?>")
# Markdown syntax anywhere in a line: emphasis, code, strikethrough, table cells, link and image brackets, escapes;
# the ``(`` that would open a link's target after ``]``.
_MARKDOWN_INLINE = re.compile(r"[\\`*_~|\[\]]|(?<=\])\(")
# Markdown syntax at the start of a line: a heading, a list item, a setext underline or a thematic break (a quote's
# ``>`` is already ``&gt;``, a ``*`` or ``_`` already a reference).
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)(?:(#|[+=-](?=[\s=-]|$))|(\d{1,9})([.)])(?=\s|$))", re.MULTILINE)
_MARKDOWN = re.compile(r"([\\`*_\[\]~])")
_CARD_LIST_MARKER = re.compile(r"^(\s*)(?:([+-])|(\d+)(\.))(?=\s|$)")
# A Teams user id a mention can name: ``29:...`` (channel rosters), ``8:orgid:...``, or an AAD object id.
_TEAMS_USER = re.compile(r"(?:29|8):[^\s<>\"&]+|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _reference(char: str) -> str:
    return f"&#{ord(char)};"


def _line_start(match: re.Match[str]) -> str:
    indent, marker, number, dot = match.groups()
    return indent + (_reference(marker) if marker else number + _reference(dot))


def escape(text: str) -> str:
    """Outside text made inert in a Teams ``xml`` message: HTML-escaped, Markdown syntax as numeric character
    references, newlines as ``<br>`` (see the module docstring)."""
    text = html.escape(text.replace("\r\n", "\n").replace("\r", "\n"), quote=False)  # adds no Markdown syntax
    text = _MARKDOWN_INLINE.sub(lambda m: _reference(m.group()), text)
    return _MARKDOWN_LINE_START.sub(_line_start, text).replace("\n", "<br>")


def escape_markdown(text: str) -> str:
    """Outside text made inert in an Adaptive Card ``TextBlock`` (Markdown subset, no HTML): backslash-escaped, and a
    leading list marker (``- ``, ``+ ``, ``1. ``) too; newlines become spaces."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(text.splitlines()))
    return _CARD_LIST_MARKER.sub(
        lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\."), escaped
    )


def _link_text(url: str, label: str) -> str:
    label = label.strip()
    if not label or label == url or label == url.removeprefix("https://").removeprefix("http://").rstrip("/"):
        return url
    if url.startswith("mailto:"):
        address = url[len("mailto:") :]
        return address if label == address else f"{label} ({address})"
    return f"{label} ({url})"


def to_plain_text(text: str, *, bot_name: str | None = None) -> str:
    """A researcher's Teams message as the participant should read it.

    ``<at>Ana Ortiz</at>`` -> ``@Ana Ortiz`` (a mention of the bot itself is dropped), ``<a href="u">label</a>``
    -> ``label (u)``, ``<br>`` and paragraph breaks -> newlines, other tags removed, entities unescaped.
    A literal ``<3`` or ``a < b`` is not a tag and stays as typed.
    """

    def mention(match: re.Match[str]) -> str:
        name = html.unescape(_TAG.sub("", match.group(1))).strip()
        if bot_name is not None and name == bot_name:
            return ""
        return f"@{name}"

    def link(match: re.Match[str]) -> str:
        url = html.unescape(match.group(1)[1:-1]).strip()
        label = html.unescape(_TAG.sub("", match.group(2)))
        return _link_text(url, label)

    out = _MENTION.sub(mention, text)
    out = _LINK.sub(link, out)
    out = _BREAK.sub("\n", out)
    out = _TAG.sub("", out)
    out = html.unescape(out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def command_text(text: str, mention_texts: list[str]) -> str:
    """The words of a command after the bot's own mention(s) are removed (literal match, not a regex)."""
    for mention in mention_texts:
        text = text.replace(mention, " ")
    return to_plain_text(text)


def _utc_words(moment: At) -> str:
    return escape(utc_words(moment))


def mentionable(person: Person) -> bool:
    """Whether ``person`` names a Teams user id that can be mentioned (``29:...``, ``8:orgid:...``, an AAD id)."""
    return bool(_TEAMS_USER.fullmatch(person.user_id))


def _mention(person: Person) -> str:
    return f"<at>{escape(person.name)}</at>" if mentionable(person) else escape(f"@{person.name}")


@lru_cache(maxsize=8)
def dialect(bot_name: str) -> Dialect:
    """How Teams says the core's inline elements: a command is the same words after an @mention of the bot; no home
    surface, so home-only clauses are left out; a moment in UTC words (message text cannot show it in each reader's
    zone: the root card can, ``adapters/teams/card.py``); a person as ``<at>name</at>``, which mentions them only
    with its entity beside the text (:func:`mention_entities`)."""
    return Dialect(
        command=f"@{bot_name} ",
        chat_name="Teams",
        home=False,
        hints={EMAIL_ACCESS: "Ask a Teams admin to make sure your account has an email or user principal name."},
        at=_utc_words,
        person=_mention,
    )


@lru_cache(maxsize=8)
def plain_dialect(bot_name: str) -> Dialect:
    """:func:`dialect` without markup: moments in UTC words, people as ``@name`` (a card's text, a summary)."""
    return replace(dialect(bot_name), at=None, person=None)


def mention_entities(text: Text) -> list[dict[str, Any]]:
    """The ``mention`` entities an activity must carry for the people :func:`render` mentions in ``text`` (Teams
    turns ``<at>name</at>`` into a mention only when an entity with the same ``text`` names the person); once each."""
    entities: list[dict[str, Any]] = []
    for part in text.parts:  # home-only clauses are not shown in Teams: a person there is never rendered
        if isinstance(part, Person) and mentionable(part):
            entity = {
                "type": "mention",
                "text": _mention(part),
                "mentioned": {"id": part.user_id, "name": part.name},
            }
            if entity not in entities:
                entities.append(entity)
    return entities


def wording(text: Text, bot_name: str) -> str:
    """The bridge's words as Teams says them, unescaped (for an Adaptive Card, which escapes its own way)."""
    return text.render(plain_dialect(bot_name))


def render(text: Text, bot_name: str) -> str:
    """The bridge's words for a Teams ``xml`` message: as :func:`wording` says them, each part :func:`escape`-d."""
    return text.render(dialect(bot_name), escape)


# --- the thread root's forms (Remind, Follow up, Send scheduling link; core/forms.py) -----------------------------

FORM_KEY = "rallybridge_form"  # the forms' Action.Submit data: {"rallybridge_form": {"form", "participant"}}
ROOT_BUTTONS = (
    (forms.REMIND, "Remind"),
    (forms.FOLLOWUP, "Follow up"),
    (forms.RESCHEDULE, "Send scheduling link"),
)
FORM_TITLES = {
    forms.REMIND: "Schedule a reminder",
    forms.FOLLOWUP: "Schedule a follow-up",
    forms.RESCHEDULE: "Send scheduling link",
}
_SUBMITS = {forms.REMIND: "Schedule", forms.FOLLOWUP: "Schedule", forms.RESCHEDULE: "Send"}
# (label, placeholder, required, multiline) of each field, by form
_INPUTS: dict[str, dict[str, tuple[str, str, bool, bool]]] = {
    forms.REMIND: {
        forms.WHEN: ("When (your time zone, or add one: UTC)", "tomorrow 9am, in 2h, fri 14:30", True, False),
        forms.NOTE: ("Message", "Empty: a short reminder of their session time", False, True),
    },
    forms.FOLLOWUP: {
        forms.AFTER: ("After (from your last message to them; empty: 24h)", "2d, 4h, 1d 12h", False, False),
        forms.NOTE: ("Message", "Empty: a short, friendly check-in", False, True),
    },
    forms.RESCHEDULE: {forms.NOTE: ("Note", "Added under the link, e.g. Sorry for the change!", False, True)},
}
_ABOUT = {
    forms.REMIND: "A reminder to {who}: the bridge sends it for you at that time, once, and archives it to Rally.",
    forms.FOLLOWUP: "A gentle follow-up to {who}, sent only if they have not written by then.",
    forms.RESCHEDULE: "Sends {who} their personal scheduling link from Rally now.",
}


def input_id(form: str, name: str) -> str:
    """An input's id on the root card: unique across the card's forms (``remind_when``, ``remind_note``...)."""
    return f"{form}_{name}"


def form_card(form: str, participant_id: str, participant_name: str) -> dict[str, Any]:
    """The card an ``Action.ShowCard`` opens: what the form does, its fields (``core.forms.FIELDS``) and the
    ``Action.Submit`` whose ``data`` names the form and the participant. Teams sends the inputs' values next to
    ``data`` in the activity's ``value``; :func:`submitted_form` reads them back."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _ABOUT[form].format(who=escape_markdown(participant_name)), "wrap": True}
    ]
    for name, (label, placeholder, required, multiline) in _INPUTS[form].items():
        field: dict[str, Any] = {
            "type": "Input.Text",
            "id": input_id(form, name),
            "label": label,
            "placeholder": placeholder,
            "isMultiline": multiline,
            "maxLength": 3000 if multiline else 200,
        }
        if required:
            field |= {"isRequired": True, "errorMessage": "Say when, for example: tomorrow 9am or in 2h."}
        body.append(field)
    submit = {
        "type": "Action.Submit",
        "title": _SUBMITS[form],
        "data": {FORM_KEY: {"form": form, "participant": participant_id}},
    }
    return {"type": "AdaptiveCard", "version": "1.4", "body": body, "actions": [submit]}


@dataclass(frozen=True)
class SubmittedForm:
    """A root card's form as Teams sent it back: which form, for whom, and the values by field name."""

    form: str
    participant_id: str
    values: dict[str, str | None]


def submitted_form(value: Any) -> SubmittedForm | None:
    """The form a root card's ``Action.Submit`` sent (:func:`form_card`); None for anything else."""
    if not isinstance(value, dict) or not isinstance(data := value.get(FORM_KEY), dict):
        return None
    form, participant = data.get("form"), data.get("participant")
    if not isinstance(form, str) or form not in forms.FORMS or not isinstance(participant, str):
        return None
    values: dict[str, str | None] = {}
    for name in forms.FIELDS[form]:
        typed = value.get(input_id(form, name))
        values[name] = typed if isinstance(typed, str) else None
    return SubmittedForm(form, participant, values)


def form_usage(form: str, participant_id: str) -> str:
    """The command a form stands for, to type instead (rendered as a command by the dialect)."""
    return {
        forms.REMIND: f"remind {participant_id} <when> [message]",
        forms.FOLLOWUP: f"followup {participant_id} [after <duration>] [message]",
        forms.RESCHEDULE: f"reschedule {participant_id} [note]",
    }[form]


# --- buttons under a private reply (core.domain.Action) ------------------------------------------------------

ACTION_KEY = "rallybridge"  # the Action.Submit data the bridge reads back: {"rallybridge": {"command", "channel"}}
ACTIONS_PER_SET = 5  # Teams shows a handful of actions per set; more go into further sets
MAX_CARD_ACTIONS = 25  # a card stays well under Teams' 28 KB; the text always names the command for the rest
_ACTION_STYLES = {"primary": "positive", "danger": "destructive"}


def private_card(text: str, actions: list[tuple[str, str, str | None]], channel: str) -> dict[str, Any]:
    """A private reply with buttons: the text (one Markdown-escaped block per line), then one ``Action.Submit`` per
    action (``(label, command, style)``). A click sends ``data`` back as the activity's ``value``; it names the
    channel, because the private reply lives in a 1:1 chat but the command belongs to the channel."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": escape_markdown(line) if line.strip() else " ", "wrap": True, "spacing": "None"}
        for line in text.split("\n")
    ]
    submits = [
        {
            "type": "Action.Submit",
            "title": label,
            "data": {ACTION_KEY: {"command": command, "channel": channel}},
            **({"style": _ACTION_STYLES[style]} if style is not None and style in _ACTION_STYLES else {}),
        }
        for label, command, style in actions[:MAX_CARD_ACTIONS]
    ]
    for start in range(0, len(submits), ACTIONS_PER_SET):
        body.append({"type": "ActionSet", "actions": submits[start : start + ACTIONS_PER_SET]})
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }


def submitted_command(value: Any) -> tuple[str, str] | None:
    """``(command, channel)`` from an ``Action.Submit`` value the bridge put on a card; None for anything else."""
    data = value.get(ACTION_KEY) if isinstance(value, dict) else None
    if not isinstance(data, dict):
        return None
    command, channel = data.get("command"), data.get("channel")
    if not isinstance(command, str) or not command.strip() or not isinstance(channel, str) or not channel:
        return None
    return command.strip(), channel
