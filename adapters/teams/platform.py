"""``ChatPlatform`` for Microsoft Teams, over the Bot Framework connector REST API.

What differs from Slack, and why (also in docs/teams.md):

* **Thread root** = a new post (reply chain) in the channel: ``POST /v3/conversations`` with
  ``channelData.channel.id``, carrying an Adaptive Card. Its activity id is the thread's ``root_id``; replies
  go to ``{channel};messageid={root}``. Every send uses the ``ConversationReference`` stored when the channel
  was last heard from (service URL, tenant, bot id), so proactive sends work after a restart.
* **Private** = Teams has no ephemeral messages. The honest equivalent is a personal 1:1 chat with the
  person (``POST /v3/conversations`` with ``members``). If Teams refuses to open one (the app is not allowed to
  chat with them), the note is posted where they wrote, @mentioning them and saying it could not be private.
* **Reactions** = bots cannot react in Teams. A delivery acknowledgement is a short reply in the chain
  (``✓ Chloe Park's reply was delivered to Jordan L.``; ``✗ ... not delivered`` for a failure). The pending and
  seen marks post nothing: the root card's status line says that the participant has read it.
* **Live root card** = the root post is redrawn in place with an activity update
  (``PUT /v3/conversations/{channel};messageid={root}/activities/{root}``), paced like a send into the thread.
* **Direct messages** = the personal 1:1 chat (as private notes are).
* **Verification** = the connector cannot list messages. Each keyed post is recorded as ``sending`` before
  the call and ``sent`` (with its activity id) after it; ``find_post`` answers from that record. If the process
  dies or the call times out between the two, the outcome stays unknown and the post is repeated:
  at-least-once in that window (Slack: exactly once via message metadata).
* **Pacing** = per-thread :class:`~adapters.teams.pacing.ThreadPacer`; 429/412/5xx are retried by the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from adapters.teams import card
from adapters.teams import format as fmt
from adapters.teams.connector import ConnectorClient
from core.domain import Action, ChatUser, Mark, PostedMessage
from core.errors import NotFound, PermanentFailure
from core.message import Text
from core.ports import ThreadRoot
from storage.teams import SENT, ConversationContext, TeamsStore

log = logging.getLogger(__name__)

# Teams bots cannot react: the final outcomes are acknowledged with a short reply. The pending mark is not shown.
ACKNOWLEDGEMENTS = {
    Mark.DELIVERED: "✓ {author} was delivered to {participant}",
    Mark.FAILED: "✗ {author} was not delivered.",
}
# Each acknowledgement's token in its post key (the tokens posts were keyed with before marks were neutral).
_ACK_TOKENS = {Mark.DELIVERED: "white_check_mark", Mark.FAILED: "x"}


def thread_conversation(channel: str, root_id: str) -> str:
    return f"{channel};messageid={root_id}"


class TeamsPlatform:
    """The Teams side of the bridge: implements ``core.ports.ChatPlatform``."""

    def __init__(
        self,
        connector: ConnectorClient,
        store: TeamsStore,
        *,
        app_id: str,
        bot_name: str = "Rally Bridge",
    ) -> None:
        self.connector = connector
        self.store = store
        self.app_id = app_id
        self.bot_name = bot_name

    # --- context ------------------------------------------------------------------------------------------

    async def _channel(self, channel: str) -> ConversationContext:
        context = await self.store.conversation(f"channel:{channel}")
        if context is None:
            raise PermanentFailure("the bridge has not heard from this Teams channel yet (is the app installed?)")
        return context

    def _bot(self, context: ConversationContext) -> dict[str, Any]:
        bot = dict(context.reference.get("bot") or {})
        return {"id": bot.get("id") or f"28:{self.app_id}", "name": bot.get("name") or self.bot_name}

    def _message(self, context: ConversationContext, text: str, **extra: Any) -> dict[str, Any]:
        return {"type": "message", "textFormat": "xml", "text": text, "from": self._bot(context), **extra}

    # --- keyed posts (recorded for find_post) ---------------------------------------------------------------

    async def _new_post(self, channel: str, activity: dict[str, Any], *, key: str) -> PostedMessage:
        """A new reply chain in ``channel``; returns the root's activity id as ``ts``."""
        context = await self._channel(channel)
        await self.store.post_started(key, channel)
        params = {
            "isGroup": True,
            "bot": self._bot(context),
            "tenantId": context.tenant_id,
            "channelData": {"channel": {"id": channel}, "tenant": {"id": context.tenant_id}},
            "activity": activity,
        }
        result = await self.connector.create_conversation(context.service_url, params, pace=channel)
        activity_id = str(result.get("activityId") or "") or _root_of(str(result["id"]))
        await self.store.post_sent(key, channel, activity_id)
        return PostedMessage(channel=channel, post_id=activity_id)

    async def _reply(self, channel: str, root_id: str, activity: dict[str, Any], *, key: str) -> PostedMessage:
        context = await self._channel(channel)
        conversation = thread_conversation(channel, root_id)
        await self.store.post_started(key, conversation)
        activity = {**activity, "replyToId": root_id}
        activity_id = await self.connector.send(context.service_url, conversation, activity, reply_to=root_id)
        await self.store.post_sent(key, conversation, activity_id)
        return PostedMessage(channel=channel, post_id=activity_id)

    def _root_activity(self, context: ConversationContext, channel: str, root: ThreadRoot) -> dict[str, Any]:
        """The root post: the participant's live card (``adapters/teams/card.py``) and a plain summary, no text."""
        content = card.thread_root_card(root, channel, self.bot_name)
        activity = self._message(
            context,
            "",
            summary=card.root_summary(root, self.bot_name),
            attachments=[{"contentType": card.ADAPTIVE_CARD, "content": content}],
        )
        del activity["text"]
        return activity

    async def post_thread_root(self, channel: str, root: ThreadRoot, *, key: str) -> PostedMessage:
        """A new post in the channel with the participant's Adaptive Card (with Remind, Follow up and Send
        scheduling link forms and ``Assign to me`` when the root names the participant's id)."""
        context = await self._channel(channel)
        return await self._new_post(channel, self._root_activity(context, channel, root), key=key)

    async def update_thread_root(self, channel: str, root_id: str, root: ThreadRoot) -> None:
        """Redraw the root card in place: ``PUT /v3/conversations/{channel};messageid={root}/activities/{root}`` with
        the new activity (the conversation the root post heads, as ``create_conversation`` named it), paced like a
        send into that thread. A root that is gone is ``NotFound`` (a ``PermanentFailure``)."""
        context = await self._channel(channel)
        activity = {**self._root_activity(context, channel, root), "id": root_id}
        conversation = thread_conversation(channel, root_id)
        await self.connector.update(context.service_url, conversation, root_id, activity)

    async def post_participant_message(
        self, channel: str, root_id: str, author_name: str, body: str, *, key: str
    ) -> PostedMessage:
        """The participant's words as a reply in their chain: attributed, HTML-escaped (no markup, no mentions)."""
        context = await self._channel(channel)
        text = f"<b>{fmt.escape(author_name)}</b> (participant):<br>{fmt.escape(body)}"
        return await self._reply(channel, root_id, self._message(context, text), key=key)

    async def post_notice(self, channel: str, text: Text, *, key: str, root_id: str | None = None) -> PostedMessage:
        """The bridge's words in the channel or a thread; a person named in them (``Person``) is mentioned: ``<at>``
        in the text and its ``mention`` entity on the activity."""
        context = await self._channel(channel)
        activity = self._message(context, fmt.render(text, self.bot_name), **_mentions(text))
        if root_id is None:
            return await self._new_post(channel, activity, key=key)
        return await self._reply(channel, root_id, activity, key=key)

    async def find_post(self, channel: str, key: str, *, root_id: str | None = None) -> PostedMessage | None:
        """The post an earlier attempt made, from the bridge's own record (the connector cannot list posts)."""
        record = await self.store.post(key)
        if record is None or record.state != SENT or not record.activity_id:
            return None
        return PostedMessage(channel=channel, post_id=record.activity_id)

    # --- private notes and acknowledgements ------------------------------------------------------------------

    async def _personal_conversation(self, user_id: str, context: ConversationContext) -> str:
        known = await self.store.conversation(f"personal:{user_id}")
        if known is not None:
            return known.conversation_id
        params = {
            "isGroup": False,
            "bot": self._bot(context),
            "members": [{"id": user_id}],
            "tenantId": context.tenant_id,
            "channelData": {"tenant": {"id": context.tenant_id}},
        }
        result = await self.connector.create_conversation(context.service_url, params, pace=f"personal:{user_id}")
        conversation_id = str(result["id"])
        reference = {**context.reference, "conversation": {"id": conversation_id, "conversationType": "personal"}}
        personal = ConversationContext(conversation_id, context.tenant_id, None, context.service_url, reference)
        await self.store.remember(personal, f"personal:{user_id}", None)
        return conversation_id

    async def post_private(
        self, channel: str, user_id: str, text: Text, *, root_id: str | None = None, actions: Sequence[Action] = ()
    ) -> None:
        """A personal 1:1 message to ``user_id`` (Teams has no ephemeral messages); see the module docstring.
        With ``actions`` it is an Adaptive Card with one ``Action.Submit`` per action (see ``fmt.private_card``)."""
        personal = await self.store.conversation(f"personal:{user_id}")
        context = personal or await self._channel(channel)
        wording = fmt.wording(text, self.bot_name)
        body = fmt.render(text, self.bot_name)
        extra: dict[str, Any] = {}
        if actions:
            buttons = [(a.label, a.command, a.style) for a in actions]
            content = fmt.private_card(wording, buttons, channel)
            extra = {"attachments": [{"contentType": card.ADAPTIVE_CARD, "content": content}]}
        try:
            conversation = await self._personal_conversation(user_id, context)
        except PermanentFailure as exc:
            if channel.startswith("19:"):
                log.info("no personal chat with a Teams user (%s); telling them in the channel", exc.reason)
                await self._mention_in_channel(channel, user_id, body, root_id, extra)
                return
            raise
        activity = self._message(context, body, **(extra or _mentions(text)))
        if extra:
            del activity["text"]  # the card carries the text
            activity["summary"] = wording.split("\n", 1)[0]
        await self.connector.send(context.service_url, conversation, activity)

    async def post_direct(self, user_id: str, text: Text, *, key: str) -> None:
        """A message in the bot's personal chat with ``user_id`` (opened if needed; the bridge must have heard of
        them), recorded under ``key`` like every keyed post (``find_post``)."""
        known = await self.store.conversation(f"personal:{user_id}")
        if known is None:
            seen = await self.store.user(user_id)
            if seen is None:
                raise NotFound("the bridge has not seen this Teams user in a channel yet")
            known = await self._channel(seen.conversation_id.partition(";messageid=")[0])
        conversation = await self._personal_conversation(user_id, known)
        activity = self._message(known, fmt.render(text, self.bot_name), **_mentions(text))
        await self.store.post_started(key, conversation)
        activity_id = await self.connector.send(known.service_url, conversation, activity)
        await self.store.post_sent(key, conversation, activity_id)

    async def _mention_in_channel(
        self, channel: str, user_id: str, body: str, root_id: str | None, extra: dict[str, Any] | None = None
    ) -> None:
        context = await self._channel(channel)
        known = await self.store.user(user_id)
        name = fmt.escape(known.name if known else "you")
        mention = f"<at>{name}</at>"
        text = f"{mention} (I couldn't message you privately) {body}"
        entity = {"type": "mention", "text": mention, "mentioned": {"id": user_id, "name": name}}
        activity = self._message(context, text, entities=[entity], **(extra or {}))
        if root_id is None:
            params = {
                "isGroup": True,
                "bot": self._bot(context),
                "tenantId": context.tenant_id,
                "channelData": {"channel": {"id": channel}, "tenant": {"id": context.tenant_id}},
                "activity": activity,
            }
            await self.connector.create_conversation(context.service_url, params, pace=channel)
            return
        conversation = thread_conversation(channel, root_id)
        await self.connector.send(context.service_url, conversation, {**activity, "replyToId": root_id})

    async def add_mark(self, channel: str, post_id: str, mark: Mark, *, occasion: str = "") -> None:
        """Teams bots cannot react: acknowledge with a short reply in the chain, once per message, mark and
        ``occasion`` (a retried relay that fails again is acknowledged again). Pending and seen are not shown as a
        reply: pending would be noise, and that the participant has read the conversation is a line on the root
        card (``ThreadRoot.status``), which a redraw keeps current; a reply per read would flood the chain."""
        template = ACKNOWLEDGEMENTS.get(mark)
        if template is None:
            return  # pending and seen: not posted in Teams (see above and remove_mark)
        message = await self.store.message_context(channel, post_id)
        if message is None:
            log.debug("no Teams acknowledgement for %s on an unknown message", mark.value)
            return
        key = f"ack:{channel}:{post_id}:{_ACK_TOKENS[mark]}{occasion}"
        if await self.find_post(channel, key) is not None:
            return
        author = f"{message.author_name}'s reply" if message.author_name else "The reply"
        text = template.format(author=author, participant=message.participant_name)
        context = await self._channel(channel)
        await self._reply(channel, message.root_id, self._message(context, fmt.escape(text)), key=key)

    async def remove_mark(self, channel: str, post_id: str, mark: Mark) -> None:
        """Nothing to take back: only final outcomes (delivered / not delivered) are acknowledged in Teams;
        the pending and seen marks Slack shows as reactions have no reply in Teams (the card says seen)."""
        return None

    # --- people and text ---------------------------------------------------------------------------------------

    async def find_user_by_email(self, email: str, *, channel: str) -> ChatUser | None:
        """The member of ``channel``'s team whose ``email`` (or ``userPrincipalName``) is ``email``: the roster, read a
        page at a time (``GET /v3/conversations/{id}/pagedmembers``)."""
        context = await self._channel(channel)
        wanted = email.strip().casefold()
        continuation: str | None = None
        for _page in range(20):  # 10,000 members at most
            members, continuation = await self.connector.paged_members(context.service_url, channel, continuation)
            for member in members:
                found = str(member.get("email") or member.get("userPrincipalName") or "")
                if found.casefold() == wanted and member.get("id"):
                    return ChatUser(user_id=str(member["id"]), name=str(member.get("name") or found), email=found)
            if continuation is None:
                break
        return None

    async def lookup_user(self, user_id: str) -> ChatUser:
        """Name and email from the Teams roster (``email``, else ``userPrincipalName``)."""
        known = await self.store.user(user_id)
        if known is None:
            raise NotFound("the bridge has not seen this Teams user in a channel yet")
        member = await self.connector.get_member(known.service_url, known.conversation_id, user_id)
        email = member.get("email") or member.get("userPrincipalName") or None
        name = str(member.get("name") or known.name)
        return ChatUser(user_id=user_id, name=name, email=str(email) if email else None)

    async def to_plain_text(self, text: str) -> str:
        """Mentions as ``@Name`` (the bot's own dropped), links as ``label (url)``, no HTML left."""
        return fmt.to_plain_text(text, bot_name=self.bot_name)


def _mentions(text: Text) -> dict[str, Any]:
    """``entities`` for an activity whose text is ``fmt.render(text)``: the people it mentions (none: no key)."""
    entities = fmt.mention_entities(text)
    return {"entities": entities} if entities else {}


def _root_of(conversation_id: str) -> str:
    _base, sep, root = conversation_id.partition(";messageid=")
    if not sep or not root:
        raise PermanentFailure("Teams did not say which post it created")
    return root
