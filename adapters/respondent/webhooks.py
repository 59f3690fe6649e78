"""Respondent webhooks: signature check (contract S3) and parsing into ``InboundEvent`` (S2).

``MESSAGES.CREATED`` becomes a ``respondent.message_created`` event keyed by the delivery ``uuid``. The other
known events (and, for forward compatibility, unknown ones) are acknowledged and ignored: ``None``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from core.errors import InvalidInput
from core.events import InboundEvent, respondent_message_created

MESSAGES_CREATED = "MESSAGES.CREATED"
IGNORED_EVENTS = frozenset(
    {
        "PROJECTS.UPDATED",
        "SCREENER_RESPONSES.CREATED",
        "SCREENER_RESPONSES.UPDATED",
        "CONVERSATIONS.CREATED",
    }
)


def sign(private_key: str, data: bytes) -> str:
    """The header value Respondent sends for ``data``: ``sha256=<base64 HMAC-SHA256>``."""
    digest = hmac.new(private_key.encode("utf-8"), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def compact_json(raw_body: bytes) -> bytes | None:
    """``raw_body`` re-serialised like ``JSON.stringify`` (compact, non-ASCII kept); ``None`` if not JSON."""
    try:
        obj = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        return None
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_signature(private_key: str, raw_body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is a valid S3 signature of ``raw_body`` under ``private_key``.

    Accepts the HMAC of the raw bytes, or of the body re-serialised as compact JSON (the docs' sample signs
    ``JSON.stringify(req.body)``). Constant-time comparison; any malformed header, unknown algorithm or
    empty key gives ``False``.
    """
    if not private_key or not header_value:
        return False
    algorithm, sep, encoded = header_value.strip().partition("=")
    if not sep or algorithm.strip().lower() != "sha256":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(given) != hashlib.sha256().digest_size:
        return False
    key = private_key.encode("utf-8")
    candidates = [raw_body]
    reserialised = compact_json(raw_body)
    if reserialised is not None and reserialised != raw_body:
        candidates.append(reserialised)
    matched = False
    for data in candidates:
        expected = hmac.new(key, data, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, given)
    return matched


def _require_str(obj: dict[str, Any], field: str, where: str) -> str:
    value = obj.get(field)
    if value is None:
        raise InvalidInput(f"{where}{field} is missing")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}{field} must be a string")
    if not value.strip():
        raise InvalidInput(f"{where}{field} is empty")
    return value


def _optional_str(obj: dict[str, Any], field: str, where: str) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}{field} must be a string")
    return value or None


def _require_object(obj: dict[str, Any], field: str, where: str) -> dict[str, Any]:
    value = obj.get(field)
    if value is None:
        raise InvalidInput(f"{where}{field} is missing")
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}{field} must be an object")
    return value


def parse_webhook(raw_body: bytes) -> InboundEvent | None:
    """Parse a verified webhook body.

    Returns a ``respondent.message_created`` event for ``MESSAGES.CREATED`` and ``None`` for any other
    event. Raises ``InvalidInput`` with a precise reason (e.g. ``payload.resource.id is missing``) when the
    body is not JSON or lacks ``uuid``, ``event`` or ``payload.resource.id``, or a field has the wrong type.
    """
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    event = _require_str(data, "event", "")
    delivery_uuid = _require_str(data, "uuid", "")
    payload = _require_object(data, "payload", "")
    resource = _require_object(payload, "resource", "payload.")
    resource_id = _require_str(resource, "id", "payload.resource.")
    if event != MESSAGES_CREATED:
        return None  # IGNORED_EVENTS, or an event newer than this adapter: acknowledge and move on
    return respondent_message_created(
        delivery_uuid=delivery_uuid,
        message_id=resource_id,
        conversation_uid=_optional_str(resource, "conversationUid", "payload.resource."),
        project_id=_optional_str(resource, "projectId", "payload.resource."),
    )
