"""What every scene of ``rallybridge demo`` stands on: printing a line or a step, waiting for an outcome, and
reading the stand-ins (Slack's messages, cards and reactions, what Respondent delivered, what Rally archived).

Every line about an outcome is read back from the stand-ins after waiting for it; nothing is assumed.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from typing import Any, TypeVar

from playground.world import Candidate, Person, World

T = TypeVar("T")
TIMEOUT = 15.0  # seconds to wait for any one outcome before calling the demo failed
WIDTH = 110
CARD_HINT = "Reply in this thread to message them."  # the card's last line, under its status lines


class DemoFailure(Exception):
    """Something the demo waited for did not happen."""


def say(text: str = "") -> None:
    """Print one line, wrapped at ``WIDTH`` with a hanging indent (URLs are never broken)."""
    hang = " " * (len(text) - len(text.lstrip(" ")) + 4)
    print(
        textwrap.fill(text, WIDTH, subsequent_indent=hang, break_long_words=False, break_on_hyphens=False), flush=True
    )


def failed(reason: str) -> int:
    say()
    say(f"FAILED: {reason}")
    return 1


def step(number: int | str, text: str) -> None:
    say()
    say(f"[{number}] {text}")


async def until(check: Callable[[], T], what: str) -> T:
    """Poll ``check`` until it returns something truthy; ``DemoFailure`` naming ``what`` after ``TIMEOUT``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailure(f"waited {TIMEOUT:.0f}s for {what}, and it did not happen")
        await asyncio.sleep(0.05)


def card_status(text: str) -> list[str]:
    """The status lines of a thread root's text (the card as Slack holds it now): every line after the header
    (who and study, session, scheduling link) and before the hint."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [line for line in lines[1:] if not line.startswith(("Session:", "Scheduling:")) and line != CARD_HINT]


class Scenes:
    """The stand-ins as the demo reads them; the scenes are in subclasses."""

    def __init__(self, world: World, pace: float) -> None:
        self.w = world
        self.c = world.cast
        self.pace = pace
        self.roots: dict[str, str] = {}  # participant id -> thread root ts
        self.replies: dict[str, str] = {}  # participant id -> ts of the team's relayed reply in their thread
        self.refused: list[dict[str, Any]] = []  # the private refusals the scenes read back

    def name(self, user_id: str) -> str:
        return str(self.w.slack.users.get(user_id, {}).get("real_name", user_id))

    def slack_line(self, message: dict[str, Any], where: str) -> None:
        """A Slack message as posted (raw mrkdwn), one indented line per line of text."""
        lines = [line.strip() for line in message["text"].splitlines() if line.strip()] or [""]
        say(f"    Slack #{self.c.channel_name} {where} · {self.name(message.get('user', '?'))}: {lines[0]}")
        for line in lines[1:]:
            say(f"        {line}")

    def root_messages(self, who: Candidate) -> list[dict[str, Any]]:
        tag = f"{who.first_name} {who.last_name[0]}."
        return [
            m
            for m in self.w.slack.messages(self.c.channel)
            if tag in m.get("text", "")
            and "Reply in this thread" in m.get("text", "")
            and m.get("thread_ts") in (None, m["ts"])
        ]

    def root(self, who: Candidate) -> dict[str, Any]:
        """``who``'s thread root as Slack holds it now (its text changes in place as the card is redrawn)."""
        ts = self.roots[who.participant_id]
        return next(m for m in self.w.slack.messages(self.c.channel) if m["ts"] == ts)

    def card(self, who: Candidate) -> list[str]:
        """The status lines of ``who``'s card, read from the root's current text."""
        return card_status(str(self.root(who).get("text", "")))

    def thread(self, who: Candidate) -> list[dict[str, Any]]:
        return self.w.slack.thread(self.c.channel, self.roots[who.participant_id])

    def private_notes(self, person: Person) -> list[dict[str, Any]]:
        """What only ``person`` sees in the study channel (Slack's ephemeral messages), oldest first."""
        return [e for e in self.w.slack.ephemerals if e["user"] == person.slack_id and e["channel"] == self.c.channel]

    def received(self, who: Candidate) -> list[str]:
        return [m["body"] for m in self.w.respondent.messages_to(who.respondent_user_id)]

    def reacted(self, ts: str, name: str = "white_check_mark") -> bool:
        return name in self.w.slack.reactions(self.c.channel, ts)

    def archived(self) -> list[dict[str, Any]]:
        return self.w.rally.archived(self.c.study_id)

    async def command(self, person: Person, text: str) -> None:
        result = await self.w.slack.run_command(self.c.channel, person.slack_id, text)
        if result.status != 200:
            raise DemoFailure(f'the bridge answered HTTP {result.status} to "/rally {text}": {result.body[:200]}')

    async def root_of(self, who: Candidate) -> None:
        found = await until(lambda: self.root_messages(who), f"{who.first_name}'s thread root in Slack")
        self.roots[who.participant_id] = found[0]["ts"]
        self.slack_line(found[0], "[new thread]")

    async def show_card(self, who: Candidate, expected: str, *, what: str) -> list[str]:
        """Wait until ``who``'s card says ``expected`` (a chat.update of the root), then print its status lines."""

        def says() -> list[str]:
            lines = self.card(who)
            return lines if any(expected in line for line in lines) else []

        lines = await until(says, f"{who.first_name}'s card to say “{expected}” ({what})")
        updates = len(self.w.slack.update_history(self.c.channel, self.roots[who.participant_id]))
        edited = "edited" if self.root(who).get("edited") else "not edited"
        say(
            f"    Slack: {who.first_name}'s thread root, updated in place ({updates} chat.update so far, {edited}), "
            "now says:"
        )
        for line in lines:
            say(f"        {line}")
        return lines
