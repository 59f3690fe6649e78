"""Composition root: the one place where real adapters are wired to the core and to one aiohttp server."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp

from adapters.rally.client import RallyClient
from adapters.respondent.client import RespondentClient
from adapters.slack.inbound import build_bolt_app, slack_route
from adapters.slack.platform import SlackPlatform, build_client
from adapters.teams.setup import add_route as add_teams_route
from adapters.teams.setup import build_teams
from bot.inbound import reconcile_study
from bot.inbox import record
from bot.pipeline.services import Services
from bot.pipeline.worker import QueueWorker, inbox_worker, outbox_worker
from bot.reminders import firing as reminders
from bot.settings import Settings
from bot.web import health_route, rally_route, ready_route, respondent_route
from storage import repo
from storage.db import Database
from storage.migrate import schema_problem

log = logging.getLogger(__name__)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this version needs; the message says how to fix it."""


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return get() if get is not None else ""


@dataclass
class Bridge:
    settings: Settings
    services: Services
    bolt: AsyncApp
    web_app: web.Application
    workers: list[QueueWorker]
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    scheduler: AsyncIOScheduler | None = None
    closers: list[object] = field(default_factory=list)

    async def start_background(self) -> None:
        """Refuse an old schema, then start the workers and the reconcile tick."""
        problem = await schema_problem(self.services.db)
        if problem is not None:
            raise SchemaOutOfDate(problem)
        self.stop_event.clear()
        self.tasks = [asyncio.create_task(w.forever(self.stop_event)) for w in self.workers]
        self.scheduler = AsyncIOScheduler()
        self.scheduler.add_job(
            self.queue_reconciles,
            "interval",
            seconds=self.settings.reconcile_interval_seconds,
            id="reconcile",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        # Reminders are rows in our own tables; this job only ticks (claims due rows into the inbox).
        self.scheduler.add_job(
            self.queue_due_reminders,
            "interval",
            seconds=reminders.TICK_SECONDS,
            id="reminders",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()

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
        await self.services.db.dispose()

    async def queue_due_reminders(self) -> int:
        """Turn due reminder rows into inbox events (exactly once across replicas: see bot/reminders/firing)."""
        try:
            return await reminders.enqueue_due(self.services)
        except Exception as exc:  # the database may be down; the next tick tries again
            log.warning("could not queue due reminders: %s", type(exc).__name__)
            return 0

    async def queue_reconciles(self) -> int:
        """One reconcile event per linked study per interval; replicas share the key, so it runs once."""
        cycle = str(int(time.time() // self.settings.reconcile_interval_seconds))
        async with self.services.db.transaction() as session:
            links = await repo.active_links(session)
        for link in links:
            await record(self.services, reconcile_study(study_id=link.study_id, cycle=cycle))
        return len(links)


def build_bridge(settings: Settings, *, http_slack: bool = True) -> Bridge:
    """Wire the bridge from settings. ``http_slack`` False leaves Slack to Socket Mode."""
    db = Database(settings.database_url)
    slack_client = build_client(_secret(settings.slack_bot_token), base_url=settings.slack_api_url)
    respondent = RespondentClient(
        settings.respondent_api_url, _secret(settings.respondent_api_key), _secret(settings.respondent_api_secret)
    )
    rally = RallyClient(settings.rally_api_url, _secret(settings.rally_api_token))
    services = Services(
        db=db,
        chats={"slack": SlackPlatform(slack_client)},
        respondent=respondent,
        rally=rally,
        internal_note_marker=settings.internal_note_marker,
        respondent_researcher_id=settings.respondent_researcher_id,
    )
    teams = build_teams(settings, db, lambda e: record(services, e))  # None unless MICROSOFT_* settings say so
    if teams is not None:
        services.chats["teams"] = teams.platform
    signing_secret = _secret(settings.slack_signing_secret) if http_slack else None
    bolt = build_bolt_app(client=slack_client, signing_secret=signing_secret, record=lambda e: record(services, e))
    options = {
        "lease": timedelta(seconds=settings.lease_seconds),
        "poll": settings.worker_poll_seconds,
        "backoff_base": settings.retry_base_seconds,
        "backoff_cap": settings.retry_cap_seconds,
    }
    workers = [inbox_worker(services, **options), outbox_worker(services, **options)]
    web_app = web.Application(client_max_size=settings.max_body_bytes + 1, middlewares=[services.metrics.middleware()])
    max_body = settings.max_body_bytes
    if signing_secret:
        web_app.router.add_post("/slack/events", slack_route(bolt, signing_secret, max_body))
    web_app.router.add_post(
        "/webhooks/respondent", respondent_route(services, _secret(settings.respondent_webhook_key), max_body)
    )
    web_app.router.add_post("/webhooks/rally", rally_route(services, _secret(settings.rally_webhook_secret), max_body))
    web_app.router.add_get("/healthz", health_route(services))
    web_app.router.add_get("/readyz", ready_route(services))
    web_app.router.add_get("/metrics", services.metrics.route(db))
    if teams is not None:
        add_teams_route(web_app, teams)
    bridge = Bridge(settings=settings, services=services, bolt=bolt, web_app=web_app, workers=workers)
    bridge.closers = [respondent, rally, *([teams] if teams is not None else [])]

    async def on_startup(_app: web.Application) -> None:
        await bridge.start_background()

    async def on_cleanup(_app: web.Application) -> None:
        await bridge.stop_background()

    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)
    return bridge
