"""Install to several Slack workspaces: the OAuth flow followed by a real HTTP client with a cookie jar, against the
Slack stand-in; each workspace's traffic on its own bot token; uninstall and token revocation.

The bridge runs in OAuth mode (SLACK_CLIENT_ID / SLACK_CLIENT_SECRET) with SLACK_BOT_TOKEN still set: the first
(sandbox default) workspace keeps working on that imported token, the second installs through /slack/install.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from alembic import command
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import func, select

from adapters.slack.oauth import BOT_SCOPES, NotInstalled, SlackRemovals, WorkspaceClient, WorkspaceTokens
from core.errors import PermanentFailure
from playground.world import World
from sandbox.slack import SlackSandbox
from storage.db import Database
from storage.migrate import alembic_config
from storage.models import (
    InboxEvent,
    OutboxItem,
    SlackBot,
    SlackInstallation,
    SlackOAuthState,
    SlackUninstall,
)
from tests.factories import study_link
from tests.integration import flows
from tests.integration.conftest import dump_queues, eventually
from tests.integration.test_cli import _valid_env, run

SECOND = "T0SECOND"
CHANNEL2 = "C2STUDY"
ADMIN2 = "U2ADMIN"
ANA2 = "U2ANA"
STUDY2 = "st_acme_pricing"
PROJECT2 = "69603934cd7d6158385a2fff"
MAYA_PARTICIPANT, MAYA_RESPONDENT = "pa_maya", "6960391fbd5465b2dd6bd6f9"
CLIENT_ID = "1234567890.0987654321"


@pytest.fixture
async def world(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    client_secret = secrets.token_hex(16)
    w.slack.configure_oauth(CLIENT_ID, client_secret, [f"{w.bridge_url}/slack/oauth_redirect"])
    w.slack.add_workspace(SECOND, "Acme Research")
    w.slack.add_workspace_channel(SECOND, CHANNEL2, "pricing-study")
    w.slack.add_workspace_user(SECOND, ADMIN2, "Ike Admin", "ike@acme.test")
    # Ana works with both companies: the same Rally account, a second Slack account in Acme's workspace.
    w.slack.add_workspace_user(SECOND, ANA2, "Ana Ortiz", w.cast.owner.email)
    w.rally.add_study(STUDY2, "Acme pricing interviews", respondent_project_id=PROJECT2)
    w.rally.add_team_member(STUDY2, "usr_ana", w.cast.owner.email, w.cast.owner.name, role="OWNER")
    w.rally.add_participant(
        STUDY2,
        MAYA_PARTICIPANT,
        "Maya",
        "Okafor",
        email="maya@example.net",
        respondent_user_id=MAYA_RESPONDENT,
        approval_status="APPROVED",
        session_starts_at=datetime.now(UTC).replace(microsecond=0) + timedelta(days=3),
    )
    await w.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        retry_base_seconds=0.2,
        retry_cap_seconds=2,
        slack_client_id=CLIENT_ID,
        slack_client_secret=client_secret,
        public_url=w.bridge_url,
    )
    try:
        yield w
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(await dump_queues(w))
        await w.stop()


def browser(world: World) -> aiohttp.ClientSession:
    """A browser: keeps cookies (also for 127.0.0.1, and Secure ones on the local bridge, as browsers do)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[world.bridge_url])
    return aiohttp.ClientSession(cookie_jar=jar)


async def install(world: World, session: aiohttp.ClientSession, team: str, user: str) -> tuple[int, str, str]:
    """Sign in to ``team`` on Slack, open /slack/install and follow every redirect: (status, final path, page)."""
    async with session.get(world.slack.sign_in_url(team, user)) as signed_in:
        assert signed_in.status == 200
    async with session.get(f"{world.bridge_url}/slack/install") as response:
        return response.status, response.url.path, await response.text()


async def count(world: World, model: Any, *where: Any) -> int:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


def messages_in(world: World, channel: str, text: str) -> list[dict[str, Any]]:
    return [m for m in world.slack.messages(channel) if text in m.get("text", "")]


async def maya_writes(world: World, body: str) -> None:
    await world.respondent.participant_writes(PROJECT2, MAYA_RESPONDENT, body, first_name="Maya", last_name="Okafor")


async def ready(world: World) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{world.bridge_url}/readyz") as response:
        assert response.status == 200
        return dict(await response.json())


