"""Helpers for process-level tests: `rallybridge serve` as a real subprocess, killed and restarted at will,
events delivered the way Slack and Respondent deliver them (and re-delivered after an outage), and a look
into the inbox/outbox tables."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from playground.world import Candidate, World
from sandbox.respondent import RespondentSandbox
from sandbox.slack import SlackSandbox

RALLYBRIDGE = str(Path(sys.executable).with_name("rallybridge"))


class BridgeProcess:
    """One `rallybridge serve` subprocess (its own session), with its output in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, *, name: str = "bridge") -> None:
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(log_path.parent), **env}
        self.log_path = log_path
        self.name = name
        self.port = int(env["RALLYBRIDGE_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {self.name} start #{self.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [RALLYBRIDGE, "serve"],
                env=self.env,
                cwd=str(self.log_path.parent),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.proc.pid)

    async def wait_healthy(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                assert self.proc is not None
                code = self.proc.poll()
                if code is not None:
                    raise AssertionError(f"{self.name} exited with {code} before it was healthy:\n{self.output()}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not healthy after {within}s:\n{self.output()}")
                await asyncio.sleep(0.05)

    async def start_healthy(self) -> None:
        self.start()
        await self.wait_healthy()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown, leases stay behind."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {self.name} SIGKILLed at {time.time():.3f} =====\n".encode())

    def stop(self) -> None:
        """End the process (used at teardown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def output(self, tail: int = 20000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return "(no output)"


# ---- Slack events, as Slack sends them ------------------------------------------------------------------


@dataclass
class SlackPost:
    ts: str
    event: dict[str, Any]
    envelope: dict[str, Any]
    delivered: bool = False
    statuses: list[int | None] = field(default_factory=list)


def slack_post(slack: SlackSandbox, channel: str, user_id: str, text_: str, *, thread_ts: str | None) -> SlackPost:
    """A person posts in Slack (stored in the workspace); the event is built but not delivered yet."""
    ts = slack.new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user_id,
        "text": text_,
        "ts": ts,
        "team": slack.team_id,
        "channel_type": "channel",
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    stored = {k: v for k, v in event.items() if k not in {"channel", "channel_type", "event_ts"}}
    slack.store_message(channel, {**stored, "type": "message"})
    return SlackPost(ts, event, slack._envelope(event))


async def deliver_slack_envelope(
    slack: SlackSandbox, envelope: dict[str, Any], url: str, *, retries: int = 3, retry_delay: float = 0.2
) -> int | None:
    """POST one envelope (same event_id every time) to ``url`` like Slack: signed, retried on failure."""
    body = json.dumps(envelope).encode()
    status: int | None = None
    reason = "http_timeout"
    for attempt in range(retries + 1):
        headers = {"Content-Type": "application/json", **slack.sign(body)}
        if attempt:
            headers["X-Slack-Retry-Num"] = str(attempt)
            headers["X-Slack-Retry-Reason"] = reason
        try:
            status, _ = await slack.deliver_raw(body, headers, url=url)
        except TimeoutError:
            status, reason = None, "http_timeout"
        except aiohttp.ClientError:
            status, reason = None, "connection_failed"
        else:
            reason = "http_error"
        if status is not None and 200 <= status < 300:
            return status
        if attempt < retries:
            await asyncio.sleep(retry_delay)
    return status


# ---- Respondent webhooks --------------------------------------------------------------------------------


@dataclass
class RespondentWrite:
    uid: str
    event: dict[str, Any]
    statuses: list[int | None] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(s is not None and 200 <= s < 300 for s in self.statuses)


class WebhookRecorder:
    """Wraps ``RespondentSandbox.send_webhook``: remembers every event (to re-deliver it after an outage)
    and delivers it to each of ``targets`` concurrently (default: the sandbox's ``webhook_url``)."""

    def __init__(self, respondent: RespondentSandbox) -> None:
        self.respondent = respondent
        self.original = respondent.send_webhook
        self.events: list[tuple[dict[str, Any], list[int | None]]] = []
        self.targets: list[str] | None = None
        respondent.send_webhook = self.send  # type: ignore[method-assign]

    async def send(self, event: dict[str, Any]) -> int | None:
        statuses = await self.deliver(event)
        self.events.append((event, statuses))
        ok = [s for s in statuses if s is not None and 200 <= s < 300]
        return ok[0] if ok else statuses[-1]

    async def deliver(self, event: dict[str, Any]) -> list[int | None]:
        if self.targets is None:
            return [await self.original(event)]
        raw = json.dumps(event, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": self.respondent.sign(raw)}
        r = self.respondent
        return list(
            await asyncio.gather(
                *(
                    r.deliver(
                        url,
                        str(event["uuid"]),
                        lambda _a: (headers, raw),
                        retries=r.webhook_retries,
                        retry_delay=r.webhook_retry_delay,
                    )
                    for url in self.targets
                )
            )
        )

    def last(self) -> tuple[dict[str, Any], list[int | None]]:
        return self.events[-1]


async def participant_writes(world: World, who: Candidate, body: str, recorder: WebhookRecorder) -> RespondentWrite:
    uid = await world.respondent.participant_writes(
        world.cast.project_id, who.respondent_user_id, body, first_name=who.first_name, last_name=who.last_name
    )
    event, statuses = recorder.last()
    return RespondentWrite(uid, event, statuses)


# ---- what the bridge did --------------------------------------------------------------------------------


def participant_posts(world: World, root_ts: str) -> list[str]:
    """Bodies the bridge mirrored into the participant's thread, in thread order."""
    out = []
    for m in world.slack.thread(world.cast.channel, root_ts):
        text_ = m.get("text", "")
        if m.get("bot_id") and "(participant)" in text_.split("\n", 1)[0]:
            out.append(text_.split("\n", 1)[1] if "\n" in text_ else "")
    return out


def relayed(world: World, who: Candidate) -> list[str]:
    return [m["body"] for m in world.respondent.messages_to(who.respondent_user_id)]


async def queue_rows(database_url: str) -> list[dict[str, Any]]:
    """Every inbox and outbox row (table, id, kind, key, status, attempts, lease_owner, times, last_error)."""
    engine = create_async_engine(database_url)
    try:
        rows: list[dict[str, Any]] = []
        async with engine.connect() as conn:
            for table in ("inbox", "outbox"):
                result = await conn.execute(
                    text(
                        "SELECT id, kind, key, lane, status, attempts, lease_owner, lease_until, needs_verify, "
                        f"finished_at, last_error FROM {table} ORDER BY id"
                    )
                )
                rows += [{"table": table, **dict(r._mapping)} for r in result]
        return rows
    finally:
        await engine.dispose()


def unfinished(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] != "done"]


def format_rows(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['table']:6} {r['id']:4} {r['kind']:26} {r['status']:8} att={r['attempts']} "
        f"owner={r['lease_owner']} verify={r['needs_verify']} err={r['last_error']} key={r['key']}"
        for r in rows
    )


def unique_tag() -> str:
    return uuid.uuid4().hex[:6]
