"""A stand-in for the Bot Framework connector as Teams serves it (the bot's ``serviceUrl``).

Routes: ``POST /botframework.com/oauth2/v2.0/token`` (client credentials -> bearer token),
``POST /v3/conversations`` (a new post in a channel, or a personal chat), ``POST /v3/conversations/{id}/activities``
and ``.../activities/{replyToId}``, ``PUT /v3/conversations/{id}/activities/{activityId}`` (update a posted
activity: the stored one is replaced, every update kept in ``activity_updates``), ``GET
/v3/conversations/{id}/members/{userId}``. Errors have the connector's shape ``{"error": {"code", "message"}}``; an
update of an activity the conversation does not hold is 404 ``ActivityNotFoundInConversation`` (the code Teams
answers for a channel thread, per Microsoft's support in BotFramework-Services#269).

Teams' per-bot-per-thread limits are enforced (7 sends / 1 s, 8 / 2 s, 60 / 30 s, 1800 / 3600 s: 429 beyond),
and the global limit per app per tenant (50 sends in any second), each a sliding window over accepted sends;
every accepted send is recorded in ``accepted`` (time, conversation, activity id). Plus the fault injection of
:class:`~sandbox.http_faults.SandboxServer` and ``drop_next_send`` (the post is stored, then the connection is
cut, so the bridge cannot know whether it happened).
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from collections import defaultdict, deque
from typing import Any, NamedTuple

from aiohttp import web

from sandbox.http_faults import SandboxServer

TEAMS_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
APP_LIMIT: tuple[float, int] = (1.0, 50)  # Microsoft: "The global limit per app per tenant is 50 RPS"


class AcceptedSend(NamedTuple):
    """One bot post the stand-in accepted (``at``: its monotonic clock)."""

    at: float
    conversation: str
    activity_id: str


TOKEN_PATH = "/botframework.com/oauth2/v2.0/token"
ACTIVITY_NOT_FOUND = "ActivityNotFoundInConversation"


class TeamsConnectorSandbox(SandboxServer):
    unauthorized_message = "Authorization has been denied for this request."

    def __init__(
        self,
        *,
        app_id: str | None,
        app_password: str | None,
        tenant_id: str = "tenant-sandbox",
        limits: bool = True,
        app_limit: tuple[float, int] | None = APP_LIMIT,
    ) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.tenant_id = tenant_id
        self.team_id = "19:team-sandbox@thread.tacv2"
        self.limits_enabled = limits
        self.app_limit = app_limit
        self.app_sends: deque[float] = deque()
        self.accepted: list[AcceptedSend] = []
        self.tokens: set[str] = set()  # bearer tokens the connector accepts (this stand-in's, or given to it)
        self.bearers: list[str] = []  # the bearer token of every connector call, accepted or not
        self.channels: dict[str, str] = {}
        self.members: dict[str, dict[str, Any]] = {}
        # conversation id -> activities in it (channel id: root posts; "<channel>;messageid=<root>": replies).
        self.conversations: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.personal: dict[str, str] = {}  # user id -> personal conversation id
        self.sends: dict[str, list[float]] = defaultdict(list)
        self.rate_limited: list[str] = []
        # activity id -> the activity as each accepted update left it, oldest first (``updates_of``)
        self.activity_updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.update_log: list[AcceptedSend] = []  # every accepted update: (time, conversation, activity id)
        self._drop_sends = 0
        self._ids = itertools.count(int(time.time() * 1000))
        super().__init__()

    # ---- set-up -----------------------------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def add_channel(self, channel_id: str, name: str) -> None:
        self.channels[channel_id] = name

    def add_member(self, user_id: str, name: str, *, email: str | None, upn: str | None = None) -> None:
        given, _, surname = name.partition(" ")
        self.members[user_id] = {
            "id": user_id,
            "name": name,
            "aadObjectId": secrets.token_hex(8),
            "email": email,
            "userPrincipalName": upn or email,
            "givenName": given,
            "surname": surname,
            "tenantId": self.tenant_id,
            "userRole": "user",
        }

    def reset_limits(self) -> None:
        """Every window empty again (as after a long quiet spell); forget accepted and refused sends."""
        self.sends.clear()
        self.app_sends.clear()
        self.accepted.clear()
        self.rate_limited.clear()

    def drop_next_send(self, n: int = 1) -> None:
        """Store the next ``n`` bot posts, then cut the connection instead of answering."""
        self._drop_sends += n

    # ---- what the channel shows -------------------------------------------------------------------------
    def roots(self, channel_id: str) -> list[dict[str, Any]]:
        return list(self.conversations.get(channel_id, []))

    def replies(self, channel_id: str, root_id: str) -> list[dict[str, Any]]:
        return list(self.conversations.get(f"{channel_id};messageid={root_id}", []))

    def updates_of(self, activity_id: str) -> list[dict[str, Any]]:
        """The activity ``activity_id`` as each accepted update left it, oldest first (empty: never updated)."""
        return copy.deepcopy(self.activity_updates.get(activity_id, []))

    def find_activity(self, activity_id: str) -> dict[str, Any] | None:
        """The stored activity ``activity_id`` (a root, a reply or a personal message) as it stands now."""
        for activities in self.conversations.values():
            for activity in activities:
                if activity.get("id") == activity_id:
                    return copy.deepcopy(activity)
        return None

    def personal_messages(self, user_id: str) -> list[str]:
        conversation = self.personal.get(user_id)
        return [a.get("text", "") for a in self.conversations.get(conversation, [])] if conversation else []

    # ---- SandboxServer hooks ----------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/v3/conversations/{conversation}/members/{user}", self._member)
        app.router.add_get("/v3/conversations/{conversation}/pagedmembers", self._paged_members)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        codes = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}
        return {"error": {"code": codes.get(status, "ServiceError"), "message": message}}

    def authorized(self, request: web.Request) -> bool:
        if request.path == TOKEN_PATH:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            self.bearers.append(header[len("Bearer ") :])
        if not self.app_id:
            return True
        return header.startswith("Bearer ") and header[len("Bearer ") :] in self.tokens

    # ---- handlers ---------------------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": token})

    def _over_limit(self, conversation: str, now: float) -> bool:
        if not self.limits_enabled:
            return False
        recent = [t for t in self.sends[conversation] if now - t < 3600]
        self.sends[conversation] = recent
        return any(sum(1 for t in recent if now - t < window) >= count for window, count in TEAMS_LIMITS)

    def _over_app_limit(self, now: float) -> bool:
        if not self.limits_enabled or self.app_limit is None:
            return False
        window, count = self.app_limit
        while self.app_sends and now - self.app_sends[0] >= window:
            self.app_sends.popleft()
        return len(self.app_sends) >= count

    def admit(self, conversation: str, now: float) -> str | None:
        """Count a send into ``conversation`` arriving at ``now`` (monotonic); the refusal's reason if over a limit."""
        if self._over_limit(conversation, now):
            self.rate_limited.append(conversation)
            return "Too many requests for this thread"
        if self._over_app_limit(now):
            self.rate_limited.append(conversation)
            return "Too many requests for this app"
        self.sends[conversation].append(now)
        self.app_sends.append(now)
        return None

    def _count(self, conversation: str) -> web.Response | None:
        refused = self.admit(conversation, time.monotonic())
        return self.error_response(429, refused) if refused is not None else None

    async def _store(self, request: web.Request, conversation: str, activity: dict[str, Any]) -> web.Response:
        """Store a bot post; answer with its id, or store it and cut the connection (``drop_next_send``)."""
        activity = {**activity, "id": activity.get("id") or self.next_id(), "from": {"id": f"28:{self.app_id}"}}
        self.conversations[conversation].append(activity)
        self.accepted.append(AcceptedSend(time.monotonic(), conversation, str(activity["id"])))
        if self._drop_sends > 0:
            self._drop_sends -= 1
            if request.transport is not None:
                request.transport.close()
        return web.json_response({"id": activity["id"]}, status=201)

    async def _create(self, request: web.Request) -> web.Response:
        params = await request.json()
        channel = ((params.get("channelData") or {}).get("channel") or {}).get("id")
        if params.get("isGroup") and channel:
            if channel not in self.channels:
                return self.error_response(404, "Conversation not found.")
            limited = self._count(channel)
            if limited is not None:
                return limited
            root = self.next_id()
            activity = {**(params.get("activity") or {}), "id": root}
            self.conversations[channel].append(activity)
            self.accepted.append(AcceptedSend(time.monotonic(), channel, root))
            if self._drop_sends > 0:
                self._drop_sends -= 1
                if request.transport is not None:
                    request.transport.close()
            return web.json_response({"id": f"{channel};messageid={root}", "activityId": root}, status=201)
        members = params.get("members") or []
        if len(members) != 1 or members[0].get("id") not in self.members:
            return self.error_response(403, "The bot is not permitted to message this user.")
        user_id = members[0]["id"]
        conversation = self.personal.setdefault(user_id, f"a:{secrets.token_hex(10)}")
        return web.json_response({"id": conversation}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        base, _, root = conversation.partition(";messageid=")
        known_roots = {a["id"] for a in self.conversations.get(base, [])}
        if conversation.startswith("19:") and (base not in self.channels or (root and root not in known_roots)):
            return self.error_response(404, "Conversation not found.")
        if conversation.startswith("a:") and conversation not in self.personal.values():
            return self.error_response(404, "Conversation not found.")
        limited = self._count(conversation)
        if limited is not None:
            return limited
        activity = await request.json()
        return await self._store(request, conversation, activity)

    def _holder(self, conversation: str, activity_id: str) -> list[dict[str, Any]] | None:
        """The stored list that holds ``activity_id`` in ``conversation``: a channel's roots (for the channel or the
        root's own thread), a thread's replies, a personal chat's messages. None: no such conversation."""
        base, _, root = conversation.partition(";messageid=")
        if conversation.startswith("19:"):
            roots = self.conversations.get(base, [])
            if base not in self.channels or (root and root not in {a["id"] for a in roots}):
                return None
            if not root or activity_id == root:
                return roots
            return self.conversations.get(conversation, [])
        if conversation not in self.personal.values():
            return None
        return self.conversations.get(conversation, [])

    async def _update(self, request: web.Request) -> web.Response:
        """Replace a posted activity with the one sent (its id and sender kept); answer ``{"id"}`` like Teams."""
        conversation, activity_id = request.match_info["conversation"], request.match_info["activity"]
        holder = self._holder(conversation, activity_id)
        if holder is None:
            return web.json_response(
                {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}}, status=404
            )
        index = next((i for i, a in enumerate(holder) if a.get("id") == activity_id), None)
        if index is None:
            body = {"error": {"code": ACTIVITY_NOT_FOUND, "message": "Message does not exist in the thread."}}
            return web.json_response(body, status=404)
        limited = self._count(conversation)
        if limited is not None:
            return limited
        sent = await request.json()
        if not isinstance(sent, dict) or sent.get("type") != "message":
            return self.error_response(400, "The activity to update must be a message.")
        updated = {**sent, "id": activity_id, "from": holder[index].get("from") or {"id": f"28:{self.app_id}"}}
        holder[index] = updated
        self.activity_updates[activity_id].append(copy.deepcopy(updated))
        self.update_log.append(AcceptedSend(time.monotonic(), conversation, activity_id))
        return web.json_response({"id": activity_id}, status=200)

    async def _paged_members(self, request: web.Request) -> web.Response:
        """The roster a page at a time (``pageSize``, ``continuationToken`` = the index to start from)."""
        size = max(1, min(int(request.query.get("pageSize") or 500), 500))
        start = int(request.query.get("continuationToken") or 0)
        everyone = [{k: v for k, v in m.items() if v is not None} for m in self.members.values()]
        page = everyone[start : start + size]
        token = str(start + size) if start + size < len(everyone) else None
        return web.json_response({"members": page, **({"continuationToken": token} if token else {})})

    async def _member(self, request: web.Request) -> web.Response:
        member = self.members.get(request.match_info["user"])
        if member is None:
            return self.error_response(404, "Member not found in conversation.")
        return web.json_response({k: v for k, v in member.items() if v is not None})
