"""Issue 13: a queued relay is checked again when it is sent. A teammate removed from the study team while
Respondent was down: nothing leaves, the reply is marked failed and the thread says why and what to do; ``retry``
checks again. In the normal case the send costs no Rally call beyond the check at intake (the team is kept for a
short time, ``bridge/team_cache.py``). Real bridge on a real port, the stand-ins, SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bridge.team_cache import TTL
from core import clock
from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, root_of, sent_to

TEAM = "GET /studies/{sid}/team"
USERS = "GET /users"


@pytest.fixture
def later() -> Iterator[list[timedelta]]:
    """Move the bridge's clock (``core.clock``; the bridge runs in this process) ahead: ``later[0] = ...``."""
    ahead = [timedelta(0)]
    clock.set_clock(lambda: datetime.now(UTC) + ahead[0])
    yield ahead
    clock.set_clock(None)


def _notices(world: World, root_ts: str) -> list[str]:
    return [m["text"] for m in world.slack.thread(world.cast.channel, root_ts) if "Not delivered" in m["text"]]


def _remove_from_team(world: World, rally_user_id: str) -> None:
    """The study owner removes a teammate in Rally."""
    study = world.cast.study_id
    world.rally.teams[study] = [m for m in world.rally.teams[study] if m["userId"] != rally_user_id]


async def test_a_teammate_removed_while_respondent_was_down_sends_nothing_and_is_told(
    world: World, later: list[timedelta]
) -> None:
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    world.respondent.outage(503)
    ts = await world.slack.user_posts(c.channel, c.teammate.slack_id, "Can we move to Friday?", thread_ts=root_ts)
    await eventually(
        lambda: "hourglass_flowing_sand" in world.slack.reactions(c.channel, ts), what="the reply waits (pending)"
    )

    _remove_from_team(world, "usr_chloe")
    later[0] = TTL + timedelta(seconds=5)  # the outage lasted longer than the kept team is trusted
    world.respondent.heal()

    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"x"}, within=20, what="the failed mark")
    (notice,) = await eventually(lambda: _notices(world, root_ts), what="the notice in the thread")
    assert f'Chloe Park is no longer on the team of "{c.study_name}" in Rally' in notice.replace("&quot;", '"')
    assert "ask the study owner to add them back" in notice
    match = re.search(r"/rally retry (\d+)", notice)
    assert match, notice
    await world.quiet()
    assert sent_to(world, c.jordan) == [] and archived(world) == []
    sends = [r for r in world.respondent.request_log if r.method == "POST" and r.path.endswith("/messages")]
    assert all(r.status == 503 for r in sends), "nothing reached Respondent after the outage"

    # The owner retries before adding Chloe back: checked again, refused again, still nothing sent.
    await world.slack.run_command(c.channel, c.owner.slack_id, f"retry {match.group(1)}")
    await eventually(lambda: len(_notices(world, root_ts)) == 2, what="refused again on retry")
    await world.quiet()
    assert sent_to(world, c.jordan) == []

    # Added back, retried: it leaves, once.
    world.rally.add_team_member(c.study_id, "usr_chloe", "chloe.park@example.com", c.teammate.name)
    await world.slack.run_command(c.channel, c.owner.slack_id, f"retry {match.group(1)}")
    await eventually(lambda: sent_to(world, c.jordan) == ["Can we move to Friday?"], what="delivered after re-adding")
    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"white_check_mark"}, what="delivered mark")


async def test_in_the_normal_case_a_reply_costs_one_team_lookup_at_intake_and_none_at_send(world: World) -> None:
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    await world.quiet()
    before = Counter(world.rally.calls)

    replies = [(c.owner, "first"), (c.teammate, "second"), (c.owner, "third"), (c.teammate, "fourth")]
    for person, body in replies:
        await world.slack.user_posts(c.channel, person.slack_id, body, thread_ts=root_ts)
    await eventually(lambda: len(sent_to(world, c.jordan)) == len(replies), what="all delivered")
    await world.quiet()

    calls = Counter(world.rally.calls) - before
    assert sent_to(world, c.jordan) == [body for _person, body in replies]
    assert (calls[TEAM], calls[USERS]) == (len(replies), len(replies)), f"only the intake checks: {calls}"
