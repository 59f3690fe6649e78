"""What the bridge remembers about Slack workspaces beyond slack_sdk's own installation and state tables.

* ``slack_directory``: which workspace (team) each channel and user id was seen in. Every Web API call about a
  channel or a user is made with that workspace's bot token (see ``adapters/slack/oauth.py``).
* ``slack_uninstalls``: a workspace that uninstalled the app or revoked its bot token, and when. Links in it stay;
  this record is how ``/readyz``, the logs and failed sends say why nothing moves there.
* Read-only queries over ``slack_bots`` (slack_sdk's table) and ``study_links`` for the same purpose.

Bot tokens are read here only to hand them to the Slack client; nothing in this module logs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.models import SlackBot, SlackDirectoryEntry, SlackInstallation, SlackUninstall, StudyLink
from storage.queue import utcnow


@dataclass(frozen=True)
class Uninstall:
    team_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class WorkspaceLinks:
    """The active Slack links of one workspace."""

    team_id: str
    study_ids: tuple[str, ...]


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def remember(db: Database, teams_by_id: dict[str, str]) -> None:
    """Record (or update) the workspace of each channel / user id. Idempotent; safe across replicas."""
    if not teams_by_id:
        return
    now = utcnow()
    async with db.transaction() as session:
        for slack_id, team_id in sorted(teams_by_id.items()):
            statement = _insert(session)(SlackDirectoryEntry).values(slack_id=slack_id, team_id=team_id, seen_at=now)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[SlackDirectoryEntry.slack_id], set_={"team_id": team_id, "seen_at": now}
                )
            )


async def team_of(db: Database, slack_id: str) -> str | None:
    """The workspace a channel or user id was last seen in, else the workspace of a Slack link in that channel.

    The second source covers channels linked while the bridge ran with one token (nothing fills the directory
    then) before it moved to OAuth.
    """
    async with db.transaction() as session:
        result = await session.execute(
            select(SlackDirectoryEntry.team_id).where(SlackDirectoryEntry.slack_id == slack_id)
        )
        team = result.scalar_one_or_none()
        if team is None:
            linked = await session.execute(
                select(StudyLink.workspace)
                .where(StudyLink.platform == "slack", StudyLink.channel == slack_id, StudyLink.workspace != "")
                .order_by(StudyLink.linked_at.desc())
                .limit(1)
            )
            team = linked.scalar_one_or_none()
        return team


@dataclass(frozen=True)
class StoredBot:
    """The newest bot token stored for a workspace. ``token`` is a secret: never log it (it is kept out of repr)."""

    team_id: str
    enterprise_id: str | None
    bot_id: str | None
    bot_user_id: str | None
    scopes: str | None
    installed_at: datetime  # UTC
    token: str = field(repr=False)


async def latest_bot(db: Database, client_id: str, team_id: str) -> StoredBot | None:
    """The newest stored bot token of ``team_id`` for the app ``client_id`` (any enterprise), or None."""
    async with db.transaction() as session:
        result = await session.execute(
            select(SlackBot)
            .where(SlackBot.client_id == client_id, SlackBot.team_id == team_id, SlackBot.bot_token.is_not(None))
            .order_by(SlackBot.installed_at.desc(), SlackBot.id.desc())
            .limit(1)
        )
        row = result.scalar_one_or_none()
    if row is None or row.bot_token is None:
        return None
    installed_at = row.installed_at.replace(tzinfo=UTC) if row.installed_at.tzinfo is None else row.installed_at
    return StoredBot(
        team_id, row.enterprise_id, row.bot_id, row.bot_user_id, row.bot_scopes, installed_at, row.bot_token
    )


async def delete_team(db: Database, client_id: str, team_id: str) -> int:
    """Forget every installation and bot token of ``team_id`` (app uninstalled / token revoked). Returns rows gone."""
    async with db.transaction() as session:
        bots = await session.execute(
            delete(SlackBot).where(SlackBot.client_id == client_id, SlackBot.team_id == team_id)
        )
        installs = await session.execute(
            delete(SlackInstallation).where(
                SlackInstallation.client_id == client_id, SlackInstallation.team_id == team_id
            )
        )
    return int(getattr(bots, "rowcount", 0) or 0) + int(getattr(installs, "rowcount", 0) or 0)


async def installed_teams(db: Database, client_id: str) -> list[str]:
    """Every workspace with a bot token stored for the app ``client_id``."""
    async with db.transaction() as session:
        result = await session.execute(
            select(SlackBot.team_id)
            .where(SlackBot.client_id == client_id, SlackBot.bot_token.is_not(None), SlackBot.team_id.is_not(None))
            .distinct()
        )
        return sorted(str(team) for team in result.scalars())


async def record_uninstall(db: Database, team_id: str, enterprise_id: str | None, reason: str) -> None:
    """Remember that ``team_id`` removed the app (or its token) and why; a later record replaces an earlier one."""
    now = utcnow()
    async with db.transaction() as session:
        statement = _insert(session)(SlackUninstall).values(
            team_id=team_id, enterprise_id=enterprise_id, reason=reason, at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[SlackUninstall.team_id],
                set_={"reason": reason, "at": now, "enterprise_id": enterprise_id},
            )
        )


async def clear_uninstall(db: Database, team_id: str) -> None:
    """The workspace installed the app again."""
    async with db.transaction() as session:
        await session.execute(delete(SlackUninstall).where(SlackUninstall.team_id == team_id))


async def uninstalls(db: Database, team_ids: Iterable[str] | None = None) -> dict[str, Uninstall]:
    """Uninstall records by team (all of them, or those of ``team_ids``)."""
    query = select(SlackUninstall)
    if team_ids is not None:
        query = query.where(SlackUninstall.team_id.in_(list(team_ids)))
    async with db.transaction() as session:
        rows = (await session.execute(query)).scalars().all()
    return {row.team_id: Uninstall(row.team_id, row.reason, row.at) for row in rows}


async def slack_links_by_workspace(db: Database) -> list[WorkspaceLinks]:
    """Active Slack links grouped by workspace, workspaces in id order."""
    async with db.transaction() as session:
        result = await session.execute(
            select(StudyLink.workspace, StudyLink.study_id)
            .where(StudyLink.platform == "slack", StudyLink.active.is_(True))
            .order_by(StudyLink.workspace, StudyLink.study_id)
        )
        rows = [(str(team), str(study)) for team, study in result.all()]
    grouped: dict[str, list[str]] = {}
    for team, study in rows:
        grouped.setdefault(team, []).append(study)
    return [WorkspaceLinks(team, tuple(studies)) for team, studies in grouped.items()]
