"""Bad input gets a clear refusal and changes nothing: no inbox row, nothing sent."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from adapters.respondent.webhooks import sign as respondent_sign
from playground.world import World
from storage.models import InboxEvent


async def _inbox_count(world: World) -> int:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one())


async def _post(world: World, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(f"{world.bridge_url}{path}", data=body, headers=headers) as r:
        try:
            payload = await r.json(content_type=None)
        except json.JSONDecodeError:
            payload = {}
        return r.status, payload if isinstance(payload, dict) else {}


def _event_body(world: World, text: str = "hi") -> bytes:
    event = {
        "type": "event_callback",
        "team_id": world.slack.team_id,
        "event_id": "Ev0BAD",
        "event_time": 1,
        "event": {
            "type": "message",
            "channel": world.cast.channel,
            "user": world.cast.owner.slack_id,
            "text": text,
            "ts": "1795626633.000003",
            "thread_ts": "1795626633.000001",
        },
    }
    return json.dumps(event).encode()


SLACK_SIGNATURE_CASES = {
    "missing signature": lambda w, b: {"Content-Type": "application/json"},
    "wrong signature": lambda w, b: {
        "Content-Type": "application/json",
        **w.slack.sign(b),
        "X-Slack-Signature": "v0=" + "0" * 64,
    },
    "expired timestamp (replay)": lambda w, b: {
        "Content-Type": "application/json",
        **w.slack.sign(b, timestamp=int(time.time()) - 600),
    },
    "signed with another secret": lambda w, b: {
        "Content-Type": "application/json",
        **_sign_other(b),
    },
}


def _sign_other(body: bytes) -> dict[str, str]:
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier("not-the-secret").generate_signature(timestamp=ts, body=body),
    }


@pytest.mark.parametrize("case", sorted(SLACK_SIGNATURE_CASES))
async def test_slack_requests_without_a_valid_signature_are_refused_and_not_stored(world: World, case: str) -> None:
    body = _event_body(world)
    status, payload = await _post(world, "/slack/events", body, SLACK_SIGNATURE_CASES[case](world, body))
    assert status == 401 and "signature" in str(payload.get("error"))
    assert await _inbox_count(world) == 0


MALFORMED_SLACK = {
    "not JSON": (b"{not json", "application/json", "not valid JSON"),
    "JSON without type": (b'{"event": {}}', "application/json", "no 'type'"),
    "event_callback without event": (b'{"type": "event_callback"}', "application/json", "without an 'event'"),
    "form that is not a command": (b"foo=bar", "application/x-www-form-urlencoded", "neither a slash command"),
    "interactivity payload not JSON": (b"payload=%7Bnope", "application/x-www-form-urlencoded", "not valid JSON"),
    "wrong content type": (b"hello", "text/plain", "unsupported content type"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SLACK))
async def test_malformed_slack_bodies_get_400_with_the_reason(world: World, case: str) -> None:
    body, content_type, reason = MALFORMED_SLACK[case]
    status, payload = await _post(
        world, "/slack/events", body, {"Content-Type": content_type, **world.slack.sign(body)}
    )
    assert status == 400 and reason in str(payload["error"])
    assert await _inbox_count(world) == 0


@pytest.mark.parametrize("path", ["/slack/events", "/webhooks/respondent", "/webhooks/rally"])
async def test_bodies_over_the_size_limit_get_413(world: World, path: str) -> None:
    body = b"{" + b" " * 1_100_000 + b"}"
    headers = {"Content-Type": "application/json", **world.slack.sign(body)}
    status, payload = await _post(world, path, body, headers)
    assert status == 413 and "larger than the 1000000-byte limit" in str(payload["error"])
    assert await _inbox_count(world) == 0


def _respondent_body(**resource: object) -> bytes:
    payload = {
        "event": "MESSAGES.CREATED",
        "uuid": "2f1c-1",
        "created": "2026-11-25T17:03:12.000Z",
        "payload": {"resource": {"id": "m_1", "type": "messages", **resource}},
    }
    return json.dumps(payload).encode()


async def test_respondent_webhook_with_bad_signature_is_refused(world: World) -> None:
    body = _respondent_body()
    for header in (
        {},
        {"Respondent-Webhook-Signature": "sha256=AAAA"},
        {"Respondent-Webhook-Signature": respondent_sign("wrong-key", body)},
    ):
        status, _ = await _post(world, "/webhooks/respondent", body, {"Content-Type": "application/json", **header})
        assert status == 401
    assert await _inbox_count(world) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "JSON"),
        (json.dumps({"event": "MESSAGES.CREATED", "uuid": "u1", "payload": {"resource": {}}}).encode(), "id"),
        (json.dumps({"event": "MESSAGES.CREATED", "payload": {"resource": {"id": "m"}}}).encode(), "uuid"),
    ],
)
async def test_malformed_respondent_webhooks_get_400(world: World, body: bytes, reason: str) -> None:
    headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": world.respondent.sign(body)}
    status, payload = await _post(world, "/webhooks/respondent", body, headers)
    assert status == 400 and reason in str(payload["error"])
    assert await _inbox_count(world) == 0


async def test_rally_webhook_signature_is_checked_with_its_tolerance(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    event = {
        "_eventType": "person.opted_out",
        "email": "x@example.com",
        "optedOut": True,
        "updatedAt": "2026-11-25T00:00:00Z",
    }
    body = json.dumps(event).encode()
    fresh = world.rally.signed_headers("msg_fresh", body)
    stale = world.rally.signed_headers("msg_stale", body, when=datetime.now(UTC) - timedelta(minutes=10))
    tampered = {**fresh, "svix-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    for headers in (stale, tampered, {}):
        status, _ = await _post(world, "/webhooks/rally", body, {"Content-Type": "application/json", **headers})
        assert status == 401
    assert await _inbox_count(world) == 0
    status, _ = await _post(world, "/webhooks/rally", body, {"Content-Type": "application/json", **fresh})
    assert status == 200
    assert await _inbox_count(world) == 1
    status, payload = await _post(world, "/webhooks/rally", body, {"Content-Type": "application/json", **fresh})
    assert status == 200 and payload["duplicate"] is True
    assert await _inbox_count(world) == 1


async def test_storage_down_answers_503_so_senders_retry(world: World) -> None:
    from storage.db import Database
    from storage.uow import SqlStore

    assert world.bridge is not None
    services = world.bridge.services
    down = Database("postgresql+asyncpg://nobody@127.0.0.1:1/down")
    working, services.store = services.store, SqlStore(down)
    body = _respondent_body(conversationUid="c_1", projectId=world.cast.project_id)
    headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": world.respondent.sign(body)}
    try:
        status, payload = await _post(world, "/webhooks/respondent", body, headers)
        slack_body = _event_body(world)
        slack_status, _ = await _post(
            world, "/slack/events", slack_body, {"Content-Type": "application/json", **world.slack.sign(slack_body)}
        )
    finally:
        await down.dispose()
        services.store = working
    assert status == 503 and "retry" in str(payload["error"])
    assert slack_status == 503
    assert await _inbox_count(world) == 0


@pytest.mark.parametrize(
    ("body", "timestamp"),
    [
        (b'\xff\xfe{"type": "event_callback"}', None),  # not UTF-8, fresh timestamp: slack_sdk raised -> 500
        (b'{"type": "event_callback"}', "soon"),  # timestamp not a number: slack_sdk raised -> 500
        (b'{"type": "event_callback"}', "9" * 5000),  # too many digits for int()
    ],
)
async def test_garbage_signature_inputs_are_refused_with_401_not_a_server_error(
    world: World, body: bytes, timestamp: str | None
) -> None:
    import hashlib
    import hmac

    ts = timestamp or str(int(time.time()))
    mac = hmac.new(world.slack.signing_secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }
    status, payload = await _post(world, "/slack/events", body, headers)
    assert status == 401 and "signature" in str(payload.get("error"))
    assert await _inbox_count(world) == 0
