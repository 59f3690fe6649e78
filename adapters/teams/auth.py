"""Bot Framework authentication for the Teams route, in and out.

Inbound: ``ConfigurationBotFrameworkAuthentication`` validates the channel's JWT (issuer, signature against the
OpenID metadata's JWKS with the ``msteams`` endorsement, expiry, audience = our app id, ``serviceurl`` claim).
:func:`authenticate` runs it in a worker thread, because the library fetches the metadata with blocking
``requests`` (it would stall the event loop), and sorts failures into "refuse" (401) and "cannot check now"
(503).

Outbound: the same ``credentials_factory`` the adapter uses makes the credentials whose token we send to the
connector. In production that is botbuilder's ``ConfigurationServiceClientCredentialFactory``, by ``APP_TYPE``:
``SingleTenant`` and ``MultiTenant`` give ``MicrosoftAppCredentials`` (MSAL client credentials at
``https://login.microsoftonline.com/<tenant id>``, or ``/botframework.com`` for MultiTenant), ``UserAssignedMSI``
gives ``ManagedIdentityAppCredentials`` (MSAL's managed identity client; the app id is the identity's client id).
tests/teams/test_outbound_tokens.py runs exactly that path against a local Entra ID stand-in, reached through
``HTTPS_PROXY`` / ``REQUESTS_CA_BUNDLE``, which MSAL honours.

With ``MICROSOFT_LOGIN_URL`` set (sandboxes, the demo and the other Teams tests) it is
:class:`TokenEndpointCredentialFactory` instead: a plain OAuth2 client-credentials call to that URL, whatever
the type. That shortcut skips MSAL, the authority and the tenant: never set it for a real bot.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

import requests
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    AuthenticationConstants,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)


class Unauthorized(Exception):
    """The request's token is missing or invalid: answer 401."""


class AuthUnavailable(Exception):
    """The token could not be checked (OpenID metadata unreachable): answer 503 so the channel retries."""


@dataclass(frozen=True)
class TeamsAuthConfig:
    """The attributes ``ConfigurationBotFrameworkAuthentication`` reads (botbuilder's configuration names)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str | None
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str | None = None
    LOGIN_URL: str | None = None


class _TokenEndpointCredentials(AppCredentials):
    """Client-credentials tokens from a plain token URL, cached until shortly before they expire."""

    def __init__(self, app_id: str, password: str, token_url: str, scope: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=scope)
        self._password = password
        self._token_url = token_url
        self._token: str | None = None
        self._expires = 0.0

    def get_access_token(self, force_refresh: bool = False) -> str:
        if self._token and not force_refresh and time.time() < self._expires - 60:
            return self._token
        response = requests.post(
            self._token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.microsoft_app_id,
                "client_secret": self._password,
                "scope": f"{self.oauth_scope}/.default",
            },
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        self._token = str(body["access_token"])
        self._expires = time.time() + float(body.get("expires_in", 3600))
        return self._token


class TokenEndpointCredentialFactory(ServiceClientCredentialsFactory):
    """``credentials_factory`` for a sandbox (or any) token endpoint; app id and password as configured."""

    def __init__(self, app_id: str, password: str, token_url: str) -> None:
        self.app_id = app_id
        self.password = password
        self.token_url = token_url

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self.app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self.app_id:
            raise PermissionError("Invalid app_id")
        scope = oauth_scope or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        return _TokenEndpointCredentials(self.app_id, self.password, self.token_url, scope)


def credentials_factory(config: TeamsAuthConfig) -> ServiceClientCredentialsFactory:
    if config.LOGIN_URL:
        return TokenEndpointCredentialFactory(config.APP_ID, config.APP_PASSWORD, config.LOGIN_URL)
    if not config.APP_ID:
        # No app id (RALLYBRIDGE_TEAMS_SANDBOX): no authentication. botbuilder allows that only in its MultiTenant
        # branch; SingleTenant and UserAssignedMSI raise without an app id.
        config = replace(config, APP_TYPE="MultiTenant")
    return ConfigurationServiceClientCredentialFactory(config)


def bot_framework_authentication(
    config: TeamsAuthConfig, factory: ServiceClientCredentialsFactory
) -> ConfigurationBotFrameworkAuthentication:
    return ConfigurationBotFrameworkAuthentication(config, credentials_factory=factory)


class OutboundTokens:
    """Bearer tokens for connector calls; ``None`` when no app id is configured (sandbox without auth)."""

    def __init__(self, config: TeamsAuthConfig, factory: ServiceClientCredentialsFactory) -> None:
        self._config = config
        self._factory = factory
        self._credentials: Any = None

    async def __call__(self) -> str | None:
        if not self._config.APP_ID:
            return None
        if self._credentials is None:
            self._credentials = await self._factory.create_credentials(
                self._config.APP_ID,
                AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL,
                True,
            )
        token = await asyncio.to_thread(self._credentials.get_access_token)
        return str(token) if token else None


def _authenticate_blocking(
    auth: ConfigurationBotFrameworkAuthentication, activity: Activity, header: str | None
) -> AuthenticateRequestResult:
    return asyncio.run(auth.authenticate_request(activity, header))


async def authenticate(
    auth: ConfigurationBotFrameworkAuthentication, activity: Activity, header: str | None
) -> AuthenticateRequestResult:
    """Validate the request's token; raises :class:`Unauthorized` or :class:`AuthUnavailable`."""
    try:
        return await asyncio.to_thread(_authenticate_blocking, auth, activity, header)
    except requests.RequestException as exc:
        raise AuthUnavailable(type(exc).__name__) from exc
    except Exception as exc:  # PermissionError, PyJWT errors, unknown key id, malformed token ...
        raise Unauthorized(type(exc).__name__) from exc
