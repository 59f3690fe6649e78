"""Respondent Partner API messaging client: implements ``core.ports.ParticipantChannel`` (contract S1, S4).

Assumptions (the public docs are silent; see ``respondent.md`` 3.1):

* A conversation's participant ``uid`` is the Respondent *user id* passed in ``participantUserIds``.
* ``Conversation.participant_user_ids`` lists the participants **without** the API owner account (the
  conversation's ``user``), so ``message.sender_uid in conversation.participant_user_ids`` means "written
  by a participant". ``Conversation.read_by`` likewise holds only participants (entries with ``read: true``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.http import JsonHttp, malformed, parse_datetime
from core.domain import Conversation, RespondentMessage

SERVICE = "Respondent"
PAGE_SIZE = 50
MAX_PAGES = 1000


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_message(obj: Any) -> RespondentMessage:
    """A Respondent message object -> ``RespondentMessage``. Raises ``ValueError`` if ``uid`` is missing."""
    if not isinstance(obj, dict) or not isinstance(obj.get("uid"), str) or not obj["uid"]:
        raise ValueError("message without uid")
    sender = obj.get("sender")
    sender_uid = _str_or_none(sender.get("uid")) if isinstance(sender, dict) else None
    body = obj.get("body")
    return RespondentMessage(
        uid=obj["uid"],
        body=body if isinstance(body, str) else "",
        created_at=parse_datetime(obj.get("createdAt")),
        sender_uid=sender_uid,
        sender_name=_name_of(sender),
    )


def _name_of(person: Any) -> str | None:
    """``"First Last"`` of a ``{firstName, lastName}`` object, or None when it names nobody."""
    if not isinstance(person, dict):
        return None
    parts = (person.get("firstName"), person.get("lastName"))
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name or None


def parse_conversation(obj: Any) -> Conversation:
    """A Respondent ``Conversation`` object -> domain ``Conversation``. Raises ``ValueError`` if ``uid`` is missing."""
    if not isinstance(obj, dict) or not isinstance(obj.get("uid"), str) or not obj["uid"]:
        raise ValueError("conversation without uid")
    metadata = obj.get("metadata")
    project_id = _str_or_none(metadata.get("projectId")) if isinstance(metadata, dict) else None
    owner = obj.get("user")
    owner_uid = _str_or_none(owner.get("uid")) if isinstance(owner, dict) else None
    participants = obj.get("participants")
    user_ids: list[str] = []
    read_by: set[str] = set()
    if isinstance(participants, list):
        for p in participants:
            uid = _str_or_none(p.get("uid")) if isinstance(p, dict) else None
            if uid and uid != owner_uid and uid not in user_ids:
                user_ids.append(uid)
            if uid and uid != owner_uid and isinstance(p, dict) and p.get("read") is True:
                read_by.add(uid)
    raw_messages = obj.get("messages")
    messages = tuple(parse_message(m) for m in raw_messages) if isinstance(raw_messages, list) else ()
    latest = obj.get("latestMessage")
    latest_uid = _str_or_none(latest.get("uid")) if isinstance(latest, dict) else None
    count = obj.get("messagesCount")
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return Conversation(
        uid=obj["uid"],
        project_id=project_id,
        participant_user_ids=tuple(user_ids),
        messages=messages,
        latest_message_uid=latest_uid,
        messages_complete=_complete(raw_messages, messages, latest_uid, count),
        read_by=frozenset(read_by),
    )


def _complete(raw: Any, messages: tuple[RespondentMessage, ...], latest_uid: str | None, count: int | None) -> bool:
    """Whether ``messages`` are all of the conversation's messages, as far as the object itself tells.

    The docs do not say whether lists embed messages, or how many (``respondent.md`` 3.6): without a
    ``messages`` array, with fewer than ``messagesCount``, or without the ``latestMessage`` among them, they are
    not taken as complete. A conversation that says it has none (``messagesCount: 0``) is complete.
    """
    if not isinstance(raw, list):
        return count == 0
    if count is not None and count > len(messages):
        return False
    return latest_uid is None or any(m.uid == latest_uid for m in messages)


class RespondentClient:
    """``ParticipantChannel`` over the Respondent Partner API (headers ``x-api-key`` / ``x-api-secret``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10,
    ) -> None:
        self._http = JsonHttp(
            SERVICE,
            base_url,
            {"x-api-key": api_key, "x-api-secret": api_secret},
            session=session,
            timeout=timeout,
        )

    def __repr__(self) -> str:  # never show credentials
        return f"RespondentClient({self._http.base_url!r})"

    async def close(self) -> None:
        """Release the HTTP session (only if this client created it)."""
        await self._http.close()

    async def list_conversations(self, project_id: str) -> list[Conversation]:
        """Every conversation of ``project_id``, all pages (de-duplicated by uid), with the messages the list
        embeds: ``Conversation.messages_complete`` says whether they are all of them."""
        what = "GET /v1/messaging/conversations"
        found: dict[str, Conversation] = {}
        read = 0
        page = 1
        while page <= MAX_PAGES:
            params = {
                "projectId": project_id,
                "page": str(page),
                "pageSize": str(PAGE_SIZE),
                "includeCount": "true",
            }
            _, body = await self._http.request("GET", "/v1/messaging/conversations", what=what, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise malformed(SERVICE, what, "no results list")
            results: list[Any] = body["results"]
            try:
                for item in results:
                    conv = parse_conversation(item)
                    found.setdefault(conv.uid, conv)
            except ValueError as exc:
                raise malformed(SERVICE, what, str(exc)) from None
            read += len(results)
            total = body.get("totalResults")
            echoed_size = body.get("pageSize")
            if not results:
                break
            if isinstance(total, int) and read >= total:
                break
            if isinstance(echoed_size, int) and len(results) < echoed_size:
                break
            page += 1
        else:
            raise malformed(SERVICE, what, f"more than {MAX_PAGES} pages")
        return list(found.values())

    async def get_conversation(self, conversation_uid: str) -> Conversation:
        """One conversation with its embedded messages. Unknown uid -> ``NotFound``."""
        what = "GET /v1/messaging/conversations/{uid}"
        _, body = await self._http.request(
            "GET", f"/v1/messaging/conversations/{quote(conversation_uid, safe='')}", what=what
        )
        try:
            return parse_conversation(body)
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None

    async def open_conversation(
        self, project_id: str, participant_user_id: str, external_researcher_id: str
    ) -> Conversation:
        """Create a conversation between the API owner and one participant in ``project_id``."""
        what = "POST /v1/messaging/conversations"
        payload = {
            "participantUserIds": [participant_user_id],
            "projectId": project_id,
            "externalResearcherId": external_researcher_id,
        }
        _, body = await self._http.request("POST", "/v1/messaging/conversations", what=what, json_body=payload)
        try:
            return parse_conversation(body)
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None

    async def send_message(self, conversation_uid: str, body: str) -> RespondentMessage:
        """Send ``body`` to every participant of the conversation.

        A timeout or dropped connection raises ``UnknownOutcome``: read the conversation before resending.
        """
        what = "POST /v1/messaging/conversations/{uid}/messages"
        _, resp = await self._http.request(
            "POST",
            f"/v1/messaging/conversations/{quote(conversation_uid, safe='')}/messages",
            what=what,
            json_body={"body": body},
        )
        try:
            return parse_message(resp)
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None
