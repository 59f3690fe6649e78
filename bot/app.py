"""Composition root: the one place where real adapters are wired to the core and to one aiohttp server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.linkcheck import HttpLinkChecker
from adapters.rally.client import RallyClient
from adapters.rally.routes import rally_route
from adapters.respondent.client import RespondentClient
from adapters.respondent.routes import respondent_route
from adapters.slack.app_spec import EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH
from adapters.slack.inbound import build_bolt_app, slack_route
from adapters.slack.oauth import SlackOAuth
from adapters.slack.pacing import SlackPacer
from adapters.slack.platform import SlackPlatform, build_client
from adapters.slack.workspaces import SlackRemovals, with_slack_status
from adapters.teams.setup import ROUTE as TEAMS_ROUTE
from adapters.teams.setup import add_route as add_teams_route
from adapters.teams.setup import build_teams
from adapters.web import Record
from bot.observability import metrics_route, timing_middleware
from bot.pages import add_pages
from bot.settings import Settings
from bot.web import add_not_configured, health_route, ready_route
from bridge import inbox, nudges, reconcile_schedule
from bridge.inbox import record
from bridge.outbox import Effect
from bridge.reminders import firing as reminders
from bridge.services import Services
from bridge.worker import QueueWorker, inbox_worker, outbox_worker
from core import clock
from core.events import reconcile_study
from storage import retention
from storage.db import Database
from storage.migrate import schema_problem
from storage.uow import SqlStore

log = logging.getLogger(__name__)

PRUNE_TICK_SECONDS = 60.0  # finished queue rows past the retention are deleted a few batches a tick
# Failed rows of these kinds stay past the retention: ``retry <id>`` and the home's Retry re-queue the very row.
RETRYABLE_WHEN_FAILED = frozenset({Effect.RELAY.value})


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this version needs; the message says how to fix it."""


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return get() if get is not None else ""


