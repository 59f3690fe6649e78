"""The three outside systems as the core sees them. Adapters implement these; the core knows nothing else.

Every method raises only ``core.errors`` exceptions: ``TemporaryFailure`` (retry later, maybe after
``retry_after``), ``UnknownOutcome`` (the call may have taken effect: verify before repeating),
``PermanentFailure`` / ``NotFound`` (stop and tell someone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.domain import (
    Action,
    ArchiveEntry,
    ChatUser,
    Conversation,
    Mark,
    Participant,
    PostedMessage,
    RallyUser,
    RespondentMessage,
    Study,
    TeamMember,
)
from core.message import Text

if TYPE_CHECKING:
    from core.home import HomeView


class StudyRecord(Protocol):
    """Rally (contracts R1-R4)."""

    async def get_study(self, study_id: str) -> Study: ...

    async def get_team(self, study_id: str) -> list[TeamMember]: ...

    async def find_users_by_email(self, email: str) -> list[RallyUser]: ...

    async def get_participant(self, study_id: str, participant_id: str) -> Participant: ...

    async def list_participants(self, study_id: str) -> list[Participant]: ...

    async def archive(self, entry: ArchiveEntry) -> str:
        """Archive one chat message; idempotent on ``entry.external_id``. Returns Rally's archive id."""
        ...


class ParticipantChannel(Protocol):
    """Respondent messaging (contract S1)."""

    async def list_conversations(self, project_id: str) -> list[Conversation]:
        """Every conversation of a project, all pages, with the messages the list embeds
        (``Conversation.messages_complete`` says whether they are all of them)."""
        ...

    async def get_conversation(self, conversation_uid: str) -> Conversation: ...

    async def open_conversation(
        self, project_id: str, participant_user_id: str, external_researcher_id: str
    ) -> Conversation: ...

    async def send_message(self, conversation_uid: str, body: str) -> RespondentMessage: ...


@dataclass(frozen=True)
class ThreadRoot:
    """The facts shown on a participant's thread root message: its live card (``core/case.py``), posted once and
    then updated in place as the case changes. ``status`` are the card's status lines (``texts.card_lines``), each a
    line of its own under the header (who, study, session, scheduling link)."""

    participant_name: str
    study_name: str
    session_starts_at: datetime | None
    scheduling_url: str | None
    participant_id: str | None = None  # Rally's id: what the root's buttons (Remind, Follow up...) name
    status: tuple[Text, ...] = ()
    participant_tz: str | None = None  # the participant's zone when Rally knows it: the session is shown in it too
    assignable: bool = True  # an ``Assign to me`` button (its command: ``assign <participant_id>``)


class ChatPlatform(Protocol):
    """A chat platform (Slack, Teams). The bridge's own words come as a :class:`~core.message.Text`, which the adapter
    renders in its markup (commands, its own name, home-only clauses); outside text (a participant's body, names) comes
    as ``str``, which the adapter escapes.

    ``key`` is the outbox idempotency key: the adapter attaches it to the post so that ``find_post``
    can tell, after an unknown outcome, whether the post already happened.
    """

    async def post_thread_root(self, channel: str, root: ThreadRoot, *, key: str) -> PostedMessage: ...

    async def update_thread_root(self, channel: str, root_id: str, root: ThreadRoot) -> None:
        """Redraw the root ``root_id`` with ``root`` in place (Slack ``chat.update``, Teams activity update); paced
        like a post. Idempotent: the last one wins."""
        ...

    async def post_direct(self, user_id: str, text: Text, *, key: str) -> None:
        """A direct message to ``user_id`` from the bot (Slack: the app's DM; Teams: the personal chat)."""
        ...

    async def post_participant_message(
        self, channel: str, root_id: str, author_name: str, body: str, *, key: str
    ) -> PostedMessage: ...

    async def post_notice(self, channel: str, text: Text, *, key: str, root_id: str | None = None) -> PostedMessage:
        """In the thread of ``root_id``, or in the channel itself."""
        ...

    async def post_private(
        self, channel: str, user_id: str, text: Text, *, root_id: str | None = None, actions: Sequence[Action] = ()
    ) -> None:
        """Something only ``user_id`` sees (Slack: an ephemeral message). ``actions`` are buttons under it (Slack
        Block Kit buttons, a Teams Adaptive Card); a click comes back as the action's command from that person."""
        ...

    async def add_mark(self, channel: str, post_id: str, mark: Mark, *, occasion: str = "") -> None:
        """Show ``mark`` on a message (idempotent: a mark already there is success). ``occasion`` tells apart the
        showings of one mark on one message: a relay retried after it failed, failing again, shows ✗ anew with a new
        occasion (a platform that cannot take a mark off, only post one, posts once per occasion)."""
        ...

    async def remove_mark(self, channel: str, post_id: str, mark: Mark) -> None:
        """Take ``mark`` off a message (idempotent: a mark that is not there is success)."""
        ...

    async def find_post(self, channel: str, key: str, *, root_id: str | None = None) -> PostedMessage | None:
        """The post carrying ``key``, if an earlier attempt made it."""
        ...

    async def lookup_user(self, user_id: str) -> ChatUser: ...

    async def find_user_by_email(self, email: str, *, channel: str) -> ChatUser | None:
        """The person of this workspace (Slack ``users.lookupByEmail``; Teams: a member of ``channel``'s team) with
        ``email``; None when there is none."""
        ...

    async def to_plain_text(self, text: str) -> str:
        """A researcher's message as the participant should read it: no platform markup left."""
        ...


@runtime_checkable
class HomeSurface(Protocol):
    """An optional capability of a ``ChatPlatform``: a page per person that the bridge draws (Slack's App Home).
    Platforms without one (Teams) simply do not implement it; the core checks with ``isinstance``."""

    async def publish_home(self, user_id: str, view: HomeView) -> None:
        """Replace what ``user_id`` sees on the bridge's home with ``view`` (idempotent: the last one wins)."""
        ...
