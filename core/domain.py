"""Domain types of Rally Bridge. Standard library only: no SDK, HTTP or database types here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Direction(enum.StrEnum):
    TO_PARTICIPANT = "TO_PARTICIPANT"
    FROM_PARTICIPANT = "FROM_PARTICIPANT"


class AuthorType(enum.StrEnum):
    RESEARCHER = "RESEARCHER"
    PARTICIPANT = "PARTICIPANT"
    BOT = "BOT"


class Source(enum.StrEnum):
    SLACK = "SLACK"
    TEAMS = "TEAMS"
    RESPONDENT = "RESPONDENT"
    SCHEDULER = "SCHEDULER"


@dataclass(frozen=True)
class ExternalPanel:
    provider: str
    project_id: str | None = None


@dataclass(frozen=True)
class Study:
    """R1: a Rally study. ``respondent_project_id`` is set only when it recruits from Respondent."""

    study_id: str
    name: str
    status: str
    recruitment_strategy: str
    external_panel: ExternalPanel | None

    @property
    def respondent_project_id(self) -> str | None:
        panel = self.external_panel
        if panel is None or panel.provider.upper() != "RESPONDENT" or not panel.project_id:
            return None
        return panel.project_id


@dataclass(frozen=True)
class TeamMember:
    """R2: one member of a study team."""

    user_id: str
    email: str
    fullname: str
    role: str  # OWNER | TEAMMATE
    external_panel_access: bool


@dataclass(frozen=True)
class RallyUser:
    """rally.md 3.1: a Rally user account."""

    user_id: str
    email: str
    fullname: str
    status: str  # INVITED | ACTIVE | DEACTIVATED


@dataclass(frozen=True)
class Participant:
    """R3: a study participant with the external-panel fields."""

    participant_id: str
    person_id: str
    study_id: str
    approval_status: str | None
    status: str | None
    first_name: str
    last_name: str
    email: str | None
    respondent_user_id: str | None
    screener_response_id: str | None
    scheduling_url: str | None
    session_starts_at: datetime | None

    @property
    def is_approved(self) -> bool:
        return (self.approval_status or "").upper() == "APPROVED"

    @property
    def has_opted_out(self) -> bool:
        return (self.status or "").upper() == "OPTED_OUT"

    @property
    def display_name(self) -> str:
        """First name and last initial, the only name shown in channels."""
        initial = f" {self.last_name[:1]}." if self.last_name else ""
        return f"{self.first_name}{initial}".strip() or "Participant"


@dataclass(frozen=True)
class ArchiveEntry:
    """R4: one chat message to archive on the study record."""

    study_id: str
    participant_id: str
    external_id: str
    direction: Direction
    body: str
    sent_at: datetime
    author_type: AuthorType
    source: Source
    author_user_id: str | None = None
    author_email: str | None = None
    author_name: str | None = None
    respondent_message_uid: str | None = None


@dataclass(frozen=True)
class RespondentMessage:
    uid: str
    body: str
    created_at: datetime | None
    sender_uid: str | None
    sender_name: str | None = None  # "First Last" of ``sender`` when Respondent gives it


@dataclass(frozen=True)
class Conversation:
    """S1/S3: a Respondent conversation with its embedded messages.

    ``latest_message_uid`` is ``latestMessage.uid``. ``messages_complete`` is False when ``messages`` may not be
    all of them (a list result without messages, or fewer than ``messagesCount``): read the conversation itself.
    """

    uid: str
    project_id: str | None
    participant_user_ids: tuple[str, ...]
    messages: tuple[RespondentMessage, ...] = field(default_factory=tuple)
    latest_message_uid: str | None = None
    messages_complete: bool = True
    # Participants (user ids) whose ``participants[].read`` is true: they have read the conversation as it stands.
    read_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChatUser:
    """A person on a chat platform, as far as the bridge needs to know them."""

    user_id: str
    name: str
    email: str | None
    tz: str | None = None
    is_bot: bool = False


@dataclass(frozen=True)
class Action:
    """A button under a private reply. Clicking it runs ``command`` (e.g. ``cancel 12``) exactly as if the
    clicker had typed it: the same inbox, permission check and answer. ``style``: ``primary``, ``danger`` or None."""

    label: str
    command: str
    style: str | None = None


@dataclass(frozen=True)
class PostedMessage:
    """What a chat platform returned for a post: its id there (``post_id``: Slack's ``ts``, Teams' activity id)."""

    channel: str
    post_id: str


class Mark(enum.StrEnum):
    """How a researcher's relayed reply stands, shown on it in the thread (Slack: a reaction; Teams: a short reply
    for the final outcomes)."""

    PENDING = "pending"  # waiting out a temporary failure
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good (taken off again by ``retry``)
    SEEN = "seen"  # Respondent says the participant has read it (Slack: a reaction; Teams: the card's line only)
