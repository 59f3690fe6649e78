"""A whole world on 127.0.0.1: stand-ins for Slack, Respondent and Rally, and the bridge wired to them.

Used by ``rallybridge demo`` and by the integration tests. The bridge is the real aiohttp app on a real
port (in this process, or as a ``rallybridge serve`` subprocess through :meth:`World.env`).
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import DateTime, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import Bridge, build_bridge
from bot.settings import Settings
from sandbox.rally import RallySandbox
from sandbox.respondent import RespondentSandbox
from sandbox.slack import SlackSandbox

# Ports for servers the tests start and restart: below Linux's ephemeral range (32768-60999 by default), so that
# the kernel never hands one to an outgoing connection or a port-0 bind between our check and a (re)start.
_PORTS = (20000, 32000)


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and that the kernel will not give to anyone else by itself."""
    for _ in range(200):
        port = random.randint(*_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS[0]}-{_PORTS[1]}")


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str
    email: str
    rally_id: str | None = None


@dataclass(frozen=True)
class Candidate:
    participant_id: str
    first_name: str
    last_name: str
    email: str
    respondent_user_id: str


@dataclass(frozen=True)
class Cast:
    """The realistic study every demo and test starts from."""

    study_id: str = "st_checkout"
    study_name: str = "Checkout redesign interviews"
    project_id: str = "69603934cd7d6158385a200c"
    other_study_id: str = "st_inrally"
    channel: str = "C0STUDY"
    channel_name: str = "checkout-study"
    owner: Person = Person("U0ANA", "Ana Ortiz", "ana@example.com", "usr_ana")
    teammate: Person = Person("U0CHLOE", "Chloe Park", "Chloe.Park@Example.com", "usr_chloe")
    no_access: Person = Person("U0BEN", "Ben Ito", "ben@example.com", "usr_ben")
    outsider: Person = Person("U0DAN", "Dan Reyes", "dan@example.com")
    jordan: Candidate = Candidate("pa_jordan", "Jordan", "Lee", "jordan@example.net", "6960391fbd5465b2dd6bd6e1")
    priya: Candidate = Candidate("pa_priya", "Priya", "Shah", "priya@example.net", "6960391fbd5465b2dd6bd6e2")
    sam: Candidate = Candidate("pa_sam", "Sam", "Carter", "sam@example.net", "6960391fbd5465b2dd6bd6e3")


@dataclass(frozen=True)
class QueueRow:
    """An unfinished row of the bridge's inbox or outbox, as :meth:`World.quiet` sees it."""

    table: str
    id: int
    kind: str
    lane: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    lease_until: datetime | None

    def __str__(self) -> str:
        now = datetime.now(UTC)
        due = (self.next_attempt_at - now).total_seconds()
        if self.lease_until is not None:
            left = (self.lease_until - now).total_seconds()
            when = f"leased for {left:.2f}s more" if left > 0 else f"lease expired {-left:.2f}s ago"
        else:
            when = f"due in {due:.2f}s" if due > 0 else "due now"
        return (
            f"{self.table} #{self.id} kind={self.kind} lane={self.lane} status={self.status} "
            f"attempts={self.attempts} {when} last_error={self.last_error!r}"
        )


# Read straight from the tables (not through the bridge's code, which may change): what is unfinished, lane order.
_UNFINISHED = (
    "SELECT id, kind, lane, status, attempts, last_error, next_attempt_at, lease_until FROM {table} "
    "WHERE status IN ('pending', 'working') ORDER BY id"
)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives the bridge's UTC datetimes back without their zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _busy(rows: list[QueueRow], now: datetime) -> list[QueueRow]:
    """Rows the bridge is working on or will take now.

    Busy: a row under a lease (``working``; also one whose lease expired, which a worker takes over), any row with
    a lease still running, and a ``pending`` row that is due now at the head of its lane. Not busy: a row scheduled
    for later (a retry's backoff, a send deferred by pacing) and the rows of its lane queued behind it.
    """
    heads: set[tuple[str, str]] = set()
    busy = []
    for row in rows:  # in id order per table: the first unfinished row of a lane is its head
        head = (row.table, row.lane) not in heads
        heads.add((row.table, row.lane))
        leased = row.lease_until is not None and row.lease_until > now
        if row.status == "working" or leased or (head and row.next_attempt_at <= now):
            busy.append(row)
    return busy


