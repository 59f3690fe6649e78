"""Each chat platform is optional: `serve` and `check-config` with one, the other or none, and a Teams-only and a
Slack-only `rallybridge serve` process against the stand-ins.

Each starts healthy, names its one platform on /readyz, runs its own flow (link a study, the approved participant's
thread root appears, what the participant writes is mirrored into it), and answers the other platform's routes
with 404 and a JSON body saying that platform is not configured, storing nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from playground.world import World
from sandbox.teams import TeamsSandbox
from storage.models import Base
from tests.integration.conftest import eventually
from tests.integration.flows import link_study, participant_writes, root_of
from tests.integration.processes import BridgeProcess, deliver_slack_envelope, participant_posts, slack_post
from tests.integration.test_cli import _valid_env, run
from tests.teams.conftest import CHANNEL, TeamsCast

pytestmark = pytest.mark.slow

SLACK_CREDENTIALS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
)


async def stored_rows(database_url: str) -> dict[str, int]:
    """How many rows every table of the bridge holds."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return {
                t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                for t in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def http(method: str, url: str, **kw: Any) -> tuple[int, str, str]:
    """(status, content type, body) of one request."""
    async with aiohttp.ClientSession() as session, session.request(method, url, **kw) as response:
        return response.status, response.content_type, await response.text()


def not_configured(platform: str, status: int, content_type: str, body: str) -> None:
    assert status == 404, (status, body)
    assert content_type == "application/json", (content_type, body)
    answer = json.loads(body)
    assert answer["error"] == "platform_not_configured" and answer["platform"] == platform, answer
    assert "not configured on this bridge" in answer["message"], answer


async def ready(bridge: BridgeProcess) -> dict[str, Any]:
    status, _, body = await http("GET", f"{bridge.url}/readyz")
    assert status == 200, body
    return dict(json.loads(body))


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    try:
        yield w
    finally:
        await w.stop()


async def test_a_teams_only_bridge_runs_teams_and_answers_slack_with_404(world: World, tmp_path: Path) -> None:
    teams = await TeamsSandbox.create(world.bridge_url)
    cast = TeamsCast()
    teams.connector.add_channel(CHANNEL, "Checkout study")
    for person in (cast.owner, cast.teammate):
        teams.connector.add_member(person.user_id, person.name, email=person.email, upn=person.upn)
    # No Slack setting at all; SLACK_API_URL (which has a default) still points at the stand-in, so a call to
    # Slack would be seen rather than leave the machine.
    env = {k: v for k, v in world.env().items() if k not in SLACK_CREDENTIALS}
    bridge = BridgeProcess({**env, **teams.settings()}, tmp_path / "teams-only.log", name="teams-only")
    try:
        await bridge.start_healthy()
        answer = await ready(bridge)
        assert answer["ready"] is True and answer["platforms"] == ["teams"], answer

        # Teams' own flow: link in a channel, the approved participant's post appears, her message is mirrored.
        await teams.command(CHANNEL, cast.owner, f"link {world.cast.study_id}")
        roots = await eventually(
            lambda: [a for a in teams.connector.roots(CHANNEL) if "Jordan L." in str(a.get("attachments"))],
            within=20,
            what="Jordan's post in the Teams channel",
        )
        root_id = str(roots[0]["id"])
        await participant_writes(world, world.cast.jordan, "Hello from Jordan")
        await eventually(
            lambda: any("Hello from Jordan" in str(a.get("text")) for a in teams.connector.replies(CHANNEL, root_id)),
            within=20,
            what="Jordan's message in her chain",
        )
        await world.quiet(20)

        # Slack's routes: 404, saying so, whatever arrives; nothing stored, Slack never called.
        before = await stored_rows(world.database_url)
        command = await world.slack.run_command(world.cast.channel, world.cast.owner.slack_id, "link st_checkout")
        not_configured("slack", command.status, "application/json", command.body)
        post = slack_post(world.slack, world.cast.channel, world.cast.owner.slack_id, "hi", thread_ts=None)
        assert await deliver_slack_envelope(world.slack, post.envelope, f"{bridge.url}/slack/events", retries=0) == 404
        for path in ("/slack/events", "/slack/install", "/slack/oauth_redirect?code=x&state=y"):
            for method in ("GET", "POST"):
                not_configured("slack", *(await http(method, f"{bridge.url}{path}")))
        await world.quiet(5)
        assert await stored_rows(world.database_url) == before
        assert world.slack.request_log == [], world.slack.request_log
    finally:
        bridge.stop()
        await teams.stop()


