"""A stand-in for the Rally public API as the bridge uses it (contracts R1-R5, ``rally.md`` 2, 3.1, 3.4, 4, 5).

Serves R1 ``GET /studies/{id}``, R2 ``GET /studies/{id}/team``, ``GET /users?email=``, R3 participant search
(cursor pagination) and ``GET /studies/{id}/participants/{id}``, R4 chat-message archive (idempotent by
``externalId``), with a bearer-token check, and sends Svix-signed webhooks.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from svix.webhooks import Webhook

from sandbox.http_faults import SandboxServer
from sandbox.respondent import endpoint_of

DIRECTIONS = {"TO_PARTICIPANT", "FROM_PARTICIPANT"}
AUTHOR_TYPES = {"RESEARCHER", "PARTICIPANT", "BOT"}
SOURCES = {"SLACK", "TEAMS", "RESPONDENT", "SCHEDULER"}
DEFAULT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _iso(value: datetime | None = None) -> str:
    value = value or datetime.now(UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RallySandbox(SandboxServer):
    """In-memory Rally with fault injection. See the module docstring; start with ``await start()``."""

    def __init__(
        self,
        token: str = "sandbox-token",
        *,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_SECRET,
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.2,
        webhook_header_prefix: str = "svix",
    ) -> None:
        self.token = token
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_header_prefix = webhook_header_prefix
        self.studies: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, list[dict[str, Any]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.participants: dict[str, dict[str, dict[str, Any]]] = {}
        self._archive: dict[str, list[dict[str, Any]]] = {}
        self._archive_ids: dict[str, str] = {}
        self.archive_attempts = 0
        # Requests per endpoint (``"POST /studies/{sid}/participants/search"``); and each one's time (epoch seconds),
        # endpoint and study id ("" for ``/users``).
        self.calls: Counter[str] = Counter()
        self.call_log: list[tuple[float, str, str]] = []
        super().__init__()

    # ---- setup -----------------------------------------------------------------------------------------
    def add_study(self, study_id: str, name: str, *, respondent_project_id: str | None, status: str = "ACTIVE") -> None:
        """A study; with ``respondent_project_id`` it recruits from Respondent (``externalPanel`` set)."""
        panel = {"provider": "RESPONDENT", "projectId": respondent_project_id} if respondent_project_id else None
        self.studies[study_id] = {
            "studyId": study_id,
            "name": name,
            "studyType": "INTERVIEWS",
            "recruitmentStrategy": "EXTERNAL" if panel else "IN_RALLY",
            "status": status,
            "externalPanel": panel,
        }
        self.teams.setdefault(study_id, [])
        self.participants.setdefault(study_id, {})

    def add_team_member(
        self,
        study_id: str,
        user_id: str,
        email: str,
        fullname: str,
        role: str = "TEAMMATE",
        external_panel_access: bool = True,
        user_status: str = "ACTIVE",
    ) -> None:
        """Put a Rally user (created if new) on a study team."""
        self.users[user_id] = {
            "userId": user_id,
            "fullname": fullname,
            "email": email,
            "jobRole": "",
            "profilePic": "",
            "status": user_status,
            "connectedAccounts": [],
            "seat": "RESEARCHER_PAID",
            "role": "RESEARCHER",
        }
        team = [m for m in self.teams.setdefault(study_id, []) if m["userId"] != user_id]
        team.append(
            {
                "userId": user_id,
                "email": email,
                "fullname": fullname,
                "role": role,
                "externalPanelAccess": external_panel_access,
            }
        )
        self.teams[study_id] = team

    def add_participant(
        self,
        study_id: str,
        participant_id: str,
        first_name: str,
        last_name: str,
        *,
        email: str | None,
        respondent_user_id: str | None,
        approval_status: str = "PENDING",
        status: str = "SCREENER_COMPLETED",
        scheduling_url: str | None = None,
        session_starts_at: datetime | str | None = None,
        screener_response_id: str | None = None,
    ) -> None:
        """A participant with R3 fields (``externalPanel`` set when ``respondent_user_id`` is)."""
        panel = None
        if respondent_user_id:
            panel = {
                "provider": "RESPONDENT",
                "userId": respondent_user_id,
                "screenerResponseId": screener_response_id or secrets.token_hex(12),
            }
        self.participants.setdefault(study_id, {})[participant_id] = {
            "participantId": participant_id,
            "personId": f"pe_{participant_id}",
            "studyId": study_id,
            "email": email,
            "additionalEmails": [],
            "status": status,
            "invitedToStudyAt": _iso(),
            "approvalStatus": approval_status,
            "approvedAt": _iso() if approval_status == "APPROVED" else None,
            "screenerState": "SCREENER_COMPLETED",
            "firstName": first_name,
            "lastName": last_name,
            "externalPanel": panel,
            "schedulingUrl": scheduling_url,
            "sessionStartsAt": (
                _iso(session_starts_at) if isinstance(session_starts_at, datetime) else session_starts_at
            ),
        }

    # ---- webhooks --------------------------------------------------------------------------------------
    async def approve(self, study_id: str, participant_id: str, *, deliveries: int = 1) -> str:
        """Approve the participant and send ``participant.status_changed``; returns the svix message id."""
        p = self.participants[study_id][participant_id]
        prior = p["status"]
        p.update(approvalStatus="APPROVED", approvedAt=_iso(), status="SCREENER_QUALIFIED")
        event = {
            "_eventType": "participant.status_changed",
            "participantId": participant_id,
            "personId": p["personId"],
            "studyId": study_id,
            "status": p["status"],
            "priorStatus": prior,
            "updatedAt": _iso(),
        }
        return await self.send_webhook(event, deliveries=deliveries)

    async def move_session(self, study_id: str, participant_id: str, starts_at: str | None) -> str:
        """Reschedule the participant's session (ISO time, or None to clear it) and send
        ``participant.status_changed``, as Rally does when a session is booked or moved."""
        p = self.participants[study_id][participant_id]
        p["sessionStartsAt"] = starts_at
        event = {
            "_eventType": "participant.status_changed",
            "participantId": participant_id,
            "personId": p["personId"],
            "studyId": study_id,
            "status": p["status"],
            "priorStatus": p["status"],
            "updatedAt": _iso(),
        }
        return await self.send_webhook(event)

    async def opt_out(self, email: str, *, deliveries: int = 1) -> str:
        """Set ``OPTED_OUT`` on every participant with ``email`` and send ``person.opted_out``."""
        for study in self.participants.values():
            for p in study.values():
                if (p.get("email") or "").casefold() == email.casefold():
                    p["status"] = "OPTED_OUT"
        event = {
            "_eventType": "person.opted_out",
            "email": email,
            "optedOut": True,
            "updatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        return await self.send_webhook(event, deliveries=deliveries)

    def signed_headers(self, msg_id: str, raw_body: bytes, when: datetime | None = None) -> dict[str, str]:
        """Svix headers (prefix ``webhook_header_prefix``) signing ``raw_body`` at ``when`` (default now)."""
        when = when or datetime.now(UTC)
        signature = Webhook(self.webhook_secret).sign(msg_id, when, raw_body.decode("utf-8"))
        prefix = self.webhook_header_prefix
        return {
            "Content-Type": "application/json",
            f"{prefix}-id": msg_id,
            f"{prefix}-timestamp": str(int(when.timestamp())),
            f"{prefix}-signature": signature,
        }

    async def send_webhook(self, event: dict[str, Any], *, deliveries: int = 1) -> str:
        """Deliver ``event`` ``deliveries`` times with one svix id (re-signed per attempt); returns the id."""
        msg_id = "msg_" + secrets.token_hex(12)
        if not self.webhook_url:
            return msg_id
        raw = json.dumps(event, separators=(",", ":")).encode("utf-8")
        for _ in range(deliveries):
            await self.deliver(
                self.webhook_url,
                msg_id,
                lambda _attempt: (self.signed_headers(msg_id, raw), raw),
                retries=self.webhook_retries,
                retry_delay=self.webhook_retry_delay,
            )
        return msg_id

    # ---- faults & inspection ---------------------------------------------------------------------------
    def archive_failure_rate(self, p: float, seed: int | None = None) -> None:
        """Answer 503 to a fraction ``p`` of R4 archive requests (reproducible with ``seed``; 0 disables)."""
        self.random_failures(p, seed, path_contains="/chat-messages", method="POST")

    def archived(self, study_id: str) -> list[dict[str, Any]]:
        """Archived chat messages of the study in arrival order (one per ``externalId``), with their ``id``."""
        return [dict(row) for row in self._archive.get(study_id, [])]

    def on_request(self, request: web.Request) -> None:
        """Count every request by endpoint, and every archive attempt, including those answered with an injected
        failure."""
        endpoint = endpoint_of(request)
        self.calls[endpoint] += 1
        self.call_log.append((time.time(), endpoint, request.match_info.get("sid", "")))
        if request.method == "POST" and request.path.endswith("/chat-messages"):
            self.archive_attempts += 1

    # ---- HTTP ------------------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        """Register R1-R4 and ``GET /users``."""
        app.router.add_get("/studies/{sid}", self._get_study)
        app.router.add_get("/studies/{sid}/team", self._get_team)
        app.router.add_get("/users", self._users)
        app.router.add_post("/studies/{sid}/participants/search", self._search)
        app.router.add_get("/studies/{sid}/participants/{pid}", self._get_participant)
        app.router.add_post("/studies/{sid}/participants/{pid}/chat-messages", self._archive_message)

    def error_body(self, status: int, message: str, path: list[str] | None = None) -> dict[str, Any]:
        """Rally's ``{"errors": [{"message", "path"}]}``."""
        return {"errors": [{"message": message, "path": path or []}]}

    def authorized(self, request: web.Request) -> bool:
        """``Authorization: Bearer <token>`` must match (constant time)."""
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _bad(self, message: str, path: list[str]) -> web.Response:
        return web.json_response(self.error_body(400, message, path), status=400)

    def _study(self, request: web.Request) -> dict[str, Any]:
        study = self.studies.get(request.match_info["sid"])
        if study is None:
            raise web.HTTPNotFound(reason="Study not found")
        return study

    def _participant(self, request: web.Request) -> dict[str, Any]:
        study = self._study(request)
        p = self.participants.get(study["studyId"], {}).get(request.match_info["pid"])
        if p is None:
            raise web.HTTPNotFound(reason="Participant not found")
        return p

    @staticmethod
    def _paginate(items: list[dict[str, Any]], size: int, cursor: str | None) -> dict[str, Any]:
        start = 0
        if cursor:
            try:
                start = int(cursor.removeprefix("cur_"))
            except ValueError:
                raise web.HTTPBadRequest(reason="Invalid startCursor") from None
        chunk = items[start : start + size]
        end = start + len(chunk)
        return {
            "results": chunk,
            "total": len(items),
            "pageInfo": {
                "hasNextPage": end < len(items),
                "hasPreviousPage": start > 0,
                "startCursor": f"cur_{start}",
                "endCursor": f"cur_{end}",
            },
        }

    @staticmethod
    def _size(raw: Any, default: int = 10) -> int:
        if raw is None:
            return default
        try:
            size = int(raw)
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(reason="size must be a number") from None
        if not 0 < size <= 100:
            raise web.HTTPBadRequest(reason="size must be between 1 and 100")
        return size

    async def _get_study(self, request: web.Request) -> web.Response:
        return web.json_response(self._study(request))

    async def _get_team(self, request: web.Request) -> web.Response:
        study = self._study(request)
        return web.json_response({"results": self.teams.get(study["studyId"], [])})

    async def _users(self, request: web.Request) -> web.Response:
        wanted = {e.strip().casefold() for raw in request.query.getall("email", []) for e in raw.split(",")}
        wanted.discard("")
        users = [u for u in self.users.values() if not wanted or u["email"].casefold() in wanted]
        size = self._size(request.query.get("size"))
        return web.json_response(self._paginate(users, size, request.query.get("startCursor")))

    async def _search(self, request: web.Request) -> web.Response:
        study = self._study(request)
        try:
            data = await request.json() if request.can_read_body else {}
        except ValueError:
            return self._bad("Body must be valid JSON", [])
        page_info = data.get("pageInfo") if isinstance(data, dict) else None
        page_info = page_info if isinstance(page_info, dict) else {}
        items = list(self.participants.get(study["studyId"], {}).values())
        size = self._size(page_info.get("size"))
        return web.json_response(self._paginate(items, size, page_info.get("startCursor")))

    async def _get_participant(self, request: web.Request) -> web.Response:
        return web.json_response(self._participant(request))

    async def _archive_message(self, request: web.Request) -> web.Response:
        participant = self._participant(request)
        try:
            data = await request.json()
        except ValueError:
            return self._bad("Body must be valid JSON", [])
        if not isinstance(data, dict):
            return self._bad("Body must be an object", [])
        problem = self._archive_problem(data)
        if problem:
            return self._bad(*problem)
        existing = self._archive_ids.get(data["externalId"])
        if existing:
            return web.json_response({"id": existing}, status=200)
        archive_id = f"cm_{len(self._archive_ids) + 1}"
        self._archive_ids[data["externalId"]] = archive_id
        row = {"id": archive_id, "participantId": participant["participantId"], **data}
        self._archive.setdefault(participant["studyId"], []).append(row)
        return web.json_response({"id": archive_id}, status=201)

    @staticmethod
    def _archive_problem(data: dict[str, Any]) -> tuple[str, list[str]] | None:
        if not isinstance(data.get("externalId"), str) or not data["externalId"]:
            return "externalId is required", ["externalId"]
        if data.get("direction") not in DIRECTIONS:
            return f"direction must be one of {sorted(DIRECTIONS)}", ["direction"]
        if not isinstance(data.get("body"), str) or not data["body"].strip():
            return "body must not be empty", ["body"]
        sent_at = data.get("sentAt")
        try:
            datetime.fromisoformat(str(sent_at).replace("Z", "+00:00"))
        except ValueError:
            return "sentAt must be an ISO-8601 date-time", ["sentAt"]
        author = data.get("author")
        if not isinstance(author, dict) or author.get("type") not in AUTHOR_TYPES:
            return f"author.type must be one of {sorted(AUTHOR_TYPES)}", ["author", "type"]
        if data.get("source") not in SOURCES:
            return f"source must be one of {sorted(SOURCES)}", ["source"]
        return None
