"""The bridge's home as a platform-neutral view: what one person sees on the chat platform's page for the bridge
(Slack's App Home). Built by ``bridge/home.py``, drawn by a chat adapter (``core.ports.HomeSurface``).

The bridge's own sentences (status, help, why a study is closed...) are :class:`~core.message.Text`, which the
adapter renders; names, previews and failure reasons from outside are ``str``, which it escapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.domain import Action
from core.message import Text

# Per study, at most this many of each are carried in the view (the rest are counted); the adapter may show fewer.
MAX_PARTICIPANTS = 50
MAX_FAILED = 20
MAX_REMINDERS = 20
PREVIEW = 80


def preview(text: str, limit: int = PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- the model ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastMessage:
    at: datetime
    state: str | None = None  # messages to the participant: pending | delivered | failed
    author: str | None = None


@dataclass(frozen=True)
class ParticipantLine:
    name: str
    participant_id: str
    opted_out: bool
    last_from: LastMessage | None
    last_to: LastMessage | None
    waiting_since: datetime | None = None  # waiting on the team since then (``core/case.py``)
    owner: str | None = None
    session_starts_at: datetime | None = None


@dataclass(frozen=True)
class QueueLine:
    """A participant waiting on the team: the home's queue, longest wait first, across the viewer's studies."""

    name: str
    participant_id: str
    study_id: str
    study_name: str
    channel: str
    waiting_since: datetime
    owner: str | None = None
    session_starts_at: datetime | None = None


@dataclass(frozen=True)
class FailedDelivery:
    """A relay that gave up: ``delivery_id`` is its outbox row (what ``retry <id>`` names)."""

    delivery_id: int
    participant_name: str
    reason: str
    failed_at: datetime | None
    author: str | None
    preview: str
    action: Action | None  # Retry; None when it can't be sent (``note`` says why)
    note: Text | None = None


@dataclass(frozen=True)
class PendingReminder:
    reminder_id: int
    participant_name: str
    kind: str
    due_at: datetime
    created_by: str
    preview: str
    action: Action  # Cancel


@dataclass(frozen=True)
class StudyHome:
    """A linked study the viewer may act for."""

    study_id: str
    study_name: str
    channel: str
    participants: tuple[ParticipantLine, ...] = ()
    more_participants: int = 0
    failed: tuple[FailedDelivery, ...] = ()
    more_failed: int = 0
    reminders: tuple[PendingReminder, ...] = ()
    more_reminders: int = 0


@dataclass(frozen=True)
class ClosedStudy:
    """A linked study of the workspace the viewer may not act for; ``reason`` says why and what to do."""

    study_id: str
    study_name: str
    channel: str
    reason: Text


@dataclass(frozen=True)
class HomeView:
    viewer_name: str
    built_at: datetime
    status: Text | None = None
    may_act: Text = field(default_factory=Text)
    studies: tuple[StudyHome, ...] = ()
    closed: tuple[ClosedStudy, ...] = ()
    closed_intro: Text = field(default_factory=Text)
    empty: Text | None = None  # nothing is linked in the workspace: how to start
    help: tuple[Text, ...] = field(default_factory=tuple)
    queue: tuple[QueueLine, ...] = ()  # waiting on the team, longest first (of the filtered study, if any)
    study_filter: str | None = None  # the study id the view shows alone
    filters: tuple[Action, ...] = ()  # buttons: every study alone, and all of them (``queue [studyId]``)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the outbox payload); texts as ``Text.to_json``."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HomeView:
        """What :meth:`to_dict` made; also a view queued when its sentences were plain strings."""
        return HomeView(
            viewer_name=data["viewer_name"],
            built_at=datetime.fromisoformat(data["built_at"]),
            status=_text(data.get("status")),
            may_act=_text(data.get("may_act")) or Text(),
            studies=tuple(_study(s) for s in data.get("studies") or ()),
            closed=tuple(
                ClosedStudy(c["study_id"], c["study_name"], c["channel"], Text.from_json(c["reason"]))
                for c in data.get("closed") or ()
            ),
            closed_intro=_text(data.get("closed_intro")) or Text(),
            empty=_text(data.get("empty")),
            help=tuple(Text.from_json(line) for line in data.get("help") or ()),
            queue=tuple(_queue_line(q) for q in data.get("queue") or ()),
            study_filter=data.get("study_filter"),
            filters=tuple(a for a in (_action(f) for f in data.get("filters") or ()) if a is not None),
        )


def _text(value: Any) -> Text | None:
    return Text.from_json(value) if value is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, Text):
        return value.to_json()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Action):
        return {"label": value.label, "command": value.command, "style": value.style}
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _action(data: dict[str, Any] | None) -> Action | None:
    return Action(data["label"], data["command"], data.get("style")) if data else None


def _last(data: dict[str, Any] | None) -> LastMessage | None:
    return LastMessage(datetime.fromisoformat(data["at"]), data.get("state"), data.get("author")) if data else None


def _queue_line(q: dict[str, Any]) -> QueueLine:
    return QueueLine(
        q["name"],
        q["participant_id"],
        q["study_id"],
        q["study_name"],
        q["channel"],
        datetime.fromisoformat(q["waiting_since"]),
        q.get("owner"),
        _time(q.get("session_starts_at")),
    )


def _participant(p: dict[str, Any]) -> ParticipantLine:
    return ParticipantLine(
        p["name"],
        p["participant_id"],
        p["opted_out"],
        _last(p["last_from"]),
        _last(p["last_to"]),
        _time(p.get("waiting_since")),
        p.get("owner"),
        _time(p.get("session_starts_at")),
    )


def _study(data: dict[str, Any]) -> StudyHome:
    return StudyHome(
        study_id=data["study_id"],
        study_name=data["study_name"],
        channel=data["channel"],
        participants=tuple(_participant(p) for p in data.get("participants") or ()),
        more_participants=int(data.get("more_participants") or 0),
        failed=tuple(
            FailedDelivery(
                f["delivery_id"],
                f["participant_name"],
                f["reason"],
                _time(f.get("failed_at")),
                f.get("author"),
                f["preview"],
                _action(f.get("action")),
                _text(f.get("note")),
            )
            for f in data.get("failed") or ()
        ),
        more_failed=int(data.get("more_failed") or 0),
        reminders=tuple(
            PendingReminder(
                r["reminder_id"],
                r["participant_name"],
                r["kind"],
                datetime.fromisoformat(r["due_at"]),
                r["created_by"],
                r["preview"],
                Action(r["action"]["label"], r["action"]["command"], r["action"].get("style")),
            )
            for r in data.get("reminders") or ()
        ),
        more_reminders=int(data.get("more_reminders") or 0),
    )
