"""Respondent in: the ``/webhooks/respondent`` route (size, signature, shape, then the inbox)."""

from __future__ import annotations

from aiohttp import web

from adapters.respondent.webhooks import parse_webhook, verify_signature
from adapters.web import Handler, Record, read_limited, store
from core.errors import InvalidInput


def respondent_route(record: Record, webhook_key: str, max_body: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, max_body)
        if isinstance(raw, web.Response):
            return raw
        if not verify_signature(webhook_key, raw, request.headers.get("Respondent-Webhook-Signature")):
            return web.json_response({"error": "invalid or missing Respondent-Webhook-Signature"}, status=401)
        try:
            event = parse_webhook(raw)
        except InvalidInput as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await store(record, event)

    return handle
