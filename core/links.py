"""Links in a researcher's message, checked before the message goes to a participant.

The text is the message as it will be sent: Slack markup already turned into plain text (``label (https://x)``).
:func:`find_urls` picks out its http(s) links, :func:`shape_problems` says without any network whether one looks
cut off, and :func:`problems` puts both together with a :class:`LinkChecker` (an adapter that asks the web).
Scheduling links of the study are passed as ``trusted`` and never checked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

# A link runs from its scheme to the first space or character that never sits in a written link (angle brackets,
# double quote: Slack's control sequences and quoted text). A ``|`` stays in, so that a leftover of Slack's
# ``<url|label>`` markup is seen (and reported) instead of silently cut off.
_URL = re.compile(r"(?<![A-Za-z0-9])https?://[^\s<>\"]+", re.IGNORECASE)
# Said after a link in a sentence rather than part of it.
_TRAILING = ".,;:!?'\"*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_OPENERS = {opener: closer for closer, opener in _CLOSERS.items()}
_ELLIPSES = ("...", "…")


@dataclass(frozen=True)
class LinkProblem:
    """Why one link holds the message, in words a researcher understands (``"answered 404 Not Found"``)."""

    url: str
    reason: str


class LinkChecker(Protocol):
    """Asks the web about links (adapters/linkcheck.py). Returns a problem for each link that has one, none for a
    link that is fine; never raises for a link that is merely broken."""

    async def check(self, urls: Sequence[str]) -> list[LinkProblem]: ...


def _strip_tail(url: str) -> str:
    """``url`` without what follows it in the sentence: trailing punctuation, and a closing bracket that has no
    opening one inside the link (``(https://x)``), while ``https://en.wikipedia.org/wiki/Foo_(bar)`` keeps its own.
    A trailing ``...`` stays: it is how a cut-off link looks, and :func:`shape_problems` reports it."""
    while url:
        if url.endswith(_ELLIPSES):
            return url
        last = url[-1]
        if last in _TRAILING or (last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)):
            url = url[:-1]
        else:
            return url
    return url


def find_urls(text: str) -> list[str]:
    """The http(s) links in ``text``, in order (repeats included), each without the punctuation after it."""
    found = []
    for match in _URL.finditer(text):
        url = _strip_tail(match.group())
        scheme_end = url.index("://") + 3
        if len(url) > scheme_end:
            found.append(url)
    return found


def _balanced(url: str) -> bool:
    stack: list[str] = []
    for char in url:
        if char in _OPENERS:
            stack.append(_OPENERS[char])
        elif char in _CLOSERS and (not stack or stack.pop() != char):
            return False
    return not stack


def shape_problems(url: str) -> str | None:
    """Why ``url`` looks cut off or mangled, or None: no network, only its shape."""
    for ellipsis in _ELLIPSES:
        if url.endswith(ellipsis):
            return f"looks cut off (ends in {ellipsis})"
    if "|" in url:
        return "has a | left from Slack formatting"
    if not _balanced(url):
        return "has unbalanced brackets"
    return None


def _key(url: str) -> str:
    return url.rstrip("/")


async def problems(text: str, checker: LinkChecker | None, *, trusted: Collection[str] = ()) -> list[LinkProblem]:
    """The problems of the links in ``text``, in the order the links appear, each link once.

    ``checker`` None means the check is off: nothing is reported, not even a link's shape. Links in ``trusted``
    (the study's scheduling links; the same link with or without a trailing slash counts) are not checked at all.
    A link whose shape is wrong is reported without asking the network; the checker gets the others.
    """
    if checker is None:
        return []
    skip = {_key(url) for url in trusted}
    urls = list(dict.fromkeys(url for url in find_urls(text) if _key(url) not in skip))
    found: list[LinkProblem] = []
    to_check: list[str] = []
    for url in urls:
        reason = shape_problems(url)
        if reason is None:
            to_check.append(url)
        else:
            found.append(LinkProblem(url, reason))
    if to_check:
        found.extend(await checker.check(to_check))
    order = {url: index for index, url in enumerate(urls)}
    return sorted(found, key=lambda problem: order.get(problem.url, len(order)))
