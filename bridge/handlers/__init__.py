"""Turn inbox rows into state changes and outbox rows: one handler per typed event (``core.events``).

Each handler first reads what it needs from outside (Rally, Respondent, the chat platform: no transaction is
open meanwhile), then returns an :data:`~bridge.apply.Apply` that the worker runs in one unit of work together
with marking the inbox row done. Running a handler twice on the same row has the effect of running it once:
every write is keyed.

Importing this package registers every command (``core.commands.registry``); the order of the imports below is
the order of the commands in the help text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bridge import home

# isort: off
from bridge.handlers import links  # link, unlink
from bridge.handlers import commands  # help; the dispatch of every command
from bridge.reminders import commands as reminder_commands  # remind, followup, reschedule, status, reminders, cancel
from bridge.handlers import retry  # retry
from bridge.handlers import cases  # assign, settings, queue
from bridge.handlers import saved  # replies, reply, held
from bridge.handlers import updates  # update

# isort: on
from bridge.apply import Apply
from bridge.handlers import participants, reconcile, replies
from bridge.reminders import firing
from bridge.services import Services
from core import events
from core.errors import PermanentFailure
from core.records import QueuedRow

Handler = Callable[[Services, Any], Awaitable[Apply]]  # each takes its own event type (the key of HANDLERS)

HANDLERS: dict[type[events.Event], Handler] = {
    events.CommandIssued: commands.command,
    events.ChatMessagePosted: replies.posted,
    events.ChatMessageChanged: replies.changed,
    events.ParticipantWrote: participants.wrote,
    events.ParticipantStatusChanged: participants.status_changed,
    events.PersonOptedOut: participants.opted_out,
    events.ReconcileDue: reconcile.reconcile,
    events.ReminderDue: firing.fire,
    events.HomeOpened: home.opened,
}


async def handle(services: Services, row: QueuedRow) -> Apply:
    """The inbox row as its typed event (parsed once, here), handed to that event's handler."""
    event = events.parse(row.key, row.kind, row.payload)
    handler = HANDLERS.get(type(event))
    if handler is None:  # pragma: no cover - every event type has a handler
        raise PermanentFailure(f"no handler for {row.kind}")
    return await handler(services, event)


__all__ = ["HANDLERS", "Apply", "cases", "handle", "links", "reminder_commands", "retry", "saved", "updates"]
