"""The permission property at the pipeline level: a researcher's reply becomes a relay to Respondent if and only if
it is allowed. Runs the real inbox handler (``bridge.handlers``) on a real database, with the chat platform
and Rally replaced by fakes that answer what each generated combination says."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from bridge.handlers import handle
from bridge.services import Services
from core.domain import ChatUser, RallyUser, TeamMember
from core.records import QueuedRow
from storage.db import Database
from storage.migrate import upgrade
from storage.models import OutboxItem, ParticipantThread, StudyLink
from storage.uow import SqlStore, SqlUnitOfWork

EMAIL = "ana@example.com"
MARKER = "//"
TEXTS = {
    "plain": "Could you show me the checkout page?",
    "note": "// she sounded unsure, follow up",
    "indented note": "   // internal only",
    "marker later": "see above // not a note",
    "blank": "   ",
    "empty": "",
}


@dataclass
class FakeChat:
    user: ChatUser = field(default_factory=lambda: ChatUser("U1", "Ana", EMAIL, None, False))

    async def lookup_user(self, user_id: str) -> ChatUser:
        return self.user

    async def to_plain_text(self, text: str) -> str:
        return text


@dataclass
class FakeRally:
    team: list[TeamMember] = field(default_factory=list)
    users: list[RallyUser] = field(default_factory=list)

    async def get_team(self, study_id: str) -> list[TeamMember]:
        return self.team

    async def find_users_by_email(self, email: str) -> list[RallyUser]:
        wanted = email.strip().casefold()
        return [u for u in self.users if u.email.casefold() == wanted]


class _Rollback(Exception):
    pass


class Bench:
    """One database with a linked study and one participant thread; each example rolls back what it wrote."""

    def __init__(self, directory: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{directory / 'permissions.sqlite3'}"
        self.chat = FakeChat()
        self.rally = FakeRally()
        self.db: Database
        self.services: Services
        self.n = 0

    async def setup(self) -> None:
        await asyncio.to_thread(upgrade, self.url)
        self.db = Database(self.url)
        self.services = Services(
            store=SqlStore(self.db),
            chats={"slack": self.chat},  # type: ignore[dict-item]
            respondent=None,  # type: ignore[arg-type]
            rally=self.rally,  # type: ignore[arg-type]
            internal_note_marker=MARKER,
        )
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            link = StudyLink(
                study_id="st_1",
                study_name="Study",
                respondent_project_id="proj",
                platform="slack",
                workspace="T1",
                channel="C1",
                active=True,
                linked_by="U1",
                linked_at=now,
            )
            thread = ParticipantThread(
                study_id="st_1",
                participant_id="pa_1",
                display_name="Jordan L.",
                respondent_project_id="proj",
                respondent_user_id="ru_1",
                platform="slack",
                workspace="T1",
                channel="C1",
                thread_ts="100.000001",
                created_at=now,
                opted_out=False,
            )
            session.add_all([link, thread])

    async def relays_for(self, *, text: str, linked: bool, opted_out: bool) -> int:
        """Run the inbox handler on one reply; how many relays it would queue (rolled back afterwards)."""
        self.n += 1
        async with self.db.transaction() as session:
            await session.execute(update(StudyLink).values(active=linked))
            await session.execute(update(ParticipantThread).values(opted_out=opted_out))
        payload: dict[str, Any] = {
            "platform": "slack",
            "event_id": f"Ev{self.n}",
            "workspace": "T1",
            "channel": "C1",
            "user_id": "U1",
            "ts": f"200.{self.n:06d}",
            "thread_ts": "100.000001",
            "text": text,
            "has_files": False,
        }
        key = f"slack:msg:T1:C1:{payload['ts']}"
        row = QueuedRow(1, key, "chat.message", "lane", payload, 1, False, datetime.now(UTC))
        apply = await handle(self.services, row)
        relays = 0
        try:
            async with self.db.transaction() as session:
                await apply(SqlUnitOfWork(session))
                query = select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == "respondent.send")
                relays = int((await session.execute(query)).scalar_one())
                raise _Rollback
        except _Rollback:
            pass
        return relays


def _mostly(usual: bool, rare: bool) -> st.SearchStrategy[bool]:
    return st.sampled_from([usual, usual, usual, usual, usual, usual, rare])


def run_property(examples: int, seed: int) -> Counter[str]:
    """Check the property over ``examples`` generated combinations (raises AssertionError with the counterexample).

    Returns how many examples were allowed and refused. Runs its own event loop: call it from a thread.
    """
    loop = asyncio.new_event_loop()
    stats: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="rb-perm-") as directory:
        bench = Bench(Path(directory))
        loop.run_until_complete(bench.setup())

        @hypothesis_seed(seed)
        @hypothesis_settings(
            max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        # Each condition holds most of the time, so that allowed combinations are common too (about 1 in 6).
        @given(
            has_email=_mostly(True, False),
            email_form=st.sampled_from(["same", "same", "upper", "spaced", "other"]),
            on_team=_mostly(True, False),
            role=st.sampled_from(["OWNER", "TEAMMATE", "VIEWER"]),
            access=_mostly(True, False),
            status=st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "INVITED", "DEACTIVATED", None]),
            opted_out=_mostly(False, True),
            linked=_mostly(True, False),
            text_kind=st.sampled_from(["plain", "plain", "plain", "plain", *sorted(TEXTS)]),
        )
        def prop(
            has_email: bool,
            email_form: str,
            on_team: bool,
            role: str,
            access: bool,
            status: str | None,
            opted_out: bool,
            linked: bool,
            text_kind: str,
        ) -> None:
            forms = {"same": EMAIL, "upper": EMAIL.upper(), "spaced": f"  {EMAIL} ", "other": "other@example.com"}
            chat_email = forms[email_form] if has_email else None
            bench.chat.user = ChatUser("U1", "Ana", chat_email, None, False)
            bench.rally.team = [TeamMember("usr_1", EMAIL, "Ana Ortiz", role, access)] if on_team else []
            bench.rally.users = [RallyUser("usr_1", EMAIL, "Ana Ortiz", status)] if status else []
            text = TEXTS[text_kind]
            relays = loop.run_until_complete(bench.relays_for(text=text, linked=linked, opted_out=opted_out))
            allowed = (
                bool(text.strip())
                and not text.lstrip().startswith(MARKER)
                and has_email
                and email_form != "other"
                and on_team
                and access
                and status == "ACTIVE"
                and not opted_out
                and linked
            )
            stats["allowed" if allowed else "refused"] += 1
            assert relays == (1 if allowed else 0), (
                f"relayed {relays} for email={chat_email!r} team={on_team} role={role} access={access} "
                f"status={status} opted_out={opted_out} linked={linked} text={text!r}"
            )

        try:
            prop()
        finally:
            loop.run_until_complete(bench.db.dispose())
            loop.close()
    return stats
