"""A stage for one scenario: the stand-ins, ``rallybridge serve`` subprocesses, many participants, the drivers that
play researchers and participants the way Slack and Respondent deliver, and the tally of what arrived where."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from playground.world import Person, World, free_port
from reliability.report import Counts
from tests.integration.flows import roots
from tests.integration.processes import (
    BridgeProcess,
    WebhookRecorder,
    participant_posts,
    queue_rows,
    slack_post,
)

FAST_RETRIES = {
    "RALLYBRIDGE_RETRY_BASE_SECONDS": "0.2",
    "RALLYBRIDGE_RETRY_CAP_SECONDS": "2",
    "RALLYBRIDGE_LOG_LEVEL": "INFO",
    "RALLYBRIDGE_RECONCILE_SECONDS": "3600",
}


@dataclass
class Suite:
    """What every scenario gets: size, seed, where to keep logs."""

    bounded: bool
    seed: int
    workdir: Path
    log_files: list[Path] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def rng(self, scenario: str) -> random.Random:
        return random.Random(f"{self.seed}:{scenario}")

    def size(self, bounded: int, full: int) -> int:
        return bounded if self.bounded else full


@dataclass
class Who:
    """A participant of the load study."""

    participant_id: str
    first_name: str
    last_name: str
    email: str
    respondent_user_id: str
    root_ts: str = ""


def lis_length(seq: Sequence[int]) -> int:
    """Length of the longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    for value in seq:
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails):
            tails.append(value)
        else:
            tails[lo] = value
    return len(tails)


def compare(expected: Sequence[str], actual: Sequence[str]) -> tuple[int, int, int]:
    """(lost, duplicated, out of order) of ``actual`` against ``expected`` (an ordered list of distinct texts).

    Out of order is the number of arrived messages that are not in the longest run kept in the expected order.
    """
    wanted = {body: index for index, body in enumerate(expected)}
    counts = Counter(actual)
    lost = sum(1 for body in expected if counts[body] == 0)
    duplicated = sum(c - 1 for b, c in counts.items() if b in wanted and c > 1)
    duplicated += sum(c for b, c in counts.items() if b not in wanted)
    seen: set[str] = set()
    order: list[int] = []
    for body in actual:
        if body in wanted and body not in seen:
            seen.add(body)
            order.append(wanted[body])
    return lost, duplicated, len(order) - lis_length(order)


