"""The playground's HTTP API: bad input is refused with a reason and changes nothing; private notes stay private."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from core import clock
from playground import Playground
from playground.server import as_slack_client_sends
from playground.world import World
from tests.integration.conftest import eventually


@pytest.fixture
async def client(playground: Playground) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=str(playground.url)) as session:
        yield session


async def post(client: aiohttp.ClientSession, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
    async with client.post(path, json=payload) as response:
        return response.status, await response.json()


async def state(client: aiohttp.ClientSession, viewer: str) -> dict[str, Any]:
    async with client.get("/api/state", params={"as": viewer}) as response:
        assert response.status == 200
        return dict(await response.json())


def footprint(world: World) -> tuple[Any, ...]:
    """Everything an action could have changed in the stand-ins."""
    c = world.cast
    return (
        len(world.respondent.webhook_deliveries),
        len(world.rally.webhook_deliveries),
        len(world.slack.event_deliveries),
        len(world.slack.messages(c.channel)),
        sum(len(conv["messages"]) for conv in world.respondent.conversations.values()),
        [p["approvalStatus"] for p in world.rally.participants[c.study_id].values()],
        world.respondent._outage,
        [p["read"] for conv in world.respondent.conversations.values() for p in conv["participants"]],
        len(world.slack.direct_messages(world.cast.owner.slack_id)),
        round((clock.now() - datetime.now(UTC)).total_seconds() / 60),  # the bridge's clock, not moved
    )


BAD_ACTIONS = [
    ("/api/participant/write", {"participant": "pa_nobody", "body": "hi"}, 404, "no participant 'pa_nobody'"),
    ("/api/participant/write", {"participant": ["pa_alex"], "body": "hi"}, 404, "no participant"),
    ("/api/participant/write", {"participant": "pa_alex", "body": "   "}, 400, "body must be non-empty text"),
    ("/api/participant/write", {"participant": "pa_alex", "body": 42}, 400, "body must be non-empty text"),
    ("/api/participant/write", {"participant": "pa_alex", "body": "x" * 4001}, 400, "longer than 4000 characters"),
    ("/api/slack/post", {"user": "U0NOBODY", "text": "hi"}, 400, "unknown person 'U0NOBODY'"),
    ("/api/slack/post", {"user": "U0CHLOE", "text": "hi", "thread_ts": "123.456"}, 404, "no thread '123.456'"),
    ("/api/slack/post", {"user": "U0CHLOE", "text": "/rally help"}, 400, "slash commands go in the channel"),
    ("/api/slack/command", {"user": "U0ANA", "text": "/giphy cats"}, 400, "/giphy is not a command here"),
    ("/api/slack/command", {"user": "U0ANA", "text": ""}, 400, "text must be non-empty text"),
    ("/api/rally/approve", {"participant": "pa_jordan"}, 409, "Jordan Lee is already approved"),
    ("/api/respondent/outage", {"down": "yes"}, 400, "down must be true or false"),
    ("/api/rally/approve", ["pa_alex"], 400, "the body must be a JSON object"),
    ("/api/participant/read", {"participant": "pa_nobody"}, 404, "no participant 'pa_nobody'"),
    ("/api/participant/read", {"participant": "pa_alex"}, 409, "Alex Kim is not approved yet"),
    ("/api/participant/read", {"participant": "pa_jordan"}, 409, "Jordan Lee has no conversation on Respondent yet"),
    ("/api/time/forward", {"hours": "2"}, 400, "hours must be a number above 0 and at most 48"),
    ("/api/time/forward", {"hours": True}, 400, "hours must be a number"),
    ("/api/time/forward", {"hours": 0}, 400, "hours must be a number"),
    ("/api/time/forward", {"hours": -2}, 400, "hours must be a number"),
    ("/api/time/forward", {"hours": 49}, 400, "hours must be a number"),
    ("/api/time/forward", {}, 400, "hours must be a number"),
    ("/api/slack/click", {"user": "U0NOBODY", "ts": "1.2", "label": "Cancel"}, 400, "unknown person 'U0NOBODY'"),
    ("/api/slack/click", {"user": "U0ANA", "ts": "1.2"}, 400, "label must be non-empty text"),
    ("/api/slack/click", {"user": "U0ANA", "ts": "123.456", "label": "Cancel"}, 404, "no message '123.456'"),
    ("/api/slack/click", {"user": "U0ANA", "ts": 1, "label": "Cancel"}, 404, "no message 1"),
    (
        "/api/slack/click",
        {"user": "U0ANA", "ts": "123.456", "label": "Cancel", "private": True},
        404,
        "no private message '123.456' for you",
    ),
]


@pytest.mark.parametrize(("path", "payload", "status", "reason"), BAD_ACTIONS)
async def test_a_bad_action_is_refused_with_its_reason_and_changes_nothing(
    client: aiohttp.ClientSession, world: World, path: str, payload: Any, status: int, reason: str
) -> None:
    before = footprint(world)
    answer_status, answer = await post(client, path, payload)
    assert (answer_status, reason in answer["error"]) == (status, True), answer
    assert footprint(world) == before


async def test_actions_from_another_site_or_as_a_form_are_refused(client: aiohttp.ClientSession, world: World) -> None:
    before = footprint(world)
    approve = {"participant": "pa_alex"}
    async with client.post("/api/rally/approve", json=approve, headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
    async with client.post("/api/rally/approve", data={"participant": "pa_alex"}) as r:
        assert r.status == 415
        assert "application/json" in (await r.json())["error"]
    async with client.post("/api/rally/approve", data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        assert (r.status, (await r.json())["error"]) == (400, "the body is not valid JSON")
    async with client.get("/api/state", params={"as": "U0NOBODY"}) as r:
        assert r.status == 400
    assert footprint(world) == before


async def test_the_page_loads_only_its_own_script_and_style(client: aiohttp.ClientSession) -> None:
    async with client.get("/") as r:
        assert r.status == 200
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert '<script src="/app.js" defer></script>' in await r.text()
    async with client.get("/app.js") as r:
        assert (r.status, r.content_type) == (200, "text/javascript")
        assert "innerHTML" not in await r.text()  # everything is rendered with textContent


async def test_private_notices_are_served_only_to_the_person_they_are_for(
    client: aiohttp.ClientSession, world: World
) -> None:
    c = world.cast
    link = {"user": c.owner.slack_id, "text": f"/rally link {c.study_id}"}
    assert (await post(client, "/api/slack/command", link))[0] == 200

    def jordan_root() -> str | None:
        roots = [m for m in world.slack.messages(c.channel) if "Jordan L." in m["text"]]
        return roots[0]["ts"] if roots else None

    root = await eventually(jordan_root, what="Jordan's thread root")
    status, _ = await post(
        client, "/api/slack/post", {"user": c.outsider.slack_id, "text": "Buy our product", "thread_ts": root}
    )
    assert status == 200

    async def refusals(viewer: str) -> list[str]:
        return [p["text"] for p in (await state(client, viewer))["slack"]["private"] if "not on the team" in p["text"]]

    deadline = time.monotonic() + 10
    while not await refusals(c.outsider.slack_id):
        assert time.monotonic() < deadline, "the outsider never saw a private refusal"
        await asyncio.sleep(0.05)
    assert len(await refusals(c.outsider.slack_id)) == 1
    assert await refusals(c.teammate.slack_id) == []
    assert await refusals(c.owner.slack_id) == []
    owner_private = [p["text"] for p in (await state(client, c.owner.slack_id))["slack"]["private"]]
    assert "Checking the study in Rally…" in owner_private  # the slash command's ack, shown to Ana only
    assert world.respondent.messages_to(c.jordan.respondent_user_id) == []


def test_text_typed_in_slack_is_sent_as_slacks_client_sends_it() -> None:
    assert as_slack_client_sends("Tom & Jerry <!channel> <b>") == "Tom &amp; Jerry &lt;!channel&gt; &lt;b&gt;"
    assert as_slack_client_sends("see https://example.com/a?b=1&c=2.") == "see <https://example.com/a?b=1&amp;c=2>."
    assert as_slack_client_sends("(https://example.com)") == "(<https://example.com>)"


async def test_a_taken_port_gives_the_playground_another(world: World) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        playground = Playground(world)
        url = await playground.start(port)
        try:
            assert url.startswith("http://127.0.0.1:") and url != f"http://127.0.0.1:{port}/"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                assert response.status == 200
        finally:
            await playground.stop()


async def until_state(
    client: aiohttp.ClientSession, viewer: str, check: Callable[[dict[str, Any]], Any], what: str
) -> Any:
    """Poll the page's state as ``viewer`` until ``check`` finds something; that something."""
    deadline = time.monotonic() + 15
    while not (found := check(await state(client, viewer))):
        assert time.monotonic() < deadline, f"the page never showed {what}"
        await asyncio.sleep(0.05)
    return found


def message(snapshot: dict[str, Any], ts: str) -> dict[str, Any]:
    return next(m for m in snapshot["slack"]["messages"] if m["ts"] == ts)


async def test_fast_forward_nudges_and_a_reply_the_participant_read_is_marked_seen(
    client: aiohttp.ClientSession, playground: Playground, world: World
) -> None:
    c = world.cast
    # Jordan's session is in 3 h: a wait counts 10 min (wall clock) there, whatever the day and hour of the run.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    await world.rally.move_session(c.study_id, c.jordan.participant_id, soon.isoformat().replace("+00:00", "Z"))
    ana, chloe = c.owner.slack_id, c.teammate.slack_id
    assert (await post(client, "/api/slack/command", {"user": ana, "text": f"/rally link {c.study_id}"}))[0] == 200

    def jordan_root(snapshot: dict[str, Any]) -> str | None:
        roots = [m for m in snapshot["slack"]["messages"] if "Jordan L." in m["text"] and not m["thread_ts"]]
        return roots[0]["ts"] if roots else None

    root = await until_state(client, ana, jordan_root, "Jordan's thread")
    write = {"participant": c.jordan.participant_id, "body": "Where do I park?"}
    assert (await post(client, "/api/participant/write", write))[0] == 200
    await until_state(
        client, ana, lambda s: "Waiting on the team" in message(s, root)["text"], "Jordan waiting on the team"
    )
    assert (await state(client, ana))["clock"]["offset_hours"] == 0

    status, answer = await post(client, "/api/time/forward", {"hours": 2})
    assert (status, answer["offset_hours"]) == (200, 2)
    assert clock.now() - datetime.now(UTC) > timedelta(hours=1, minutes=59)
    dms = await until_state(client, ana, lambda s: s["slack"]["dms"], "Ana's direct message")
    assert len(dms) == 1 and "Jordan L. (Checkout redesign interviews) has waited" in dms[0]["text"]
    assert (await state(client, chloe))["slack"]["dms"] == []  # a direct message is Ana's alone
    note = await until_state(
        client,
        ana,
        lambda s: [m for m in s["slack"]["messages"] if m["thread_ts"] == root and "nobody has replied" in m["text"]],
        "the note in Jordan's thread",
    )
    assert note[0]["text"].startswith(f"<@{ana}> Jordan L. has waited")

    status, answer = await post(client, "/api/time/forward", {"hours": 2})
    assert (status, answer["offset_hours"], answer["nudges"]) == (200, 4, 0)  # once per stage
    moved = (await state(client, ana))["clock"]
    assert moved["offset_hours"] == 4
    assert datetime.fromisoformat(moved["now"]) - datetime.now(UTC) > timedelta(hours=3, minutes=59)

    reply = {"user": chloe, "text": "Level -1, see you soon!", "thread_ts": root}
    status, answer = await post(client, "/api/slack/post", reply)
    assert status == 200
    reply_ts = answer["ts"]
    await until_state(
        client,
        ana,
        lambda s: "white_check_mark" in {r["name"] for r in message(s, reply_ts)["reactions"]},
        "the ✅ on the reply",
    )
    assert (await post(client, "/api/participant/read", {"participant": c.jordan.participant_id}))[0] == 200
    seen = await until_state(
        client,
        ana,
        lambda s: [r for r in message(s, reply_ts)["reactions"] if r["name"] == "eyes"],
        "the 👀 on the reply",
    )
    assert seen == [{"name": "eyes", "emoji": "👀"}]
    snapshot = await until_state(
        client, ana, lambda s: s if "Seen by participant" in message(s, root)["text"] else None, "the seen line"
    )
    assert message(snapshot, root)["edited"] is True
    assert any("Seen by participant" in str(block) for block in message(snapshot, root)["blocks"])
    jordan = next(p for p in snapshot["participants"] if p["id"] == c.jordan.participant_id)
    assert jordan["read"] is True


async def test_the_bridge_clock_goes_back_to_real_time_when_the_playground_stops(world: World) -> None:
    playground = Playground(world)
    url = await playground.start(0)
    try:
        async with aiohttp.ClientSession(base_url=url) as session:
            status, answer = await post(session, "/api/time/forward", {"hours": 1.5})
            assert (status, answer["offset_hours"]) == (200, 1.5)
            assert abs(clock.now() - datetime.now(UTC) - timedelta(hours=1.5)) < timedelta(seconds=5)
    finally:
        await playground.stop()
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
