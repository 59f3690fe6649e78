"""Slack mrkdwn in both directions: the bridge's own words (``core.message.Text``) rendered, outside text made inert,
and Slack markup turned into plain text; also how long text is cut into posts and how a session time reads.

Slack's message text is mrkdwn in which every ``<...>`` is a control sequence (mentions, links,
``<!channel>``) and literal ``&``, ``<``, ``>`` are sent as ``&amp;``, ``&lt;``, ``&gt;``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from core.message import EMAIL_ACCESS, At, Dialect, Person, Text, utc_words

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"<([^<>]*)>")
_BROADCASTS = {"here", "channel", "everyone"}
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_DATE_TOKENS = {"time": "{time}", "date_time": "{date_short_pretty} {time}"}


def escape(text: str) -> str:
    """Make outside text inert in mrkdwn: ``&`` -> ``&amp;``, ``<`` -> ``&lt;``, ``>`` -> ``&gt;``.

    After this no participant text can mention (``<!channel>``, ``<@U1>``) or disguise a link
    (``<https://evil|bank>``). Formatting characters (``*``, ``_``, ``~``, backticks) are left alone.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unix_time(when: datetime) -> int:
    """Seconds since the epoch (naive datetimes are taken as UTC)."""
    return int((when.replace(tzinfo=UTC) if when.tzinfo is None else when).timestamp())


def date_token(moment: At) -> str:
    """``<!date^unix^token|fallback>``: Slack shows the moment in each reader's own zone; clients that cannot show
    the token show the fallback (the UTC words, escaped, with no ``|`` or ``^`` that could end the token early)."""
    fallback = escape(utc_words(moment)).replace("|", "/").replace("^", " ")
    token = _DATE_TOKENS.get(moment.style, _DATE_TOKENS["date_time"])
    return f"<!date^{unix_time(moment.when)}^{token}|{fallback}>"


def mention(person: Person) -> str:
    """``<@U123>`` for a Slack user id; anything else (not a user id: it could carry markup) as the escaped name."""
    if _USER_ID.fullmatch(person.user_id):
        return f"<@{person.user_id}>"
    return escape(f"@{person.name}")


# How Slack says the core's inline elements: the slash command, its name, the App Home, its admin advice, moments in
# each reader's zone (date tokens) and mentions.
SLACK = Dialect(
    command="/rally ",
    chat_name="Slack",
    home=True,
    hints={EMAIL_ACCESS: "Ask a workspace admin to make sure the app has the users:read.email scope."},
    at=date_token,
    person=mention,
)


def render(text: Text) -> str:
    """The bridge's words as mrkdwn: commands as ``/rally <words>``, every part escaped with :func:`escape` (so no
    part, whatever outside words it carries, can mention anyone or make a link)."""
    return text.render(SLACK, escape)


# Plain text fields read no markup: moments in UTC words, people by name.
_PLAIN = replace(SLACK, at=None, person=None)


def fallback(text: Text) -> str:
    """The words as escaped mrkdwn without date tokens or mentions: a message's ``text`` beside its blocks, shown in
    notifications (a mention there would ping again on every redraw of the message)."""
    return text.render(_PLAIN, escape)


def wording(text: Text) -> str:
    """The same words unescaped, for Slack's ``plain_text`` fields (a modal's field errors): no date tokens or
    mentions there (they would show as typed), so moments in UTC words and people as ``@name``."""
    return text.render(_PLAIN)


def unescape(text: str) -> str:
    """Undo :func:`escape` (``&amp;`` last, so ``&amp;lt;`` becomes the literal ``&lt;``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _split_label(inner: str) -> tuple[str, str | None]:
    target, sep, label = inner.partition("|")
    return target, (label if sep else None)


def _strip_scheme(url: str) -> str:
    for prefix in ("https://", "http://", "mailto:"):
        if url.startswith(prefix):
            return url[len(prefix) :].rstrip("/")
    return url.rstrip("/")


def _link_text(url: str, label: str | None) -> str:
    """``<url|label>`` as plain text: ``label (url)``, or just one of them when they say the same."""
    if url.startswith("mailto:"):
        address = url[len("mailto:") :]
        if label is None or label == address:
            return address
        return f"{label} ({address})"
    if label is None or not label.strip() or label == url or label == _strip_scheme(url):
        return url
    return f"{label} ({url})"


async def _resolve(resolve_user: Callable[[str], Awaitable[str]], user_id: str, label: str | None) -> str:
    """A user's display name; best effort: on any failure the label Slack sent, else the id."""
    try:
        name = await resolve_user(user_id)
    except Exception as exc:  # resolution must never lose a researcher's message
        log.warning("slack user %s could not be resolved: %s", user_id, type(exc).__name__)
        name = ""
    name = name or (label or "").lstrip("@") or user_id
    return f"@{name}"


async def _control_to_text(inner: str, resolve_user: Callable[[str], Awaitable[str]]) -> str:
    """One control sequence (without the angle brackets) as plain text. Labels/urls are unescaped here."""
    target, label = _split_label(inner)
    label_text = unescape(label) if label is not None else None
    if target.startswith("@"):
        return await _resolve(resolve_user, target[1:], label_text)
    if target.startswith("#"):
        name = (label_text or target[1:]).lstrip("#")
        return f"#{name}"
    if target.startswith("!"):
        command, _, _args = target[1:].partition("^")
        if command in _BROADCASTS:
            return f"@{command}"
        if command == "subteam":
            return label_text if label_text else "@team"
        if command == "date":
            return label_text or ""
        return label_text if label_text is not None else f"@{command}"
    return _link_text(unescape(target), label_text)


async def to_plain_text(text: str, resolve_user: Callable[[str], Awaitable[str]]) -> str:
    """A researcher's Slack message text as the participant should read it.

    ``<https://x|label>`` -> ``label (https://x)``, ``<https://x>`` -> ``https://x``,
    ``<mailto:a@b|a@b>`` -> ``a@b``, ``<@U1>`` / ``<@U1|name>`` -> ``@Name`` (via ``resolve_user``; on
    failure the label or id), ``<#C1|general>`` -> ``#general``, ``<!here>`` -> ``@here`` (also channel,
    everyone), ``<!subteam^S1|@team>`` -> ``@team``, ``<!date^...|fallback>`` -> ``fallback``. Then
    ``&lt; &gt; &amp;`` are unescaped (only in Slack's own text: resolved names are used as they are).
    Emoji codes such as ``:smile:`` and mrkdwn emphasis stay as typed.
    """
    parts: list[str] = []
    pos = 0
    for match in _CONTROL.finditer(text):
        parts.append(unescape(text[pos : match.start()]))
        parts.append(await _control_to_text(match.group(1), resolve_user))
        pos = match.end()
    parts.append(unescape(text[pos:]))
    return "".join(parts)


def format_session_time(when: datetime) -> str:
    """``Fri 27 Nov 2026, 17:00 UTC`` (naive datetimes are taken as UTC)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return f"{when:%a} {when.day} {when:%b %Y, %H:%M} UTC"


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters that rejoin to exactly ``text``.

    Prefers to cut after a newline, then after a space; never cuts inside an ``&amp;``-style entity.
    """
    if limit < 16:
        raise ValueError("limit too small")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n") + 1
        if cut < limit // 2:
            cut = window.rfind(" ") + 1
        if cut < limit // 2:
            cut = limit
            amp = window.rfind("&", limit - 5)
            if amp != -1 and ";" not in window[amp:]:
                cut = amp
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    return chunks
