"""Study teams and Rally accounts (contract R2 reads), kept for a short time so that a queued relay can be checked
again when it is sent without asking Rally again for every message.

Filled by every check at intake (``bridge/access.py`` ``may_message``: a reply, a ``retry``, scheduling), which
always fetches fresh and stores what it got; read by the check at send time (``access.recheck_relay``), which
fetches only what is missing or older than :data:`TTL`. In the normal case a reply is sent within a second of the
check that let it in, so its send costs no Rally call; a relay that waited out an outage longer than the TTL is
checked against Rally anew.

One cache per process (it lives on :class:`bridge.services.Services`): each replica has its own, nothing is shared
or invalidated across replicas, and a restart starts empty (the first sends then fetch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from core import clock
from core.domain import RallyUser, TeamMember
from core.ports import StudyRecord

TTL = timedelta(seconds=60)
"""How old a team (or account) may be and still decide a send. 60 s bounds the exposure: a teammate removed from a
study in Rally (or whose external-panel access is taken away, or whose account is deactivated) can have a reply of
theirs that was already queued still leave for at most 60 s after the change, per replica; anything they write
afterwards is refused at intake at once, since intake always fetches fresh. Long enough to cover the normal path
(intake, then the send a moment later) and a burst of replies to a study, short enough to be well under any
Respondent outage that would let a queue build up. Refusals are never decided on cached data: see
``access.recheck_relay``."""

_PRUNE_ABOVE = 500  # entries per map before expired ones are dropped (many studies, many authors)

T = TypeVar("T")


def _fresh(entry: tuple[datetime, T] | None, now: datetime, ttl: timedelta) -> T | None:
    if entry is None:
        return None
    fetched_at, value = entry
    # A clock moved back (tests do) makes an entry from "the future": not trusted either.
    return value if timedelta(0) <= now - fetched_at < ttl else None


def _prune(entries: dict[str, tuple[datetime, T]], now: datetime, ttl: timedelta) -> None:
    if len(entries) > _PRUNE_ABOVE:
        for key in [k for k, v in entries.items() if _fresh(v, now, ttl) is None]:
            del entries[key]


@dataclass
class TeamCache:
    """Teams by study id and Rally accounts by email, each with the time it was fetched (``core.clock``)."""

    ttl: timedelta = TTL
    _teams: dict[str, tuple[datetime, list[TeamMember]]] = field(default_factory=dict)
    _users: dict[str, tuple[datetime, list[RallyUser]]] = field(default_factory=dict)

    def holds(self, study_id: str, email: str | None) -> bool:
        """Whether the study's team or the accounts of ``email`` would be answered from what is kept."""
        now = clock.now()
        team = _fresh(self._teams.get(study_id), now, self.ttl)
        users = _fresh(self._users.get(email.strip().casefold()), now, self.ttl) if email else None
        return team is not None or users is not None

    async def team(self, rally: StudyRecord, study_id: str, *, fresh: bool = False) -> list[TeamMember]:
        """The study's team: fetched when ``fresh`` or not known within the TTL (and kept), else the kept one."""
        now = clock.now()
        kept = None if fresh else _fresh(self._teams.get(study_id), now, self.ttl)
        if kept is None:
            kept = list(await rally.get_team(study_id))
            _prune(self._teams, now, self.ttl)
            self._teams[study_id] = (now, kept)  # as old as the moment it was asked for
        return list(kept)

    async def users(self, rally: StudyRecord, email: str, *, fresh: bool = False) -> list[RallyUser]:
        """The Rally accounts with ``email`` (matched case-insensitively), as :meth:`team`."""
        key = email.strip().casefold()
        now = clock.now()
        kept = None if fresh else _fresh(self._users.get(key), now, self.ttl)
        if kept is None:
            kept = list(await rally.find_users_by_email(email))
            _prune(self._users, now, self.ttl)
            self._users[key] = (now, kept)
        return list(kept)
