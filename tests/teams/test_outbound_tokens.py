"""The bot's own outbound token, the production way: botbuilder's credentials and MSAL, no sandbox shortcut.

``MICROSOFT_LOGIN_URL`` is unset here, so the bridge builds ``ConfigurationServiceClientCredentialFactory``:
``MicrosoftAppCredentials`` (MSAL ``ConfidentialClientApplication``, authority
``https://login.microsoftonline.com/<tenant>``, or ``/botframework.com`` for MultiTenant) or, for UserAssignedMSI,
``ManagedIdentityAppCredentials`` (MSAL ``ManagedIdentityClient``). MSAL is not redirected: the process gets an
``HTTPS_PROXY`` and a ``REQUESTS_CA_BUNDLE`` (as behind a TLS-inspecting egress proxy), and
:class:`~sandbox.teams.login.EntraLoginSandbox` answers for ``login.microsoftonline.com`` itself. Each token it
issues is one the connector stand-in accepts; the test checks the token request and the connector's bearer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from playground.world import World
from sandbox.teams import TeamsPerson, TeamsSandbox
from sandbox.teams.login import EntraLoginSandbox
from tests.integration.conftest import eventually

CHANNEL = "19:tokens@thread.tacv2"
TENANT = "8a1f3c52-4d7e-4b1a-9f0e-2c6d5b7a9e11"
ANA = TeamsPerson("29:ana", "Ana Ortiz", "ana@example.com")
SCOPE = "https://api.botframework.com/.default"


@dataclass
class Rig:
    world: World
    teams: TeamsSandbox
    login: EntraLoginSandbox
    start: Callable[..., Awaitable[None]]

    async def help_reaches_ana(self) -> None:
        """A connector call the bridge must authenticate: ``help`` answered in Ana's 1:1 chat."""
        await self.teams.command(CHANNEL, ANA, "help")
        await eventually(lambda: self.teams.connector.personal_messages(ANA.user_id), what="help in Ana's chat")


@pytest.fixture
async def rig(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    world = await World.create(database_url, slack_options={"rate_limit": False})
    teams = await TeamsSandbox.create(world.bridge_url)
    teams.connector.add_channel(CHANNEL, "Tokens")
    teams.connector.add_member(ANA.user_id, ANA.name, email=ANA.email)
    login = EntraLoginSandbox({teams.app_id: teams.app_password}, on_issue=teams.connector.tokens.add)
    login.start()
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ALL_PROXY", "HTTP_PROXY", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in login.environment().items():
        monkeypatch.setenv(name, value)

    async def start(**overrides: str | None) -> None:
        """The bridge with the sandbox's Teams settings and ``overrides`` (None: unset), minus the token shortcut."""
        settings = {**teams.settings(), "MICROSOFT_LOGIN_URL": None, **overrides}
        given = {k: v for k, v in settings.items() if v is not None}
        await world.start_bridge(worker_poll_seconds=0.05, retry_base_seconds=0.2, **given)

    try:
        yield Rig(world, teams, login, start)
    finally:
        await world.stop()
        await teams.stop()
        login.stop()


@pytest.mark.parametrize(
    ("app_type", "tenant_path"), [("SingleTenant", TENANT), ("MultiTenant", "botframework.com")], ids=str
)
async def test_the_bots_token_comes_from_msal_at_its_authority_and_is_sent_to_the_connector(
    rig: Rig, app_type: str, tenant_path: str
) -> None:
    await rig.start(MICROSOFT_APP_TYPE=app_type, MICROSOFT_APP_TENANT_ID=TENANT)
    await rig.help_reaches_ana()

    # MSAL found the token endpoint through the authority's OpenID discovery, at the tenant's path ...
    assert rig.login.discovery_requests[0] == f"/{tenant_path}/v2.0/.well-known/openid-configuration"
    # ... and asked it once (later calls use MSAL's cache): client credentials for the Bot Framework scope.
    (request,) = rig.login.token_requests
    assert request.path == f"/{tenant_path}/oauth2/v2.0/token"
    assert {k: request.form.get(k) for k in ("grant_type", "client_id", "client_secret", "scope")} == {
        "grant_type": "client_credentials",
        "client_id": rig.teams.app_id,
        "client_secret": rig.teams.app_password,
        "scope": SCOPE,
    }
    # Every connector call carried exactly that token; nothing else went through the proxy.
    connector = rig.teams.connector
    assert connector.bearers and set(connector.bearers) == {request.access_token}
    assert rig.login.refused == [] and rig.login.identity_requests == []


async def test_a_user_assigned_managed_identity_gets_its_token_from_the_identity_endpoint(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in rig.login.managed_identity_environment().items():  # as Azure App Service sets them
        monkeypatch.setenv(name, value)
    await rig.start(MICROSOFT_APP_TYPE="UserAssignedMSI", MICROSOFT_APP_TENANT_ID=TENANT, MICROSOFT_APP_PASSWORD=None)
    await rig.help_reaches_ana()

    (request,) = rig.login.identity_requests
    assert request.identity_header == rig.login.identity_header
    assert request.query["client_id"] == rig.teams.app_id  # MICROSOFT_APP_ID is the identity's client id
    assert request.query["resource"] == "https://api.botframework.com"
    assert set(rig.teams.connector.bearers) == {request.access_token}
    assert rig.login.token_requests == []  # no client secret anywhere


async def _outbox_errors(rig: Rig) -> list[str]:
    assert rig.world.bridge is not None
    async with rig.world.bridge.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT last_error FROM outbox WHERE last_error IS NOT NULL"))
        return [str(row[0]) for row in rows]


async def test_credentials_entra_refuses_are_retried_and_named_in_the_outbox_error(rig: Rig) -> None:
    await rig.start(MICROSOFT_APP_TYPE="SingleTenant", MICROSOFT_APP_TENANT_ID=TENANT, MICROSOFT_APP_PASSWORD="nope")
    await rig.teams.command(CHANNEL, ANA, "help")
    await eventually(lambda: len(rig.login.token_requests) >= 2, what="a refused token request, retried")
    errors = await _outbox_errors(rig)
    assert errors and all("could not get a bot token" in e for e in errors), errors
    error = errors[0]
    assert "invalid_client AADSTS7000215" in error and "MICROSOFT_APP_TYPE" in error, error
    assert "nope" not in error and TENANT not in error and rig.teams.app_id not in error
    assert {r.path for r in rig.login.token_requests} == {f"/{TENANT}/oauth2/v2.0/token"}
    assert all(r.access_token is None for r in rig.login.token_requests)
    assert rig.teams.connector.bearers == []  # nothing was sent without a token
