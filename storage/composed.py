"""Saved replies, study-wide updates and held messages (``core/composed.py``) on one SQLAlchemy session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.composed import HeldMessage, SavedReply, StudyUpdate
from storage.models import HeldMessageRow, SavedReplyRow, StudyUpdateRow


def _saved(row: SavedReplyRow) -> SavedReply:
    return SavedReply(
        row.id,
        row.platform,
        row.workspace,
        row.study_id,
        row.name,
        row.body,
        row.created_by,
        row.created_by_name,
        row.created_at,
    )


def _update(row: StudyUpdateRow) -> StudyUpdate:
    return StudyUpdate(
        row.id,
        row.key,
        row.platform,
        row.workspace,
        row.channel,
        row.study_id,
        row.audience,
        row.body,
        tuple(row.recipients),
        dict(row.author),
        row.status,
        row.created_at,
    )


def _held(row: HeldMessageRow) -> HeldMessage:
    return HeldMessage(
        row.id, row.key, row.thread_id, row.body, dict(row.author), tuple(row.problems), row.status, row.created_at
    )


class SqlComposed:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- saved replies ---------------------------------------------------------------------------------------

    async def save_reply(
        self, *, platform: str, workspace: str, study_id: str, name: str, body: str, by: str, by_name: str, at: datetime
    ) -> SavedReply:
        query = select(SavedReplyRow).where(
            SavedReplyRow.platform == platform,
            SavedReplyRow.workspace == workspace,
            SavedReplyRow.study_id == study_id,
            SavedReplyRow.name == name,
        )
        row = (await self.session.execute(query.with_for_update())).scalar_one_or_none()
        if row is None:
            row = SavedReplyRow(platform=platform, workspace=workspace, study_id=study_id, name=name)
            self.session.add(row)
        row.body, row.created_by, row.created_by_name, row.created_at = body, by, by_name, at
        await self.session.flush()
        return _saved(row)

    async def saved_replies(self, platform: str, workspace: str, study_ids: Sequence[str]) -> list[SavedReply]:
        query = (
            select(SavedReplyRow)
            .where(
                SavedReplyRow.platform == platform,
                SavedReplyRow.workspace == workspace,
                SavedReplyRow.study_id.in_(list(study_ids)),
            )
            .order_by(SavedReplyRow.name, SavedReplyRow.study_id)
        )
        return [_saved(row) for row in (await self.session.execute(query)).scalars()]

    async def remove_reply(self, platform: str, workspace: str, study_id: str, name: str) -> bool:
        row = (
            await self.session.execute(
                select(SavedReplyRow).where(
                    SavedReplyRow.platform == platform,
                    SavedReplyRow.workspace == workspace,
                    SavedReplyRow.study_id == study_id,
                    SavedReplyRow.name == name,
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return False
        await self.session.delete(row)
        await self.session.flush()
        return True

    # --- study-wide updates ----------------------------------------------------------------------------------

    async def draft_update(self, draft: StudyUpdate) -> StudyUpdate:
        """Insert ``draft`` (its id is ignored) unless its key exists; the stored one either way."""
        found = (await self.session.execute(select(StudyUpdateRow).where(StudyUpdateRow.key == draft.key))).scalar()
        if found is not None:
            return _update(found)
        values: dict[str, Any] = {
            "key": draft.key,
            "platform": draft.platform,
            "workspace": draft.workspace,
            "channel": draft.channel,
            "study_id": draft.study_id,
            "audience": draft.audience,
            "body": draft.body,
            "recipients": list(draft.recipients),
            "author": draft.author,
            "status": draft.status,
            "created_at": draft.created_at,
        }
        row = StudyUpdateRow(**values)
        self.session.add(row)
        await self.session.flush()
        return _update(row)

    async def update_by_id(self, update_id: int) -> StudyUpdate | None:
        row = await self.session.get(StudyUpdateRow, update_id)
        return None if row is None else _update(row)

    async def move_update(self, update_id: int, *, to: str, allowed_from: Sequence[str]) -> bool:
        """One conditional UPDATE: of two clicks on Confirm (or Confirm and Cancel), exactly one moves it."""
        result = await self.session.execute(
            update(StudyUpdateRow)
            .where(StudyUpdateRow.id == update_id, StudyUpdateRow.status.in_(list(allowed_from)))
            .values(status=to)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    # --- held messages ---------------------------------------------------------------------------------------

    async def hold(self, message: HeldMessage) -> HeldMessage:
        """Keep ``message`` (its id is ignored) unless its key is held already; the stored one either way."""
        found = (await self.session.execute(select(HeldMessageRow).where(HeldMessageRow.key == message.key))).scalar()
        if found is not None:
            return _held(found)
        row = HeldMessageRow(
            key=message.key,
            thread_id=message.thread_id,
            body=message.body,
            author=message.author,
            problems=list(message.problems),
            status=message.status,
            created_at=message.created_at,
        )
        self.session.add(row)
        await self.session.flush()
        return _held(row)

    async def held(self, held_id: int) -> HeldMessage | None:
        row = await self.session.get(HeldMessageRow, held_id)
        return None if row is None else _held(row)

    async def decide_held(self, held_id: int, *, to: str, allowed_from: Sequence[str]) -> bool:
        result = await self.session.execute(
            update(HeldMessageRow)
            .where(HeldMessageRow.id == held_id, HeldMessageRow.status.in_(list(allowed_from)))
            .values(status=to)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
