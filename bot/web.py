"""HTTP edge for webhooks and health: verify, parse, store, answer. Nothing else happens here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from sqlalchemy import text

from adapters.rally.webhooks import RallySignatureError
from adapters.rally.webhooks import verify_and_parse as rally_verify_and_parse
from adapters.respondent.webhooks import parse_webhook as respondent_parse
from adapters.respondent.webhooks import verify_signature as respondent_verify
from bridge.inbox import StorageUnavailable, record
from bridge.services import Services
from core.errors import InvalidInput
from core.events import InboundEvent
from storage.migrate import schema_problem

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_limited(request: web.Request, max_body: int) -> bytes | web.Response:
    """The raw body, or a 413 answer when it is larger than ``max_body``."""
    too_large = web.json_response({"error": f"body larger than the {max_body}-byte limit"}, status=413)
    if request.content_length is not None and request.content_length > max_body:
        return too_large
    try:
        raw = await request.read()  # cached on the request, so the Slack adapter can read it again
    except web.HTTPRequestEntityTooLarge:  # chunked bodies: aiohttp's client_max_size stops them
        return too_large
    return too_large if len(raw) > max_body else raw


async def store(services: Services, event: InboundEvent | None) -> web.Response:
    if event is None:
        return web.json_response({"ok": True, "stored": False, "reason": "event type not used by Rally Bridge"})
    try:
        new = await record(services, event)
    except StorageUnavailable:
        return web.json_response({"error": "storage unavailable, retry later"}, status=503)
    return web.json_response({"ok": True, "stored": new, "duplicate": not new})


def respondent_route(services: Services, webhook_key: str, max_body: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, max_body)
        if isinstance(raw, web.Response):
            return raw
        if not respondent_verify(webhook_key, raw, request.headers.get("Respondent-Webhook-Signature")):
            return web.json_response({"error": "invalid or missing Respondent-Webhook-Signature"}, status=401)
        try:
            event = respondent_parse(raw)
        except InvalidInput as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await store(services, event)

    return handle


def rally_route(services: Services, webhook_secret: str, max_body: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, max_body)
        if isinstance(raw, web.Response):
            return raw
        headers: Mapping[str, str] = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = rally_verify_and_parse(webhook_secret, headers, raw)
        except RallySignatureError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        except InvalidInput as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await store(services, event)

    return handle


def ready_route(services: Services) -> Handler:
    """Ready when the database answers and its schema is the one this version needs."""

    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            problem = await schema_problem(services.db)
        except Exception as exc:
            return web.json_response({"ready": False, "database": type(exc).__name__}, status=503)
        if problem is not None:
            return web.json_response({"ready": False, "schema": problem}, status=503)
        return web.json_response({"ready": True})

    return handle


def health_route(services: Services) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            async with services.db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return web.json_response({"status": "unhealthy", "database": type(exc).__name__}, status=503)
        return web.json_response({"status": "ok"})

    return handle
