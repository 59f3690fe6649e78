"""When an inbox row fails for good, whoever is waiting for an answer still gets one.

A command is acknowledged at once ("Checking the study in Rally…"); if handling it then fails for good (Rally answers
401 or 403, a study's data cannot be read), the person who typed it is told privately why and what to do, instead
of waiting for an answer that never comes. Events nobody waits on (webhooks, reconciles) are logged by the worker.
"""

from __future__ import annotations

import logging

from bridge import home
from bridge.apply import Apply, nothing
from bridge.handlers.answers import reply, say
from bridge.services import Services
from core import events, texts
from core.commands import registry
from core.records import QueuedRow

log = logging.getLogger(__name__)


async def on_permanent_failure(services: Services, row: QueuedRow, reason: str) -> Apply:
    """The answer to the command of ``row`` that failed for good with ``reason``; nothing for other events."""
    try:
        event = events.parse(row.key, row.kind, row.payload)
    except (KeyError, ValueError):
        return nothing  # not even readable: the worker logged the failure
    if not isinstance(event, events.CommandIssued):
        return nothing
    said = texts.command_failed(registry.parse(event.text).name, reason)
    if event.from_home:  # the home has no channel: the answer is the home again, with the reason on top
        who = await home.viewer(services, event.platform, event.workspace, event.user_id)
        return say(home.republish(who, f"{event.key}:failed", marker=services.internal_note_marker), said)
    return reply(event, said)
