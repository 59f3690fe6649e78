"""The App Home as Slack shows it to a person: opening the tab (``app_home_opened``) and clicking its buttons
(``block_actions`` from a ``home`` view), signed and delivered like every other event."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from sandbox.slack.events import EventsMixin
from sandbox.slack.interactions import Interaction, PublishedHome
from sandbox.slack.state import Delivery


class HomeMixin(EventsMixin):
    def home_of(self, user_id: str) -> PublishedHome | None:
        """``user_id``'s Home tab as the app last published it (None: never published)."""
        return self.interactions.homes.get(user_id)

    async def open_home(self, user_id: str, *, tab: str = "home", deliveries: int = 1) -> list[Delivery]:
        """``user_id`` opens the app's Home tab (or ``tab`` ``messages``/``about``): an ``app_home_opened`` event,
        with the tab's current view when one was published, from the user's workspace."""
        user = self.users.get(user_id)
        if user is None:
            raise ValueError(f"unknown sandbox user {user_id!r}")
        ts = self.new_ts()
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D{user_id.lstrip('UW')[:10]}",  # the user's DM with the bot
            "tab": tab,
            "event_ts": ts,
        }
        home = self.interactions.homes.get(user_id)
        if home is not None:
            event["view"] = copy.deepcopy(home.view)
        return await self.deliver_event(event, deliveries=deliveries, team_id=str(user["team_id"]))

    async def click_home(self, user_id: str, label: str, *, view: PublishedHome | None = None) -> Interaction:
        """``user_id`` clicks the button labelled ``label`` on their Home tab: a ``block_actions`` payload from a
        ``home`` view (no channel, no response_url). ``view``: click on that view instead of the tab as last
        published, e.g. an older one (a stale tab) or someone else's (a forged payload: Slack never sends one, the
        bridge must still check the clicker)."""
        home = view or self.interactions.homes.get(user_id)
        if home is None:
            raise ValueError(f"no Home tab was published for {user_id}")
        found = [(b, e) for b, e in home.buttons() if (e.get("text") or {}).get("text") == label]
        if not found:
            raise ValueError(f"no button {label!r} on that Home tab")
        block, button = found[0]
        user = self.users.get(user_id, {})
        team = str(user.get("team_id") or self.team_id)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {**self._user_brief(user_id), "team_id": team},
            "api_app_id": self.api_app_id,
            "token": "sandbox-verification-token",
            "container": {"type": "view", "view_id": home.view_id},
            "trigger_id": self.interactions.issue(user_id),
            "team": {"id": team, "domain": self.workspaces[team].domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": copy.deepcopy(home.view),
            "state": {"values": {}},
            "actions": [
                {
                    "action_id": button.get("action_id"),
                    "block_id": block.get("block_id") or uuid.uuid4().hex[:5],
                    "text": button.get("text"),
                    "value": button.get("value"),
                    "style": button.get("style"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return await self.deliver_interaction(payload)
