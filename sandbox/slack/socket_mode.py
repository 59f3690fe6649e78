"""Socket Mode as Slack serves it: ``apps.connections.open`` (app-level ``xapp-`` token) hands out a one-time
``ws://.../link/?ticket=...`` URL; the websocket says ``hello``, delivers envelopes (``events_api``,
``slash_commands``, ``interactive``) and expects ``{"envelope_id": ...}`` acks (with ``payload`` where the envelope
``accepts_response_payload``). Envelopes not acked on a live connection are delivered again on the next
connection, like Slack's retries. ``drop_socket`` and ``drop_after_next_envelope`` act out lost connections.

With ``socket_mode=True`` every delivery of the Events mixin (``user_posts``, ``run_command``, clicks, modal
submissions) goes over the socket instead of an HTTP POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSCloseCode, WSMsgType, web

from sandbox.slack.events import EventsMixin
from sandbox.slack.state import ApiCall

log = logging.getLogger(__name__)


@dataclass
class SocketEnvelope:
    """One thing Slack sends over the socket; ``envelope_ids`` grows with each redelivery."""

    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    envelope_ids: list[str] = field(default_factory=list)
    acked: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def deliveries(self) -> int:
        return len(self.envelope_ids)


@dataclass
class SocketAck:
    """An ack as it arrived: on which connection, when (``time.time()``), and whether Slack took it."""

    envelope_id: str
    message: dict[str, Any]
    connection: int
    at: float
    accepted: bool


@dataclass
class _Connection:
    number: int
    ws: web.WebSocketResponse
    dropped: bool = False  # Slack's side is gone: what arrives now is lost


AckHook = Callable[[SocketEnvelope, dict[str, Any]], Awaitable[None]]


class SocketModeMixin(EventsMixin):
    """The Socket Mode endpoint: ``apps.connections.open`` and the websocket behind it."""

    def __init__(
        self,
        *,
        app_token: str = "xapp-1-A0SANDBOX-1-sandbox-app-token",
        socket_mode: bool = False,
        socket_ack_timeout: float = 20.0,
        **options: Any,
    ) -> None:
        """``socket_mode``: deliver events, commands and interactions over the socket (not ``events_url``)."""
        super().__init__(**options)
        self.app_token = app_token
        self.socket_mode = socket_mode
        self.socket_ack_timeout = socket_ack_timeout
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self.connections_opened = 0  # websockets accepted (a reconnect adds one)
        self.envelopes: list[SocketEnvelope] = []  # every envelope, acked or not, oldest first
        self._by_envelope_id: dict[str, SocketEnvelope] = {}
        self.socket_acks: list[SocketAck] = []
        self.on_ack: AckHook | None = None  # awaited when an ack arrives, before the delivery counts as acked
        self._drop_after: int = 0
        self._connected = asyncio.Condition()

    def add_socket_mode_routes(self, app: web.Application) -> None:
        """Before the generic ``/api/{method}`` route: ``apps.connections.open`` needs the app-level token."""
        app.router.add_route("*", "/api/apps.connections.open", self._connections_open)
        app.router.add_get("/link/", self._link)

    # --- apps.connections.open ----------------------------------------------------------------------------

    async def _connections_open(self, request: web.Request) -> web.Response:
        method = "apps.connections.open"
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else str(params.get("token") or "")
        fault = self._take_fault(method)
        error, status = None, 200
        if fault is not None and fault.kind == "ratelimit":
            self.request_log.append(ApiCall(method, "ratelimited", 429))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(fault.retry_after)}
            )
        if fault is not None and fault.kind == "fail":
            error, status = fault.error or "internal_error", fault.status
        elif not token:
            error = "not_authed"
        elif token in self.token_teams:
            error = "not_allowed_token_type"  # a bot token: Slack wants the app-level xapp- token here
        elif token != self.app_token:
            error = "invalid_auth"
        if error is not None:
            self.request_log.append(ApiCall(method, error, status))
            return web.json_response({"ok": False, "error": error}, status=status)
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        self.request_log.append(ApiCall(method, "ok", 200))
        host = request.url.host or "127.0.0.1"
        port = request.url.port
        return web.json_response({"ok": True, "url": f"ws://{host}:{port}/link/?ticket={ticket}"})

    # --- the websocket --------------------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._tickets.discard(ticket)  # one connection per URL, like Slack's
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_opened += 1
        connection = _Connection(self.connections_opened, ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._connections) + 1,
                "debug_info": {"host": "sandbox-socket", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.api_app_id},
            }
        )
        async with self._connected:
            self._connections.append(connection)
            self._connected.notify_all()
        # Slack retries what was never acked: deliver it again on the new connection.
        for envelope in [e for e in self.envelopes if not e.acked.done()]:
            await self._send(connection, envelope)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._received(connection, message.data)
        finally:
            with contextlib.suppress(ValueError):
                self._connections.remove(connection)
        return ws

    async def _received(self, connection: _Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("slack sandbox socket: not JSON: %r", data[:200])
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        envelope_id = str(message["envelope_id"])
        envelope = self._by_envelope_id.get(envelope_id)
        accepted = not connection.dropped and envelope is not None and not envelope.acked.done()
        self.socket_acks.append(SocketAck(envelope_id, message, connection.number, time.time(), accepted))
        if not accepted or envelope is None:
            return
        if self.on_ack is not None:
            await self.on_ack(envelope, message)
        if not envelope.acked.done():
            envelope.acked.set_result(message)

    async def _send(self, connection: _Connection, envelope: SocketEnvelope) -> None:
        envelope_id = str(uuid.uuid4())
        self._by_envelope_id[envelope_id] = envelope
        envelope.envelope_ids.append(envelope_id)
        frame: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope.type,
            "payload": envelope.payload,
            "accepts_response_payload": envelope.accepts_response_payload,
        }
        if envelope.type == "events_api":
            frame["retry_attempt"] = envelope.deliveries - 1
            frame["retry_reason"] = "timeout" if envelope.deliveries > 1 else ""
        drop = self._drop_after > 0 and not connection.dropped
        if drop:
            self._drop_after -= 1
            connection.dropped = True  # an ack for this envelope will not reach Slack
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.ws.send_json(frame)
        if drop:
            await self._close(connection)

    async def _close(self, connection: _Connection) -> None:
        connection.dropped = True
        with contextlib.suppress(ValueError):
            self._connections.remove(connection)
        with contextlib.suppress(Exception):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped by the sandbox")

    # --- what tests do --------------------------------------------------------------------------------------

    @property
    def socket_connections(self) -> int:
        """How many websockets are open now."""
        return len(self._connections)

    async def wait_for_socket(self, within: float = 10.0) -> None:
        """Wait until a client is connected (after ``hello``)."""
        async with self._connected:
            await asyncio.wait_for(self._connected.wait_for(lambda: bool(self._connections)), within)

    def drop_after_next_envelope(self, n: int = 1) -> None:
        """Drop the connection right after sending each of the next ``n`` envelopes: the client gets them, but
        its acks are lost, so they are delivered again on the next connection."""
        self._drop_after += n

    async def drop_socket(self, *, graceful: bool = False) -> None:
        """Drop every open connection. ``graceful``: first send ``{"type": "disconnect", "reason":
        "refresh_requested"}`` (the client opens a new connection, then closes the old one), as Slack does
        before it recycles a connection."""
        for connection in list(self._connections):
            if graceful:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await connection.ws.send_json(
                        {
                            "type": "disconnect",
                            "reason": "refresh_requested",
                            "debug_info": {"host": "sandbox-socket"},
                        }
                    )
                continue
            await self._close(connection)

    async def close_sockets(self) -> None:
        """Close every connection (the sandbox is stopping)."""
        for connection in list(self._connections):
            await self._close(connection)

    async def socket_deliver(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> SocketEnvelope:
        """Send an envelope on the newest connection (or, with none open, on the next one); returns it at once.
        Await ``envelope.acked`` for the ack."""
        envelope = SocketEnvelope(type_, payload, accepts_response_payload)
        self.envelopes.append(envelope)
        if self._connections:
            await self._send(self._connections[-1], envelope)
        return envelope

    async def _deliver_over_socket(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if content_type.startswith("application/json"):
            kind, payload, accepts = "events_api", json.loads(body), False
        else:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            if "payload" in form:
                payload = json.loads(form["payload"])
                kind, accepts = "interactive", payload.get("type") in {"view_submission", "block_suggestion"}
            else:
                kind, payload, accepts = "slash_commands", form, True
        envelope = await self.socket_deliver(kind, payload, accepts_response_payload=accepts)
        ack = await asyncio.wait_for(asyncio.shield(envelope.acked), self.socket_ack_timeout)
        answer = ack.get("payload")
        return 200, json.dumps(answer) if answer else ""

    async def deliver_raw(self, body: bytes, headers: dict[str, str], *, url: str | None = None) -> tuple[int, str]:
        """In Socket Mode: the request as an envelope over the socket; (200, the ack's payload) once acked."""
        if self.socket_mode:
            return await self._deliver_over_socket(body, headers)
        return await super().deliver_raw(body, headers, url=url)
