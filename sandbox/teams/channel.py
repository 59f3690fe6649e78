"""``TeamsSandbox``: a Teams team on 127.0.0.1 that talks to the bridge the way Teams does.

It owns the connector stand-in (the ``serviceUrl`` the bridge posts to), the OpenID/JWKS stand-in (on its own
thread) and sends signed activities to the bridge's ``/api/messages``: people posting, replying, @mentioning
the bot with a command, editing and deleting. :meth:`settings` gives the bridge settings that point at it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from sandbox.teams.connector import TOKEN_PATH, TeamsConnectorSandbox
from sandbox.teams.openid import OpenIdSandbox

BOT_NAME = "Rally Bridge"


@dataclass(frozen=True)
class TeamsPerson:
    user_id: str
    name: str
    email: str | None
    upn: str | None = None


@dataclass(frozen=True)
class Delivery:
    status: int
    body: str


@dataclass
class TeamsSandbox:
    connector: TeamsConnectorSandbox
    openid: OpenIdSandbox
    bridge_url: str
    app_id: str
    app_password: str
    deliveries: list[Delivery] = field(default_factory=list)

    @classmethod
    async def create(cls, bridge_url: str, *, app_id: str | None = None, limits: bool = True) -> TeamsSandbox:
        app_id = app_id if app_id is not None else f"{secrets.token_hex(4)}-app-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        connector = TeamsConnectorSandbox(app_id=app_id, app_password=password, limits=limits)
        await connector.start()
        openid = OpenIdSandbox()
        openid.start()
        return cls(connector, openid, bridge_url, app_id, password)

    async def stop(self) -> None:
        await self.connector.stop()
        self.openid.stop()

    @property
    def service_url(self) -> str:
        assert self.connector.base_url is not None
        return self.connector.base_url

    def settings(self) -> dict[str, str]:
        """Bridge settings (environment names) for this sandbox, with real token validation."""
        return {
            "MICROSOFT_APP_ID": self.app_id,
            "MICROSOFT_APP_PASSWORD": self.app_password,
            "MICROSOFT_APP_TYPE": "MultiTenant",
            "MICROSOFT_OPENID_METADATA_URL": self.openid.metadata_url,
            "MICROSOFT_TOKEN_ISSUER": self.openid.issuer,
            "MICROSOFT_LOGIN_URL": self.service_url + TOKEN_PATH,
            "RALLYBRIDGE_TEAMS_SANDBOX": "1",
        }

    # ---- activities as Teams sends them -------------------------------------------------------------------
    def activity(
        self,
        channel: str,
        person: TeamsPerson,
        text: str,
        *,
        root: str | None = None,
        kind: str = "message",
        activity_id: str | None = None,
        mention_bot: bool = False,
        files: bool = False,
        event_type: str | None = None,
    ) -> dict[str, Any]:
        activity_id = activity_id or self.connector.next_id()
        entities: list[dict[str, Any]] = []
        if mention_bot:
            mention = f"<at>{BOT_NAME}</at>"
            text = f"{mention} {text}"
            entities.append(
                {"type": "mention", "text": mention, "mentioned": {"id": f"28:{self.app_id}", "name": BOT_NAME}}
            )
        channel_data: dict[str, Any] = {
            "teamsChannelId": channel,
            "teamsTeamId": self.connector.team_id,
            "channel": {"id": channel},
            "team": {"id": self.connector.team_id},
            "tenant": {"id": self.connector.tenant_id},
        }
        if event_type:
            channel_data["eventType"] = event_type
        activity: dict[str, Any] = {
            "type": kind,
            "id": activity_id,
            "timestamp": datetime.now(UTC).isoformat(),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "from": {"id": person.user_id, "name": person.name, "aadObjectId": f"aad-{person.user_id[3:]}"},
            "conversation": {
                "isGroup": True,
                "conversationType": "channel",
                "tenantId": self.connector.tenant_id,
                "id": f"{channel};messageid={root or activity_id}",
            },
            "recipient": {"id": f"28:{self.app_id}", "name": BOT_NAME},
            "textFormat": "plain",
            "text": text,
            "entities": entities,
            "channelData": channel_data,
            "locale": "en-US",
        }
        if root:
            activity["replyToId"] = root
        if files:
            activity["attachments"] = [
                {
                    "contentType": "application/vnd.microsoft.teams.file.download.info",
                    "name": "notes.pdf",
                    "content": {"downloadUrl": "https://example.invalid/notes.pdf", "fileType": "pdf"},
                }
            ]
        return activity

    async def deliver(self, activity: dict[str, Any], *, token: str | bool | None = True) -> Delivery:
        """POST ``activity`` to the bridge; ``token`` True signs a valid channel token, a string is sent as is,
        False/None sends no Authorization header."""
        headers = {"Content-Type": "application/json"}
        if token is True:
            token = self.openid.token(self.app_id, activity.get("serviceUrl", self.service_url))
        if isinstance(token, str):
            headers["Authorization"] = f"Bearer {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.bridge_url}/api/messages", json=activity, headers=headers) as resp,
        ):
            delivery = Delivery(resp.status, await resp.text())
        self.deliveries.append(delivery)
        return delivery

    async def posts(self, channel: str, person: TeamsPerson, text: str, *, root: str | None = None, **kw: Any) -> str:
        """``person`` writes ``text`` (a reply in ``root``'s chain if given); returns the activity id."""
        activity = self.activity(channel, person, text, root=root, **kw)
        delivery = await self.deliver(activity)
        assert delivery.status == 200, delivery
        return str(activity["id"])

    async def command(self, channel: str, person: TeamsPerson, text: str) -> str:
        """``@Rally Bridge <text>`` as a new post in the channel."""
        return await self.posts(channel, person, text, mention_bot=True)

    async def edits(self, channel: str, person: TeamsPerson, activity_id: str, text: str, *, root: str) -> None:
        activity = self.activity(
            channel, person, text, root=root, kind="messageUpdate", activity_id=activity_id, event_type="editMessage"
        )
        assert (await self.deliver(activity)).status == 200

    async def install(self, channel: str) -> None:
        """The app is added to the team: Teams sends ``conversationUpdate`` (the bridge learns the serviceUrl)."""
        activity = self.activity(channel, TeamsPerson("29:installer", "Installer", None), "", kind="conversationUpdate")
        activity["channelData"]["eventType"] = "teamMemberAdded"
        activity["membersAdded"] = [{"id": f"28:{self.app_id}"}]
        assert (await self.deliver(activity)).status == 200
