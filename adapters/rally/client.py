"""Rally public API client: implements ``core.ports.StudyRecord`` (contracts R1-R4, ``rally.md`` 2, 3.1, 3.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.http import JsonHttp, format_datetime, malformed, parse_datetime
from core.domain import ArchiveEntry, ExternalPanel, Participant, RallyUser, Study, TeamMember

SERVICE = "Rally"
PAGE_SIZE = 100
MAX_PAGES = 1000


def _q(value: str) -> str:
    return quote(value, safe="")


def _str(obj: dict[str, Any], field: str) -> str | None:
    value = obj.get(field)
    return value if isinstance(value, str) and value else None


def _need(obj: Any, field: str) -> str:
    if not isinstance(obj, dict):
        raise ValueError("object expected")
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} missing")
    return value


def parse_study(obj: Any) -> Study:
    """R1 JSON -> ``Study``. Raises ``ValueError`` when ``studyId`` is missing."""
    study_id = _need(obj, "studyId")
    panel_obj = obj.get("externalPanel")
    panel = None
    if isinstance(panel_obj, dict) and _str(panel_obj, "provider"):
        panel = ExternalPanel(provider=panel_obj["provider"], project_id=_str(panel_obj, "projectId"))
    return Study(
        study_id=study_id,
        name=_str(obj, "name") or "",
        status=_str(obj, "status") or "",
        recruitment_strategy=_str(obj, "recruitmentStrategy") or "",
        external_panel=panel,
    )


def parse_team_member(obj: Any) -> TeamMember:
    """One R2 ``results[]`` entry -> ``TeamMember`` (missing ``externalPanelAccess`` means no access)."""
    return TeamMember(
        user_id=_need(obj, "userId"),
        email=_str(obj, "email") or "",
        fullname=_str(obj, "fullname") or "",
        role=_str(obj, "role") or "",
        external_panel_access=obj.get("externalPanelAccess") is True,
    )


def parse_user(obj: Any) -> RallyUser:
    """One ``GET /users`` result -> ``RallyUser``."""
    return RallyUser(
        user_id=_need(obj, "userId"),
        email=_str(obj, "email") or "",
        fullname=_str(obj, "fullname") or "",
        status=_str(obj, "status") or "",
    )


def parse_participant(obj: Any) -> Participant:
    """R3 participant JSON -> ``Participant`` (``externalPanel.userId`` is the Respondent user id)."""
    panel = obj.get("externalPanel") if isinstance(obj, dict) else None
    panel = panel if isinstance(panel, dict) else {}
    return Participant(
        participant_id=_need(obj, "participantId"),
        person_id=_str(obj, "personId") or "",
        study_id=_str(obj, "studyId") or "",
        approval_status=_str(obj, "approvalStatus"),
        status=_str(obj, "status"),
        first_name=_str(obj, "firstName") or "",
        last_name=_str(obj, "lastName") or "",
        email=_str(obj, "email"),
        respondent_user_id=_str(panel, "userId"),
        screener_response_id=_str(panel, "screenerResponseId"),
        scheduling_url=_str(obj, "schedulingUrl"),
        session_starts_at=parse_datetime(obj.get("sessionStartsAt")),
    )


def archive_payload(entry: ArchiveEntry) -> dict[str, Any]:
    """The R4 request body for ``entry`` (optional author fields and message uid omitted when unset)."""
    author: dict[str, Any] = {"type": str(entry.author_type)}
    for key, value in (
        ("userId", entry.author_user_id),
        ("email", entry.author_email),
        ("name", entry.author_name),
    ):
        if value is not None:
            author[key] = value
    payload: dict[str, Any] = {
        "externalId": entry.external_id,
        "direction": str(entry.direction),
        "body": entry.body,
        "sentAt": format_datetime(entry.sent_at),
        "author": author,
        "source": str(entry.source),
    }
    if entry.respondent_message_uid is not None:
        payload["respondentMessageUid"] = entry.respondent_message_uid
    return payload


class RallyClient:
    """``StudyRecord`` over the Rally public API (``Authorization: Bearer <token>``)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10,
    ) -> None:
        self._http = JsonHttp(SERVICE, base_url, {"Authorization": f"Bearer {token}"}, session=session, timeout=timeout)

    def __repr__(self) -> str:  # never show the token
        return f"RallyClient({self._http.base_url!r})"

    async def close(self) -> None:
        """Release the HTTP session (only if this client created it)."""
        await self._http.close()

    async def _get(self, path: str, what: str, params: list[tuple[str, str]] | None = None) -> Any:
        _, body = await self._http.request("GET", path, what=what, params=params)
        return body

    async def get_study(self, study_id: str) -> Study:
        """R1: the study and its external panel. Unknown study -> ``NotFound``."""
        what = "GET /studies/{id}"
        body = await self._get(f"/studies/{_q(study_id)}", what)
        try:
            return parse_study(body)
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None

    async def get_team(self, study_id: str) -> list[TeamMember]:
        """R2: the study team."""
        what = "GET /studies/{id}/team"
        body = await self._get(f"/studies/{_q(study_id)}/team", what)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise malformed(SERVICE, what, "no results list")
        try:
            return [parse_team_member(m) for m in body["results"]]
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None

    async def find_users_by_email(self, email: str) -> list[RallyUser]:
        """``GET /users?email=``, all pages; only users whose email matches case-insensitively are returned."""
        what = "GET /users"
        wanted = email.strip().casefold()
        users: list[RallyUser] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = [("email", email.strip()), ("size", str(PAGE_SIZE))]
            if cursor:
                params.append(("startCursor", cursor))
            body = await self._get("/users", what, params)
            results, cursor = self._page(body, what, cursor)
            try:
                users.extend(u for u in map(parse_user, results) if u.email.casefold() == wanted)
            except ValueError as exc:
                raise malformed(SERVICE, what, str(exc)) from None
            if cursor is None:
                return users
        raise malformed(SERVICE, what, f"more than {MAX_PAGES} pages")

    async def get_participant(self, study_id: str, participant_id: str) -> Participant:
        """R3: one participant. Unknown study or participant -> ``NotFound``."""
        what = "GET /studies/{id}/participants/{id}"
        body = await self._get(f"/studies/{_q(study_id)}/participants/{_q(participant_id)}", what)
        try:
            return parse_participant(body)
        except ValueError as exc:
            raise malformed(SERVICE, what, str(exc)) from None

    async def list_participants(self, study_id: str) -> list[Participant]:
        """R3: every participant of the study, following ``endCursor`` -> ``startCursor``."""
        what = "POST /studies/{id}/participants/search"
        participants: list[Participant] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page_info: dict[str, Any] = {"size": PAGE_SIZE}
            if cursor:
                page_info["startCursor"] = cursor
            _, body = await self._http.request(
                "POST",
                f"/studies/{_q(study_id)}/participants/search",
                what=what,
                json_body={"pageInfo": page_info},
            )
            results, cursor = self._page(body, what, cursor)
            try:
                participants.extend(parse_participant(p) for p in results)
            except ValueError as exc:
                raise malformed(SERVICE, what, str(exc)) from None
            if cursor is None:
                return participants
        raise malformed(SERVICE, what, f"more than {MAX_PAGES} pages")

    @staticmethod
    def _page(body: Any, what: str, previous: str | None) -> tuple[list[Any], str | None]:
        """``(results, next cursor or None)`` from a cursor envelope (``rally.md`` 2)."""
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise malformed(SERVICE, what, "no results list")
        info = body.get("pageInfo")
        if not isinstance(info, dict) or info.get("hasNextPage") is not True:
            return body["results"], None
        cursor = info.get("endCursor")
        if not isinstance(cursor, str) or not cursor or cursor == previous:
            raise malformed(SERVICE, what, "hasNextPage without a new endCursor")
        return body["results"], cursor

    async def archive(self, entry: ArchiveEntry) -> str:
        """R4: archive one chat message; idempotent on ``entry.external_id``. Returns Rally's archive id."""
        what = "POST /studies/{id}/participants/{id}/chat-messages"
        _, body = await self._http.request(
            "POST",
            f"/studies/{_q(entry.study_id)}/participants/{_q(entry.participant_id)}/chat-messages",
            what=what,
            json_body=archive_payload(entry),
        )
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise malformed(SERVICE, what, "no id")
        return str(body["id"])