async def test_second_workspace_installs_links_and_gets_its_participant_on_its_own_token(world: World) -> None:
    async with browser(world) as session:
        status, path, page = await install(world, session, SECOND, ADMIN2)
    assert (status, path) == (200, "/slack/oauth_redirect"), page
    assert "Rally Bridge is installed" in page and "Acme Research" in page
    [issued] = world.slack.bot_tokens(SECOND)
    assert world.bridge is not None
    async with world.bridge.db.transaction() as db:
        bot = (await db.execute(select(SlackBot).where(SlackBot.team_id == SECOND))).scalar_one()
    assert bot.bot_token == issued and bot.bot_user_id == world.slack.workspaces[SECOND].bot_user_id
    assert await count(world, SlackInstallation, SlackInstallation.team_id == SECOND) == 1
    assert await count(world, SlackOAuthState) == 0  # the state was consumed

    # Acme links its study in its own channel; Maya's thread opens there, posted with Acme's token.
    result = await world.slack.run_command(CHANNEL2, ANA2, f"link {STUDY2}")
    assert result.status == 200, result.body
    root = (await eventually(lambda: messages_in(world, CHANNEL2, "Maya O."), what="Maya's thread root"))[0]
    assert root["team"] == SECOND and root["bot_id"] == world.slack.workspaces[SECOND].bot_id
    await maya_writes(world, "Hi! Is the session still on <!channel>?")
    mirrored = await eventually(
        lambda: [m for m in world.slack.thread(CHANNEL2, root["ts"]) if "Is the session still on" in m["text"]],
        what="Maya's message in Acme's thread",
    )
    assert "&lt;!channel&gt;" in mirrored[0]["text"]
    posts = {(method, team) for method, team in world.slack.team_calls if method == "chat.postMessage"}
    assert (("chat.postMessage", SECOND) in posts) and all(team == SECOND for _, team in posts)

    # The first workspace is unaffected: it links and bridges on its own (imported) token.
    await flows.link_study(world)
    jordan_root = await flows.root_of(world, world.cast.jordan)
    assert jordan_root["team"] == world.slack.team_id
    await flows.participant_writes(world, world.cast.jordan, "Hello from Jordan")
    await eventually(
        lambda: [m for m in flows.replies(world, jordan_root) if "Hello from Jordan" in m["text"]],
        what="Jordan's message in the first workspace",
    )
    teams_posting = {team for method, team in world.slack.team_calls if method == "chat.postMessage"}
    assert teams_posting == {SECOND, world.slack.team_id}
    assert not messages_in(world, world.cast.channel, "Maya") and not messages_in(world, CHANNEL2, "Jordan")
    workspaces = (await ready(world))["slack_workspaces"]
    assert workspaces[SECOND] == {"linked_studies": [STUDY2], "installed": True}
    assert workspaces[world.slack.team_id]["installed"] is True


