"""Message shortcuts as Slack delivers them: a person picks one from a message's ⋯ menu (``message_action``)."""

from __future__ import annotations

import copy
import time
from typing import Any

from sandbox.slack.events import EventsMixin, Interaction


class ShortcutsMixin(EventsMixin):
    async def message_shortcut(self, channel: str, user_id: str, ts: str, callback_id: str) -> Interaction:
        """``user_id`` runs the message shortcut ``callback_id`` on message ``ts`` of ``channel``: a signed
        ``message_action`` payload with the message (thread_ts included when it is in a thread)."""
        self._check_channel(channel)
        found = self.find_message(channel, ts)
        if found is None:
            raise ValueError(f"no message {ts} in {channel}")
        message = {k: v for k, v in copy.deepcopy(found).items() if k != "metadata"}
        payload: dict[str, Any] = {
            "type": "message_action",
            "callback_id": callback_id,
            "token": "sandbox-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_brief(user_id),
            "channel": {"id": channel, "name": self.channels[channel]},
            "is_enterprise_install": False,
            "enterprise": None,
            "message_ts": found["ts"],
            "message": message,
            "trigger_id": self.interactions.issue(user_id),
            "response_url": self._new_response_url(),
        }
        return await self.deliver_interaction(payload)
