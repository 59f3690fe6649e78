"""``/rally <word> ...`` (and the same words in Teams): found in the command registry, handed to its handler.

Every command is registered where it is defined (``@registry.command(...)``: ``bridge/handlers/links.py``,
``retry.py``, ``bridge/reminders/commands.py``; ``help`` here); ``bridge.handlers`` imports them all, in the order
of the help text. A word nobody registered is answered with the help; a command clicked on the home (which has no
channel) is refused there unless its spec says it works from the home.
"""

from __future__ import annotations

from typing import cast

from bridge import home
from bridge.apply import Apply, CommandHandler
from bridge.handlers.answers import reply, say
from bridge.services import Services
from core import texts
from core.commands import Command, registry
from core.errors import PermanentFailure
from core.events import CommandIssued


async def command(services: Services, event: CommandIssued) -> Apply:
    """Parse the command's text once and run its registered handler."""
    parsed = registry.parse(event.text)
    spec = registry.find(parsed.name)
    if event.from_home and (spec is None or not spec.on_home):
        # The answer is the clicker's home published again with a status line (``bridge/home.py``).
        who = await home.viewer(services, event.platform, event.workspace, event.user_id)
        answer = home.republish(who, event.key, marker=services.internal_note_marker)
        return say(answer, texts.home_not_here(parsed.name))
    if spec is None:
        return reply(event, texts.unknown_command(parsed.name, services.internal_note_marker, registry.specs()))
    if spec.handler is None:  # pragma: no cover - the decorator always sets it
        raise PermanentFailure(f"command {spec.word} has no handler")
    handler = cast(CommandHandler, spec.handler)
    return await handler(services, parsed, event)


@registry.command("help", summary="this message", reserved_in_threads=True)
async def help_(services: Services, command: Command, event: CommandIssued) -> Apply:
    """Every registered command, with what it does."""
    del command
    return reply(event, texts.help_text(services.internal_note_marker, registry.specs()))