@dataclass
class Bridge:
    settings: Settings
    services: Services
    db: Database  # under ``services.store``: readiness, metrics, schema checks, dispose
    bolt: AsyncApp | None  # None without Slack
    web_app: web.Application
    workers: list[QueueWorker]
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    scheduler: AsyncIOScheduler | None = None
    closers: list[object] = field(default_factory=list)
    reconciles_queued_until: float | None = None  # epoch seconds: the due times up to here are queued
    nudged_until: datetime | None = None  # the nudge tick's last moment: cards whose session moved since are redrawn

    async def start_background(self) -> None:
        """Refuse an old schema, then start the workers and the reconcile tick."""
        problem = await schema_problem(self.db)
        if problem is not None:
            raise SchemaOutOfDate(problem)
        self.stop_event.clear()
        self.tasks = [asyncio.create_task(w.forever(self.stop_event)) for w in self.workers]
        self.scheduler = AsyncIOScheduler()
        # Each linked study is reconciled once per interval at its own moment of it (bridge/reconcile_schedule.py).
        self.reconciles_queued_until = time.time()
        self._every(
            reconcile_schedule.tick_seconds(self.settings.reconcile_interval_seconds),
            self.queue_due_reconciles,
            "reconcile",
        )
        # Reminders are rows in our own tables; this job only ticks (claims due rows into the inbox).
        self._every(reminders.TICK_SECONDS, self.queue_due_reminders, "reminders")
        # Nobody answered: nudges for waiting participants, and cards whose session came close (bridge/nudges.py).
        self._every(nudges.TICK_SECONDS, self.queue_nudges, "nudges")
        # Retention: finished inbox and outbox rows older than RALLYBRIDGE_RETENTION_DAYS (storage/retention.py).
        self._every(PRUNE_TICK_SECONDS, self.prune_finished_rows, "retention")
        self.scheduler.start()

    def _every(self, seconds: float, job: Callable[[], Awaitable[int]], name: str) -> None:
        """Run ``job`` every ``seconds``: one run at a time, missed runs collapsed into one, none dropped as late."""
        assert self.scheduler is not None
        self.scheduler.add_job(
            job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True, misfire_grace_time=None
        )

    async def stop_background(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        self.stop_event.set()
        self.services.wakeup.set()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        for closer in self.closers:
            close = getattr(closer, "close", None)
            if close is not None:
                await close()
        await self.db.dispose()

    async def queue_due_reminders(self) -> int:
        """Turn due reminder rows into inbox events (exactly once across replicas: see bridge/reminders/firing)."""
        try:
            return await reminders.enqueue_due(self.services)
        except Exception as exc:  # the database may be down; the next tick tries again
            log.warning("could not queue due reminders: %s", type(exc).__name__)
            return 0

    async def queue_nudges(self) -> int:
        """Queue the nudges that came due (exactly once across replicas: see bridge/nudges.py)."""
        now = clock.now()
        try:
            queued = await nudges.tick(self.services, since=self.nudged_until, now=now)
        except Exception as exc:  # the database or the chat platform may be down; the next tick tries again
            log.warning("could not queue nudges: %s", type(exc).__name__)
            return 0
        self.nudged_until = now
        return queued

    async def prune_finished_rows(self) -> int:
        """Delete finished queue rows past the retention, a bounded number of small batches (storage/retention.py);
        how many. Every replica ticks; on PostgreSQL they share the rows (SKIP LOCKED)."""
        try:
            pruned = await retention.prune(
                self.db,
                older_than=timedelta(days=self.settings.retention_days),
                keep_failed=RETRYABLE_WHEN_FAILED,
            )
        except Exception as exc:  # the database may be down; the next tick goes on
            log.warning("could not prune finished queue rows: %s", type(exc).__name__)
            return 0
        for queue_name, count in pruned.items():
            if count:
                self.services.metrics.pruned.labels(queue_name).inc(count)
                log.info("pruned %d finished %s rows past the retention", count, queue_name)
        return sum(pruned.values())

    async def queue_due_reconciles(self) -> int:
        """Queue the reconciles that came due since the last tick: every linked study once per interval, spread
        over it, so a cycle never reads all studies at once. Replicas share the keys, so each runs once."""
        interval = self.settings.reconcile_interval_seconds
        now = time.time()
        since = self.reconciles_queued_until or now - reconcile_schedule.tick_seconds(interval)
        try:
            async with self.services.store.transaction() as uow:
                links = await uow.links.active()
            due = reconcile_schedule.due_between((link.study_id for link in links), interval, since, now)
            for study_id, cycle in due:
                await record(self.services, reconcile_study(study_id=study_id, cycle=str(cycle)))
        except Exception as exc:  # the database may be down; the next tick queues what is due by then
            log.warning("could not queue reconciles: %s", type(exc).__name__)
            return 0
        self.reconciles_queued_until = now
        return len(due)

    async def queue_reconciles(self, *, cycle: str | None = None) -> int:
        """Queue a reconcile of every linked study now. Each carries its study's current cycle (the key the tick and
        other replicas use: at most one per study per cycle), or ``cycle`` when given (a separate, extra round)."""
        interval = self.settings.reconcile_interval_seconds
        now = time.time()
        async with self.services.store.transaction() as uow:
            links = await uow.links.active()
        for link in links:
            key = cycle or str(reconcile_schedule.current_cycle(link.study_id, interval, now)[0])
            await record(self.services, reconcile_study(study_id=link.study_id, cycle=key))
        return len(links)


def link_checker(settings: Settings) -> HttpLinkChecker | None:
    """Links in messages to participants are checked before they leave (``core/links.py``), unless turned off."""
    if not settings.link_check:
        return None
    return HttpLinkChecker(allow=settings.link_check_allowed_hosts, timeout=settings.link_check_timeout_seconds)


def slack_pacer(settings: Settings) -> SlackPacer | None:
    """Per-channel and workspace pacing of Slack posts, as configured (None when both levels are off)."""
    if settings.slack_channel_rate <= 0 and settings.slack_posts_per_minute <= 0:
        return None
    return SlackPacer(
        channel_rate=settings.slack_channel_rate,
        channel_burst=settings.slack_channel_burst,
        workspace_rate=settings.slack_posts_per_minute / 60.0,
        workspace_burst=settings.slack_workspace_burst,
    )


def slack_oauth(settings: Settings, db: Database) -> SlackOAuth | None:
    """OAuth mode (install to many workspaces) when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set, else None."""
    if not settings.slack_oauth:
        return None
    return SlackOAuth(
        db,
        client_id=str(settings.slack_client_id),
        client_secret=_secret(settings.slack_client_secret),
        api_url=settings.slack_api_url,
        public_url=settings.public_url,
        static_token=_secret(settings.slack_bot_token) or None,
        allowed_teams=settings.allowed_slack_teams,
    )


@dataclass
class SlackWiring:
    """Slack as wired from settings: the platform for the core, the Bolt app in front of it, and OAuth if on."""

    platform: SlackPlatform
    bolt: AsyncApp
    oauth: SlackOAuth | None
    signing_secret: str | None  # None: Slack comes over Socket Mode, /slack/events stays closed


def build_slack(settings: Settings, db: Database, to_inbox: Record, *, http_slack: bool) -> SlackWiring:
    oauth = slack_oauth(settings, db)  # None: one workspace, SLACK_BOT_TOKEN for every call
    client: AsyncWebClient = (
        oauth.sending_client  # picks each workspace's token per call
        if oauth is not None
        else build_client(_secret(settings.slack_bot_token), base_url=settings.slack_api_url)
    )
    signing_secret = _secret(settings.slack_signing_secret) if http_slack else None
    bolt = build_bolt_app(
        client=oauth.bolt_client if oauth is not None else client,
        signing_secret=signing_secret,
        record=oauth.record(to_inbox) if oauth is not None else to_inbox,
        **(oauth.bolt_options() if oauth is not None else {}),
    )
    SlackRemovals(db, oauth.tokens if oauth is not None else None).add_listeners(bolt)
    return SlackWiring(SlackPlatform(client, pacer=slack_pacer(settings)), bolt, oauth, signing_secret or None)


def build_bridge(settings: Settings, *, http_slack: bool = True) -> Bridge:
    """Wire the bridge from settings: each chat platform whose settings are given (Slack, Teams or both), the
    other's routes answering 404. ``http_slack`` False leaves Slack to Socket Mode."""
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        inbound_pool_size=settings.db_inbound_pool_size,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    respondent = RespondentClient(
        settings.respondent_api_url, _secret(settings.respondent_api_key), _secret(settings.respondent_api_secret)
    )
    rally = RallyClient(settings.rally_api_url, _secret(settings.rally_api_token))
    services = Services(
        store=SqlStore(db),
        chats={},  # only the platforms this bridge runs
        respondent=respondent,
        rally=rally,
        internal_note_marker=settings.internal_note_marker,
        respondent_researcher_id=settings.respondent_researcher_id,
        link_checker=link_checker(settings),
    )
    to_inbox: Record = lambda e: record(services, e)  # noqa: E731
    slack = build_slack(settings, db, to_inbox, http_slack=http_slack) if settings.slack_enabled else None
    if slack is not None:
        services.chats["slack"] = slack.platform
    teams = build_teams(settings, db, to_inbox)  # None unless MICROSOFT_* settings say so
    if teams is not None:
        services.chats["teams"] = teams.platform
    options = {
        "lease": timedelta(seconds=settings.lease_seconds),
        "poll": settings.worker_poll_seconds,
        "backoff_base": settings.retry_base_seconds,
        "backoff_cap": settings.retry_cap_seconds,
    }
    workers = [inbox_worker(services, **options), outbox_worker(services, **options)]
    workers[0].feeds = workers[1]  # an inbox row's outcome claims the outbox rows it queued (bridge/worker.py)
    inbox.claim_for(services.store, workers[0])  # a stored event is claimed for the inbox worker as it is stored
    web_app = web.Application(
        client_max_size=settings.max_body_bytes + 1, middlewares=[timing_middleware(services.metrics)]
    )
    max_body = settings.max_body_bytes
    ready = ready_route(db, list(services.chats))
    if slack is None:
        add_not_configured(web_app, "slack", (EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH))
    else:
        if slack.signing_secret:
            web_app.router.add_post(EVENTS_PATH, slack_route(slack.bolt, slack.signing_secret, max_body))
        if slack.oauth is not None:
            slack.oauth.add_routes(web_app)  # GET /slack/install, GET /slack/oauth_redirect
        ready = with_slack_status(ready, db, slack.oauth.tokens if slack.oauth is not None else None)
    if teams is None:
        add_not_configured(web_app, "teams", (TEAMS_ROUTE,))
    else:
        add_teams_route(web_app, teams)
    web_app.router.add_post(
        "/webhooks/respondent", respondent_route(to_inbox, _secret(settings.respondent_webhook_key), max_body)
    )
    web_app.router.add_post("/webhooks/rally", rally_route(to_inbox, _secret(settings.rally_webhook_secret), max_body))
    web_app.router.add_get("/healthz", health_route(db))
    web_app.router.add_get("/readyz", ready)
    web_app.router.add_get("/metrics", metrics_route(services.metrics, db))
    # GET /privacy (saying the retention), GET /terms: the Teams manifest's privacyUrl and termsOfUseUrl
    add_pages(web_app, retention_days=settings.retention_days)
    bolt = slack.bolt if slack is not None else None
    bridge = Bridge(settings=settings, services=services, db=db, bolt=bolt, web_app=web_app, workers=workers)
    bridge.closers = [respondent, rally, *services.chats.values(), *([teams] if teams is not None else [])]
    if services.link_checker is not None:
        bridge.closers.append(services.link_checker)

    async def on_startup(_app: web.Application) -> None:
        await bridge.start_background()

    async def on_cleanup(_app: web.Application) -> None:
        await bridge.stop_background()

    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)
    return bridge
