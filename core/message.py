"""The bridge's own words as a platform-neutral structure, which each chat platform renders in its markup.

A :class:`Text` is a sequence of parts. A part is a plain ``str`` (words as they are: the renderer escapes them,
so they never turn into markup, mentions or links) or one of a few inline elements:

* :class:`Cmd` ``(words)``: a command the reader can type. Slack shows ``/rally words``, Teams ``@<bot name> words``.
* :class:`ChatName`: the platform's own name ("Slack", "Teams").
* :class:`HomeOnly` ``(parts)``: a clause shown only where the platform has a home surface (Slack's App Home);
  dropped on the others.
* :class:`Hint` ``(topic, neutral)``: advice only the platform can give (what an admin changes there); ``neutral``
  is said where the platform has nothing for ``topic``.
* :class:`At` ``(when, style)``: a moment, shown in each reader's own time zone where the platform can (Slack's date
  tokens, Teams' card date functions); elsewhere in UTC.
* :class:`Person` ``(user_id, name)``: a person of the chat platform, mentioned (Slack ``<@U1>``, Teams ``<at>``).

Build texts with :func:`text` (``text("Run ", cmd("link <studyId>"), " in ", CHAT, ".")``); ``+`` joins texts and
strings. A platform renders a text with :meth:`Text.render` and its :class:`Dialect` (``adapters/slack/format.py``,
``adapters/teams/format.py``); :meth:`Text.plain` is the neutral reading, for logs and tests.

A text travels in an outbox payload as JSON (:meth:`Text.to_json`); :meth:`Text.from_json` also reads a plain
``str``, which is what payloads queued before texts had a structure carry (see :func:`_legacy`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

# Hint topics the core names; a platform's Dialect says each in its own terms.
EMAIL_ACCESS = "email-access"  # the bridge cannot see a person's email address: how an admin makes it visible


@dataclass(frozen=True)
class Cmd:
    """A command the reader can type, e.g. ``Cmd("retry 12")``: the words after the bot's command or mention."""

    words: str


@dataclass(frozen=True)
class ChatName:
    """The chat platform's own name."""


@dataclass(frozen=True)
class HomeOnly:
    """Parts shown only where the platform has a home surface for the bridge (Slack's App Home)."""

    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Hint:
    """Advice only the platform can give about ``topic``; ``neutral`` where it has none."""

    topic: str
    neutral: str


@dataclass(frozen=True)
class At:
    """A moment, e.g. a session time or when a participant started waiting. ``style``: ``time`` (10:42) or
    ``date_time`` (Sat 5 Dec, 10:42). Each platform shows it in the reader's zone where it can (:attr:`Dialect.at`)."""

    when: datetime
    style: str = "date_time"


@dataclass(frozen=True)
class Person:
    """A person on the chat platform, mentioned by id (``name`` is what shows where a mention cannot)."""

    user_id: str
    name: str


Part: TypeAlias = str | Cmd | ChatName | HomeOnly | Hint | At | Person
Piece: TypeAlias = "Part | Text"  # what the builders take: parts and whole texts (flattened)

CHAT = ChatName()


def _same(words: str) -> str:
    return words


def utc_words(moment: At) -> str:
    """``moment`` in UTC words: what a platform that cannot localise says (``Sat 5 Dec 2026, 10:42 UTC``)."""
    when = moment.when.replace(tzinfo=UTC) if moment.when.tzinfo is None else moment.when.astimezone(UTC)
    if moment.style == "time":
        return f"{when:%H:%M} UTC"
    return f"{when:%a} {when.day} {when:%b %Y, %H:%M} UTC"


def _at_name(person: Person) -> str:
    return f"@{person.name}"


@dataclass(frozen=True)
class Dialect:
    """How one platform says the inline elements."""

    command: str  # what comes before a command's words: "/rally ", "@Rally Bridge "
    chat_name: str
    home: bool  # whether the platform has a home surface (HomeOnly parts are shown)
    hints: Mapping[str, str] = field(default_factory=dict)
    # How a moment and a mention are said: the result is markup, NOT passed through the escape (the function escapes
    # whatever words it puts in). The defaults say them in plain words, which the escape then makes inert.
    at: Callable[[At], str] | None = None
    person: Callable[[Person], str] | None = None


# The neutral reading (logs, tests): commands as the core names them, every clause kept.
NEUTRAL = Dialect(command="/rally ", chat_name="the chat", home=True)


