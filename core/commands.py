"""The command registry: every ``/rally <word>`` (and the same words in Teams) in one table.

A handler module declares its command where it is defined::

    @registry.command("link", usage="<studyId>", summary="bridge a Rally study ... to this channel")
    async def link(services, command, event): ...

Slack's and Teams' inbound edges, the help text and the dispatcher (which also decides what may be clicked on the
home) all read this one table, so a new command is one decorated function. The table itself is plain data
(standard library only); the handler is kept as an opaque callable, typed by the bridge that calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.message import Text

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Command:
    """A parsed command: ``name`` is the canonical word (an alias is resolved), ``args`` the words after it."""

    name: str
    args: tuple[str, ...]
    rest: str = ""  # the text after the word, as typed (spaces kept)


@dataclass(frozen=True)
class CommandSpec:
    word: str
    usage: str  # the arguments, e.g. "<participant> <when> [message]"
    summary: str | Text  # one line of help (a Text where it names a command or the home)
    aliases: tuple[str, ...] = ()
    # Clickable on the home view (which has no channel): the handler is told it came from there.
    on_home: bool = False
    # In a Teams thread reply, a first word that is a command word is taken as a command instead of a message to the
    # participant. Only words nobody starts a message with ("link", "help") are reserved there.
    reserved_in_threads: bool = False
    in_help: bool = True
    # What the person sees at once, while the command waits its turn in the inbox (Slack's slash-command answer).
    ack: str = "One moment…"
    handler: Callable[..., Any] | None = field(default=None, compare=False, repr=False)


class CommandRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, CommandSpec] = {}
        self._aliases: dict[str, str] = {}

    def command(
        self,
        word: str,
        *,
        usage: str = "",
        summary: str | Text,
        aliases: tuple[str, ...] = (),
        on_home: bool = False,
        reserved_in_threads: bool = False,
        in_help: bool = True,
        ack: str = "One moment…",
    ) -> Callable[[F], F]:
        def register(handler: F) -> F:
            if word in self._specs or word in self._aliases:
                raise ValueError(f"command {word!r} is registered twice")
            spec = CommandSpec(word, usage, summary, aliases, on_home, reserved_in_threads, in_help, ack, handler)
            self._specs[word] = spec
            for alias in aliases:
                self._aliases[alias] = word
            return handler

        return register

    def find(self, word: str) -> CommandSpec | None:
        word = word.lower()
        return self._specs.get(self._aliases.get(word, word))

    def specs(self) -> list[CommandSpec]:
        """In the order they were registered (the order of the help text)."""
        return list(self._specs.values())

    def words(self) -> frozenset[str]:
        return frozenset(self._specs) | frozenset(self._aliases)

    def ack(self, text: str) -> str:
        """The immediate answer to ``text`` typed as a command (an unknown word gets the default)."""
        words = text.split()
        spec = self.find(words[0]) if words else self.find("help")
        return spec.ack if spec else CommandSpec("", "", "").ack

    def reserved_in_threads(self) -> frozenset[str]:
        return frozenset(s.word for s in self._specs.values() if s.reserved_in_threads)

    def parse(self, text: str) -> Command:
        """``"link st_1"`` -> Command("link", ("st_1",), "st_1"); empty text means help; an alias is resolved."""
        parts = text.strip().split(maxsplit=1)
        if not parts:
            return Command("help", ())
        word = parts[0].lower()
        rest = parts[1].strip() if len(parts) > 1 else ""
        spec = self.find(word)
        return Command(spec.word if spec else word, tuple(rest.split()), rest)


# The bridge's commands register here when their modules are imported (bridge.handlers imports them all).
registry = CommandRegistry()


def parse_command(text: str) -> Command:
    """Parse with the bridge's registry (see :meth:`CommandRegistry.parse`)."""
    return registry.parse(text)
