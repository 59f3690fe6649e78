"""The Slack and Teams pacers against the stand-ins' own limiters, on a controlled clock (no sleeping, no timing).

Each test replays a schedule: the pacer hands out send moments, the clock is set to each moment (plus how late
the request reaches the platform) and the stand-in's limiter decides as it would on a real request.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from adapters.slack.pacing import SlackPacer
from adapters.teams.pacing import ThreadPacer
from core.errors import Paced, TemporaryFailure
from sandbox.slack.ratelimit import RateLimits
from sandbox.teams.connector import TeamsConnectorSandbox


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_slack_pacer_spends_the_burst_then_one_per_second_per_channel() -> None:
    clock = Clock()
    pacer = SlackPacer(channel_rate=1.0, channel_burst=3, workspace_rate=0, slack=0, horizon=5, clock=clock)
    assert [pacer.reserve("C1") for _ in range(3)] == [0, 0, 0]
    assert [pacer.reserve("C1") for _ in range(3)] == pytest.approx([1.0, 2.0, 3.0])
    assert pacer.reserve("C2") == 0  # another channel has its own budget


def test_slack_pacer_beyond_its_horizon_is_paced_and_reserves_nothing() -> None:
    clock = Clock()
    pacer = SlackPacer(channel_rate=1.0, channel_burst=1, workspace_rate=0, slack=0, horizon=1.5, clock=clock)
    assert pacer.reserve("C1") == 0
    assert pacer.reserve("C1") == pytest.approx(1.0)
    with pytest.raises(Paced) as raised:
        pacer.reserve("C1")  # its moment is 2 s away
    assert isinstance(raised.value, TemporaryFailure)
    assert raised.value.retry_after == pytest.approx(1.5)  # back half a second before the moment
    assert pacer.delay("C1") == pytest.approx(2.0)  # the refused reservation took nothing


def test_slack_workspace_budget_binds_across_channels() -> None:
    clock = Clock()
    pacer = SlackPacer(channel_rate=1.0, channel_burst=3, workspace_rate=2.0, workspace_burst=2, slack=0, clock=clock)
    waits = [pacer.reserve(f"C{n}") for n in range(4)]
    assert waits == pytest.approx([0, 0, 0.5, 1.0])


def test_a_429_holds_back_only_its_channel() -> None:
    clock = Clock()
    pacer = SlackPacer(clock=clock)
    pacer.rate_limited("C1", 3)
    assert pacer.delay("C1") == pytest.approx(3.0)
    assert pacer.delay("C2") == 0
    clock.now += 3
    assert pacer.delay("C1") == 0


def replay_slack(pacer: SlackPacer, limits: RateLimits, clock: Clock, posts: list[str], late: list[float]) -> int:
    """Post into ``posts`` (channels) at the pacer's moments, each reaching the stand-in ``late[i]`` later.

    Arrivals are handed to the limiter in arrival order. Returns how many the stand-in refused.
    """
    arrivals = []
    start = clock.now
    for i, channel in enumerate(posts):
        while True:
            try:
                wait = pacer.reserve(channel)
                break
            except Paced as paced:  # the outbox would put the row back: come back then
                clock.now += paced.retry_after or 0
        arrivals.append((clock.now + wait + late[i], channel))
    refused = 0
    for at, channel in sorted(arrivals):
        clock.now = at
        refused += limits.check(channel) is not None
    assert clock.now > start
    return refused


@pytest.mark.parametrize("seed", range(5))
def test_slack_pacer_never_meets_a_429_when_requests_arrive_late(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    limits = RateLimits(clock=clock)  # the stand-in's defaults: 1/s per channel, burst 3; 10/s, burst 30
    pacer = SlackPacer(clock=clock)  # the bridge's defaults, the same budgets
    posts = [f"C{rng.randrange(20)}" for _ in range(400)]
    late = [rng.uniform(0, 0.2) for _ in posts]
    late[0] = 0.25  # the first request opens a connection
    assert replay_slack(pacer, limits, clock, posts, late) == 0
    assert len(posts) == 400


def test_without_slack_a_late_first_post_into_a_full_bucket_costs_a_429() -> None:
    """Why the pacer keeps ``slack`` in hand: a full bucket only refills from the first post's arrival.

    The burst goes out on new connections and arrives 0.2 s late; the fourth post arrives on time.
    """
    clock = Clock()
    limits = RateLimits(clock=clock, workspace_rate=100, workspace_burst=100)
    pacer = SlackPacer(workspace_rate=0, slack=0, horizon=10, clock=clock)
    late = [0.2, 0.2, 0.2, 0]
    assert replay_slack(pacer, limits, clock, ["C1"] * 4, late) == 1
    clock = Clock()
    limits = RateLimits(clock=clock, workspace_rate=100, workspace_burst=100)
    pacer = SlackPacer(workspace_rate=0, horizon=10, clock=clock)  # slack 0.25 s: the default
    assert replay_slack(pacer, limits, clock, ["C1"] * 4, late) == 0


async def test_teams_pacer_counts_each_send_when_its_answer_came_back() -> None:
    clock = Clock()
    pacer = ThreadPacer(clock=clock, margin=0)
    for _ in range(7):
        async with pacer.slot("t"):
            clock.now += 0.1  # the send takes 100 ms
    # 7 in 1 s, counted from their completions (the last at +0.7 s): the 8th fits once the first leaves.
    assert pacer.delay("t") == pytest.approx(0.1 + 1.0 - 0.7)
    assert pacer.delay("other thread") == 0


async def test_teams_pacer_beyond_max_wait_is_paced() -> None:
    clock = Clock()
    pacer = ThreadPacer(clock=clock, max_wait=2)
    for _ in range(60):
        clock.now += 0.4
        await pacer.acquire("t")
    with pytest.raises(Paced) as raised:
        await pacer.acquire("t")  # 60 in 30 s used
    assert raised.value.retry_after is not None and raised.value.retry_after > 2


async def test_teams_sends_queued_behind_a_slow_one_are_paced_not_held_on_the_thread() -> None:
    """A burst into one thread: a send that cannot even start within ``max_wait`` is put back (Paced) instead of
    waiting on the thread's lock while its outbox lease runs out (an expired lease means a second attempt, and a
    Teams post cannot be looked up: it would appear twice)."""
    pacer = ThreadPacer(max_wait=0.05)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_send() -> None:
        async with pacer.slot("t"):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(slow_send())
    await entered.wait()
    with pytest.raises(Paced) as raised:
        await pacer.acquire("t")
    assert raised.value.retry_after is not None and raised.value.retry_after > 0
    await pacer.acquire("other thread")  # other threads are not held up
    release.set()
    await holder
    await pacer.acquire("t")  # the paced waiter left nothing behind: the thread takes sends again


@pytest.mark.parametrize("seed", range(3))
async def test_teams_pacer_never_meets_a_429_however_requests_travel(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent sends into 30 threads, each reaching Teams at a random moment between start and answer."""
    rng = random.Random(seed)
    clock = Clock()
    stand_in = TeamsConnectorSandbox(app_id=None, app_password=None)
    pacer = ThreadPacer(clock=clock, max_wait=3600)
    arrivals: list[tuple[float, str]] = []

    async def send(thread: str) -> None:
        async with pacer.slot(thread):
            start = clock.now
            await asyncio.sleep(0)  # other sends go meanwhile
            clock.now = max(clock.now, start + rng.uniform(0.001, 0.3))
            arrivals.append((rng.uniform(start, clock.now), thread))

    sleep = asyncio.sleep

    async def advance(delay: float, result: object = None) -> object:
        clock.now += delay  # waiting moves the controlled clock instead of the real one
        return await sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", advance)
    await asyncio.gather(*(send(f"t{rng.randrange(30)}") for _ in range(600)))
    refused = [thread for at, thread in sorted(arrivals) if stand_in.admit(thread, at) is not None]
    assert refused == [] and len(arrivals) == 600
