"""The playground's web server: one page, one JSON state endpoint, and the actions a newcomer can take.

Every action goes through the stand-ins' real wire paths: a participant's message is stored by the Respondent
stand-in, which sends the signed ``MESSAGES.CREATED`` webhook to the bridge; a Slack reply or slash command is
sent by the Slack stand-in as a signed ``event_callback`` / command to ``/slack/events``; an approval is sent
by the Rally stand-in as a Svix-signed webhook. The bridge is never called directly.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import Bridge
from core import clock
from playground.view import (
    CommandEcho,
    PlaygroundLog,
    archive,
    bridge_status,
    buttons,
    participants,
    people,
    slack_channel,
)
from playground.world import Candidate, World

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_TEXT = 4000  # characters a newcomer may type in one message (plenty for a chat, small for a demo)
MAX_FORWARD_HOURS = 48  # the most one fast-forward moves the bridge's clock
STATIC = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/buttons.js": ("buttons.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
# The page loads only its own script and style; participant text can never run as code.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Participants still waiting for approval, so there is always someone to approve in the Rally pane.
NEWCOMERS = (
    Candidate("pa_alex", "Alex", "Kim", "alex@example.net", "6960391fbd5465b2dd6bd6e4"),
    Candidate("pa_noor", "Noor", "Haddad", "noor@example.net", "6960391fbd5465b2dd6bd6e5"),
)


class BadAction(Exception):
    """The request cannot be carried out; nothing was changed. ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def add_newcomers(world: World) -> None:
    """Put the ``NEWCOMERS`` in the Rally study as pending participants (once)."""
    study = world.rally.participants.setdefault(world.cast.study_id, {})
    session = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    for index, who in enumerate(NEWCOMERS):
        if who.participant_id not in study:
            world.rally.add_participant(
                world.cast.study_id,
                who.participant_id,
                who.first_name,
                who.last_name,
                email=who.email,
                respondent_user_id=who.respondent_user_id,
                scheduling_url=f"https://app.rallyuxr.com/schedule/{who.participant_id}",
                session_starts_at=session + timedelta(hours=index),
            )


BARE_LINK = re.compile(r"(?<![\w/])(https?://[^\s<>|]+[^\s<>|.,;:!?)\]'\"])", re.IGNORECASE)


def as_slack_client_sends(typed: str) -> str:
    """The ``text`` Slack's own client sends for what a person typed: ``&``, ``<``, ``>`` escaped, links wrapped.

    So typing ``<!channel>`` in the playground is as harmless as typing it in Slack, and a pasted URL arrives
    as ``<https://...>`` like a real one.
    """
    escaped = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return BARE_LINK.sub(lambda m: f"<{m.group(1)}>", escaped)


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadAction(f"{name} must be non-empty text")
    if len(value) > MAX_TEXT:
        raise BadAction(f"{name} is longer than {MAX_TEXT} characters")
    return value


