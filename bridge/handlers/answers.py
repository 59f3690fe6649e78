"""How a command is answered: privately to whoever typed it, in the channel they typed it in (keyed by the
command's inbox key, so it is sent once however often the command is handled)."""

from __future__ import annotations

from bridge import outbox
from bridge.apply import Answer, Apply
from core.events import CommandIssued
from core.message import Text
from core.store import UnitOfWork


def private_answer(event: CommandIssued) -> Answer:
    """An :data:`Answer` that tells the asker privately, in the channel of the command."""

    async def answer(uow: UnitOfWork, text: Text) -> None:
        await outbox.private(uow, event.platform, event.key, event.channel, event.user_id, text)

    return answer


def reply(event: CommandIssued, text: Text) -> Apply:
    """Tell the asker ``text`` privately, in the channel of the command."""
    return say(private_answer(event), text)


def say(answer: Answer, text: Text) -> Apply:
    """An :data:`Apply` that gives ``text`` as ``answer``."""

    async def apply(uow: UnitOfWork) -> None:
        await answer(uow, text)

    return apply
