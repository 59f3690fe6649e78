"""A stand-in for the Respondent Partner API messaging endpoints (``respondent.md`` 2-3, contract S1-S4).

Serves ``GET/POST /v1/messaging/conversations``, ``GET /v1/messaging/conversations/{uid}`` and
``POST /v1/messaging/conversations/{uid}/messages`` with ``x-api-key``/``x-api-secret`` checks, keeps
conversations in memory, and plays participants writing back (signed ``MESSAGES.CREATED`` webhooks), researchers
writing from Respondent's own website, and the ``participants[].read`` flags (``respondent_state``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from sandbox.http_faults import SandboxServer
from sandbox.respondent_state import listed, mark_read, messages_created, person, public

OWNER = {"uid": "u_api_owner", "foreignId": "owner", "firstName": "Api", "lastName": "Owner"}
CONVERSATIONS = "/v1/messaging/conversations"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object_id() -> str:
    return secrets.token_hex(12)


def endpoint_of(request: web.Request) -> str:
    """``"GET /v1/messaging/conversations/{uid}"``: the method and the route template the request matched."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else request.path}"


class RespondentSandbox(SandboxServer):
    """In-memory Respondent with fault injection. See the module docstring; start with ``await start()``."""

    unauthorized_message = "Invalid API credentials"

    def __init__(
        self,
        api_key: str = "sandbox-key",
        api_secret: str = "sandbox-secret",
        *,
        webhook_url: str | None = None,
        webhook_key: str = "sandbox-webhook-key",
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.webhook_url = webhook_url
        self.webhook_key = webhook_key
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.conversations: dict[str, dict[str, Any]] = {}
        self.max_page_size = 100  # larger pageSize values are capped, as an API might
        # Whether list results embed each conversation's messages (``respondent.md`` 3.2 returns ``Conversation[]``,
        # whose ``messages`` field is optional): False serves the list without them, as an API might.
        self.list_embeds_messages = True
        # Requests per endpoint (``"GET /v1/messaging/conversations"``); and each one's time (epoch seconds),
        # endpoint and project (the ``projectId`` asked for, or the project of the conversation in the path, or "").
        self.calls: Counter[str] = Counter()
        self.call_log: list[tuple[float, str, str]] = []
        self.users: dict[str, dict[str, str]] = {}
        self.researchers: dict[tuple[str, str], dict[str, Any]] = {}  # people writing on Respondent's website
        self._hang_sends: list[float] = []
        self._drop_sends = 0
        self._seq = itertools.count()
        super().__init__()

    # ---- HTTP ------------------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        """Register the messaging routes."""
        app.router.add_get(CONVERSATIONS, self._list)
        app.router.add_post(CONVERSATIONS, self._create)
        app.router.add_get(CONVERSATIONS + "/{uid}", self._get)
        app.router.add_post(CONVERSATIONS + "/{uid}/messages", self._send)

    def on_request(self, request: web.Request) -> None:
        """Count every request by endpoint (route template), including those answered with an injected failure."""
        endpoint = endpoint_of(request)
        self.calls[endpoint] += 1
        conv = self.conversations.get(request.match_info.get("uid", ""))
        project = request.query.get("projectId") or (conv["metadata"].get("projectId") if conv else None)
        self.call_log.append((time.time(), endpoint, project or ""))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """S4: ``{statusCode, message, error}``."""
        return {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}

    def authorized(self, request: web.Request) -> bool:
        """Both ``x-api-key`` and ``x-api-secret`` must match (constant time)."""
        key = request.headers.get("x-api-key", "")
        secret = request.headers.get("x-api-secret", "")
        return hmac.compare_digest(key.encode(), self.api_key.encode()) and hmac.compare_digest(
            secret.encode(), self.api_secret.encode()
        )

    def _view(self, conv: dict[str, Any], *, with_messages: bool = True, with_user: bool = True) -> dict[str, Any]:
        messages = [public(m) for m in conv["messages"]]
        view = {k: v for k, v in conv.items() if k != "messages"}
        view["messagesCount"] = len(messages)
        if messages:
            latest = messages[-1]
            view["latestMessage"] = {k: latest[k] for k in ("uid", "body", "createdAt", "updatedAt")}
        if with_messages:
            view["messages"] = messages
        if not with_user:
            view.pop("user", None)
        return view

    @staticmethod
    def _positive_int(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise web.HTTPBadRequest(reason=f"{name} must be a number") from None
        if value < 1:
            raise web.HTTPBadRequest(reason=f"{name} must not be less than 1")
        return min(value, maximum) if maximum else value

    async def _list(self, request: web.Request) -> web.Response:
        page = self._positive_int(request, "page", 1)
        size = self._positive_int(request, "pageSize", 20, maximum=self.max_page_size)
        project_id = request.query.get("projectId")
        researcher = request.query.get("externalResearcherId")
        matching = [
            c
            for c in self.conversations.values()
            if (project_id is None or c["metadata"].get("projectId") == project_id)
            and (researcher is None or c["metadata"].get("externalResearcherId") == researcher)
        ]
        chunk = matching[(page - 1) * size : page * size]
        results = [self._view(c, with_messages=self.list_embeds_messages) for c in chunk]
        body: dict[str, Any] = {"page": page, "pageSize": size, "results": results}
        if request.query.get("includeCount") == "true":
            body["totalResults"] = len(matching)
        return web.json_response(body)

    async def _get(self, request: web.Request) -> web.Response:
        conv = self.conversations.get(request.match_info["uid"])
        if conv is None:
            return self.error_response(404, "Conversation not found")
        return web.json_response(self._view(conv))

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(reason="Request body must be valid JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(reason="Request body must be an object")
        return data

    async def _create(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        user_ids = data.get("participantUserIds")
        if not isinstance(user_ids, list) or not user_ids or not all(isinstance(u, str) and u for u in user_ids):
            return self.error_response(400, "participantUserIds must contain at least 1 elements")
        project_id = data.get("projectId")
        if project_id is not None and not isinstance(project_id, str):
            return self.error_response(400, "projectId must be a mongodb id")
        researcher = data.get("externalResearcherId")
        conv = self._new_conversation(project_id, user_ids, researcher if isinstance(researcher, str) else None)
        return web.json_response(self._view(conv), status=201)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        conv = self.conversations.get(request.match_info["uid"])
        if conv is None:
            return self.error_response(404, "Conversation not found")
        data = await self._json(request)
        body = data.get("body")
        if not isinstance(body, str) or not body.strip():
            return self.error_response(400, "body should not be empty")
        if conv["locked"]:
            return self.error_response(400, "Conversation is locked")
        message = self._append(conv, OWNER, body)
        response = public(message)
        response["conversation"] = self._view(conv, with_messages=False, with_user=False)
        if self._drop_sends:
            self._drop_sends -= 1
            if request.transport is not None:
                request.transport.abort()  # recorded, but the client never hears back
            return web.json_response(response, status=201)
        if self._hang_sends:
            await self.pause(self._hang_sends.pop(0))
        return web.json_response(response, status=201)

    # ---- state -----------------------------------------------------------------------------------------
    def _person(self, user_id: str) -> dict[str, Any]:
        names = self.users.get(user_id, {})
        return person(user_id, names.get("firstName", ""), names.get("lastName", ""))

    def _researcher(self, first_name: str, last_name: str) -> dict[str, Any]:
        """A researcher of the team on Respondent's website: one person (own uid) per name, never the API owner."""
        key = (first_name, last_name)
        if key not in self.researchers:
            self.researchers[key] = person(f"u_researcher_{_object_id()}", first_name, last_name)
        return self.researchers[key]

    def _new_conversation(
        self, project_id: str | None, user_ids: list[str], researcher: str | None, uid: str | None = None
    ) -> dict[str, Any]:
        uid = uid or _object_id()
        now = _now()
        participants = [{**p, "read": False, "deleted": False} for p in [OWNER, *(self._person(u) for u in user_ids)]]
        conv: dict[str, Any] = {
            "uid": uid,
            "name": "Study chat",
            "createdAt": now,
            "updatedAt": now,
            "deleted": False,
            "locked": False,
            "read": False,
            "metadata": {"projectId": project_id, "externalResearcherId": researcher},
            "user": dict(OWNER),
            "participants": participants,
            "messages": [],
        }
        self.conversations[uid] = conv
        return conv

    def _append(self, conv: dict[str, Any], sender: dict[str, Any], body: str) -> dict[str, Any]:
        now = _now()
        message = {
            "uid": _object_id(),
            "body": body,
            "createdAt": now,
            "updatedAt": now,
            "sender": dict(sender),
            "_seq": next(self._seq),
            "_conversationUid": conv["uid"],
        }
        conv["messages"].append(message)
        conv["updatedAt"] = now
        mark_read(conv, sender["uid"])
        return message

    def conversation_with(self, project_id: str, user_id: str) -> dict[str, Any] | None:
        """The newest conversation of ``project_id`` that includes ``user_id``."""
        found = [
            c
            for c in self.conversations.values()
            if c["metadata"].get("projectId") == project_id and any(p["uid"] == user_id for p in c["participants"])
        ]
        return found[-1] if found else None

    def add_conversation(
        self, project_id: str, user_id: str, *, first_name: str = "", last_name: str = "", uid: str | None = None
    ) -> str:
        """Create a conversation directly (as if opened elsewhere; ``uid`` to choose its id); returns its uid."""
        self.users.setdefault(user_id, {"firstName": first_name, "lastName": last_name})
        return str(self._new_conversation(project_id, [user_id], None, uid)["uid"])

    async def participant_writes(
        self,
        project_id: str,
        user_id: str,
        body: str,
        *,
        first_name: str = "",
        last_name: str = "",
        include_refs: bool = True,
        deliveries: int = 1,
    ) -> str:
        """``user_id`` writes ``body`` in their conversation of ``project_id``; returns the message uid.

        Creates the conversation if none exists, then (if ``webhook_url`` is set) delivers a signed
        ``MESSAGES.CREATED`` webhook ``deliveries`` times (same ``uuid``), each retried on non-2xx.
        ``include_refs=False`` omits ``conversationUid`` and ``projectId`` from the payload.
        """
        if first_name or last_name or user_id not in self.users:
            self.users[user_id] = {"firstName": first_name, "lastName": last_name}
        conv = self._conversation_for(project_id, user_id)
        message = self._append(conv, self._person(user_id), body)
        await self._notify(message, project_id, refs=include_refs, deliveries=deliveries)
        return str(message["uid"])

    async def researcher_writes_outside(
        self,
        project_id: str,
        user_id: str,
        body: str,
        *,
        first_name: str = "Dana",
        last_name: str = "Researcher",
        notify: bool = True,
    ) -> dict[str, Any]:
        """A researcher writes ``body`` to ``user_id`` on Respondent's own website, not through the API.

        The sender is that researcher (see ``_researcher``), neither the participant nor the API owner; the read
        flags change as for any message, and with ``notify`` the same signed ``MESSAGES.CREATED`` webhook as for
        ``participant_writes`` is delivered. Returns the message as ``messages_to`` lists them.
        """
        conv = self._conversation_for(project_id, user_id)
        message = self._append(conv, self._researcher(first_name, last_name), body)
        if notify:
            await self._notify(message, project_id)
        return listed(message)

    def participant_reads(self, user_id: str, project_id: str | None = None) -> None:
        """``user_id`` opens Respondent and reads their conversation(s) (only those of ``project_id`` if given):
        their ``participants[].read`` becomes true. Raises ``KeyError`` when they have no such conversation."""
        entries = [
            p
            for c in self.conversations.values()
            if project_id is None or c["metadata"].get("projectId") == project_id
            for p in c["participants"]
            if p["uid"] == user_id
        ]
        if not entries:
            raise KeyError(f"no conversation of {user_id} in {project_id or 'any project'}")
        for entry in entries:
            entry["read"] = True

    def _conversation_for(self, project_id: str, user_id: str) -> dict[str, Any]:
        """``user_id``'s newest conversation of ``project_id``, opened if there is none yet."""
        return self.conversation_with(project_id, user_id) or self._new_conversation(project_id, [user_id], None)

    async def _notify(
        self, message: dict[str, Any], project_id: str, *, refs: bool = True, deliveries: int = 1
    ) -> None:
        """Deliver ``MESSAGES.CREATED`` for ``message`` ``deliveries`` times (one ``uuid``), if ``webhook_url``."""
        conv_refs = (str(message["_conversationUid"]), project_id) if refs else None
        event = messages_created(str(message["uid"]), conv_refs, event_uuid=str(uuid.uuid4()), created=_now())
        for _ in range(deliveries):
            await self.send_webhook(event)

    def sign(self, raw_body: bytes) -> str:
        """``sha256=<base64 HMAC-SHA256(webhook_key, raw_body)>``."""
        digest = hmac.new(self.webhook_key.encode("utf-8"), raw_body, hashlib.sha256).digest()
        return "sha256=" + base64.b64encode(digest).decode("ascii")

    async def send_webhook(self, event: dict[str, Any]) -> int | None:
        """Deliver one webhook (with retries) to ``webhook_url``; ``None`` if no URL or unreachable."""
        if not self.webhook_url:
            return None
        raw = json.dumps(event, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": self.sign(raw)}
        return await self.deliver(
            self.webhook_url,
            str(event["uuid"]),
            lambda _attempt: (headers, raw),
            retries=self.webhook_retries,
            retry_delay=self.webhook_retry_delay,
        )

    # ---- faults specific to sending ---------------------------------------------------------------------
    def hang_next_send(self, seconds: float) -> None:
        """The next send records the message, then waits ``seconds`` before answering (client times out)."""
        self._hang_sends.append(seconds)

    def drop_next_send(self, n: int = 1) -> None:
        """The next ``n`` sends record the message, then drop the connection without answering."""
        self._drop_sends += n

    # ---- inspection ------------------------------------------------------------------------------------
    def _messages(self, user_id: str, *, from_owner: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for conv in self.conversations.values():
            if not any(p["uid"] == user_id for p in conv["participants"]):
                continue
            for m in conv["messages"]:
                sender = m["sender"]["uid"]
                if (from_owner and sender == OWNER["uid"]) or (not from_owner and sender == user_id):
                    out.append(m)
        out.sort(key=lambda m: m["_seq"])
        return [listed(m) for m in out]

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        """Messages the API owner sent in ``user_id``'s conversations, oldest first."""
        return self._messages(user_id, from_owner=True)

    def messages_from(self, user_id: str) -> list[dict[str, Any]]:
        """Messages ``user_id`` wrote, oldest first."""
        return self._messages(user_id, from_owner=False)
