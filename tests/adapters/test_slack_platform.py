"""SlackPlatform against the Slack sandbox over real HTTP with the real AsyncWebClient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import escape, format_session_time, split_text
from adapters.slack.platform import SlackPlatform, build_client
from core.domain import ChatUser, Mark
from core.errors import NotFound, PermanentFailure, TemporaryFailure, UnknownOutcome
from core.message import text
from core.ports import ChatPlatform, ThreadRoot
from sandbox.slack import SlackSandbox

CH = "C0RESEARCH"


@pytest.fixture
async def sandbox() -> AsyncIterator[SlackSandbox]:
    box = SlackSandbox(rate_limit=False)
    box.add_channel(CH, "research")
    box.add_user("U123", "Dana Researcher", "dana@lab.test", tz="Europe/Berlin", display_name="Dana")
    box.add_user("U456", "Sam Smith", "sam@lab.test")
    await box.start()
    yield box
    await box.stop()


def client_for(box: SlackSandbox, *, timeout: int = 5, token: str | None = None) -> AsyncWebClient:
    return build_client(token or box.token, base_url=f"{box.base_url}/api/", timeout=timeout)


@pytest.fixture
def slack(sandbox: SlackSandbox) -> SlackPlatform:
    return SlackPlatform(client_for(sandbox))


ROOT = ThreadRoot(
    participant_name="<!channel> Jordan L.",
    study_name="Checkout <https://evil.test|bank> study",
    session_starts_at=datetime(2026, 11, 27, 17, 0, tzinfo=UTC),
    scheduling_url="https://cal.test/book?a=1&b=2",
)


def test_slack_platform_satisfies_the_port(slack: SlackPlatform) -> None:
    platform: ChatPlatform = slack
    assert platform is slack


async def test_root_post_escapes_outside_text(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    posted = await slack.post_thread_root(CH, ROOT, key="root-1")
    [message] = sandbox.messages(CH)
    assert message["ts"] == posted.post_id and posted.channel == CH
    section = message["blocks"][0]["text"]["text"]
    everything = message["text"] + json.dumps(message["blocks"])
    assert "<!channel>" not in everything and "<https://evil" not in everything
    assert "&lt;!channel&gt; Jordan L." in section and "&lt;https://evil.test|bank&gt;" in section
    assert "Fri 27 Nov 2026, 17:00 UTC" in section and "<!date^1795798800^" in section
    assert "<https://cal.test/book?a=1&amp;b=2|scheduling link>" in section
    assert "Reply in this thread to message them." in everything
    assert "Fri 27 Nov 2026, 17:00 UTC" in message["text"]
    assert message["metadata"] == {"event_type": "rallybridge_post", "event_payload": {"key": "root-1"}}


def test_session_time_format() -> None:
    assert format_session_time(datetime(2026, 11, 27, 17, 0)) == "Fri 27 Nov 2026, 17:00 UTC"


async def test_participant_message_attributed_and_escaped(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    root = await slack.post_thread_root(CH, ROOT, key="root-1")
    posted = await slack.post_participant_message(
        CH, root.post_id, "Jordan L.", "hi <!here> <@U123> & <https://evil|bank>", key="m-1"
    )
    [reply] = sandbox.thread(CH, root.post_id)
    assert reply["ts"] == posted.post_id and reply["thread_ts"] == root.post_id
    assert reply["text"] == "*Jordan L.* (participant):\nhi &lt;!here&gt; &lt;@U123&gt; &amp; &lt;https://evil|bank&gt;"


async def test_long_message_is_split_in_order_never_truncated(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    root = await slack.post_thread_root(CH, ROOT, key="root-1")
    body = ("word <& " * 3000 + "\n") * 5  # 120,005 chars before escaping, about 260,000 after
    posted = await slack.post_participant_message(CH, root.post_id, "Jordan L.", body, key="long")
    parts = sandbox.thread(CH, root.post_id)
    assert len(parts) == 7
    assert parts[0]["ts"] == posted.post_id
    assert all(len(p["text"]) <= 40_000 for p in parts)
    headers = [p["text"].split("\n", 1)[0] for p in parts]
    assert headers == [f"*Jordan L.* (participant, part {i}/7):" for i in range(1, 8)]
    assert "".join(p["text"].split("\n", 1)[1] for p in parts) == escape(body)
    keys = [p["metadata"]["event_payload"]["key"] for p in parts]
    assert keys == [f"long#{i}" for i in range(1, 8)]
    assert await slack.find_post(CH, "long", root_id=root.post_id) == posted


async def test_split_retry_posts_only_missing_parts(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    root = await slack.post_thread_root(CH, ROOT, key="root-1")
    body = "x" * 100_000
    posted = await slack.post_participant_message(CH, root.post_id, "Jo", body, key="big")
    parts = sandbox.thread(CH, root.post_id)
    assert len(parts) == 3
    # An earlier attempt that stopped after part 1 (e.g. 429 on part 2) leaves only part 1.
    for part in parts[1:]:
        sandbox.remove_message(CH, part["ts"])
    assert await slack.find_post(CH, "big", root_id=root.post_id) is None
    before = sandbox.calls("chat.postMessage")
    again = await slack.post_participant_message(CH, root.post_id, "Jo", body, key="big")
    assert again == posted
    assert sandbox.calls("chat.postMessage") - before == 2
    texts = [p["text"].split("\n", 1)[1] for p in sandbox.thread(CH, root.post_id)]
    assert "".join(texts) == body
    assert await slack.find_post(CH, "big", root_id=root.post_id) == posted


def test_split_text_keeps_entities_whole() -> None:
    text = escape("<" * 50)
    chunks = split_text(text, 18)
    assert "".join(chunks) == text
    assert all(len(c) <= 18 and c.count("&") == c.count(";") for c in chunks)


async def test_find_post_after_hung_post(sandbox: SlackSandbox) -> None:
    slack = SlackPlatform(client_for(sandbox, timeout=1))
    root = await slack.post_thread_root(CH, ROOT, key="root-1")
    sandbox.hang_next(5, method="chat.postMessage")
    with pytest.raises(UnknownOutcome):
        await slack.post_participant_message(CH, root.post_id, "Jordan L.", "hello", key="m-7")
    found = await slack.find_post(CH, "m-7", root_id=root.post_id)
    [reply] = sandbox.thread(CH, root.post_id)
    assert found is not None and found.post_id == reply["ts"]
    assert sandbox.calls("chat.postMessage") == 2
    assert await slack.find_post(CH, "m-8", root_id=root.post_id) is None
    assert await slack.find_post(CH, "root-1") == root


async def test_find_post_pages_through_history(sandbox: SlackSandbox) -> None:
    slack = SlackPlatform(client_for(sandbox), scan_limit=2, scan_pages=5)
    for i in range(5):
        await slack.post_notice(CH, text(f"notice {i}"), key=f"n-{i}")
    first = await slack.find_post(CH, "n-0")
    assert first is not None and first.post_id == sandbox.messages(CH)[0]["ts"]
    assert sandbox.calls("conversations.history") == 3


async def test_rate_limited_is_temporary_with_retry_after(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    sandbox.rate_limit_next(1, retry_after=7, method="chat.postMessage")
    with pytest.raises(TemporaryFailure) as info:
        await slack.post_notice(CH, text("hello"), key="n-1")
    assert not isinstance(info.value, UnknownOutcome)
    assert info.value.retry_after == 7
    assert sandbox.calls("chat.postMessage") == 1  # no hidden SDK retry
    assert sandbox.messages(CH) == []


async def test_server_error_is_temporary(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    sandbox.fail_next(1, status=500)
    with pytest.raises(TemporaryFailure) as info:
        await slack.post_notice(CH, text("hello"), key="n-1")
    assert not isinstance(info.value, UnknownOutcome)
    assert info.value.retry_after is None


async def test_slack_errors_are_permanent(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    with pytest.raises(PermanentFailure) as info:
        await slack.post_notice("C0MISSING", text("hello"), key="n-1")
    assert isinstance(info.value, NotFound) and "channel" in info.value.reason
    sandbox.fail_next(1, status=200, error="is_archived")
    with pytest.raises(PermanentFailure, match="archived"):
        await slack.post_notice(CH, text("hello"), key="n-2")
    bad = SlackPlatform(client_for(sandbox, token="xoxb-wrong"))
    with pytest.raises(PermanentFailure, match="token is invalid"):
        await bad.post_notice(CH, text("hello"), key="n-3")


async def test_connection_refused_is_temporary(sandbox: SlackSandbox) -> None:
    url = sandbox.base_url
    await sandbox.stop()
    slack = SlackPlatform(build_client("xoxb-x", base_url=f"{url}/api/"))
    with pytest.raises(TemporaryFailure) as info:
        await slack.post_notice(CH, text("hello"), key="n-1")
    assert not isinstance(info.value, UnknownOutcome)


async def test_sdk_default_retry_handlers_are_removed(sandbox: SlackSandbox) -> None:
    client = AsyncWebClient(token=sandbox.token, base_url=f"{sandbox.base_url}/api/")
    assert client.retry_handlers
    SlackPlatform(client)
    assert client.retry_handlers == []


async def test_a_mark_already_shown_is_success(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    posted = await slack.post_notice(CH, text("hello"), key="n-1")
    await slack.add_mark(CH, posted.post_id, Mark.DELIVERED)
    await slack.add_mark(CH, posted.post_id, Mark.DELIVERED)
    assert sandbox.reactions(CH, posted.post_id) == {"white_check_mark"}
    assert sandbox.request_log[-1].status == "already_reacted"
    with pytest.raises(NotFound):
        await slack.add_mark(CH, "1.000001", Mark.PENDING)


async def test_removing_a_mark_that_is_not_there_is_success(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    posted = await slack.post_notice(CH, text("hello"), key="n-2")
    await slack.add_mark(CH, posted.post_id, Mark.PENDING)
    assert sandbox.reactions(CH, posted.post_id) == {"hourglass_flowing_sand"}
    await slack.remove_mark(CH, posted.post_id, Mark.PENDING)
    assert sandbox.reactions(CH, posted.post_id) == set()
    await slack.remove_mark(CH, posted.post_id, Mark.PENDING)
    assert sandbox.request_log[-1].status == "no_reaction"


async def test_lookup_user(slack: SlackPlatform) -> None:
    assert await slack.lookup_user("U123") == ChatUser("U123", "Dana", "dana@lab.test", "Europe/Berlin", False)
    assert (await slack.lookup_user("U0BOT")).is_bot
    with pytest.raises(NotFound):
        await slack.lookup_user("U404")


async def test_to_plain_text_resolves_users_once(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    text = "hi <@U123>, cc <@U456|sam> &amp; <@U123>: <https://x.test|doc> :wave:"
    assert await slack.to_plain_text(text) == "hi @Dana, cc @Sam Smith & @Dana: doc (https://x.test) :wave:"
    assert sandbox.calls("users.info") == 2


async def test_post_private_is_ephemeral(slack: SlackPlatform, sandbox: SlackSandbox) -> None:
    await slack.post_private(CH, "U123", text("Could not relay <that>"), root_id="1.000001")
    [eph] = sandbox.ephemerals
    assert eph["user"] == "U123" and eph["channel"] == CH and eph["thread_ts"] == "1.000001"
    assert eph["text"] == "Could not relay &lt;that&gt;"
    assert sandbox.messages(CH) == []


async def test_per_channel_rate_limit_after_burst() -> None:
    box = SlackSandbox(channel_burst=3, channel_rate=1.0)
    box.add_channel(CH, "research")
    box.add_channel("C2", "other")
    await box.start()
    try:
        slack = SlackPlatform(client_for(box))
        for i in range(3):
            await slack.post_notice(CH, text("hi"), key=f"k{i}")
        with pytest.raises(TemporaryFailure) as info:
            await slack.post_notice(CH, text("hi"), key="k3")
        assert info.value.retry_after is not None and info.value.retry_after >= 1
        await slack.post_notice("C2", text("other channel is fine"), key="k4")
        assert [c.http_status for c in box.request_log] == [200, 200, 200, 429, 200]
        assert box.request_log[3].status == "ratelimited"
    finally:
        await box.stop()


async def test_sandbox_rejects_text_over_limit(sandbox: SlackSandbox) -> None:
    client = client_for(sandbox)
    slack = SlackPlatform(client, max_text_chars=50_000)
    with pytest.raises(PermanentFailure, match="longer"):
        await slack.post_notice(CH, text("a" * 45_000), key="big")


async def test_sandbox_events_are_signed_like_slack(sandbox: SlackSandbox) -> None:
    received: list[dict[str, Any]] = []
    verifier = SignatureVerifier(sandbox.signing_secret)
    attempts = 0

    async def events(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        body = await request.read()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        received.append({"body": json.loads(body), "retry": request.headers.get("X-Slack-Retry-Num")})
        return web.Response(status=500 if attempts == 1 else 200)

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sandbox.events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    sandbox.retry_delays = (0.01, 0.01, 0.01)
    try:
        ts = await sandbox.user_posts(CH, "U123", "hello <b>", thread_ts="1.000001")
        assert [r["retry"] for r in received] == [None, "1"]  # 500 first, then Slack's retry
        event = received[0]["body"]["event"]
        assert event["ts"] == ts and event["thread_ts"] == "1.000001" and event["user"] == "U123"
        assert received[0]["body"]["event_id"] == received[1]["body"]["event_id"]
        assert [d.status for d in sandbox.event_deliveries] == [500, 200]

        await sandbox.user_posts(CH, "U123", "again", deliveries=4)
        assert [r["retry"] for r in received[2:]] == [None, "1", "2", "3"]

        forged = json.dumps({"type": "event_callback"}).encode()
        status, _ = await sandbox.deliver_raw(forged, {**sandbox.sign(b"other"), "Content-Type": "application/json"})
        assert status == 401
        status, _ = await sandbox.deliver_raw(forged, {**sandbox.sign(forged), "Content-Type": "application/json"})
        assert status == 200
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver(sandbox: SlackSandbox) -> AsyncIterator[list[dict[str, Any]]]:
    """A tiny bridge stand-in at /slack/events that verifies signatures and records what arrives."""
    got: list[dict[str, Any]] = []
    verifier = SignatureVerifier(sandbox.signing_secret)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        if request.content_type == "application/json":
            got.append(json.loads(body))
            return web.Response(status=200)
        form = dict(await request.post())
        got.append(form)
        return web.json_response({"response_type": "ephemeral", "text": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sandbox.events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield got
    await runner.cleanup()


async def test_sandbox_echo_edit_delete_and_files(
    sandbox: SlackSandbox, receiver: list[dict[str, Any]], slack: SlackPlatform
) -> None:
    sandbox.echo_bot_messages = True
    posted = await slack.post_notice(CH, text("bot says hi"), key="n-1")
    for _ in range(50):
        if receiver:
            break
        await asyncio.sleep(0.01)
    echo = receiver.pop()["event"]
    assert echo["bot_id"] == sandbox.bot_id and echo["ts"] == posted.post_id and echo["channel"] == CH
    sandbox.echo_bot_messages = False

    ts = await sandbox.user_posts(CH, "U123", "first", files=True)
    assert receiver[-1]["event"]["subtype"] == "file_share" and receiver[-1]["event"]["files"]
    await sandbox.user_edits(CH, "U123", ts, "second")
    edit = receiver[-1]["event"]
    assert edit["subtype"] == "message_changed" and edit["message"]["text"] == "second"
    assert edit["previous_message"]["text"] == "first"
    await sandbox.user_deletes(CH, ts)
    assert receiver[-1]["event"]["subtype"] == "message_deleted" and receiver[-1]["event"]["deleted_ts"] == ts
    assert sandbox.find_message(CH, ts) is None
    assert len({r["event_id"] for r in receiver}) == 3


async def test_sandbox_slash_command_and_response_url(sandbox: SlackSandbox, receiver: list[dict[str, Any]]) -> None:
    result = await sandbox.run_command(CH, "U123", "status")
    assert result.status == 200 and result.json == {"response_type": "ephemeral", "text": "ok"}
    form = receiver[-1]
    assert form["command"] == "/rally" and form["text"] == "status" and form["channel_id"] == CH
    assert form["response_url"] == result.response_url and form["trigger_id"] == result.trigger_id
    async with aiohttp.ClientSession() as session, session.post(result.response_url, json={"text": "done"}) as r:
        assert r.status == 200
    assert list(sandbox.response_url_posts.values()) == [[{"text": "done"}]]


async def test_sandbox_accepts_form_bodies_and_checks_auth(sandbox: SlackSandbox) -> None:
    url = f"{sandbox.base_url}/api/chat.postMessage"
    form = {
        "channel": CH,
        "text": "form post",
        "metadata": json.dumps({"event_type": "x", "event_payload": {"key": "k"}}),
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=form, headers={"Authorization": f"Bearer {sandbox.token}"}) as r:
            data = await r.json()
        assert data["ok"] and data["message"]["metadata"]["event_payload"] == {"key": "k"}
        async with session.post(url, data=form) as r:
            assert (r.status, (await r.json())["error"]) == (200, "not_authed")
        async with session.post(url, json=form, headers={"Authorization": "Bearer nope"}) as r:
            assert (await r.json())["error"] == "invalid_auth"
    history = await client_for(sandbox).conversations_history(channel=CH)
    assert "metadata" not in history["messages"][0]
    assert (await client_for(sandbox).auth_test())["user_id"] == sandbox.bot_user_id
