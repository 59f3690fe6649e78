"""Rally in: the ``/webhooks/rally`` route (size, Svix signature, shape, then the inbox)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from adapters.rally.webhooks import RallySignatureError, verify_and_parse
from adapters.web import Handler, Record, read_limited, store
from core.errors import InvalidInput


def rally_route(record: Record, webhook_secret: str, max_body: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, max_body)
        if isinstance(raw, web.Response):
            return raw
        headers: Mapping[str, str] = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = verify_and_parse(webhook_secret, headers, raw)
        except RallySignatureError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        except InvalidInput as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await store(record, event)

    return handle