class Stage:
    """The world of one scenario. Use ``async with Stage(...) as stage``."""

    def __init__(
        self,
        suite: Suite,
        name: str,
        database_url: str,
        *,
        participants: int,
        replicas: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.suite = suite
        self.name = name
        self.database_url = database_url
        self.n_participants = participants
        self.n_replicas = replicas
        self.extra_env = env or {}
        self.dir = suite.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.world: World
        self.recorder: WebhookRecorder
        self.processes: list[BridgeProcess] = []
        self.people: list[Who] = []
        self.tag = f"{random.Random(f'{suite.seed}:{name}:tag').randrange(16**6):06x}"
        self.expected_replies: dict[str, list[str]] = {}
        self.expected_writes: dict[str, list[str]] = {}
        self.reply_ts: dict[str, str] = {}
        self.pending_slack: list[dict[str, Any]] = []
        self.pending_respondent: list[dict[str, Any]] = []
        self.redelivered = 0  # deliveries that failed at first and were made again later, as Slack/Respondent do

    # ---- lifecycle -----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Stage:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, *, link: bool = True) -> None:
        self.world = await World.create(self.database_url, slack_options={"rate_limit": False})
        self.world.respondent.webhook_retries = 1
        self.world.rally.webhook_retries = 1
        self.recorder = WebhookRecorder(self.world.respondent)
        self.suite.secrets |= set(self.secrets())
        c = self.world.cast
        for i in range(self.n_participants):
            who = Who(
                participant_id=f"pa_load{i:02d}",
                first_name=f"Pat{i:02d}",
                last_name="Rivera",
                email=f"pat{i:02d}.{self.tag}@participants.example.net",
                respondent_user_id=f"{0x6960391FBD5465B2DD000000 + i:024x}",
            )
            self.world.rally.add_participant(
                c.study_id,
                who.participant_id,
                who.first_name,
                who.last_name,
                email=who.email,
                respondent_user_id=who.respondent_user_id,
                approval_status="APPROVED",
                scheduling_url=f"https://app.rallyuxr.com/schedule/{who.participant_id}",
            )
            self.people.append(who)
            self.expected_replies[who.participant_id] = []
            self.expected_writes[who.participant_id] = []
        base_env = {**self.world.env(), **FAST_RETRIES, **self.extra_env}
        for index in range(self.n_replicas):
            env = dict(base_env)
            if index:
                env["RALLYBRIDGE_PORT"] = str(free_port())
            log = self.dir / f"bridge-{index}.log"
            self.suite.log_files.append(log)
            self.processes.append(BridgeProcess(env, log, name=f"{self.name}-{index}"))
        await asyncio.gather(*(p.start_healthy() for p in self.processes))
        if link:
            await self.link()

    async def link(self, within: float = 60.0) -> None:
        c = self.world.cast
        result = await self.world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
        assert result.status == 200, result
        deadline = time.monotonic() + within
        while True:
            missing = [w for w in self.people if not self._root(w)]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(missing)} participant threads never opened")
            await asyncio.sleep(0.2)
        for who in self.people:
            who.root_ts = self._root(who)

    def _root(self, who: Who) -> str:
        found = roots(self.world, who)  # type: ignore[arg-type]
        return str(found[0]["ts"]) if found else ""

    async def stop(self) -> None:
        for process in self.processes:
            process.stop()
        await self.world.stop()

    def secrets(self) -> list[str]:
        w = self.world
        return [
            w.slack.token,
            w.slack.signing_secret,
            w.respondent.api_key,
            w.respondent.api_secret,
            w.respondent.webhook_key,
            w.rally.token,
            w.rally.webhook_secret,
        ]

    # ---- URLs ------------------------------------------------------------------------------------------------
    def urls(self, path: str, processes: Sequence[BridgeProcess] | None = None) -> list[str]:
        return [f"{p.url}{path}" for p in (processes or self.processes)]

    # ---- researchers, as Slack delivers their replies ----------------------------------------------------------
    def post(self, who: Who, body: str, author: Person | None = None) -> dict[str, Any]:
        """A researcher posts ``body`` in ``who``'s thread (stored in Slack); returns the event envelope."""
        c = self.world.cast
        author = author or (c.owner if len(self.reply_ts) % 2 == 0 else c.teammate)
        post = slack_post(self.world.slack, c.channel, author.slack_id, body, thread_ts=who.root_ts)
        self.expected_replies[who.participant_id].append(body)
        self.reply_ts[body] = post.ts
        return post.envelope

    async def deliver_envelope(
        self, envelope: dict[str, Any], *, copies: int = 1, urls: Sequence[str] | None = None, attempts: int = 4
    ) -> bool:
        """Send one Slack event ``copies`` times (the original, then ``X-Slack-Retry-Num`` 1, 2, 3), spread over
        ``urls`` concurrently; each copy is retried on failure. True when at least one copy got a 2xx."""
        targets = list(urls or self.urls("/slack/events")[:1])
        raw = json.dumps(envelope).encode()

        async def one(copy: int) -> bool:
            for _attempt in range(attempts):
                headers = {"Content-Type": "application/json", **self.world.slack.sign(raw)}
                if copy:
                    headers["X-Slack-Retry-Num"] = str(copy)
                    headers["X-Slack-Retry-Reason"] = "http_timeout"
                try:
                    status, _ = await self.world.slack.deliver_raw(raw, headers, url=targets[copy % len(targets)])
                except (TimeoutError, aiohttp.ClientError):
                    status = 0
                if 200 <= status < 300:
                    return True
                await asyncio.sleep(0.2)
            return False

        return any(await asyncio.gather(*(one(i) for i in range(copies))))

    async def reply(
        self, who: Who, body: str, *, author: Person | None = None, copies: int = 1, urls: Sequence[str] | None = None
    ) -> bool:
        envelope = self.post(who, body, author)
        ok = await self.deliver_envelope(envelope, copies=copies, urls=urls)
        if not ok:
            self.pending_slack.append(envelope)
        return ok

    # ---- participants, as Respondent delivers their messages ---------------------------------------------------
    async def write(self, who: Who, body: str, *, urls: Sequence[str] | None = None) -> bool:
        """``who`` writes on Respondent; the webhook goes once to each of ``urls`` (default: the first replica)."""
        self.recorder.targets = list(urls or self.urls("/webhooks/respondent")[:1])
        self.expected_writes[who.participant_id].append(body)
        await self.world.respondent.participant_writes(
            self.world.cast.project_id, who.respondent_user_id, body, first_name=who.first_name, last_name=who.last_name
        )
        event, statuses = self.recorder.last()
        ok = any(s is not None and 200 <= s < 300 for s in statuses)
        if not ok:
            self.pending_respondent.append(event)
        return ok

    async def redeliver(self) -> None:
        """What Slack and Respondent gave up on while the bridge was unreachable, delivered again (same ids)."""
        slack, self.pending_slack = self.pending_slack, []
        respondent, self.pending_respondent = self.pending_respondent, []
        self.redelivered += len(slack) + len(respondent)
        alive = [p for p in self.processes if p.proc is not None and p.proc.poll() is None] or self.processes
        self.recorder.targets = self.urls("/webhooks/respondent", alive)[:1]
        for envelope in slack:
            if not await self.deliver_envelope(envelope, urls=self.urls("/slack/events", alive)[:1], attempts=20):
                self.pending_slack.append(envelope)
        for event in respondent:
            statuses = await self.recorder.deliver(event)
            if not any(s is not None and 200 <= s < 300 for s in statuses):
                self.pending_respondent.append(event)

    # ---- what arrived ----------------------------------------------------------------------------------------
    def relayed(self, who: Who) -> list[str]:
        return [m["body"] for m in self.world.respondent.messages_to(who.respondent_user_id)]

    def mirrored(self, who: Who) -> list[str]:
        return participant_posts(self.world, who.root_ts)

    def archived(self, who: Who) -> list[str]:
        return [
            e["body"]
            for e in self.world.rally.archived(self.world.cast.study_id)
            if e["participantId"] == who.participant_id
        ]

    def tally(self, people: Sequence[Who] | None = None) -> Counts:
        counts = Counts()
        for who in people or self.people:
            replies, writes = self.expected_replies[who.participant_id], self.expected_writes[who.participant_id]
            archive = self.archived(who)
            for target, expected, actual in (
                ("Respondent", replies, self.relayed(who)),
                ("Slack", writes, self.mirrored(who)),
                ("Rally", replies, [b for b in archive if b not in set(writes)]),
                ("Rally", writes, [b for b in archive if b in set(writes)]),
            ):
                lost, dup, order = compare(expected, actual)
                counts.lost[target] += lost
                counts.duplicated[target] += dup
                counts.order_violations += order
        return counts

    def arrived_everywhere(self) -> bool:
        for who in self.people:
            replies, writes = self.expected_replies[who.participant_id], self.expected_writes[who.participant_id]
            if len(self.relayed(who)) < len(replies) or len(self.mirrored(who)) < len(writes):
                return False
            if len(self.archived(who)) < len(replies) + len(writes):
                return False
        return True

    async def settle(self, within: float, extra: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
        """Wait until everything expected arrived and no queue row is pending or working; returns the rows."""
        deadline = time.monotonic() + within
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if self.pending_slack or self.pending_respondent:
                await self.redeliver()
            if self.arrived_everywhere() and (extra is None or extra()):
                rows = await queue_rows(self.database_url)
                if not [r for r in rows if r["status"] in ("pending", "working")]:
                    return rows
            await asyncio.sleep(0.3)
        return await queue_rows(self.database_url)

    def total(self) -> tuple[int, int]:
        return sum(map(len, self.expected_replies.values())), sum(map(len, self.expected_writes.values()))


async def wait_until(check: Callable[[], bool], within: float, step: float = 0.2) -> bool:
    """Poll ``check`` until it holds (True) or ``within`` seconds pass (False)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def unfinished(
    rows: list[dict[str, Any]], *, allow_failed: Callable[[dict[str, Any]], bool] | None = None
) -> list[str]:
    """Rows left pending/working/failed (failed ones allowed by ``allow_failed`` excepted), formatted."""
    out = []
    for r in rows:
        if r["status"] == "done" or (r["status"] == "failed" and allow_failed is not None and allow_failed(r)):
            continue
        out.append(f"{r['table']} {r['id']} {r['kind']} {r['status']} err={r['last_error']}")
    return out
