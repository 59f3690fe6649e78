"""Rally webhooks (contract R5, ``rally.md`` 4-5): Svix signature check and parsing into ``InboundEvent``.

Verification is the Standard Webhooks library's ``Webhook`` (``standardwebhooks``), the one svix 2.x's
``svix.webhooks.Webhook`` wraps: that wrapper only renames ``svix-*`` headers to ``webhook-*``, which :func:`verify`
does itself. It is imported directly because ``import svix.webhooks`` runs ``svix/__init__``, which loads the
whole svix API client (0.2-0.3 s of ``rallybridge serve`` start-up) that the bridge never uses.

Both ``svix-*`` and white-labelled ``webhook-*`` header names are accepted. The 5-minute timestamp tolerance is
enforced by the library against the real clock; when a test passes ``now``, the tolerance is checked against
``now`` instead and the signature is compared (constant time) with the one the library's own ``sign`` computes,
so the same algorithm is used either way.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.errors import InvalidInput
from core.events import InboundEvent, rally_participant_status, rally_person_opted_out

TOLERANCE = timedelta(minutes=5)
STATUS_CHANGED = "participant.status_changed"
OPTED_OUT = "person.opted_out"


class RallySignatureError(InvalidInput):
    """The webhook's Svix signature headers are missing, malformed, expired or do not match.

    A subclass of ``InvalidInput`` so generic handlers reject the request; an HTTP route should catch it
    first and answer 401 (never 2xx) without processing the body.
    """


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(f"svix-{name}") or lowered.get(f"webhook-{name}")
    return value.strip() if value and value.strip() else None


def _make_webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except Exception:  # bad base64 or empty: a configuration error, not the sender's fault
        raise ValueError("Rally webhook secret is not a valid whsec_ secret") from None


def _verify_at(wh: Webhook, raw_body: bytes, msg_id: str, timestamp: str, signatures: str, now: datetime) -> None:
    try:
        sent_at = datetime.fromtimestamp(float(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise RallySignatureError("webhook timestamp is not a number") from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if sent_at < now - TOLERANCE:
        raise RallySignatureError("webhook timestamp too old")
    if sent_at > now + TOLERANCE:
        raise RallySignatureError("webhook timestamp too new")
    try:
        expected = base64.b64decode(wh.sign(msg_id, sent_at, raw_body.decode("utf-8")).split(",", 1)[1])
    except UnicodeDecodeError:
        raise RallySignatureError("webhook body is not UTF-8") from None
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise RallySignatureError("no matching webhook signature")


def verify(secret: str, headers: Mapping[str, str], raw_body: bytes, *, now: datetime | None = None) -> str:
    """Check the Svix signature of ``raw_body``; return the message id (``svix-id``/``webhook-id``).

    Raises ``RallySignatureError`` on missing headers, a timestamp more than 5 minutes from ``now`` (default:
    the real clock), or no matching ``v1`` signature. Raises ``ValueError`` if ``secret`` itself is invalid.
    """
    wh = _make_webhook(secret)
    msg_id = _header(headers, "id")
    timestamp = _header(headers, "timestamp")
    signatures = _header(headers, "signature")
    if not (msg_id and timestamp and signatures):
        raise RallySignatureError("missing webhook signature headers (svix-id, svix-timestamp, svix-signature)")
    if now is not None:
        _verify_at(wh, raw_body, msg_id, timestamp, signatures, now)
        return msg_id
    try:
        wh.verify(
            raw_body,
            {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signatures},
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        raise RallySignatureError(f"webhook signature refused: {exc}") from None
    except Exception:  # the library does not guard against a malformed signature list or a non-UTF-8 body
        raise RallySignatureError("webhook signature refused: malformed signature header or body") from None
    return msg_id


def _field(data: dict[str, Any], name: str, kind: type, label: str) -> Any:
    value = data.get(name)
    if value is None:
        raise InvalidInput(f"{name} is missing")
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{name} must be a non-empty {label}" if kind is str else f"{name} must be a {label}")
    return value


def parse(msg_id: str, raw_body: bytes) -> InboundEvent | None:
    """Turn a verified body into an event: ``participant.status_changed`` and ``person.opted_out``.

    Other ``_eventType`` values give ``None``. Malformed JSON or missing fields raise ``InvalidInput``.
    """
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    event_type = _field(data, "_eventType", str, "string")
    if event_type == STATUS_CHANGED:
        return rally_participant_status(
            svix_id=msg_id,
            study_id=_field(data, "studyId", str, "string"),
            participant_id=_field(data, "participantId", str, "string"),
            status=_field(data, "status", str, "string"),
        )
    if event_type == OPTED_OUT:
        return rally_person_opted_out(
            svix_id=msg_id,
            email=_field(data, "email", str, "string"),
            opted_out=_field(data, "optedOut", bool, "boolean"),
        )
    return None


def verify_and_parse(
    secret: str, headers: Mapping[str, str], raw_body: bytes, *, now: datetime | None = None
) -> InboundEvent | None:
    """Verify a Rally webhook (``RallySignatureError`` if refused) and parse it (``InvalidInput`` if malformed).

    Returns ``None`` for event types the bridge does not act on.
    """
    msg_id = verify(secret, headers, raw_body, now=now)
    return parse(msg_id, raw_body)
