"""RespondentClient and Respondent webhooks, driven over real HTTP against RespondentSandbox."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from adapters.http import error_for_status, parse_datetime, parse_retry_after
from adapters.respondent import RespondentClient, parse_webhook, verify_signature
from adapters.respondent.webhooks import sign
from core.errors import InvalidInput, NotFound, PermanentFailure, TemporaryFailure, UnknownOutcome
from core.events import EventKind
from playground.world import free_port
from sandbox.respondent import OWNER, RespondentSandbox

PROJECT = "69603934cd7d6158385a200c"
USER = "6960391fbd5465b2dd6bd6e1"


@pytest.fixture
async def sandbox() -> AsyncIterator[RespondentSandbox]:
    sb = RespondentSandbox(api_key="k", api_secret="s", webhook_retry_delay=0.01)
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def client(sandbox: RespondentSandbox) -> AsyncIterator[RespondentClient]:
    assert sandbox.base_url
    c = RespondentClient(sandbox.base_url, "k", "s", timeout=2)
    yield c
    await c.close()


class Receiver:
    """A tiny webhook endpoint recording what it gets; answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhooks/respondent", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/webhooks/respondent"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.stop()


# ---- client: happy paths --------------------------------------------------------------------------------


async def test_open_conversation_then_send_reaches_the_participant(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    conv = await client.open_conversation(PROJECT, USER, "r-42")
    msg = await client.send_message(conv.uid, "Hi Jordan")

    assert conv.project_id == PROJECT
    assert conv.participant_user_ids == (USER,)  # the API owner is not listed
    assert msg.body == "Hi Jordan" and msg.sender_uid == OWNER["uid"]
    assert msg.created_at is not None and msg.created_at.tzinfo is not None
    assert [m["body"] for m in sandbox.messages_to(USER)] == ["Hi Jordan"]
    assert sandbox.conversations[conv.uid]["metadata"]["externalResearcherId"] == "r-42"


async def test_get_conversation_embeds_messages_from_both_sides_in_order(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    uid_in = await sandbox.participant_writes(PROJECT, USER, "Hello?", first_name="Jordan", last_name="Lee")
    conv_uid = sandbox.messages_from(USER)[0]["conversationUid"]
    await client.send_message(conv_uid, "Hi!")

    conv = await client.get_conversation(conv_uid)

    assert [(m.body, m.sender_uid) for m in conv.messages] == [("Hello?", USER), ("Hi!", OWNER["uid"])]
    assert conv.messages[0].uid == uid_in
    assert conv.participant_user_ids == (USER,)


async def test_list_conversations_reads_every_page_of_the_project_only(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    for i in range(120):
        sandbox.add_conversation(PROJECT, f"user{i}")
    sandbox.add_conversation("other-project", "someone")

    convs = await client.list_conversations(PROJECT)

    assert len(convs) == 120 and len({c.uid for c in convs}) == 120
    assert {c.participant_user_ids[0] for c in convs} == {f"user{i}" for i in range(120)}
    pages = [r for r in sandbox.request_log if r.method == "GET" and r.path == "/v1/messaging/conversations"]
    assert len(pages) == 3


async def test_list_conversations_reads_everything_when_the_api_caps_page_size(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    sandbox.max_page_size = 20
    for i in range(45):
        sandbox.add_conversation(PROJECT, f"user{i}")
    assert len(await client.list_conversations(PROJECT)) == 45


async def test_list_conversations_of_an_empty_project_is_empty(client: RespondentClient) -> None:
    assert await client.list_conversations(PROJECT) == []


# ---- client: error mapping ------------------------------------------------------------------------------


async def test_wrong_credentials_are_a_permanent_401(sandbox: RespondentSandbox) -> None:
    assert sandbox.base_url
    bad = RespondentClient(sandbox.base_url, "k", "wrong-secret")
    try:
        with pytest.raises(PermanentFailure) as err:
            await bad.list_conversations(PROJECT)
    finally:
        await bad.close()
    assert err.value.status == 401
    assert "Invalid API credentials" in err.value.reason
    assert "wrong-secret" not in str(err.value)


async def test_unknown_conversation_is_not_found(client: RespondentClient) -> None:
    with pytest.raises(NotFound) as err:
        await client.get_conversation("nope")
    assert err.value.status == 404 and "Conversation not found" in err.value.reason


async def test_empty_message_is_permanent_with_reason_from_body(client: RespondentClient) -> None:
    conv = await client.open_conversation(PROJECT, USER, "r-42")
    with pytest.raises(PermanentFailure) as err:
        await client.send_message(conv.uid, "   ")
    assert type(err.value) is PermanentFailure
    assert err.value.status == 400 and "body should not be empty" in err.value.reason


async def test_rate_limit_is_temporary_with_retry_after(sandbox: RespondentSandbox, client: RespondentClient) -> None:
    sandbox.rate_limit_next(1, retry_after=2.5)
    with pytest.raises(TemporaryFailure) as err:
        await client.list_conversations(PROJECT)
    assert not isinstance(err.value, UnknownOutcome)
    assert err.value.retry_after == 2.5 and "429" in err.value.reason
    assert await client.list_conversations(PROJECT) == []  # only the next request was limited


@pytest.mark.parametrize("status", [503, 500, 408])
async def test_server_errors_are_temporary(sandbox: RespondentSandbox, client: RespondentClient, status: int) -> None:
    sandbox.fail_next(1, status=status, path_contains="/messages")
    conv = await client.open_conversation(PROJECT, USER, "r")  # path does not match: unaffected
    with pytest.raises(TemporaryFailure) as err:
        await client.send_message(conv.uid, "hello")
    assert type(err.value) is TemporaryFailure and str(status) in err.value.reason
    assert sandbox.messages_to(USER) == []


async def test_outage_fails_everything_until_healed(sandbox: RespondentSandbox, client: RespondentClient) -> None:
    sandbox.outage()
    with pytest.raises(TemporaryFailure):
        await client.list_conversations(PROJECT)
    sandbox.heal()
    assert await client.list_conversations(PROJECT) == []


async def test_timeout_on_send_is_unknown_outcome_and_the_message_is_visible_on_reread(
    sandbox: RespondentSandbox,
) -> None:
    assert sandbox.base_url
    impatient = RespondentClient(sandbox.base_url, "k", "s", timeout=0.3)
    try:
        conv = await impatient.open_conversation(PROJECT, USER, "r")
        sandbox.hang_next_send(5)
        with pytest.raises(UnknownOutcome) as err:
            await impatient.send_message(conv.uid, "the secret link")
        reread = await impatient.get_conversation(conv.uid)
    finally:
        await impatient.close()
    assert "the secret link" not in str(err.value)
    assert [m.body for m in reread.messages] == ["the secret link"]


async def test_dropped_connection_after_send_is_unknown_outcome(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    conv = await client.open_conversation(PROJECT, USER, "r")
    sandbox.drop_next_send()
    with pytest.raises(UnknownOutcome):
        await client.send_message(conv.uid, "hello")
    assert [m["body"] for m in sandbox.messages_to(USER)] == ["hello"]
    assert sandbox.request_log[-1].status == 0


async def test_connection_refused_is_temporary_not_unknown() -> None:
    c = RespondentClient(f"http://127.0.0.1:{free_port()}", "k", "s", timeout=2)
    try:
        with pytest.raises(TemporaryFailure) as err:
            await c.send_message("c1", "hello")
    finally:
        await c.close()
    assert not isinstance(err.value, UnknownOutcome)
    assert "cannot connect" in err.value.reason


# ---- webhook signature ----------------------------------------------------------------------------------

BODY = json.dumps(
    {
        "event": "MESSAGES.CREATED",
        "uuid": "2f1c",
        "created": "2026-11-25T17:03:12.000Z",
        "payload": {"resource": {"id": "m_78", "type": "messages", "conversationUid": "c_5", "projectId": PROJECT}},
    },
    separators=(",", ":"),
).encode()


def test_signature_of_the_raw_body_is_accepted() -> None:
    assert verify_signature("key", BODY, sign("key", BODY))


def test_signature_of_the_reserialised_json_is_accepted() -> None:
    pretty = json.dumps(json.loads(BODY), indent=2).encode()  # what arrives on the wire
    assert verify_signature("key", pretty, sign("key", BODY))  # what the sender signed


def test_reserialisation_keeps_non_ascii_like_json_stringify() -> None:
    obj = {"event": "MESSAGES.CREATED", "note": "¿Qué tal? 👋"}
    spaced = json.dumps(obj, ensure_ascii=True, indent=1).encode()
    signed = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert verify_signature("key", spaced, sign("key", signed))


def test_signature_with_the_wrong_key_is_refused() -> None:
    assert not verify_signature("key", BODY, sign("other", BODY))


def test_tampered_body_is_refused() -> None:
    assert not verify_signature("key", BODY.replace(b"m_78", b"m_79"), sign("key", BODY))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256",
        "sha256=",
        "md5=" + base64.b64encode(b"x" * 32).decode(),
        "sha256=not base64!!",
        "sha256=" + base64.b64encode(b"short").decode(),
        "garbage",
    ],
)
def test_missing_or_malformed_signature_header_is_refused(header: str | None) -> None:
    assert verify_signature("key", BODY, header) is False


def test_empty_private_key_refuses_everything() -> None:
    assert not verify_signature("", BODY, sign("", BODY))


# ---- webhook parsing -------------------------------------------------------------------------------------


def test_messages_created_becomes_an_event_keyed_by_delivery_uuid() -> None:
    event = parse_webhook(BODY)
    assert event is not None
    assert event.kind is EventKind.RESPONDENT_MESSAGE_CREATED
    assert event.key == "respondent:webhook:2f1c"
    assert event.payload == {"message_id": "m_78", "conversation_uid": "c_5", "project_id": PROJECT}


def test_messages_created_without_conversation_or_project_is_still_an_event() -> None:
    body = json.dumps({"event": "MESSAGES.CREATED", "uuid": "u1", "payload": {"resource": {"id": "m1"}}})
    event = parse_webhook(body.encode())
    assert event is not None
    assert event.payload == {"message_id": "m1", "conversation_uid": None, "project_id": None}


@pytest.mark.parametrize(
    "event", ["PROJECTS.UPDATED", "SCREENER_RESPONSES.CREATED", "SCREENER_RESPONSES.UPDATED", "CONVERSATIONS.CREATED"]
)
def test_other_known_events_are_acknowledged_and_ignored(event: str) -> None:
    body = {"event": event, "uuid": "u1", "payload": {"resource": {"id": "x", "type": "projects"}}}
    assert parse_webhook(json.dumps(body).encode()) is None


def _body(**changes: Any) -> bytes:
    data: dict[str, Any] = {"event": "MESSAGES.CREATED", "uuid": "u1", "payload": {"resource": {"id": "m1"}}}
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (_body(uuid=None), "uuid is missing"),
        (_body(uuid=7), "uuid must be a string"),
        (_body(event=""), "event is empty"),
        (_body(payload=None), "payload is missing"),
        (_body(payload={"resource": "m1"}), "payload.resource must be an object"),
        (_body(payload={"resource": {}}), "payload.resource.id is missing"),
        (
            _body(payload={"resource": {"id": "m1", "conversationUid": 5}}),
            "payload.resource.conversationUid must be a string",
        ),
    ],
)
def test_malformed_payloads_are_invalid_with_a_precise_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_webhook(raw)
    assert str(err.value) == reason


# ---- sandbox webhook delivery ----------------------------------------------------------------------------


async def test_participant_message_arrives_as_a_signed_webhook_naming_the_message(
    sandbox: RespondentSandbox, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    uid = await sandbox.participant_writes(PROJECT, USER, "Can we move to 3pm?")

    [(headers, raw)] = receiver.received
    assert verify_signature(sandbox.webhook_key, raw, headers["Respondent-Webhook-Signature"])
    event = parse_webhook(raw)
    assert event is not None and event.payload["message_id"] == uid
    conv_uid = event.payload["conversation_uid"]
    assert sandbox.conversations[conv_uid]["messages"][-1]["uid"] == uid
    assert b"Can we move" not in raw  # the webhook is only a hint: no body inside


async def test_webhook_without_refs_omits_conversation_and_project(
    sandbox: RespondentSandbox, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    await sandbox.participant_writes(PROJECT, USER, "hi", include_refs=False)
    event = parse_webhook(receiver.received[0][1])
    assert event is not None and event.payload["conversation_uid"] is None and event.payload["project_id"] is None


async def test_failed_delivery_is_retried_until_2xx(sandbox: RespondentSandbox, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    sandbox.webhook_url = await receiver.start()
    await sandbox.participant_writes(PROJECT, USER, "hi")
    assert [d.status for d in sandbox.webhook_deliveries] == [500, 503, 200]
    assert len({d.event_id for d in sandbox.webhook_deliveries}) == 1


async def test_duplicate_deliveries_carry_the_same_event_key(sandbox: RespondentSandbox, receiver: Receiver) -> None:
    sandbox.webhook_url = await receiver.start()
    await sandbox.participant_writes(PROJECT, USER, "hi", deliveries=2)
    keys = [e.key for e in (parse_webhook(raw) for _, raw in receiver.received) if e]
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_participant_writes_reuses_the_conversation_opened_by_the_bridge(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    conv = await client.open_conversation(PROJECT, USER, "r")
    await sandbox.participant_writes(PROJECT, USER, "reply")
    assert [m.body for m in (await client.get_conversation(conv.uid)).messages] == ["reply"]


# ---- sandbox read flags and researchers writing on Respondent's website ---------------------------------


def _read_flags(sandbox: RespondentSandbox, conv_uid: str) -> dict[str, bool]:
    return {p["uid"]: p["read"] for p in sandbox.conversations[conv_uid]["participants"]}


async def test_a_message_is_unread_for_everyone_but_its_sender_until_the_participant_reads_it(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    conv = await client.open_conversation(PROJECT, USER, "r")
    await client.send_message(conv.uid, "Hi Jordan")
    assert _read_flags(sandbox, conv.uid) == {OWNER["uid"]: True, USER: False}
    assert (await client.get_conversation(conv.uid)).read_by == frozenset()

    sandbox.participant_reads(USER)
    assert (await client.get_conversation(conv.uid)).read_by == {USER}
    (listed,) = await client.list_conversations(PROJECT)
    assert listed.read_by == {USER}

    await client.send_message(conv.uid, "One more thing")
    assert (await client.get_conversation(conv.uid)).read_by == frozenset()
    await sandbox.participant_writes(PROJECT, USER, "ok")
    assert _read_flags(sandbox, conv.uid) == {OWNER["uid"]: False, USER: True}


async def test_participant_reads_only_the_project_asked_for(sandbox: RespondentSandbox) -> None:
    mine = sandbox.add_conversation(PROJECT, USER)
    other = sandbox.add_conversation("other-project", USER)
    sandbox.participant_reads(USER, PROJECT)
    assert _read_flags(sandbox, mine)[USER] and not _read_flags(sandbox, other)[USER]
    with pytest.raises(KeyError):
        sandbox.participant_reads("nobody")
    with pytest.raises(KeyError):
        sandbox.participant_reads(USER, "no-such-project")


async def test_a_researcher_writing_on_respondent_is_neither_the_participant_nor_the_api_owner(
    sandbox: RespondentSandbox, client: RespondentClient, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    conv = await client.open_conversation(PROJECT, USER, "r")
    sandbox.participant_reads(USER)

    written = await sandbox.researcher_writes_outside(PROJECT, USER, "Sent from the website")

    got = await client.get_conversation(conv.uid)
    (message,) = got.messages
    assert message.uid == written["uid"] and written["conversationUid"] == conv.uid
    assert message.body == "Sent from the website" and message.sender_name == "Dana Researcher"
    assert message.sender_uid not in (USER, OWNER["uid"], None)
    assert message.sender_uid not in got.participant_user_ids  # so not taken for the participant's own words
    assert _read_flags(sandbox, conv.uid) == {OWNER["uid"]: False, USER: False}
    assert sandbox.messages_to(USER) == [] and sandbox.messages_from(USER) == []
    [(headers, raw)] = receiver.received
    assert verify_signature(sandbox.webhook_key, raw, headers["Respondent-Webhook-Signature"])
    event = parse_webhook(raw)
    assert event is not None and event.payload["message_id"] == written["uid"]
    assert event.payload["conversation_uid"] == conv.uid and event.payload["project_id"] == PROJECT


async def test_researchers_keep_their_own_ids_and_can_write_without_a_webhook(
    sandbox: RespondentSandbox, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    first = await sandbox.researcher_writes_outside(PROJECT, USER, "one", notify=False)
    again = await sandbox.researcher_writes_outside(PROJECT, USER, "two", notify=False)
    other = await sandbox.researcher_writes_outside(PROJECT, USER, "three", first_name="Sam", notify=False)
    assert first["sender"] == again["sender"] and first["sender"]["uid"] != other["sender"]["uid"]
    assert other["sender"]["firstName"] == "Sam" and other["sender"]["lastName"] == "Researcher"
    assert first["conversationUid"] == other["conversationUid"]  # the participant's one conversation, opened once
    assert receiver.received == []


# ---- shared HTTP helpers (adapters/http.py) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        (" 2 ", 2.0),
        ("-5", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_future_counts_down_from_now() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60.0


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T17:00:00Z",
        "2026-11-27T17:00:00.000Z",
        "2026-11-27T17:00:00.000000123Z",
        "2026-11-27T19:00:00+02:00",
        "2026-11-27T17:00:00",
    ],
)
def test_dates_are_parsed_leniently_to_aware_utc_instants(value: str) -> None:
    assert parse_datetime(value) == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "tomorrow", 17])
def test_unparseable_dates_are_none(value: object) -> None:
    assert parse_datetime(value) is None


def test_nestjs_validation_message_lists_are_joined_into_the_reason() -> None:
    err = error_for_status(
        "Respondent",
        400,
        "Bad Request",
        {"statusCode": 400, "message": ["body should not be empty", "body must be a string"]},
    )
    assert isinstance(err, PermanentFailure) and err.status == 400
    assert err.reason == "Respondent 400 Bad Request: body should not be empty; body must be a string"


def test_error_without_a_body_falls_back_to_the_status_text() -> None:
    err = error_for_status("Rally", 403, "Forbidden", None)
    assert isinstance(err, PermanentFailure) and err.reason == "Rally 403 Forbidden"