async def test_uninstall_removes_the_installation_and_later_sends_fail_clearly(world: World) -> None:
    async with browser(world) as session:
        status, _path, page = await install(world, session, SECOND, ADMIN2)
    assert status == 200, page
    assert (await world.slack.run_command(CHANNEL2, ANA2, f"link {STUDY2}")).status == 200
    await eventually(lambda: messages_in(world, CHANNEL2, "Maya O."), what="Maya's thread root")
    await flows.link_study(world)

    deliveries = await world.slack.uninstall(SECOND)
    assert [d.status for d in deliveries] == [200]
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 0
    assert await count(world, SlackInstallation, SlackInstallation.team_id == SECOND) == 0
    assert await count(world, SlackUninstall, SlackUninstall.team_id == SECOND) == 1
    status_now = (await ready(world))["slack_workspaces"][SECOND]
    assert status_now["installed"] is False and status_now["linked_studies"] == [STUDY2]
    assert "removed from Slack workspace T0SECOND (app uninstalled" in status_now["problem"]
    assert "/slack/install" in status_now["problem"]

    calls_before = len(world.slack.team_calls)
    posts_before = len(world.slack.messages(CHANNEL2))
    await maya_writes(world, "Are you still there?")
    assert world.bridge is not None

    async def failed_mirror() -> list[tuple[str, str | None]]:
        assert world.bridge is not None
        async with world.bridge.db.transaction() as db:
            rows = await db.execute(
                select(OutboxItem.status, OutboxItem.last_error).where(OutboxItem.kind == "chat.mirror")
            )
        return [(s, e) for s, e in rows.all() if s == "failed"]

    failed: list[tuple[str, str | None]] = []
    for _attempt in range(200):
        failed = await failed_mirror()
        if failed:
            break
        await asyncio.sleep(0.05)
    assert failed, await dump_queues(world)
    assert "Rally Bridge was removed from Slack workspace T0SECOND" in str(failed[0][1])
    assert len(world.slack.messages(CHANNEL2)) == posts_before
    assert not [team for _m, team in world.slack.team_calls[calls_before:] if team == SECOND]

    # A request that still arrives from the removed workspace is not taken in.
    result = await world.slack.run_command(CHANNEL2, ANA2, "help")
    assert result.status == 200
    [told] = world.slack.response_url_posts[result.response_url.rsplit("/", 1)[1]]
    assert "not installed in this workspace" in str(told) and f"{world.bridge_url}/slack/install" in str(told)
    assert not await count(world, InboxEvent, InboxEvent.key.like("%" + result.trigger_id + "%"))

    # The first workspace keeps moving.
    jordan_root = await flows.root_of(world, world.cast.jordan)
    await flows.participant_writes(world, world.cast.jordan, "Still here in workspace one")
    await eventually(
        lambda: [m for m in flows.replies(world, jordan_root) if "Still here in workspace one" in m["text"]],
        what="Jordan's message after the other workspace uninstalled",
    )

    # Installing again brings the workspace back.
    async with browser(world) as session:
        status, _path, page = await install(world, session, SECOND, ADMIN2)
    assert status == 200, page
    assert await count(world, SlackUninstall, SlackUninstall.team_id == SECOND) == 0
    assert (await ready(world))["slack_workspaces"][SECOND]["installed"] is True

    # Slack retrying the old app_uninstalled after the reinstall does not remove the new installation.
    late = {
        "type": "event_callback",
        "team_id": SECOND,
        "api_app_id": world.slack.api_app_id,
        "event": {"type": "app_uninstalled"},
        "event_id": "Ev0LATE",
        "event_time": int(time.time()) - 120,
        "authorizations": [{"team_id": SECOND, "user_id": "U0SECONDBOT", "is_bot": True}],
    }
    raw = json.dumps(late).encode()
    headers = {"Content-Type": "application/json", "X-Slack-Retry-Num": "2", **world.slack.sign(raw)}
    status, _body = await world.slack.deliver_raw(raw, headers)
    assert status == 200
    assert (await ready(world))["slack_workspaces"][SECOND]["installed"] is True
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 1


async def test_revoked_bot_token_ends_the_installation(world: World) -> None:
    async with browser(world) as session:
        status, _path, page = await install(world, session, SECOND, ADMIN2)
    assert status == 200, page
    deliveries = await world.slack.revoke_bot_tokens(SECOND)
    assert [d.status for d in deliveries] == [200]
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 0
    problem = (await ready(world))["slack_workspaces"][SECOND]["problem"]
    assert "bot token revoked" in problem


async def test_missing_or_forged_state_is_refused_and_nothing_is_stored(world: World) -> None:
    redirect = f"{world.bridge_url}/slack/oauth_redirect"
    async with browser(world) as session:
        async with session.get(world.slack.sign_in_url(SECOND, ADMIN2)) as signed_in:
            assert signed_in.status == 200
        # /slack/install answers with a redirect to Slack carrying a fresh state (also set as a cookie).
        async with session.get(f"{world.bridge_url}/slack/install", allow_redirects=False) as started:
            assert started.status == 302
            authorize = started.headers["Location"]
        assert authorize.startswith(f"{world.slack.base_url}/oauth/v2/authorize?")
        asked = parse_qs(urlsplit(authorize).query)
        assert asked["client_id"] == [CLIENT_ID] and asked["state"][0]
        assert asked["scope"][0].split(",") == list(BOT_SCOPES)
        assert asked["redirect_uri"] == [redirect]
        async with session.get(authorize, allow_redirects=False) as approved:
            assert approved.status == 302
            callback = approved.headers["Location"]
        code, state = parse_qs(urlsplit(callback).query)["code"][0], asked["state"][0]

        # No state at all: 400.
        async with session.get(redirect, params={"code": code}) as response:
            assert response.status == 400
        # A state that was never issued (with a cookie to match, as an attacker could send): 403.
        async with (
            aiohttp.ClientSession() as attacker,
            attacker.get(
                redirect, params={"code": code, "state": "forged"}, headers={"Cookie": "slack-app-oauth-state=forged"}
            ) as response,
        ):
            assert response.status == 403
            assert "expired or was already used" in await response.text()
        # The right state from a browser that did not start the install (no state cookie): 400.
        async with aiohttp.ClientSession() as stranger, stranger.get(callback) as response:
            assert response.status == 400
            assert "did not start in this browser" in await response.text()
        assert await count(world, SlackInstallation) == 0 and await count(world, SlackBot) == 0
        assert world.slack.oauth_records.exchanges == []  # the code was never even sent to Slack

        # The browser that started the install completes it.
        async with session.get(callback) as response:
            assert response.status == 200
            assert "Rally Bridge is installed" in await response.text()
    # Replaying the callback, even with the right cookie, is refused: a state is used once.
    async with (
        aiohttp.ClientSession() as replay,
        replay.get(callback, headers={"Cookie": f"slack-app-oauth-state={state}"}) as response,
    ):
        assert response.status == 403
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 1
    assert world.slack.oauth_records.exchanges == [(code, "ok")]


