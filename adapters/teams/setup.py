"""Wire Teams from settings: the ``TeamsPlatform`` for the core and the ``/api/messages`` route.

The settings come in as :class:`TeamsSettings`, the few values Teams reads, by the names the application's
settings give them (``bot.settings.Settings`` has them all): the adapter does not import the layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

# The Teams adapter pulls in botbuilder (0.2-0.5 s of imports): it is imported inside build_teams, so a bridge
# without Teams and `serve`'s configuration check (teams_problems) never load it.
if TYPE_CHECKING:
    from adapters.teams.auth import TeamsAuthConfig
    from adapters.teams.connector import ConnectorClient
    from adapters.teams.inbound import Record, TeamsRoute
    from adapters.teams.platform import TeamsPlatform
    from storage.db import Database

ROUTE = "/api/messages"


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class TeamsSettings(Protocol):
    """What Teams is wired from (read only). ``teams_enabled``: any MICROSOFT_* setting or the sandbox flag."""

    @property
    def teams_enabled(self) -> bool: ...
    @property
    def teams_sandbox(self) -> bool: ...
    @property
    def microsoft_app_id(self) -> str | None: ...
    @property
    def microsoft_app_password(self) -> Secret | None: ...
    @property
    def microsoft_app_type(self) -> str: ...
    @property
    def microsoft_app_type_given(self) -> bool: ...
    @property
    def microsoft_app_tenant_id(self) -> str | None: ...
    @property
    def microsoft_openid_metadata_url(self) -> str | None: ...
    @property
    def microsoft_token_issuer(self) -> str | None: ...
    @property
    def microsoft_login_url(self) -> str | None: ...
    @property
    def max_body_bytes(self) -> int: ...


class TeamsNotAllowed(RuntimeError):
    """The Teams route would open without authentication outside a sandbox."""


@dataclass
class Teams:
    platform: TeamsPlatform
    route: TeamsRoute
    connector: ConnectorClient

    async def close(self) -> None:
        await self.connector.close()


LEGACY_HINT = (
    "a bot created as Multi Tenant, before Azure stopped offering that type on 31 July 2025, sets "
    "MICROSOFT_APP_TYPE=MultiTenant (the default was MultiTenant before this release)"
)


def teams_problems(settings: TeamsSettings) -> list[str]:
    """What stops the Teams route from opening safely (empty when Teams is off or configured).

    Per ``MICROSOFT_APP_TYPE``: ``SingleTenant`` (the default) needs the app id, the client secret and the tenant
    id; ``UserAssignedMSI`` the managed identity's client id and the tenant id, and no secret; ``MultiTenant`` the
    app id and the client secret.
    """
    if not settings.teams_enabled:
        return []
    app_type = settings.microsoft_app_type
    problems: list[str] = []
    if not settings.microsoft_app_id and not settings.teams_sandbox:
        what = "the managed identity's client id" if app_type == "UserAssignedMSI" else "the bot's app id"
        problems.append(
            f"MICROSOFT_APP_ID: not set ({what}; the Teams route needs it. RALLYBRIDGE_TEAMS_SANDBOX=1 opens it "
            "without authentication, for local sandboxes only)"
        )
    if not settings.microsoft_app_id:
        return problems
    secret = settings.microsoft_app_password is not None
    if app_type == "UserAssignedMSI" and secret:
        problems.append(
            "MICROSOFT_APP_PASSWORD: set, but MICROSOFT_APP_TYPE is UserAssignedMSI, which uses the managed "
            "identity and no client secret: remove it (or set the type the Azure Bot was created with)"
        )
    elif app_type != "UserAssignedMSI" and not secret:
        problems.append(
            f"MICROSOFT_APP_PASSWORD: not set (the client secret of the bot's app registration, needed with "
            f"MICROSOFT_APP_TYPE {app_type})"
        )
    if app_type != "MultiTenant" and not settings.microsoft_app_tenant_id:
        why = f"needed with MICROSOFT_APP_TYPE {app_type}"
        if app_type == "SingleTenant":
            default = "" if settings.microsoft_app_type_given else ", the default when MICROSOFT_APP_TYPE is not set"
            why += f"{default}; {LEGACY_HINT}"
        problems.append(f"MICROSOFT_APP_TENANT_ID: not set (your Microsoft Entra tenant id, {why})")
    return problems


def auth_config(settings: TeamsSettings) -> TeamsAuthConfig:
    from adapters.teams.auth import TeamsAuthConfig

    password = settings.microsoft_app_password
    return TeamsAuthConfig(
        APP_ID=settings.microsoft_app_id or "",
        APP_PASSWORD=password.get_secret_value() if password is not None else "",
        APP_TYPE=settings.microsoft_app_type,
        APP_TENANTID=settings.microsoft_app_tenant_id,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.microsoft_openid_metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.microsoft_token_issuer,
        LOGIN_URL=settings.microsoft_login_url,
    )


def build_teams(settings: TeamsSettings, db: Database, record: Record) -> Teams | None:
    """``None`` when Teams is not configured; raises :class:`TeamsNotAllowed` for an unsafe configuration."""
    if not settings.teams_enabled:
        return None
    problems = teams_problems(settings)
    if problems:
        raise TeamsNotAllowed("; ".join(problems))
    from botbuilder.integration.aiohttp import CloudAdapter

    from adapters.teams.auth import OutboundTokens, bot_framework_authentication, credentials_factory
    from adapters.teams.connector import ConnectorClient
    from adapters.teams.inbound import TeamsRoute
    from adapters.teams.platform import TeamsPlatform
    from storage.teams import TeamsStore

    config = auth_config(settings)
    factory = credentials_factory(config)
    auth = bot_framework_authentication(config, factory)
    store = TeamsStore(db)
    connector = ConnectorClient(OutboundTokens(config, factory))
    platform = TeamsPlatform(connector, store, app_id=config.APP_ID)
    route = TeamsRoute(
        adapter=CloudAdapter(auth),
        auth=auth,
        store=store,
        record=record,
        app_id=config.APP_ID,
        max_body=settings.max_body_bytes,
        tell=platform.post_private,
    )
    return Teams(platform=platform, route=route, connector=connector)


def add_route(web_app: web.Application, teams: Teams) -> None:
    web_app.router.add_post(ROUTE, teams.route.handle)
