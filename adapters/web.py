"""Inbound HTTP plumbing shared by the adapters' routes (Slack, Teams, Respondent, Rally): read a bounded body, store
an event and answer. The outbound side (calls to Rally and Respondent) is ``adapters/http.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from core.errors import StorageUnavailable
from core.events import InboundEvent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Store an inbound event durably (the inbox); True when it is new. Raises StorageUnavailable.
Record = Callable[[InboundEvent], Awaitable[bool]]


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


async def store(record: Record, event: InboundEvent | None) -> web.Response:
    """Store a webhook's event and say so; ``None`` (an event type the bridge does not use) is acknowledged."""
    if event is None:
        return web.json_response({"ok": True, "stored": False, "reason": "event type not used by Rally Bridge"})
    try:
        new = await record(event)
    except StorageUnavailable:
        return web.json_response({"error": "storage unavailable, retry later"}, status=503)
    return web.json_response({"ok": True, "stored": new, "duplicate": not new})
