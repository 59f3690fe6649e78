"""What a handler hands back: the writes to make in the unit of work that also finishes its inbox row.

A handler reads (and calls the network) first, outside any transaction; it returns an :data:`Apply`, which the
worker runs inside ``store.transaction()`` together with marking the row done, so its writes commit with it or
not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.store import UnitOfWork

if TYPE_CHECKING:
    from bridge.services import Services
    from core.commands import Command
    from core.events import CommandIssued
    from core.message import Text

# The writes of one handled event, run in the unit of work that finishes its row.
Apply = Callable[[UnitOfWork], Awaitable[None]]

# Tell whoever issued a command something (a reply in the channel, or the home view published again).
Answer = Callable[[UnitOfWork, "Text"], Awaitable[None]]

# A command's handler, registered with ``@core.commands.registry.command(...)``.
CommandHandler = Callable[["Services", "Command", "CommandIssued"], Awaitable[Apply]]


async def nothing(uow: UnitOfWork) -> None:
    """An :data:`Apply` with nothing to write."""
    del uow


__all__ = ["Answer", "Apply", "CommandHandler", "nothing"]
