"""The three outside systems as in-memory fakes of the core's ports (``core.ports``): what a handler reads from
them is set up in the test, what it would have sent is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
from core.errors import NotFound
from core.message import Text
from core.ports import ThreadRoot


@dataclass
class FakeRally:
    studies: dict[str, Study] = field(default_factory=dict)
    teams: dict[str, list[TeamMember]] = field(default_factory=dict)
    users: list[RallyUser] = field(default_factory=list)
    participants: dict[str, list[Participant]] = field(default_factory=dict)
    archived: list[ArchiveEntry] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def get_study(self, study_id: str) -> Study:
        self.calls.append(f"get_study {study_id}")
        if study_id not in self.studies:
            raise NotFound(f"study {study_id} not found")
        return self.studies[study_id]

    async def get_team(self, study_id: str) -> list[TeamMember]:
        self.calls.append(f"get_team {study_id}")
        return list(self.teams.get(study_id, []))

    async def find_users_by_email(self, email: str) -> list[RallyUser]:
        self.calls.append(f"find_users {email}")
        return [u for u in self.users if u.email.casefold() == email.casefold()]

    async def get_participant(self, study_id: str, participant_id: str) -> Participant:
        for p in self.participants.get(study_id, []):
            if p.participant_id == participant_id:
                return p
        raise NotFound(f"participant {participant_id} not found")

    async def list_participants(self, study_id: str) -> list[Participant]:
        return list(self.participants.get(study_id, []))

    async def archive(self, entry: ArchiveEntry) -> str:
        self.archived.append(entry)
        return f"ar_{len(self.archived)}"


@dataclass
class FakeRespondent:
    conversations: dict[str, Conversation] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def list_conversations(self, project_id: str) -> list[Conversation]:
        return [c for c in self.conversations.values() if c.project_id == project_id]

    async def get_conversation(self, conversation_uid: str) -> Conversation:
        if conversation_uid not in self.conversations:
            raise NotFound(f"conversation {conversation_uid} not found")
        return self.conversations[conversation_uid]

    async def open_conversation(
        self, project_id: str, participant_user_id: str, external_researcher_id: str
    ) -> Conversation:
        uid = f"cv_{len(self.conversations) + 1}"
        self.conversations[uid] = Conversation(uid, project_id, (participant_user_id,))
        return self.conversations[uid]

    async def send_message(self, conversation_uid: str, body: str) -> RespondentMessage:
        self.sent.append((conversation_uid, body))
        return RespondentMessage(f"msg_{len(self.sent)}", body, None, "researcher")


@dataclass
class FakeChat:
    users: dict[str, ChatUser] = field(default_factory=dict)
    posts: list[tuple[str, str | None, str]] = field(default_factory=list)  # (channel, root, text)
    privates: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, user, text)
    marks: set[tuple[str, Mark]] = field(default_factory=set)
    updates: list[tuple[str, str, ThreadRoot]] = field(default_factory=list)  # (channel, root_id, root)
    directs: list[tuple[str, Text, str]] = field(default_factory=list)  # (user_id, text, key)

    async def post_thread_root(self, channel: str, root: ThreadRoot, *, key: str) -> PostedMessage:
        self.posts.append((channel, None, root.participant_name))
        return PostedMessage(channel, f"{len(self.posts)}.000")

    async def update_thread_root(self, channel: str, root_id: str, root: ThreadRoot) -> None:
        self.updates.append((channel, root_id, root))

    async def post_direct(self, user_id: str, text: Text, *, key: str) -> None:
        self.directs.append((user_id, text, key))

    async def post_participant_message(
        self, channel: str, root_id: str, author_name: str, body: str, *, key: str
    ) -> PostedMessage:
        self.posts.append((channel, root_id, body))
        return PostedMessage(channel, f"{len(self.posts)}.000")

    async def post_notice(self, channel: str, text: Text, *, key: str, root_id: str | None = None) -> PostedMessage:
        self.posts.append((channel, root_id, text.plain()))
        return PostedMessage(channel, f"{len(self.posts)}.000")

    async def post_private(
        self, channel: str, user_id: str, text: Text, *, root_id: str | None = None, actions: Sequence[Action] = ()
    ) -> None:
        self.privates.append((channel, user_id, text.plain()))

    async def add_mark(self, channel: str, post_id: str, mark: Mark, *, occasion: str = "") -> None:
        self.marks.add((post_id, mark))

    async def remove_mark(self, channel: str, post_id: str, mark: Mark) -> None:
        self.marks.discard((post_id, mark))

    async def find_post(self, channel: str, key: str, *, root_id: str | None = None) -> PostedMessage | None:
        return None

    async def find_user_by_email(self, email: str, *, channel: str) -> ChatUser | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users.values() if (u.email or "").casefold() == wanted), None)

    async def lookup_user(self, user_id: str) -> ChatUser:
        if user_id not in self.users:
            raise NotFound(f"user {user_id} not found")
        return self.users[user_id]

    async def to_plain_text(self, text: str) -> str:
        return text