async def test_declined_install_and_invalid_code_store_nothing(world: World) -> None:
    world.slack.decline_next()
    async with browser(world) as session:
        status, path, page = await install(world, session, SECOND, ADMIN2)
    assert (status, path) == (200, "/slack/oauth_redirect")
    assert "cancelled" in page
    assert await count(world, SlackInstallation) == 0

    # Slack refuses the code (here: it expired before the browser came back): a clear page, nothing stored.
    async with browser(world) as session:
        async with session.get(world.slack.sign_in_url(SECOND, ADMIN2)) as signed_in:
            assert signed_in.status == 200
        async with session.get(f"{world.bridge_url}/slack/install", allow_redirects=False) as started:
            authorize = started.headers["Location"]
        async with session.get(authorize, allow_redirects=False) as approved:
            callback = approved.headers["Location"]
        world.slack.expire_codes()
        async with session.get(callback) as response:
            assert response.status == 400
            assert "did not accept the installation code" in await response.text()
    assert world.slack.oauth_records.exchanges[-1][1] == "invalid_code"
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 0


async def test_one_workspace_mode_records_an_uninstall_and_says_why_nothing_moves(database_url: str) -> None:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    await w.start_bridge(worker_poll_seconds=0.05, reconcile_interval_seconds=3600, retry_base_seconds=0.2)
    try:
        assert "slack_workspaces" not in await ready(w)  # nothing to report while all is well
        await flows.link_study(w)
        deliveries = await w.slack.uninstall(w.slack.team_id)
        assert [d.status for d in deliveries] == [200]
        workspace = (await ready(w))["slack_workspaces"][w.slack.team_id]
        assert workspace["installed"] is False and workspace["linked_studies"] == [w.cast.study_id]
        assert "app uninstalled" in workspace["problem"]
        await flows.participant_writes(w, w.cast.jordan, "Anyone there?")

        async def failed() -> list[str]:
            assert w.bridge is not None
            async with w.bridge.db.transaction() as db:
                rows = await db.execute(
                    select(OutboxItem.last_error).where(OutboxItem.kind == "chat.mirror", OutboxItem.status == "failed")
                )
            return [str(e) for e in rows.scalars()]

        errors: list[str] = []
        for _attempt in range(200):
            errors = await failed()
            if errors:
                break
            await asyncio.sleep(0.05)
        assert errors == ["the Slack token was revoked"], await dump_queues(w)
    finally:
        await w.stop()


@pytest.mark.slow
def test_check_config_explains_both_slack_modes(tmp_path: Path) -> None:
    oauth_only = {k: v for k, v in _valid_env(tmp_path).items() if k != "SLACK_BOT_TOKEN"}
    oauth_only.update(
        SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET="0123456789abcdef", RALLYBRIDGE_PUBLIC_URL="https://b.test/"
    )
    result = run(tmp_path, "check-config", env=oauth_only)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OAuth, install to many workspaces at https://b.test/slack/install" in result.stdout
    assert "0123456789abcdef" not in result.stdout + result.stderr

    result = run(tmp_path, "check-config", env=_valid_env(tmp_path))
    assert result.returncode == 0 and "one workspace (SLACK_BOT_TOKEN)" in result.stdout

    half = {k: v for k, v in oauth_only.items() if k != "SLACK_CLIENT_SECRET"}
    result = run(tmp_path, "check-config", env=half)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "SLACK_CLIENT_SECRET: not set (OAuth install to many workspaces needs both" in output
    assert "SLACK_BOT_TOKEN: not set" in output and "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET" in output

    result = run(tmp_path, "check-config", env={**oauth_only, "RALLYBRIDGE_PUBLIC_URL": "bridge.example.com"})
    assert result.returncode == 2 and "RALLYBRIDGE_PUBLIC_URL" in result.stdout + result.stderr


