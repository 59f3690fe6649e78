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

    # ---- Adaptive Card buttons --------------------------------------------------------------------------------
    def personal_cards(self, person: TeamsPerson) -> list[dict[str, Any]]:
        """The bot's messages with an Adaptive Card in ``person``'s 1:1 chat with it, oldest first."""
        conversation = self.connector.personal.get(person.user_id)
        activities = self.connector.conversations.get(conversation, []) if conversation else []
        return [a for a in activities if _card(a) is not None]

    def card_submission(self, person: TeamsPerson, card_activity: dict[str, Any], title: str) -> dict[str, Any]:
        """The activity Teams sends when ``person`` presses the ``Action.Submit`` titled ``title`` on the card the
        bot posted as ``card_activity`` (in their 1:1 chat): a message with the action's ``data`` as ``value``
        and no text, replying to the card."""
        card = _card(card_activity)
        submits = [a for a in _submit_actions(card or {}) if a.get("title") == title]
        if not submits:
            raise ValueError(f"no Action.Submit titled {title!r} on that card")
        conversation = self.connector.personal.get(person.user_id)
        if conversation is None:
            raise ValueError(f"{person.name} has no 1:1 chat with the bot")
        activity_id = self.connector.next_id()
        return {
            "type": "message",
            "id": activity_id,
            "timestamp": datetime.now(UTC).isoformat(),
            "localTimestamp": datetime.now(UTC).isoformat(),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "from": {"id": person.user_id, "name": person.name, "aadObjectId": f"aad-{person.user_id[3:]}"},
            "conversation": {"conversationType": "personal", "tenantId": self.connector.tenant_id, "id": conversation},
            "recipient": {"id": f"28:{self.app_id}", "name": BOT_NAME},
            "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web"}],
            "channelData": {
                "tenant": {"id": self.connector.tenant_id},
                "source": {"name": "message"},
                "legacy": {"replyToId": card_activity["id"]},
            },
            "replyToId": card_activity["id"],
            "value": submits[0].get("data"),
            "locale": "en-US",
        }

    async def submit_card(self, person: TeamsPerson, card_activity: dict[str, Any], title: str) -> dict[str, Any]:
        """``person`` presses the button; returns the activity sent (deliver it again to act out a redelivery)."""
        activity = self.card_submission(person, card_activity, title)
        delivery = await self.deliver(activity)
        assert delivery.status == 200, delivery
        return activity

    def root_form_submission(
        self, channel: str, person: TeamsPerson, root_activity: dict[str, Any], title: str, inputs: dict[str, str]
    ) -> dict[str, Any]:
        """The activity Teams sends when ``person`` opens the ``Action.ShowCard`` titled ``title`` on the card of the
        channel post ``root_activity``, types ``inputs`` (input id -> text) and presses the form's ``Action.Submit``:
        a message in the post's chain with no text whose ``value`` is the action's ``data`` plus every input of the
        shown card (an empty string for one left empty). A required input left empty is refused by the client, as
        Teams does (nothing is sent)."""
        shown = [
            a.get("card") or {}
            for a in (_card(root_activity) or {}).get("actions") or []
            if a.get("type") == "Action.ShowCard" and a.get("title") == title
        ]
        if not shown:
            raise ValueError(f"no Action.ShowCard titled {title!r} on that card")
        fields = _inputs(shown[0])
        unknown = set(inputs) - {f["id"] for f in fields}
        if unknown:
            raise ValueError(f"the {title!r} form has no input {sorted(unknown)}")
        values = {f["id"]: inputs.get(f["id"], "") for f in fields}
        missing = [f["id"] for f in fields if f.get("isRequired") and not values[f["id"]].strip()]
        if missing:
            raise ValueError(f"Teams would not submit the form: {missing} required")
        submits = _submit_actions(shown[0])
        if len(submits) != 1:
            raise ValueError(f"the {title!r} form has {len(submits)} submit actions")
        root_id = str(root_activity["id"])
        activity = self.activity(channel, person, "", root=root_id)
        del activity["text"]
        activity["value"] = {**(submits[0].get("data") or {}), **values}
        return activity

    async def submit_root_form(
        self, channel: str, person: TeamsPerson, root_activity: dict[str, Any], title: str, inputs: dict[str, str]
    ) -> dict[str, Any]:
        """``person`` fills in and submits a thread root's form; returns the activity sent (deliver it again to act
        out a redelivery)."""
        activity = self.root_form_submission(channel, person, root_activity, title, inputs)
        delivery = await self.deliver(activity)
        assert delivery.status == 200, delivery
        return activity


def _inputs(element: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``Input.*`` element in a card's body, nested containers too."""
    found: list[dict[str, Any]] = []
    for child in element.get("body") or element.get("items") or []:
        if isinstance(child, dict):
            if str(child.get("type", "")).startswith("Input.") and child.get("id"):
                found.append(child)
            found += _inputs(child)
    return found


def _card(activity: dict[str, Any]) -> dict[str, Any] | None:
    for attachment in activity.get("attachments") or []:
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
            content = attachment.get("content")
            return content if isinstance(content, dict) else None
    return None


def _submit_actions(element: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``Action.Submit`` in a card: its own actions and those of ``ActionSet``s in its body, nested too."""
    found = [a for a in element.get("actions") or [] if a.get("type") == "Action.Submit"]
    for child in element.get("body") or element.get("items") or []:
        if isinstance(child, dict):
            found += _submit_actions(child)
    return found
