"""Fetch what contract R2 needs (the study team, the person's Rally accounts) and decide with
:func:`core.permissions.may_message_participant`: one place for every path that acts on a participant (a relayed
reply, a retry, scheduling a reminder)."""

from __future__ import annotations

from bridge.services import Services
from core.domain import ChatUser
from core.permissions import Decision, may_message_participant
from core.records import Link, Thread


async def may_message(
    services: Services,
    user: ChatUser,
    thread: Thread,
    link: Link,
    *,
    check_opt_out: bool = True,
) -> Decision:
    """Whether ``user`` may message ``thread``'s participant now. ``check_opt_out`` False leaves the opt-out to
    the caller (scheduling refuses it with its own sentence)."""
    team = await services.rally.get_team(thread.study_id)
    accounts = await services.rally.find_users_by_email(user.email) if user.email else []
    return may_message_participant(
        email=user.email,
        chat_name=user.name,
        study_name=link.study_name,
        link_active=link.active,
        participant_name=thread.display_name,
        participant_opted_out=thread.opted_out and check_opt_out,
        team=team,
        rally_users=accounts,
    )
