"""A queued relay is checked again when it is sent (issue 13): its author must still be allowed to message the
participant. On fakes: the relay row a reply queued, performed as the outbox worker would, with the study team kept
for a short time (``bridge/team_cache.py``) so that the normal send costs no Rally call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bridge import effects
from bridge.team_cache import TTL
from core import clock, events
from core.domain import Conversation, RallyUser, RespondentMessage, TeamMember
from core.errors import PermanentFailure
from core.permissions import still_may_send
from core.records import QueuedRow
from tests.fakes.bridge import CHANNEL, NOW, STUDY, Bridge, participant, researcher, study

TEAMMATE = "U_CHLOE"


@pytest.fixture
def now() -> Iterator[list[datetime]]:
    """The project's clock, movable: ``now[0] += ...``."""
    moment = [NOW]
    clock.set_clock(lambda: moment[0])
    yield moment
    clock.set_clock(None)


@pytest.fixture
async def bridge(now: list[datetime]) -> Bridge:
    b = Bridge()
    b.rally.studies[STUDY] = study()
    b.rally.participants[STUDY] = [participant("pa_1")]
    researcher(b, "U_OWNER", "Ana Ortiz", role="OWNER")
    researcher(b, TEAMMATE, "Chloe Park")
    await b.process(
        events.chat_command(
            platform="slack", request_id="t1", workspace="T1", channel=CHANNEL, user_id="U_OWNER", text=f"link {STUDY}"
        )
    )
    (thread,) = b.store.state.threads.values()
    async with b.store.transaction() as uow:
        await uow.threads.set_root(thread.id, "100.000")
    b.rally.calls.clear()
    return b


async def _reply(bridge: Bridge, body: str, *, user: str = TEAMMATE, ts: str = "200.000") -> QueuedRow:
    """A reply in the participant's thread, through the intake check: the relay row it queued."""
    await bridge.process(
        events.chat_message(
            platform="slack",
            event_id=f"Ev{ts}",
            workspace="T1",
            channel=CHANNEL,
            user_id=user,
            ts=ts,
            thread_ts="100.000",
            text=body,
        )
    )
    return next(row for row in bridge.store.outbox("respondent.send") if row.payload["body"] == body)


async def _send(bridge: Bridge, row: QueuedRow) -> None:
    """Perform the relay and record its outcome, as the outbox worker does."""
    apply = await effects.perform(bridge.services, row)
    async with bridge.store.transaction() as uow:
        await apply(uow)


def _remove_from_team(bridge: Bridge, user_id: str) -> None:
    bridge.rally.teams[STUDY] = [m for m in bridge.rally.teams[STUDY] if m.user_id != f"ru_{user_id}"]


async def test_a_send_within_the_ttl_of_the_intake_check_asks_rally_nothing(bridge: Bridge) -> None:
    row = await _reply(bridge, "See you tomorrow")
    assert bridge.rally.calls == [f"get_team {STUDY}", "find_users chloe@lab.example"], "intake asks fresh"
    bridge.rally.calls.clear()

    await _send(bridge, row)

    assert bridge.rally.calls == []
    assert [body for _conversation, body in bridge.respondent.sent] == ["See you tomorrow"]


async def test_a_send_after_the_ttl_fetches_the_team_and_the_account_once(bridge: Bridge, now: list[datetime]) -> None:
    first, second = await _reply(bridge, "one"), await _reply(bridge, "two", ts="201.000")
    bridge.rally.calls.clear()
    now[0] += TTL + timedelta(seconds=1)  # Respondent was down for longer than the TTL

    await _send(bridge, first)
    await _send(bridge, second)

    assert bridge.rally.calls == [f"get_team {STUDY}", "find_users chloe@lab.example"], "once for both"
    assert [body for _conversation, body in bridge.respondent.sent] == ["one", "two"]


async def test_a_teammate_removed_while_the_relay_waited_is_stopped_and_the_thread_told(
    bridge: Bridge, now: list[datetime]
) -> None:
    row = await _reply(bridge, "Thursday then?")
    _remove_from_team(bridge, TEAMMATE)
    now[0] += TTL + timedelta(seconds=1)
    bridge.rally.calls.clear()

    with pytest.raises(PermanentFailure) as refused:
        await _send(bridge, row)
    assert bridge.respondent.sent == []
    assert bridge.rally.calls == [f"get_team {STUDY}", "find_users chloe@lab.example"], "decided on fresh data once"
    assert refused.value.reason == (
        'Chloe Park is no longer on the team of "Checkout study" in Rally; ask the study owner to add them back '
        "as a teammate with external-panel access"
    )

    # The worker's permanent-failure path: the message failed, the post marked failed, the thread told.
    tell = await effects.on_permanent_failure(bridge.services, row, refused.value.reason)
    async with bridge.store.transaction() as uow:
        await tell(uow)
    (message,) = bridge.store.state.messages.values()
    assert message.state == "failed" and "no longer on the team" in (message.failure_reason or "")
    (notice,) = [t for t in bridge.notice_texts() if "Not delivered" in t]
    assert "Chloe Park is no longer on the team" in notice and f"/rally retry {row.id}" in notice
    (mark,) = [p for p in bridge.outbox("chat.reaction") if p["post_id"] == "200.000"]
    assert mark["mark"] == "failed"


