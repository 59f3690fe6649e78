"""Parsing of ``/rally <command> <args>`` (Slack) and the same words in Teams."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> Command:
    """``"link st_1"`` -> Command("link", ("st_1",)); empty text means help."""
    words = text.strip().split()
    if not words:
        return Command("help", ())
    return Command(words[0].lower(), tuple(words[1:]))
