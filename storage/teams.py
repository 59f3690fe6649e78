"""What the Teams adapter must remember between requests and restarts.

* ``teams_conversations``: the serialized Bot Framework ``ConversationReference`` of every Teams channel (and
  every personal 1:1 chat) the bridge has seen. Proactive sends (thread roots, mirrored messages, notices)
  are built from it: service URL, tenant, the bot's id.
* ``teams_users``: where each Teams user was last seen (conversation + service URL), so that
  ``lookup_user(user_id)`` can ask the roster (``GET /v3/conversations/{id}/members/{userId}``).
* ``teams_posts``: the bridge's own record of each keyed post: ``sending`` before the HTTP call,
  ``sent`` with the activity id after it. The Bot Framework connector cannot list a channel's messages, so this
  record is what ``find_post`` consults after an unknown outcome (see docs/teams.md, "Verification").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Database
from storage.models import Base, ChatMessage, ParticipantThread
from storage.queue import utcnow

SENDING, SENT = "sending", "sent"


class TeamsConversation(Base):
    """A Teams channel (``channel:<19:...@thread.tacv2>``) or personal chat (``personal:<user id>``)."""

    __tablename__ = "teams_conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(300), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(300))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(300))
    service_url: Mapped[str] = mapped_column(Text)
    reference: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class TeamsUser(Base):
    __tablename__ = "teams_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    aad_object_id: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(300))
    service_url: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class TeamsPost(Base):
    __tablename__ = "teams_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(300))
    activity_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class ConversationContext:
    conversation_id: str
    tenant_id: str | None
    team_id: str | None
    service_url: str
    reference: dict[str, Any]


@dataclass(frozen=True)
class UserContext:
    user_id: str
    name: str
    aad_object_id: str | None
    conversation_id: str
    service_url: str


@dataclass(frozen=True)
class PostRecord:
    key: str
    conversation_id: str
    activity_id: str | None
    state: str


@dataclass(frozen=True)
class MessageContext:
    """A relayed researcher message as a Teams acknowledgement needs it."""

    root_id: str
    author_name: str | None
    participant_name: str


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _upsert(session: AsyncSession, model: Any, key: str, values: dict[str, Any]) -> None:
    statement = _insert(session)(model).values(**values)
    update = {k: v for k, v in values.items() if k != key}
    await session.execute(statement.on_conflict_do_update(index_elements=[key], set_=update))


class TeamsStore:
    """Durable Teams context, each call in its own short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, conversation: ConversationContext, scope_key: str, user: UserContext | None) -> None:
        """Store a conversation reference (and the user who spoke there) in one transaction."""
        now = utcnow()
        async with self.db.transaction() as session:
            await _upsert(
                session,
                TeamsConversation,
                "scope_key",
                {
                    "scope_key": scope_key,
                    "conversation_id": conversation.conversation_id,
                    "tenant_id": conversation.tenant_id,
                    "team_id": conversation.team_id,
                    "service_url": conversation.service_url,
                    "reference": conversation.reference,
                    "updated_at": now,
                },
            )
            if user is not None:
                await _upsert(
                    session,
                    TeamsUser,
                    "user_id",
                    {
                        "user_id": user.user_id,
                        "name": user.name,
                        "aad_object_id": user.aad_object_id,
                        "conversation_id": user.conversation_id,
                        "service_url": user.service_url,
                        "updated_at": now,
                    },
                )

    async def conversation(self, scope_key: str) -> ConversationContext | None:
        async with self.db.transaction() as session:
            query = select(TeamsConversation).where(TeamsConversation.scope_key == scope_key)
            row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        return ConversationContext(row.conversation_id, row.tenant_id, row.team_id, row.service_url, row.reference)

    async def user(self, user_id: str) -> UserContext | None:
        async with self.db.transaction() as session:
            row = (await session.execute(select(TeamsUser).where(TeamsUser.user_id == user_id))).scalar_one_or_none()
        if row is None:
            return None
        return UserContext(row.user_id, row.name, row.aad_object_id, row.conversation_id, row.service_url)

    async def post(self, key: str) -> PostRecord | None:
        async with self.db.transaction() as session:
            row = (await session.execute(select(TeamsPost).where(TeamsPost.key == key))).scalar_one_or_none()
        return None if row is None else PostRecord(row.key, row.conversation_id, row.activity_id, row.state)

    async def post_started(self, key: str, conversation_id: str) -> None:
        """Written before the HTTP call: a crash after it leaves ``sending`` (outcome unknown)."""
        now = utcnow()
        async with self.db.transaction() as session:
            statement = (
                _insert(session)(TeamsPost)
                .values(key=key, conversation_id=conversation_id, state=SENDING, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            await session.execute(statement)

    async def post_sent(self, key: str, conversation_id: str, activity_id: str) -> None:
        now = utcnow()
        values = {
            "key": key,
            "conversation_id": conversation_id,
            "activity_id": activity_id,
            "state": SENT,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.transaction() as session:
            statement = _insert(session)(TeamsPost).values(**values)
            update = {"conversation_id": conversation_id, "activity_id": activity_id, "state": SENT, "updated_at": now}
            await session.execute(statement.on_conflict_do_update(index_elements=["key"], set_=update))

    async def message_context(self, channel: str, activity_id: str) -> MessageContext | None:
        """The thread root, author and participant of a researcher message the bridge relayed."""
        async with self.db.transaction() as session:
            query = (
                select(ChatMessage.author_name, ParticipantThread.thread_ts, ParticipantThread.display_name)
                .join(ParticipantThread, ParticipantThread.id == ChatMessage.thread_id)
                .where(
                    ChatMessage.platform == "teams",
                    ChatMessage.channel == channel,
                    ChatMessage.platform_ts == activity_id,
                )
            )
            row = (await session.execute(query)).first()
        if row is None or not row[1]:
            return None
        return MessageContext(root_id=str(row[1]), author_name=row[0], participant_name=str(row[2]))
