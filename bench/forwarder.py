"""The floor for benchmark 3: a bare aiohttp forwarder that relays a researcher's Slack reply with the same HTTP
hops as the bridge and nothing else (no storage, no queue, no retries, no ordering, no exactly-once).

It answers Slack's signed event, then in the background makes the calls the bridge makes for one relayed
reply: Slack ``users.info`` (who wrote it), Rally ``GET /studies/{id}/team`` and ``GET /users?email=`` (may
they message the participant), Respondent ``GET /v1/messaging/conversations`` (once per participant, to find
the conversation), ``POST .../messages`` (the send), Rally ``POST .../chat-messages`` (the archive) and Slack
``reactions.add`` (the delivery mark). Run by ``bench/relay_overhead.py`` as a subprocess so that its CPU time
can be read like the bridge's::

    .venv/bin/python -m bench.forwarder   # configured by the environment, see ``Config.from_env``
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True)
class Thread:
    study_id: str
    participant_id: str
    project_id: str
    respondent_user_id: str


@dataclass(frozen=True)
class Config:
    port: int
    signing_secret: str
    slack_url: str
    slack_token: str
    respondent_url: str
    respondent_key: str
    respondent_secret: str
    rally_url: str
    rally_token: str
    threads: dict[str, Thread]  # Slack thread ts -> the participant it belongs to

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Config:
        """The bridge's own variables (``SLACK_*``, ``RESPONDENT_*``, ``RALLY_*``) plus ``FORWARDER_PORT`` and
        ``FORWARDER_THREADS`` (JSON: thread ts -> study_id, participant_id, project_id, respondent_user_id)."""
        try:
            threads = {ts: Thread(**t) for ts, t in json.loads(env["FORWARDER_THREADS"]).items()}
            return cls(
                port=int(env["FORWARDER_PORT"]),
                signing_secret=env["SLACK_SIGNING_SECRET"],
                slack_url=env["SLACK_API_URL"].rstrip("/"),
                slack_token=env["SLACK_BOT_TOKEN"],
                respondent_url=env["RESPONDENT_API_URL"].rstrip("/"),
                respondent_key=env["RESPONDENT_API_KEY"],
                respondent_secret=env["RESPONDENT_API_SECRET"],
                rally_url=env["RALLY_API_URL"].rstrip("/"),
                rally_token=env["RALLY_API_TOKEN"],
                threads=threads,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SystemExit(f"forwarder: bad or missing configuration ({type(exc).__name__}: {exc})") from None


class Forwarder:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.verifier = SignatureVerifier(config.signing_secret)
        self.http: aiohttp.ClientSession | None = None
        self.conversations: dict[str, str] = {}  # respondent user id -> conversation uid (memory only)
        self.tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack/events", self.slack_event)
        app.router.add_get("/healthz", self.health)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _stop(self, _app: web.Application) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "in_flight": len(self.tasks), "failures": self.failures})

    async def slack_event(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not self.verifier.is_valid_request(raw, dict(request.headers)):
            return web.json_response({"error": "invalid or expired Slack signature"}, status=401)
        body = json.loads(raw)
        event = body.get("event") or {}
        thread = self.config.threads.get(event.get("thread_ts") or "")
        # Like the bridge, relay only a person's plain reply in a participant's thread: a bot's post (its own echo
        # too: ``bot_id`` set, no subtype), a join or any other subtype, a top-level message, an unknown thread is
        # dropped once the signature is checked and the JSON read.
        relayable = event.get("user") and not event.get("subtype") and not event.get("bot_id")
        if event.get("type") == "message" and thread is not None and relayable:
            task = asyncio.create_task(self.relay(body.get("team_id", ""), event, thread))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.Response(status=200)

    async def relay(self, team: str, event: dict[str, Any], thread: Thread) -> None:
        try:
            await self._relay(team, event, thread)
        except Exception as exc:
            self.failures += 1
            print(f"forwarder: relay failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    async def _relay(self, team: str, event: dict[str, Any], thread: Thread) -> None:
        c, http = self.config, self.http
        assert http is not None
        slack = {"Authorization": f"Bearer {c.slack_token}"}
        rally = {"Authorization": f"Bearer {c.rally_token}"}
        respondent = {"x-api-key": c.respondent_key, "x-api-secret": c.respondent_secret}
        # Who wrote it, and may they message this participant (on the study team with external-panel access)?
        async with http.get(f"{c.slack_url}/users.info", params={"user": event["user"]}, headers=slack) as r:
            user = (await r.json())["user"]
        email = (user.get("profile") or {}).get("email") or ""
        name = (user.get("profile") or {}).get("real_name") or user.get("real_name") or event["user"]
        async with http.get(f"{c.rally_url}/studies/{quote(thread.study_id)}/team", headers=rally) as r:
            team_members = (await r.json())["results"]
        params = {"email": email, "size": "100"}
        async with http.get(f"{c.rally_url}/users", params=params, headers=rally) as r:
            rally_users = [u for u in (await r.json())["results"] if u.get("email", "").casefold() == email.casefold()]
        member = next((m for m in team_members if (m.get("email") or "").casefold() == email.casefold()), None)
        if member is None or member.get("externalPanelAccess") is not True or not rally_users:
            raise RuntimeError("author may not message the participant")
        # The participant's conversation: looked up once, then kept in memory.
        uid = self.conversations.get(thread.respondent_user_id)
        if uid is None:
            params = {"projectId": thread.project_id, "page": "1", "pageSize": "50", "includeCount": "true"}
            url = f"{c.respondent_url}/v1/messaging/conversations"
            async with http.get(url, params=params, headers=respondent) as r:
                listed = (await r.json())["results"]
            uid = next(
                conv["uid"]
                for conv in listed
                if any(p.get("uid") == thread.respondent_user_id for p in conv.get("participants") or [])
            )
            self.conversations[thread.respondent_user_id] = uid
        # The three effects, in the bridge's order.
        url = f"{c.respondent_url}/v1/messaging/conversations/{quote(uid, safe='')}/messages"
        async with http.post(url, json={"body": event.get("text") or ""}, headers=respondent) as r:
            r.raise_for_status()
            sent = await r.json()
        archive = {
            "externalId": f"slack:{team}:{event['channel']}:{event['ts']}",
            "direction": "TO_PARTICIPANT",
            "body": event.get("text") or "",
            "sentAt": sent.get("createdAt") or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "author": {"type": "RESEARCHER", "userId": rally_users[0]["userId"], "email": email, "name": name},
            "source": "SLACK",
            "respondentMessageUid": sent.get("uid"),
        }
        participant = f"{c.rally_url}/studies/{quote(thread.study_id)}/participants/{quote(thread.participant_id)}"
        url = f"{participant}/chat-messages"
        async with http.post(url, json=archive, headers=rally) as r:
            r.raise_for_status()
        form = {"channel": event["channel"], "timestamp": event["ts"], "name": "white_check_mark"}
        async with http.post(f"{c.slack_url}/reactions.add", data=form, headers=slack) as r:
            if not (await r.json()).get("ok"):
                raise RuntimeError("reactions.add refused")


def main() -> None:
    config = Config.from_env(dict(os.environ))
    web.run_app(Forwarder(config).app(), host="127.0.0.1", port=config.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
