"""The Respondent sandbox's record keeping: people, messages as the API shows them, read flags, webhook events.

Plain functions over the sandbox's dicts (``sandbox/respondent.py`` holds the state and the server).
"""

from __future__ import annotations

from typing import Any


def person(uid: str, first_name: str, last_name: str) -> dict[str, Any]:
    """A person as Respondent shows them in ``sender`` and ``participants[]``."""
    return {"uid": uid, "foreignId": f"f_{uid}", "firstName": first_name, "lastName": last_name}


def public(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message without the sandbox's own ``_`` fields: what the API returns."""
    return {k: v for k, v in message.items() if not k.startswith("_")}


def listed(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the inspection helpers list it: the API fields plus ``conversationUid``."""
    return {**public(message), "conversationUid": message["_conversationUid"]}


def mark_read(conv: dict[str, Any], sender_uid: str) -> None:
    """After a message from ``sender_uid``: the sender has read the conversation, every other participant (the API
    owner account included) has not. A sender who is not a participant (a researcher on the website) reads nothing."""
    for entry in conv["participants"]:
        entry["read"] = entry["uid"] == sender_uid


def messages_created(
    message_uid: str, refs: tuple[str, str] | None, *, event_uuid: str, created: str
) -> dict[str, Any]:
    """The ``MESSAGES.CREATED`` webhook body for one message; ``refs`` is ``(conversationUid, projectId)`` or None
    to leave both out."""
    resource: dict[str, Any] = {"id": message_uid, "type": "messages"}
    if refs is not None:
        resource.update(conversationUid=refs[0], projectId=refs[1])
    return {"event": "MESSAGES.CREATED", "uuid": event_uuid, "created": created, "payload": {"resource": resource}}