async def test_each_call_carries_the_token_of_the_workspace_it_is_about(database_url: str) -> None:
    """WorkspaceClient, the real SDK client, against the stand-in: the token comes from the call's channel/user."""
    slack = SlackSandbox(rate_limit=False)
    await slack.start()
    db = Database(database_url)
    try:
        slack.add_channel("C0ONE", "one")
        slack.add_workspace(SECOND, "Acme Research")
        slack.add_workspace_channel(SECOND, CHANNEL2, "pricing-study")
        slack.add_workspace_user(SECOND, ANA2, "Ana Ortiz", "ana@example.com")
        slack.add_workspace_channel(SECOND, "C2QUIET", "quiet")
        second_token = "xoxb-second-" + secrets.token_hex(6)
        slack.token_teams[second_token] = SECOND
        tokens = WorkspaceTokens(db, client_id=CLIENT_ID, api_url=f"{slack.base_url}/api/")
        client = WorkspaceClient(tokens, base_url=f"{slack.base_url}/api/", retry_handlers=[])
        for team, token in ((slack.team_id, slack.token), (SECOND, second_token)):
            await tokens.store.async_save(
                Installation(app_id="A0", team_id=team, bot_token=token, bot_user_id="UB", user_id="UI")
            )

        # Ids seen in inbound requests (the directory), and a channel known only from a link.
        await tokens.remember({CHANNEL2: SECOND, ANA2: SECOND})
        async with db.transaction() as session:
            session.add(study_link(workspace=slack.team_id, channel="C0ONE"))
        await client.chat_postMessage(channel=CHANNEL2, text="to Acme")
        await client.chat_postMessage(channel="C0ONE", text="to the first workspace")
        await client.users_info(user=ANA2)
        assert slack.team_calls == [
            ("chat.postMessage", SECOND),
            ("chat.postMessage", slack.team_id),
            ("users.info", SECOND),
        ]
        # A channel nothing has been heard from, with two workspaces installed: refused, naming the channel.
        with pytest.raises(PermanentFailure, match="which Slack workspace channel C2QUIET belongs to"):
            await client.chat_postMessage(channel="C2QUIET", text="?")
        # A workspace that removed the app: refused with the reason, nothing sent.
        await SlackRemovals(db, tokens).removed(SECOND, None, "app uninstalled")
        with pytest.raises(NotInstalled, match="removed from Slack workspace T0SECOND"):
            await client.chat_postMessage(channel=CHANNEL2, text="after")
        assert len(slack.team_calls) == 3
    finally:
        await db.dispose()
        await slack.stop()


def test_migration_0004_seeds_the_directory_from_existing_slack_links(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0003")
    with sqlite3.connect(tmp_path / "old.sqlite3") as conn:
        conn.execute(
            "INSERT INTO study_links (study_id, study_name, respondent_project_id, platform, workspace, channel,"
            " active, linked_by, linked_at) VALUES ('st_1', 'One', 'p1', 'slack', 'T0OLD', 'C0OLD', 1, 'U1',"
            " '2026-01-01 00:00:00'), ('st_2', 'Two', 'p2', 'teams', 'tenant', '19:x@thread.tacv2', 1, 'U2',"
            " '2026-01-01 00:00:00')"
        )
    command.upgrade(config, "0004")
    with sqlite3.connect(tmp_path / "old.sqlite3") as conn:
        rows = conn.execute("SELECT slack_id, team_id FROM slack_directory").fetchall()
    assert rows == [("C0OLD", "T0OLD")]


async def test_a_workspace_outside_the_allowlist_is_refused_its_token_revoked_and_nothing_stored(
    world: World,
) -> None:
    assert world.bridge is not None
    await world.stop_bridge()
    await world.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        slack_client_id=CLIENT_ID,
        slack_client_secret=world.slack.oauth_app.client_secret if world.slack.oauth_app else "",
        public_url=world.bridge_url,
        slack_allowed_team_ids=f" {world.slack.team_id} ,T0OTHER",
    )
    async with browser(world) as session:
        status, path, page = await install(world, session, SECOND, ADMIN2)
    assert (status, path) == (403, "/slack/oauth_redirect"), page
    assert "SLACK_ALLOWED_TEAM_IDS" in page and SECOND in page and "Nothing was installed" in page
    assert world.slack.bot_tokens(SECOND) == []  # the token Slack issued for it was revoked at once
    assert await count(world, SlackInstallation, SlackInstallation.team_id == SECOND) == 0
    assert await count(world, SlackBot, SlackBot.team_id == SECOND) == 0
    # Its requests find no installation: a command there is not stored.
    before = await count(world, InboxEvent)
    result = await world.slack.run_command(CHANNEL2, ANA2, f"link {STUDY2}")
    [told] = world.slack.response_url_posts[result.response_url.rsplit("/", 1)[1]]
    assert "not installed in this workspace" in str(told)
    assert await count(world, InboxEvent) == before