@dataclass(frozen=True)
class Text:
    """A sentence (or several) the bridge says to a person; see the module docstring."""

    parts: tuple[Part, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __add__(self, other: Piece) -> Text:
        return text(self, other)

    def __radd__(self, other: Piece) -> Text:
        return text(other, self)

    def render(self, dialect: Dialect, escape: Callable[[str], str] = _same) -> str:
        """The words as ``dialect`` says them, each part passed through ``escape`` (the platform's escaping)."""
        return "".join(_render(part, dialect, escape) for part in self.parts)

    def plain(self) -> str:
        """The neutral reading, unescaped: for logs and tests, not for a platform."""
        return self.render(NEUTRAL)

    def to_json(self) -> list[Any]:
        """JSON-ready (an outbox payload): plain parts as strings, elements as ``{"type": ...}`` objects."""
        return [_part_json(part) for part in self.parts]

    @classmethod
    def from_json(cls, data: Any) -> Text:
        """What :meth:`to_json` made; also a plain ``str``, what a payload queued before texts had a structure carries
        (read with the old Slack words as elements, :func:`_legacy`, so it renders as it did then)."""
        if isinstance(data, str):
            return _legacy(data)
        if isinstance(data, list):
            return text(*(_part_from_json(item) for item in data))
        raise ValueError(f"not a text: {type(data).__name__}")


def text(*pieces: Piece) -> Text:
    """A :class:`Text` of ``pieces`` in order: texts are flattened, neighbouring strings joined, empty ones left out."""
    parts: list[Part] = []
    for piece in pieces:
        for part in piece.parts if isinstance(piece, Text) else (piece,):
            if isinstance(part, str):
                if not part:
                    continue
                last = parts[-1] if parts else None
                if isinstance(last, str):
                    parts[-1] = last + part
                    continue
            parts.append(part)
    return Text(tuple(parts))


def cmd(words: str) -> Cmd:
    return Cmd(words)


def at(when: datetime, style: str = "date_time") -> At:
    return At(when, style)


def person(user_id: str, name: str) -> Person:
    return Person(user_id, name)


def home_only(*pieces: Piece) -> HomeOnly:
    return HomeOnly(text(*pieces).parts)


def join(separator: str, items: Iterable[Piece]) -> Text:
    """``separator.join`` for pieces: ``join("\\n", lines)``."""
    pieces: list[Piece] = []
    for index, item in enumerate(items):
        if index:
            pieces.append(separator)
        pieces.append(item)
    return text(*pieces)


def _render(part: Part, dialect: Dialect, escape: Callable[[str], str]) -> str:
    if isinstance(part, str):
        return escape(part)
    if isinstance(part, Cmd):
        return escape(dialect.command + part.words)
    if isinstance(part, ChatName):
        return escape(dialect.chat_name)
    if isinstance(part, HomeOnly):
        return "".join(_render(p, dialect, escape) for p in part.parts) if dialect.home else ""
    if isinstance(part, At):
        return dialect.at(part) if dialect.at is not None else escape(utc_words(part))
    if isinstance(part, Person):
        return dialect.person(part) if dialect.person is not None else escape(_at_name(part))
    return escape(dialect.hints.get(part.topic, part.neutral))


# The core's sentences before they had a structure were Slack's words, and the Teams adapter rewrote them by string
# replacement. A payload queued then is read back with those words as elements, so every platform renders it as its
# adapter did then. Only needed while such rows can remain (a row gives up after 24 h).
_LEGACY = re.compile(
    r"/rally (?P<cmd>[^.,:;()\n]*)"
    r"|(?<=with the same email as in )(?P<chat>Slack)"
    r"|(?<=in )(?P<chat_2>Slack)(?=, so I can't match you)"
    r"|(?P<hint>Ask a workspace admin to make sure the app has the users:read\.email scope\.)"
)


def _legacy(words: str) -> Text:
    pieces: list[Piece] = []
    at = 0
    for found in _LEGACY.finditer(words):
        pieces.append(words[at : found.start()])
        if found.group("cmd") is not None:
            command = found.group("cmd").rstrip()
            pieces += [Cmd(command), found.group("cmd")[len(command) :]]
        elif found.group("hint") is not None:
            pieces.append(Hint(EMAIL_ACCESS, found.group("hint")))
        else:
            pieces.append(CHAT)
        at = found.end()
    pieces.append(words[at:])
    return text(*pieces)


def _part_json(part: Part) -> Any:
    if isinstance(part, str):
        return part
    if isinstance(part, Cmd):
        return {"type": "cmd", "words": part.words}
    if isinstance(part, ChatName):
        return {"type": "chat"}
    if isinstance(part, HomeOnly):
        return {"type": "home", "parts": [_part_json(p) for p in part.parts]}
    if isinstance(part, At):
        return {"type": "at", "when": part.when.isoformat(), "style": part.style}
    if isinstance(part, Person):
        return {"type": "person", "user_id": part.user_id, "name": part.name}
    return {"type": "hint", "topic": part.topic, "neutral": part.neutral}


def _part_from_json(item: Any) -> Part:
    if isinstance(item, str):
        return item
    kind = item.get("type") if isinstance(item, dict) else None
    if kind == "cmd":
        return Cmd(str(item["words"]))
    if kind == "chat":
        return CHAT
    if kind == "home":
        return HomeOnly(tuple(_part_from_json(p) for p in item.get("parts") or ()))
    if kind == "hint":
        return Hint(str(item["topic"]), str(item["neutral"]))
    if kind == "at":
        return At(datetime.fromisoformat(str(item["when"])), str(item.get("style") or "date_time"))
    if kind == "person":
        return Person(str(item["user_id"]), str(item["name"]))
    raise ValueError(f"not a part of a text: {item!r}")