async def test_within_the_ttl_a_refusal_is_never_decided_on_the_kept_team(bridge: Bridge, now: list[datetime]) -> None:
    """Refused on fresh data, then added back: the next round (a retry) is not refused from the cache."""
    row = await _reply(bridge, "Still on?")
    _remove_from_team(bridge, TEAMMATE)
    now[0] += TTL + timedelta(seconds=1)
    with pytest.raises(PermanentFailure):
        await _send(bridge, row)  # the cache now holds the team without Chloe
    researcher(bridge, "U_CHLOE_AGAIN", "Chloe Park")  # the owner adds her back (same email)
    bridge.rally.calls.clear()

    await _send(bridge, row)

    assert [body for _conversation, body in bridge.respondent.sent] == ["Still on?"]
    assert f"get_team {STUDY}" in bridge.rally.calls, "the refusal from the kept team was checked anew"


async def test_within_the_ttl_a_removal_is_not_seen_yet(bridge: Bridge) -> None:
    """What the TTL allows: a reply already queued may leave for up to TTL after the change in Rally."""
    row = await _reply(bridge, "quick")
    _remove_from_team(bridge, TEAMMATE)
    bridge.rally.calls.clear()

    await _send(bridge, row)

    assert bridge.rally.calls == [] and len(bridge.respondent.sent) == 1


async def test_a_scheduled_send_is_stopped_when_its_scheduler_lost_panel_access(
    bridge: Bridge, now: list[datetime]
) -> None:
    """Reminders (author type BOT) are checked against the person who scheduled them, as their firing does."""
    row = await _reply(bridge, "Reminder: tomorrow 10:00")
    author = {**row.payload["author"], "post_id": None, "type": "BOT", "source": "SCHEDULER"}
    scheduled = replace(row, key="relay:reminder:1", payload={**row.payload, "author": author})
    bridge.rally.teams[STUDY] = [
        replace(m, external_panel_access=False) if m.user_id == f"ru_{TEAMMATE}" else m
        for m in bridge.rally.teams[STUDY]
    ]
    now[0] += TTL + timedelta(seconds=1)

    with pytest.raises(PermanentFailure, match='Chloe Park no longer has external-panel access on "Checkout study"'):
        await _send(bridge, scheduled)
    assert bridge.respondent.sent == []


async def test_an_unlinked_study_stops_the_relay_without_asking_rally(bridge: Bridge) -> None:
    row = await _reply(bridge, "hello")
    link = bridge.store.state.links[STUDY]
    bridge.store.state.links[STUDY] = replace(link, active=False)
    bridge.rally.calls.clear()

    with pytest.raises(PermanentFailure, match="no longer bridged"):
        await _send(bridge, row)
    assert bridge.rally.calls == [] and bridge.respondent.sent == []


async def test_a_refused_relay_whose_earlier_attempt_may_have_arrived_is_verified_not_refused(
    bridge: Bridge, now: list[datetime]
) -> None:
    """Unknown outcome, then the author is removed: if Respondent has the message, it was sent; say so."""
    row = await _reply(bridge, "did this arrive?")
    (thread,) = bridge.store.state.threads.values()
    sent = RespondentMessage("msg_1", "did this arrive?", None, "researcher")
    bridge.respondent.conversations["cv_1"] = Conversation("cv_1", thread.respondent_project_id, ("ru_pa_1",), (sent,))
    async with bridge.store.transaction() as uow:
        await uow.threads.set_conversation(thread.id, "cv_1")
    _remove_from_team(bridge, TEAMMATE)
    now[0] += TTL + timedelta(seconds=1)

    await _send(bridge, replace(row, needs_verify=True))

    assert bridge.respondent.sent == [], "found at Respondent, not sent again"
    (message,) = bridge.store.state.messages.values()
    assert message.state == "delivered" and message.respondent_uid == "msg_1"


def test_each_refusal_at_send_time_names_the_author_and_what_to_do() -> None:
    email = "chloe@lab.example"
    member = TeamMember("ru_1", email, "Chloe Park", "TEAMMATE", True)
    user = RallyUser("ru_1", email, "Chloe Park", "ACTIVE")
    base: dict[str, object] = {
        "author_name": "Chloe Park",
        "email": email,
        "study_name": "Study",
        "link_active": True,
        "team": [member],
        "rally_users": [user],
    }
    cases: dict[str, tuple[dict[str, object], str | None]] = {
        "allowed": ({}, None),
        "not on team": ({"team": []}, "Chloe Park is no longer on the team of"),
        "no access": ({"team": [replace(member, external_panel_access=False)]}, "no longer has external-panel"),
        "deactivated": ({"rally_users": [replace(user, status="DEACTIVATED")]}, "account is deactivated"),
        "no account": ({"rally_users": []}, "account is missing"),
        "no email": ({"email": None}, "no email address is known for Chloe Park"),
        "unlinked": ({"link_active": False}, '"Study" is no longer bridged'),
    }
    for name, (overrides, expected) in cases.items():
        reason = still_may_send(**{**base, **overrides})  # type: ignore[arg-type]
        if expected is None:
            assert reason is None, name
        else:
            assert reason is not None and expected in reason, (name, reason)
