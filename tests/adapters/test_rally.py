"""RallyClient and Rally (Svix) webhooks, driven over real HTTP against RallySandbox."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from svix.webhooks import Webhook

from adapters.rally import RallyClient, RallySignatureError, verify_and_parse
from adapters.rally.webhooks import verify
from core.domain import ArchiveEntry, AuthorType, Direction, Source
from core.errors import InvalidInput, NotFound, PermanentFailure, TemporaryFailure, UnknownOutcome
from core.events import EventKind
from sandbox.rally import RallySandbox

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PROJECT = "69603934cd7d6158385a200c"
STARTS = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


@pytest.fixture
async def sandbox() -> AsyncIterator[RallySandbox]:
    sb = RallySandbox(token="t0ken", webhook_secret=SECRET, webhook_retry_delay=0.01)
    sb.add_study("st_1", "Checkout redesign interviews", respondent_project_id=PROJECT)
    sb.add_study("st_2", "In-house survey", respondent_project_id=None)
    sb.add_team_member("st_1", "usr_1", "Ana@Example.com", "Ana Ortiz", role="OWNER")
    sb.add_team_member(
        "st_1", "usr_2", "ben@example.com", "Ben Ito", external_panel_access=False, user_status="DEACTIVATED"
    )
    sb.add_participant(
        "st_1",
        "pa_9",
        "Jordan",
        "Lee",
        email="jordan@example.com",
        respondent_user_id="6960391fbd5465b2dd6bd6e1",
        approval_status="PENDING",
        scheduling_url="https://app.rallyuxr.com/schedule/abc123",
        session_starts_at=STARTS,
        screener_response_id="69603913cd7d6158385a1ff7",
    )
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def client(sandbox: RallySandbox) -> AsyncIterator[RallyClient]:
    assert sandbox.base_url
    c = RallyClient(sandbox.base_url, "t0ken", timeout=2)
    yield c
    await c.close()


def entry(external_id: str = "slack:T01:C01:1795626633.000003", **changes: Any) -> ArchiveEntry:
    fields: dict[str, Any] = dict(
        study_id="st_1",
        participant_id="pa_9",
        external_id=external_id,
        direction=Direction.TO_PARTICIPANT,
        body="Hi Jordan, here is the link",
        sent_at=datetime(2026, 11, 25, 17, 3, 12, tzinfo=UTC),
        author_type=AuthorType.RESEARCHER,
        source=Source.SLACK,
        author_user_id="usr_1",
        author_email="ana@example.com",
        author_name="Ana Ortiz",
        respondent_message_uid="m_77",
    )
    fields.update(changes)
    return ArchiveEntry(**fields)


# ---- client: happy paths --------------------------------------------------------------------------------


async def test_study_with_a_respondent_panel_exposes_its_project(client: RallyClient) -> None:
    study = await client.get_study("st_1")
    assert (study.study_id, study.name, study.status) == ("st_1", "Checkout redesign interviews", "ACTIVE")
    assert study.recruitment_strategy == "EXTERNAL" and study.respondent_project_id == PROJECT


async def test_study_without_external_panel_has_no_project(client: RallyClient) -> None:
    study = await client.get_study("st_2")
    assert study.external_panel is None and study.respondent_project_id is None


async def test_team_lists_roles_and_external_panel_access(client: RallyClient) -> None:
    team = await client.get_team("st_1")
    assert [(m.user_id, m.role, m.external_panel_access) for m in team] == [
        ("usr_1", "OWNER", True),
        ("usr_2", "TEAMMATE", False),
    ]


async def test_users_are_found_by_email_case_insensitively(client: RallyClient) -> None:
    [ana] = await client.find_users_by_email("ana@EXAMPLE.com")
    [ben] = await client.find_users_by_email("ben@example.com")
    assert (ana.user_id, ana.status) == ("usr_1", "ACTIVE")
    assert ben.status == "DEACTIVATED"
    assert await client.find_users_by_email("nobody@example.com") == []


async def test_participant_maps_every_external_panel_field(client: RallyClient) -> None:
    p = await client.get_participant("st_1", "pa_9")
    assert (p.participant_id, p.study_id, p.first_name, p.last_name) == ("pa_9", "st_1", "Jordan", "Lee")
    assert p.email == "jordan@example.com" and p.approval_status == "PENDING" and not p.is_approved
    assert p.respondent_user_id == "6960391fbd5465b2dd6bd6e1"
    assert p.screener_response_id == "69603913cd7d6158385a1ff7"
    assert p.scheduling_url == "https://app.rallyuxr.com/schedule/abc123"
    assert p.session_starts_at == STARTS and p.session_starts_at.tzinfo is not None
    assert p.display_name == "Jordan L."


async def test_list_participants_follows_cursors_over_several_pages(sandbox: RallySandbox, client: RallyClient) -> None:
    for i in range(250):
        sandbox.add_participant("st_1", f"pa_{i:03}", "P", str(i), email=None, respondent_user_id=None)

    participants = await client.list_participants("st_1")

    assert len(participants) == 251 and len({p.participant_id for p in participants}) == 251
    searches = [r for r in sandbox.request_log if r.path == "/studies/st_1/participants/search"]
    assert len(searches) == 3
    assert participants[1].respondent_user_id is None and participants[1].session_starts_at is None


async def test_archive_stores_the_r4_body_and_returns_the_id(sandbox: RallySandbox, client: RallyClient) -> None:
    archive_id = await client.archive(entry())
    [row] = sandbox.archived("st_1")
    assert row["id"] == archive_id
    assert row["direction"] == "TO_PARTICIPANT" and row["source"] == "SLACK"
    assert row["sentAt"] == "2026-11-25T17:03:12Z" and row["respondentMessageUid"] == "m_77"
    assert row["author"] == {"type": "RESEARCHER", "userId": "usr_1", "email": "ana@example.com", "name": "Ana Ortiz"}


async def test_archiving_the_same_external_id_twice_returns_the_same_id_and_one_row(
    sandbox: RallySandbox, client: RallyClient
) -> None:
    first = await client.archive(entry())
    second = await client.archive(entry())
    other = await client.archive(entry("slack:T01:C01:2", author_type=AuthorType.BOT, author_user_id=None))
    assert first == second != other
    assert [r["externalId"] for r in sandbox.archived("st_1")] == ["slack:T01:C01:1795626633.000003", "slack:T01:C01:2"]
    assert [r.status for r in sandbox.request_log if r.path.endswith("/chat-messages")] == [201, 200, 201]


# ---- client: error mapping ------------------------------------------------------------------------------


async def test_bad_token_is_a_permanent_401(sandbox: RallySandbox) -> None:
    assert sandbox.base_url
    bad = RallyClient(sandbox.base_url, "wrong")
    try:
        with pytest.raises(PermanentFailure) as err:
            await bad.get_study("st_1")
    finally:
        await bad.close()
    assert err.value.status == 401 and not isinstance(err.value, NotFound)


async def test_unknown_study_or_participant_is_not_found(client: RallyClient) -> None:
    with pytest.raises(NotFound):
        await client.get_study("st_nope")
    with pytest.raises(NotFound) as err:
        await client.archive(entry(participant_id="pa_nope"))
    assert "Participant not found" in err.value.reason


async def test_empty_archive_body_is_permanent_with_the_reason_from_errors(client: RallyClient) -> None:
    with pytest.raises(PermanentFailure) as err:
        await client.archive(entry(body="  "))
    assert type(err.value) is PermanentFailure
    assert err.value.status == 400 and "body must not be empty" in err.value.reason


async def test_rate_limit_is_temporary_with_retry_after(sandbox: RallySandbox, client: RallyClient) -> None:
    sandbox.rate_limit_next(1, retry_after=3)
    with pytest.raises(TemporaryFailure) as err:
        await client.get_team("st_1")
    assert err.value.retry_after == 3.0 and not isinstance(err.value, UnknownOutcome)


async def test_server_error_on_archive_is_temporary_and_nothing_is_stored(
    sandbox: RallySandbox, client: RallyClient
) -> None:
    sandbox.fail_next(1, status=503, path_contains="/chat-messages")
    with pytest.raises(TemporaryFailure) as err:
        await client.archive(entry())
    assert type(err.value) is TemporaryFailure
    assert sandbox.archived("st_1") == [] and sandbox.archive_attempts == 1
    await client.archive(entry())
    assert len(sandbox.archived("st_1")) == 1 and sandbox.archive_attempts == 2


async def test_random_archive_failures_are_reproducible_and_retries_converge(
    sandbox: RallySandbox, client: RallyClient
) -> None:
    sandbox.archive_failure_rate(0.5, seed=7)
    failures = 0
    for i in range(20):
        while True:
            try:
                await client.archive(entry(f"x:{i}"))
                break
            except TemporaryFailure:
                failures += 1
    assert failures > 0
    assert len(sandbox.archived("st_1")) == 20 and sandbox.archive_attempts == 20 + failures


async def test_outage_then_heal(sandbox: RallySandbox, client: RallyClient) -> None:
    sandbox.outage(502)
    with pytest.raises(TemporaryFailure):
        await client.list_participants("st_1")
    sandbox.heal()
    assert len(await client.list_participants("st_1")) == 1


async def test_connection_refused_is_temporary_not_unknown() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = RallyClient(f"http://127.0.0.1:{port}", "t")
    try:
        with pytest.raises(TemporaryFailure) as err:
            await c.archive(entry())
    finally:
        await c.close()
    assert not isinstance(err.value, UnknownOutcome)


# ---- webhooks: signature ---------------------------------------------------------------------------------

VECTOR_HEADERS = {
    "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "svix-timestamp": "1614265330",
    "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_TIME = datetime.fromtimestamp(1614265330, tz=UTC)


def test_svix_test_vector_verifies_at_its_own_time() -> None:
    assert (
        verify(SECRET, VECTOR_HEADERS, VECTOR_BODY, now=VECTOR_TIME + timedelta(seconds=10))
        == VECTOR_HEADERS["svix-id"]
    )
    # The signature passes; the vector's body is not a Rally event, so parsing (not verification) refuses it.
    with pytest.raises(InvalidInput, match="_eventType is missing") as err:
        verify_and_parse(SECRET, VECTOR_HEADERS, VECTOR_BODY, now=VECTOR_TIME)
    assert not isinstance(err.value, RallySignatureError)


def test_svix_library_itself_agrees_with_the_test_vector() -> None:
    signature = Webhook(SECRET).sign(VECTOR_HEADERS["svix-id"], VECTOR_TIME, VECTOR_BODY.decode())
    assert signature == VECTOR_HEADERS["svix-signature"]


def test_svix_test_vector_is_refused_against_the_real_clock_as_expired() -> None:
    with pytest.raises(RallySignatureError, match="too old"):
        verify_and_parse(SECRET, VECTOR_HEADERS, VECTOR_BODY)


def test_timestamp_more_than_five_minutes_off_is_refused() -> None:
    with pytest.raises(RallySignatureError, match="too old"):
        verify_and_parse(SECRET, VECTOR_HEADERS, VECTOR_BODY, now=VECTOR_TIME + timedelta(seconds=301))
    with pytest.raises(RallySignatureError, match="too new"):
        verify_and_parse(SECRET, VECTOR_HEADERS, VECTOR_BODY, now=VECTOR_TIME - timedelta(seconds=301))


def signed(event: dict[str, Any], *, prefix: str = "svix", secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    sb = RallySandbox(webhook_secret=secret, webhook_header_prefix=prefix)
    raw = json.dumps(event).encode()
    return sb.signed_headers("msg_1", raw), raw


STATUS_EVENT = {
    "_eventType": "participant.status_changed",
    "participantId": "pa_9",
    "personId": "pe_9",
    "studyId": "st_1",
    "status": "SCREENER_QUALIFIED",
    "priorStatus": None,
    "updatedAt": "2024-09-01T00:00:00Z",
}


def test_freshly_signed_status_change_verifies_with_svix_and_becomes_an_event() -> None:
    headers, raw = signed(STATUS_EVENT)
    event = verify_and_parse(SECRET, headers, raw)
    assert event is not None and event.kind is EventKind.RALLY_PARTICIPANT_STATUS
    assert event.key == "rally:webhook:msg_1"
    assert event.payload == {"study_id": "st_1", "participant_id": "pa_9", "status": "SCREENER_QUALIFIED"}


@pytest.mark.parametrize("now", [None, "fixed"])
def test_white_labelled_webhook_headers_are_accepted(now: str | None) -> None:
    headers, raw = signed(STATUS_EVENT, prefix="webhook")
    assert all(k.startswith(("webhook-", "Content")) for k in headers)
    clock = datetime.now(UTC) if now else None
    assert verify_and_parse(SECRET, headers, raw, now=clock) is not None


def test_header_names_are_case_insensitive() -> None:
    headers, raw = signed(STATUS_EVENT)
    assert verify_and_parse(SECRET, {k.upper(): v for k, v in headers.items()}, raw) is not None


def test_wrong_secret_is_refused() -> None:
    headers, raw = signed(STATUS_EVENT, secret="whsec_" + "QUJDREVGR0hJSktMTU5PUA==")
    with pytest.raises(RallySignatureError):
        verify_and_parse(SECRET, headers, raw)


@pytest.mark.parametrize("now", [None, "fixed"])
def test_tampered_body_is_refused(now: str | None) -> None:
    headers, raw = signed(STATUS_EVENT)
    clock = datetime.now(UTC) if now else None
    with pytest.raises(RallySignatureError):
        verify_and_parse(SECRET, headers, raw.replace(b"pa_9", b"pa_8"), now=clock)


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_signature_header_is_refused(missing: str) -> None:
    headers, raw = signed(STATUS_EVENT)
    del headers[missing]
    with pytest.raises(RallySignatureError, match="missing"):
        verify_and_parse(SECRET, headers, raw)


@pytest.mark.parametrize("value", ["garbage", "v1,!!!", "v2,abc", "v1"])
@pytest.mark.parametrize("now", [None, "fixed"])
def test_malformed_signature_header_is_refused_not_crashing(value: str, now: str | None) -> None:
    headers, raw = signed(STATUS_EVENT)
    headers["svix-signature"] = value
    clock = datetime.now(UTC) if now else None
    with pytest.raises(RallySignatureError):
        verify_and_parse(SECRET, headers, raw, now=clock)


def test_signature_error_is_an_invalid_input() -> None:
    assert issubclass(RallySignatureError, InvalidInput)


# ---- webhooks: parsing -----------------------------------------------------------------------------------


def test_opt_out_becomes_an_event_with_email() -> None:
    headers, raw = signed(
        {
            "_eventType": "person.opted_out",
            "email": "dev@rallyuxr.com",
            "optedOut": True,
            "updatedAt": "2024-09-01T00:00:00.000Z",
        }
    )
    event = verify_and_parse(SECRET, headers, raw)
    assert event is not None and event.kind is EventKind.RALLY_PERSON_OPTED_OUT
    assert event.payload == {"email": "dev@rallyuxr.com", "opted_out": True}


def test_other_event_types_are_ignored() -> None:
    headers, raw = signed({"_eventType": "person_import.api.finished", "importId": "i1", "status": "COMPLETED"})
    assert verify_and_parse(SECRET, headers, raw) is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ([1], "body must be a JSON object"),
        ({"participantId": "pa_9"}, "_eventType is missing"),
        ({**STATUS_EVENT, "studyId": None}, "studyId is missing"),
        ({**STATUS_EVENT, "status": 3}, "status must be a non-empty string"),
        ({"_eventType": "person.opted_out", "email": "a@b.c", "optedOut": "yes"}, "optedOut must be a boolean"),
    ],
)
def test_malformed_payloads_are_invalid_with_a_precise_reason(event: Any, reason: str) -> None:
    headers, raw = signed(event)
    with pytest.raises(InvalidInput) as err:
        verify_and_parse(SECRET, headers, raw)
    assert not isinstance(err.value, RallySignatureError) and str(err.value) == reason


def test_signed_non_json_body_is_invalid() -> None:
    sb = RallySandbox(webhook_secret=SECRET)
    raw = b"{oops"
    with pytest.raises(InvalidInput, match="not valid JSON"):
        verify_and_parse(SECRET, sb.signed_headers("msg_x", raw), raw)


# ---- sandbox webhook delivery ----------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint recording what it gets; answers ``statuses`` in turn, then 204."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhooks/rally", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/webhooks/rally"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    if r.runner:
        await r.runner.cleanup()


async def test_approval_delivers_a_signed_status_change_and_the_participant_reads_approved(
    sandbox: RallySandbox, client: RallyClient, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    msg_id = await sandbox.approve("st_1", "pa_9")

    [(headers, raw)] = receiver.received
    event = verify_and_parse(SECRET, headers, raw)
    assert event is not None and event.key == f"rally:webhook:{msg_id}"
    assert event.payload["participant_id"] == "pa_9"
    assert (await client.get_participant("st_1", "pa_9")).is_approved


async def test_redelivery_keeps_the_svix_id(sandbox: RallySandbox, receiver: Receiver) -> None:
    receiver.statuses = [500]
    sandbox.webhook_url = await receiver.start()
    await sandbox.approve("st_1", "pa_9", deliveries=2)
    ids = {h["svix-id"] for h, _ in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1
    assert [d.status for d in sandbox.webhook_deliveries] == [500, 204, 204]
    assert all(verify_and_parse(SECRET, h, raw) for h, raw in receiver.received)


async def test_opt_out_marks_participants_and_sends_person_opted_out(
    sandbox: RallySandbox, client: RallyClient, receiver: Receiver
) -> None:
    sandbox.webhook_url = await receiver.start()
    await sandbox.opt_out("JORDAN@example.com")
    event = verify_and_parse(SECRET, *receiver.received[0])
    assert event is not None and event.kind is EventKind.RALLY_PERSON_OPTED_OUT
    assert (await client.get_participant("st_1", "pa_9")).has_opted_out
