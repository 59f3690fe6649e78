"""The Teams world: the Slack world's Rally and Respondent stand-ins, a Teams team (connector, OpenID/JWKS on its
own thread), and the real bridge on a real port with real token validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from playground.world import World
from sandbox.teams import TeamsPerson, TeamsSandbox
from tests.integration.conftest import dump_queues, eventually

CHANNEL = "19:checkout-study@thread.tacv2"
OTHER_CHANNEL = "19:random@thread.tacv2"


class TeamsCast:
    """The people of the Slack cast, as Teams users."""

    owner = TeamsPerson("29:ana", "Ana Ortiz", "ana@example.com")
    # No email in the roster, only a user principal name, in another case than Rally's address.
    teammate = TeamsPerson("29:chloe", "Chloe Park", None, upn="Chloe.Park@Example.com")
    no_access = TeamsPerson("29:ben", "Ben Ito", "ben@example.com")
    outsider = TeamsPerson("29:dan", "Dan Reyes", "dan@example.com")


@dataclass
class TeamsWorld:
    world: World
    teams: TeamsSandbox
    cast: TeamsCast

    @property
    def study(self) -> Any:
        return self.world.cast

    def roots(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.teams.connector.roots(CHANNEL) if name in str(a.get("attachments"))]

    def replies(self, root_id: str) -> list[str]:
        return [str(a.get("text", "")) for a in self.teams.connector.replies(CHANNEL, root_id)]

    def notices(self) -> list[str]:
        return [str(a.get("text", "")) for a in self.teams.connector.roots(CHANNEL) if a.get("text")]

    def private(self, person: TeamsPerson) -> list[str]:
        return self.teams.connector.personal_messages(person.user_id)

    def sent_to_jordan(self) -> list[str]:
        c = self.world.cast
        return [m["body"] for m in self.world.respondent.messages_to(c.jordan.respondent_user_id)]

    def archived(self) -> list[dict[str, Any]]:
        return list(self.world.rally.archived(self.world.cast.study_id))

    async def quiet(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (the deadline of a loop of polls)
        """The bridge has nothing left to do now (:meth:`World.quiet`): before saying something did not happen."""
        await self.world.quiet(timeout)

    async def link(self) -> str:
        """Ana links the study in the channel; returns Jordan's thread root id."""
        await self.teams.command(CHANNEL, self.cast.owner, f"link {self.world.cast.study_id}")
        root = await eventually(lambda: self.roots("Jordan L."), what="Jordan's reply chain")
        return str(root[0]["id"])


@pytest.fixture
async def tw(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[TeamsWorld]:
    world = await World.create(database_url, slack_options={"rate_limit": False})
    teams = await TeamsSandbox.create(world.bridge_url)
    cast = TeamsCast()
    teams.connector.add_channel(CHANNEL, "Checkout study")
    teams.connector.add_channel(OTHER_CHANNEL, "Random")
    for person in (cast.owner, cast.teammate, cast.no_access, cast.outsider):
        teams.connector.add_member(person.user_id, person.name, email=person.email, upn=person.upn)
    await world.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        retry_base_seconds=0.2,
        retry_cap_seconds=2,
        **teams.settings(),
    )
    try:
        yield TeamsWorld(world, teams, cast)
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(await dump_queues(world))
            print("teams:", dict(teams.connector.conversations))
        await world.stop()
        await teams.stop()