@dataclass
class World:
    slack: SlackSandbox
    respondent: RespondentSandbox
    rally: RallySandbox
    database_url: str
    bridge_port: int
    cast: Cast = field(default_factory=Cast)
    bridge: Bridge | None = None
    _runner: web.AppRunner | None = None
    settings_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @classmethod
    async def create(
        cls,
        database_url: str,
        *,
        bridge_port: int | None = None,
        slack_options: dict[str, Any] | None = None,
        **settings_overrides: Any,
    ) -> World:
        """Start the three stand-ins (not the bridge) and seed the study."""
        port = bridge_port or free_port()
        base = f"http://127.0.0.1:{port}"
        slack = SlackSandbox(
            signing_secret=secrets.token_hex(16), events_url=f"{base}/slack/events", **(slack_options or {})
        )
        respondent = RespondentSandbox(
            api_key=secrets.token_hex(8),
            api_secret=secrets.token_hex(16),
            webhook_url=f"{base}/webhooks/respondent",
            webhook_key=secrets.token_hex(16),
        )
        rally = RallySandbox(
            token=secrets.token_hex(16),
            webhook_url=f"{base}/webhooks/rally",
            webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        )
        for server in (slack, respondent, rally):
            await server.start()
        world = cls(slack, respondent, rally, database_url, port, settings_overrides=settings_overrides)
        world.seed()
        return world

    def seed(self) -> None:
        c = self.cast
        self.slack.add_channel(c.channel, c.channel_name)
        self.slack.add_channel("C0OTHER", "random")
        for person in (c.owner, c.teammate, c.no_access, c.outsider):
            self.slack.add_user(person.slack_id, person.name, person.email, tz="Europe/Berlin")
        self.rally.add_study(c.study_id, c.study_name, respondent_project_id=c.project_id)
        self.rally.add_study(c.other_study_id, "Onboarding survey (panel in Rally)", respondent_project_id=None)
        self.rally.add_team_member(c.study_id, "usr_ana", c.owner.email, c.owner.name, role="OWNER")
        self.rally.add_team_member(c.study_id, "usr_chloe", "chloe.park@example.com", c.teammate.name)
        self.rally.add_team_member(
            c.study_id, "usr_ben", c.no_access.email, c.no_access.name, external_panel_access=False
        )
        self.rally.add_team_member(c.other_study_id, "usr_ana", c.owner.email, c.owner.name, role="OWNER")
        session = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        for index, p in enumerate((c.jordan, c.priya, c.sam)):
            self.rally.add_participant(
                c.study_id,
                p.participant_id,
                p.first_name,
                p.last_name,
                email=p.email,
                respondent_user_id=p.respondent_user_id,
                approval_status="APPROVED" if p is c.jordan else "PENDING",
                scheduling_url=f"https://app.rallyuxr.com/schedule/{p.participant_id}",
                session_starts_at=session + timedelta(hours=index),
            )

    def settings(self, **overrides: Any) -> Settings:
        values = {**self.env(), **{k.upper(): v for k, v in {**self.settings_overrides, **overrides}.items()}}
        return Settings(_env_file=None, **{_field_for(k): v for k, v in values.items()})

    def env(self) -> dict[str, str]:
        """Environment for a ``rallybridge serve`` process wired to this world."""
        env = {
            "RALLYBRIDGE_DATABASE_URL": self.database_url,
            "RALLYBRIDGE_HOST": "127.0.0.1",
            "RALLYBRIDGE_PORT": str(self.bridge_port),
            "RALLYBRIDGE_POLL_SECONDS": "0.2",
            "RALLYBRIDGE_LEASE_SECONDS": "5",
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "SLACK_API_URL": f"{self.slack.base_url}/api/",
            "RESPONDENT_API_URL": str(self.respondent.base_url),
            "RESPONDENT_API_KEY": self.respondent.api_key,
            "RESPONDENT_API_SECRET": self.respondent.api_secret,
            "RESPONDENT_WEBHOOK_KEY": self.respondent.webhook_key,
            "RALLY_API_URL": str(self.rally.base_url),
            "RALLY_API_TOKEN": self.rally.token,
            "RALLY_WEBHOOK_SECRET": self.rally.webhook_secret,
            # Links are not checked against the internet from the world (offline, and not ours to call): the
            # link-check tests turn it on with an allowlist naming their local servers.
            "RALLYBRIDGE_LINK_CHECK": "off",
        }
        env.update(self.slack_pacing_env())
        env.update({k.upper(): str(v) for k, v in self.settings_overrides.items()})
        return env

    def slack_pacing_env(self) -> dict[str, str]:
        """The bridge paces Slack posts to the stand-in's limits; none when the stand-in has them off."""
        limits = self.slack.rate_limits
        if not limits.enabled:
            return {"RALLYBRIDGE_SLACK_CHANNEL_RATE": "0", "RALLYBRIDGE_SLACK_POSTS_PER_MINUTE": "0"}
        return {
            "RALLYBRIDGE_SLACK_CHANNEL_RATE": str(limits.channel_rate),
            "RALLYBRIDGE_SLACK_CHANNEL_BURST": str(limits.channel_burst),
            "RALLYBRIDGE_SLACK_POSTS_PER_MINUTE": str(limits.workspace_rate * 60),
            "RALLYBRIDGE_SLACK_WORKSPACE_BURST": str(limits.workspace_burst),
        }

    async def start_bridge(self, **overrides: Any) -> Bridge:
        """The real bridge app on its real port, in this process."""
        self.bridge = build_bridge(self.settings(**overrides))
        self._runner = web.AppRunner(self.bridge.web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.bridge_port).start()
        return self.bridge

    async def stop_bridge(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner, self.bridge = None, None

    async def quiet(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 (the deadline of a loop of polls, not of one awaited call)
        *,
        wait_scheduled: bool = False,
        settle: float = 0.05,
        checks: int = 3,
    ) -> list[QueueRow]:
        """Wait until the bridge has nothing to do now: what a test checks before saying something did not happen.

        Quiet is, ``checks`` times in a row ``settle`` seconds apart: no inbox or outbox row that is ``working``
        or leased, no ``pending`` row due now at the head of its lane (see :func:`_busy`), and no event delivery of
        the Slack stand-in in flight (a bot post's echo). The tables are read directly on :attr:`database_url`, so
        this works for an in-process bridge and for ``rallybridge serve`` subprocesses alike.

        Rows scheduled for later (a retry's backoff, a deferred send) are not waited for unless ``wait_scheduled``
        is set: they are returned (and printed), so a test can say whether it expected them. After ``timeout``
        seconds an AssertionError lists the unfinished rows.
        """
        engine = create_async_engine(self.database_url)
        deadline = time.monotonic() + timeout
        streak = 0
        try:
            while True:
                rows = await _unfinished_rows(engine)
                busy = rows if wait_scheduled else _busy(rows, datetime.now(UTC))
                in_flight = len(getattr(self.slack, "_tasks", ()))
                streak = 0 if busy or in_flight else streak + 1
                if streak >= checks:
                    if rows:
                        print("quiet, with rows scheduled for later:", *rows, sep="\n  ")
                    return rows
                if time.monotonic() > deadline:
                    listed = "\n  ".join(str(row) for row in rows) or "(none)"
                    flight = f"; {in_flight} Slack event deliveries in flight" if in_flight else ""
                    raise AssertionError(
                        f"the bridge did not go quiet within {timeout}s{flight}; unfinished rows:\n  {listed}"
                    )
                await asyncio.sleep(settle)
        finally:
            await engine.dispose()

    async def stop(self) -> None:
        await self.stop_bridge()
        for server in (self.slack, self.respondent, self.rally):
            await server.stop()


async def _unfinished_rows(engine: AsyncEngine) -> list[QueueRow]:
    rows = []
    async with engine.connect() as conn:
        for table in ("inbox", "outbox"):
            query = text(_UNFINISHED.format(table=table)).columns(
                next_attempt_at=DateTime(timezone=True), lease_until=DateTime(timezone=True)
            )
            for r in await conn.execute(query):
                next_attempt_at = _utc(r.next_attempt_at)
                assert next_attempt_at is not None
                rows.append(
                    QueueRow(
                        table,
                        r.id,
                        r.kind,
                        r.lane,
                        r.status,
                        r.attempts,
                        r.last_error,
                        next_attempt_at,
                        _utc(r.lease_until),
                    )
                )
    return rows


def _field_for(env_name: str) -> str:
    """Settings field name for an environment variable name."""
    for name, info in Settings.model_fields.items():
        if info.validation_alias == env_name or name.upper() == env_name:
            return name
    raise KeyError(env_name)