async def test_a_slack_only_bridge_runs_slack_and_answers_teams_with_404(world: World, tmp_path: Path) -> None:
    env = world.env()
    assert not [k for k in env if k.startswith("MICROSOFT_") or k == "RALLYBRIDGE_TEAMS_SANDBOX"]
    bridge = BridgeProcess(env, tmp_path / "slack-only.log", name="slack-only")
    teams = await TeamsSandbox.create(world.bridge_url)  # a real Teams, properly signing what it sends
    try:
        await bridge.start_healthy()
        answer = await ready(bridge)
        assert answer["ready"] is True and answer["platforms"] == ["slack"], answer

        # Slack's own flow: /rally link, the approved participant's thread root, her message mirrored into it.
        await link_study(world)
        root = await root_of(world, world.cast.jordan)
        await participant_writes(world, world.cast.jordan, "Hello from Jordan")
        await eventually(
            lambda: participant_posts(world, str(root["ts"])) == ["Hello from Jordan"],
            within=20,
            what="Jordan's message in her thread",
        )
        await world.quiet(20)

        # Teams' route: 404, saying so, for a properly authenticated activity too; nothing stored, Teams not called.
        before = await stored_rows(world.database_url)
        cast = TeamsCast()
        delivery = await teams.deliver(teams.activity(CHANNEL, cast.owner, "link st_checkout", mention_bot=True))
        not_configured("teams", delivery.status, "application/json", delivery.body)
        for method in ("GET", "POST"):
            not_configured("teams", *(await http(method, f"{bridge.url}/api/messages", json={"type": "message"})))
        await world.quiet(5)
        assert await stored_rows(world.database_url) == before
        assert teams.connector.roots(CHANNEL) == [] and teams.connector.personal_messages(cast.owner.user_id) == []
    finally:
        bridge.stop()
        await teams.stop()


# ---- the command: which platforms, and none -----------------------------------------------------------------


def _without_slack(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in SLACK_CREDENTIALS}


TEAMS_ENV = {
    "MICROSOFT_APP_ID": "00000000-0000-0000-0000-000000000001",
    "MICROSOFT_APP_PASSWORD": "client-secret",
    "MICROSOFT_APP_TENANT_ID": "8a1f3c52-4d7e-4b1a-9f0e-2c6d5b7a9e11",
}


def test_serve_without_any_chat_platform_refuses_naming_the_variables(tmp_path: Path) -> None:
    env = _without_slack(_valid_env(tmp_path))
    for command in ("serve", "check-config"):
        result = run(tmp_path, command, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        (line,) = [line for line in result.stderr.splitlines() if line.strip().startswith("- ")]
        assert "chat platform: none configured" in line, result.stderr
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD"):
            assert name in line, line
        assert "listening" not in result.stdout + result.stderr


def test_serve_refuses_half_a_slack_beside_a_complete_teams(tmp_path: Path) -> None:
    teams_only = {**_without_slack(_valid_env(tmp_path)), **TEAMS_ENV}
    assert run(tmp_path, "check-config", env=teams_only).returncode == 0  # Teams alone is fine: half a Slack is not
    result = run(tmp_path, "serve", env={**teams_only, "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99"})
    assert result.returncode == 2, result.stdout + result.stderr
    problems = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert [p[2:].split(":", 1)[0] for p in problems] == ["SLACK_BOT_TOKEN"], result.stderr
    assert "8f742231b10e8888abcd99" not in result.stdout + result.stderr


def test_check_config_says_which_platforms_are_active(tmp_path: Path) -> None:
    teams_only = run(tmp_path, "check-config", env={**_without_slack(_valid_env(tmp_path)), **TEAMS_ENV})
    assert teams_only.returncode == 0, teams_only.stdout + teams_only.stderr
    lines = teams_only.stdout.splitlines()
    assert lines[0].startswith("Configuration OK: chat on Microsoft Teams;"), lines
    assert any(line.startswith("Slack: not active (no SLACK_BOT_TOKEN") for line in lines), lines
    assert any(line.startswith("Teams: active on /api/messages") for line in lines), lines
    assert "client-secret" not in teams_only.stdout

    both = run(tmp_path, "check-config", env={**_valid_env(tmp_path), **TEAMS_ENV})
    assert both.returncode == 0 and both.stdout.startswith("Configuration OK: chat on Slack and Microsoft Teams;")

    slack_only = run(tmp_path, "check-config", env=_valid_env(tmp_path))
    assert slack_only.returncode == 0, slack_only.stdout + slack_only.stderr
    assert any(line.startswith("Slack: active, over HTTP") for line in slack_only.stdout.splitlines())
    assert any(line.startswith("Teams: not active (no MICROSOFT_APP_ID") for line in slack_only.stdout.splitlines())


# ---- the composition root -----------------------------------------------------------------------------------


async def test_services_hold_only_the_configured_platforms(tmp_path: Path) -> None:
    from bot.app import build_bridge
    from bot.settings import Settings

    env = _valid_env(tmp_path)
    required = {k: env[k] for k in ("RESPONDENT_API_KEY", "RESPONDENT_API_SECRET", "RESPONDENT_WEBHOOK_KEY")}
    slack = {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"microsoft_app_id": "a", "microsoft_app_password": "p", "microsoft_app_tenant_id": "t"}, ["teams"]),
        (slack, ["slack"]),
        ({**slack, "teams_sandbox": True}, ["slack", "teams"]),
    ]
    for chat, names in cases:
        settings = Settings(
            _env_file=None,
            database_url=env["RALLYBRIDGE_DATABASE_URL"],
            rally_api_token="t",
            **{k.lower(): v for k, v in required.items()},
            **chat,
        )
        bridge = build_bridge(settings)
        try:
            assert list(bridge.services.chats) == names, chat
            assert (bridge.bolt is not None) == ("slack" in names), chat
            paths = {r.resource.canonical for r in bridge.web_app.router.routes() if r.resource is not None}
            assert {"/slack/events", "/api/messages"} <= paths, chat  # the other platform's answer 404 (above)
        finally:
            for closer in bridge.closers:
                close = getattr(closer, "close", None)
                if close is not None:
                    await close()
            await bridge.db.dispose()