class Playground:
    """The playground for one running ``World``; ``await start()`` serves it on 127.0.0.1."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.log = PlaygroundLog()
        self.url: str | None = None
        self.clock_offset = timedelta(0)  # how far the playground moved the bridge's clock (cumulative)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._static = {
            path: ((resources.files("playground") / "static" / name).read_bytes(), kind)
            for path, (name, kind) in STATIC.items()
        }
        self.app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        for path in STATIC:
            self.app.router.add_get(path, self._serve_static)
        self.app.router.add_get("/favicon.ico", self._no_icon)
        self.app.router.add_get("/api/state", self._state)
        self.app.router.add_post("/api/participant/write", self._action(self.participant_writes))
        self.app.router.add_post("/api/slack/post", self._action(self.slack_post))
        self.app.router.add_post("/api/slack/command", self._action(self.slack_command))
        self.app.router.add_post("/api/slack/click", self._action(self.slack_click))
        self.app.router.add_post("/api/rally/approve", self._action(self.rally_approve))
        self.app.router.add_post("/api/respondent/outage", self._action(self.respondent_outage))
        self.app.router.add_post("/api/participant/read", self._action(self.participant_reads))
        self.app.router.add_post("/api/time/forward", self._action(self.time_forward))

    # ---- lifecycle -------------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        """Serve on ``127.0.0.1:port`` (0, or ``port`` taken: any free port); returns the page's URL."""
        add_newcomers(self.world)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
        except OSError:
            if not port:
                raise
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{bound}/"
        return self.url

    async def stop(self) -> None:
        if self.clock_offset:  # the bridge's clock goes back to real time with the playground
            clock.set_clock(None)
            self.clock_offset = timedelta(0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- HTTP plumbing ---------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Actions only from this page: JSON bodies (a cross-site form cannot send them) and our own Origin."""
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"http://{request.host}":
                return web.json_response({"error": "actions are accepted from the playground page only"}, status=403)
            if request.content_type != "application/json":
                return web.json_response({"error": "send the action as application/json"}, status=415)
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _serve_static(self, request: web.Request) -> web.Response:
        body, kind = self._static[request.path]
        return web.Response(body=body, content_type=kind, charset="utf-8")

    async def _no_icon(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    def _action(self, act: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                data = await request.json()
            except (ValueError, UnicodeDecodeError):
                return web.json_response({"error": "the body is not valid JSON"}, status=400)
            if not isinstance(data, dict):
                return web.json_response({"error": "the body must be a JSON object"}, status=400)
            try:
                result = await act(data)
            except BadAction as exc:
                return web.json_response({"error": str(exc)}, status=exc.status)
            return web.json_response({"ok": True, **result})

        return handle

    async def _state(self, request: web.Request) -> web.Response:
        try:
            viewer = self._person(request.query.get("as", self.world.cast.owner.slack_id))
        except BadAction as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response(await self.state(viewer), dumps=lambda v: json.dumps(v, ensure_ascii=False))

    # ---- reading -------------------------------------------------------------------------------------
    async def state(self, viewer: str) -> dict[str, Any]:
        """Everything the page shows, as ``viewer`` (a Slack user id) sees it."""
        w, c = self.world, self.world.cast
        assert self._session is not None, "start the playground first"
        snapshot = {
            "study": {"id": c.study_id, "name": c.study_name},
            "people": people(w),
            "participants": participants(w),
            "slack": slack_channel(w, self.log, viewer),
            "archive": archive(w),
            "respondent_down": self.log.respondent_down,
            "clock": {"offset_hours": self.clock_offset.total_seconds() / 3600, "now": clock.now().isoformat()},
        }
        # Read the stand-ins first, in one go (no await in between), then the bridge over HTTP.
        snapshot["bridge"] = await bridge_status(self._session, w.bridge_url)
        return snapshot

    def _person(self, user_id: Any) -> str:
        if not isinstance(user_id, str) or user_id not in {p["id"] for p in people(self.world)}:
            raise BadAction(f"unknown person {user_id!r}: pick one of the study channel's members")
        return user_id

    def _bridge(self) -> Bridge:
        if self.world.bridge is None:
            raise BadAction("the bridge is not running", 503)
        return self.world.bridge

    def _participant(self, participant_id: Any) -> dict[str, Any]:
        study = self.world.rally.participants.get(self.world.cast.study_id, {})
        found = study.get(participant_id) if isinstance(participant_id, str) else None
        if found is None:
            raise BadAction(f"no participant {participant_id!r} in the study", 404)
        return found

    # ---- actions ---------------------------------------------------------------------------------------
    async def participant_writes(self, data: dict[str, Any]) -> dict[str, Any]:
        """The participant writes in their Respondent inbox; Respondent sends the signed webhook."""
        p = self._participant(data.get("participant"))
        body = _text(data, "body")
        user_id = (p.get("externalPanel") or {}).get("userId")
        if not user_id:
            raise BadAction(f"{p['firstName']} was not recruited through Respondent and has no inbox there")
        uid = await self.world.respondent.participant_writes(
            self.world.cast.project_id, user_id, body, first_name=p["firstName"], last_name=p["lastName"]
        )
        return {"uid": uid}

    async def slack_post(self, data: dict[str, Any]) -> dict[str, Any]:
        """A person posts in the channel or replies in a thread; Slack sends the signed event to the bridge."""
        person = self._person(data.get("user"))
        text = _text(data, "text")
        if text.lstrip().startswith("/"):
            raise BadAction("slash commands go in the channel's message box, as /rally ...")
        channel = self.world.cast.channel
        thread_ts = data.get("thread_ts")
        if thread_ts is not None:
            root = self.world.slack.find_message(channel, thread_ts) if isinstance(thread_ts, str) else None
            if root is None or root.get("thread_ts") not in (None, root["ts"]):
                raise BadAction(f"no thread {thread_ts!r} in #{self.world.cast.channel_name}", 404)
        ts = await self.world.slack.user_posts(channel, person, as_slack_client_sends(text), thread_ts=thread_ts)
        return {"ts": ts}

    async def slack_command(self, data: dict[str, Any]) -> dict[str, Any]:
        """A person runs ``/rally ...`` in the channel; Slack sends the signed command to the bridge."""
        person = self._person(data.get("user"))
        text = _text(data, "text").strip()
        word, _, rest = text.partition(" ")
        if word != "/rally":
            raise BadAction(f"{word} is not a command here: the bridge's command is /rally (try /rally help)")
        ts = self.world.slack.new_ts()  # Slack shows the ack before anything the command posts later
        result = await self.world.slack.run_command(self.world.cast.channel, person, rest.strip())
        if result.status != 200:
            raise BadAction(f"the bridge answered HTTP {result.status} to {text}", 502)
        answer = result.json
        if isinstance(answer, dict) and answer.get("text"):
            self.log.command_echoes.append(CommandEcho(person, str(answer["text"]), ts))
        return {}

    async def slack_click(self, data: dict[str, Any]) -> dict[str, Any]:
        """A person clicks a button under a channel message (``ts``) or under a private note only they see (``ts``
        and ``private``: Slack's ephemeral message); Slack sends the signed ``block_actions`` to the bridge."""
        person = self._person(data.get("user"))
        label, ts, channel = _text(data, "label"), data.get("ts"), self.world.cast.channel
        where: dict[str, Any]
        if data.get("private"):
            notes = [e for e in self.world.slack.ephemerals if e["message_ts"] == ts and e["channel"] == channel]
            if not notes or notes[0]["user"] != person:  # someone else's private note is as unknown as none
                raise BadAction(f"no private message {ts!r} for you in #{self.world.cast.channel_name}", 404)
            blocks, where = notes[0].get("blocks"), {"ephemeral": notes[0]}
        else:
            message = self.world.slack.find_message(channel, ts) if isinstance(ts, str) else None
            if message is None:
                raise BadAction(f"no message {ts!r} in #{self.world.cast.channel_name}", 404)
            blocks, where = message.get("blocks"), {"ts": ts}
        button = next((b for b in buttons(blocks) if b["label"] == label), None)
        if button is None:
            raise BadAction(f"no button {label!r} on that message", 404)
        if not button["clickable"]:
            raise BadAction(button["why"])
        result = await self.world.slack.click(channel, person, label, **where)
        if result.status != 200:
            raise BadAction(f"the bridge answered HTTP {result.status} to the click on {label!r}", 502)
        return {}

    async def rally_approve(self, data: dict[str, Any]) -> dict[str, Any]:
        """Rally approves a participant and sends the Svix-signed ``participant.status_changed`` webhook."""
        p = self._participant(data.get("participant"))
        if p["approvalStatus"] == "APPROVED":
            raise BadAction(f"{p['firstName']} {p['lastName']} is already approved", 409)
        message_id = await self.world.rally.approve(self.world.cast.study_id, p["participantId"])
        return {"svix_id": message_id}

    async def respondent_outage(self, data: dict[str, Any]) -> dict[str, Any]:
        """Take Respondent's API down (503 to everything) or bring it back."""
        down = data.get("down")
        if not isinstance(down, bool):
            raise BadAction("down must be true or false")
        if down:
            self.world.respondent.outage()
        else:
            self.world.respondent.heal()
        self.log.respondent_down = down
        return {"down": down}

    async def participant_reads(self, data: dict[str, Any]) -> dict[str, Any]:
        """The participant opens Respondent and reads their conversation; a reconcile of the study is queued now
        (instead of at its scheduled moment), which reads Respondent's conversation list and marks what was seen."""
        p = self._participant(data.get("participant"))
        name = f"{p['firstName']} {p['lastName']}"
        if p["approvalStatus"] != "APPROVED":
            raise BadAction(f"{name} is not approved yet: approve them in the Rally pane first", 409)
        user_id = (p.get("externalPanel") or {}).get("userId")
        if not user_id:
            raise BadAction(f"{p['firstName']} was not recruited through Respondent and has no inbox there")
        bridge = self._bridge()
        try:
            self.world.respondent.participant_reads(user_id, self.world.cast.project_id)
        except KeyError:
            raise BadAction(f"{name} has no conversation on Respondent yet: nothing to read", 409) from None
        queued = await bridge.queue_reconciles(cycle=f"playground-read-{time.time_ns()}")
        return {"reconciles": queued}

    async def time_forward(self, data: dict[str, Any]) -> dict[str, Any]:
        """Move the bridge's clock forward by ``hours`` (on top of earlier moves) and run one nudge tick, as if that
        much time had passed. The clock stays moved until the playground stops."""
        hours = data.get("hours")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_FORWARD_HOURS:
            raise BadAction(f"hours must be a number above 0 and at most {MAX_FORWARD_HOURS}")
        bridge = self._bridge()
        self.clock_offset += timedelta(hours=hours)
        clock.set_clock(self._moved_clock)
        nudges = await bridge.queue_nudges()
        return {"offset_hours": self.clock_offset.total_seconds() / 3600, "nudges": nudges}

    def _moved_clock(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset
