"""Saved replies and study-wide updates in the playground, through its HTTP API as the page uses it: commands typed
in the channel's box, private notes shown with their buttons, and buttons clicked as the viewer (a signed Slack
click to the bridge). A private note's buttons are its recipient's alone; a card's form buttons are not clickable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from playground import Playground
from playground.world import World
from tests.playground.test_api import post, state, until_state

SAVED = "Hi {first_name}, see you on {session_time}. — {researcher}"
UPDATE = "Hi {first_name}, sessions of {study} are in Room 4. — {researcher}"


@pytest.fixture
async def client(playground: Playground) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=str(playground.url)) as session:
        yield session


async def run(client: aiohttp.ClientSession, user: str, text: str) -> None:
    status, answer = await post(client, "/api/slack/command", {"user": user, "text": text})
    assert status == 200, answer


def notes(snapshot: dict[str, Any], part: str) -> list[dict[str, Any]]:
    return [p for p in snapshot["slack"]["private"] if part in p["text"]]


def roots(snapshot: dict[str, Any]) -> dict[str, str]:
    """Each participant's thread root ts, by the tag the card shows (``Jordan L.``)."""
    found = {}
    for m in snapshot["slack"]["messages"]:
        for tag in ("Jordan L.", "Priya S.", "Sam C."):
            if tag in m["text"] and "Reply in this thread" in m["text"] and not m["thread_ts"]:
                found[tag] = m["ts"]
    return found


def team_said(snapshot: dict[str, Any], participant: str, part: str) -> list[str]:
    """What the research team sent ``participant`` that the Participant pane shows, containing ``part``."""
    me = next(p for p in snapshot["participants"] if p["id"] == participant)
    return [m["body"] for m in me["inbox"] if m["from"] == "team" and part in m["body"]]


async def test_save_send_and_update_three_participants_with_confirm(
    client: aiohttp.ClientSession, world: World
) -> None:
    c = world.cast
    ana, chloe = c.owner.slack_id, c.teammate.slack_id
    await run(client, ana, f"/rally link {c.study_id}")
    for who in (c.priya, c.sam):
        assert (await post(client, "/api/rally/approve", {"participant": who.participant_id}))[0] == 200
    threads = await until_state(client, ana, lambda s: r if len(r := roots(s)) == 3 else None, "three threads")

    # Save a reply with placeholders; send it by command to Sam, and with the card's button to Jordan.
    await run(client, ana, f"/rally reply add welcome {SAVED}")
    await until_state(client, ana, lambda s: notes(s, "Saved reply “welcome” saved for the workspace"), "saved")
    await run(client, ana, "/rally reply Sam welcome")
    got = await until_state(client, ana, lambda s: team_said(s, c.sam.participant_id, "see you on"), "Sam's reply")
    assert got[0].startswith("Hi Sam, see you on ") and got[0].endswith(" UTC. — Ana Ortiz") and "{" not in got[0]

    card = next(m for m in (await state(client, ana))["slack"]["messages"] if m["ts"] == threads["Jordan L."])
    shown = {b["label"]: b["clickable"] for b in card["buttons"]}
    assert shown["Saved reply"] is True and shown["Assign to me"] is True and shown["Remind"] is False
    status, answer = await post(client, "/api/slack/click", {"user": ana, "ts": card["ts"], "label": "Remind"})
    assert (status, "opens a form" in answer["error"]) == (400, True)
    click = {"user": ana, "ts": card["ts"], "label": "Saved reply"}
    assert (await post(client, "/api/slack/click", click))[0] == 200
    offer = (await until_state(client, ana, lambda s: notes(s, "Send Jordan L. a saved reply"), "the offer"))[0]
    assert [b["label"] for b in offer["buttons"]] == ["Send “welcome”"]
    click = {"user": ana, "ts": offer["ts"], "label": "Send “welcome”", "private": True}
    assert (await post(client, "/api/slack/click", click))[0] == 200
    await until_state(client, ana, lambda s: team_said(s, c.jordan.participant_id, "Hi Jordan, see you on"), "sent")

    # A study-wide update: the preview is Ana's alone, with its buttons; nothing leaves before Confirm.
    await run(client, ana, f"/rally update all -- {UPDATE}")
    preview = (await until_state(client, ana, lambda s: notes(s, "Update to 3 participants"), "the preview"))[0]
    assert (
        "→ Priya S.: Hi Priya, sessions of Checkout redesign interviews are in Room 4. — Ana Ortiz" in preview["text"]
    )
    assert [(b["label"], b["style"], b["clickable"]) for b in preview["buttons"]] == [
        ("Confirm: send to 3", "primary", True),
        ("Cancel", "", True),
    ]
    assert notes(await state(client, chloe), "Update to 3") == []
    confirm = {"ts": preview["ts"], "label": "Confirm: send to 3", "private": True}
    status, answer = await post(client, "/api/slack/click", {"user": chloe, **confirm})
    assert (status, answer["error"]) == (404, f"no private message {preview['ts']!r} for you in #checkout-study")
    await world.quiet()
    before = await state(client, ana)
    assert all(team_said(before, who.participant_id, "Room 4") == [] for who in (c.jordan, c.priya, c.sam))

    assert (await post(client, "/api/slack/click", {"user": ana, **confirm}))[0] == 200
    summary = "Study update from Ana Ortiz to Checkout redesign interviews: 3 sent, 0 skipped (opted out), 0 failed."
    snapshot = await until_state(
        client, ana, lambda s: s if any(m["text"] == summary for m in s["slack"]["messages"]) else None, "summary"
    )
    assert notes(snapshot, "Sending to 3 participants")
    await world.quiet()
    snapshot = await state(client, ana)
    for who in (c.jordan, c.priya, c.sam):
        expected = f"Hi {who.first_name}, sessions of Checkout redesign interviews are in Room 4. — Ana Ortiz"
        assert team_said(snapshot, who.participant_id, "Room 4") == [expected]
        assert [m["body"] for m in world.respondent.messages_to(who.respondent_user_id)].count(expected) == 1
        root = threads[f"{who.first_name} {who.last_name[0]}."]
        shown = [
            m for m in snapshot["slack"]["messages"] if m["thread_ts"] == root and "study-wide update" in m["text"]
        ]
        assert len(shown) == 1
    assert [m["text"] for m in snapshot["slack"]["messages"]].count(summary) == 1
