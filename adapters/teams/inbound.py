"""Teams in: ``POST /api/messages`` through botbuilder's ``CloudAdapter``, and activities as inbound events.

Order of checks: body size (413) -> with an app id configured, an ``Authorization: Bearer`` header must be
present (401; the library itself would answer 500) -> JSON activity (400) -> the token (401, or 503 when the
OpenID metadata cannot be fetched) -> the turn runs: the conversation reference is stored, the activity is
translated and stored in the inbox -> 200. A storage failure answers 503 so that the channel retries.

Translation (``workspace`` = tenant id, ``channel`` = the Teams channel id ``19:...@thread.tacv2``,
``ts`` = activity id, ``thread_ts`` = the root id from the conversation id's ``;messageid=`` part):

* a channel message that @mentions the bot and is a new post, or whose first word is a command word, is a
  ``chat_command`` (the mention removed); any other channel message is a ``chat_message``;
* ``messageUpdate`` / ``messageDelete`` (edit, soft delete) -> ``chat_message_changed``;
* a card button (``Action.Submit``: a message with our ``value`` and no text) -> ``chat_command`` with the command
  and channel the button carries (``format.private_card``), in a personal chat or a channel;
* a thread root's form (Remind, Follow up, Send scheduling link: ``format.form_card``) submitted in a channel is
  checked by ``core.forms`` as Slack's modals are: a valid one -> the ``chat_command`` it stands for, from the person
  who submitted it (so the command's permission check, answers and exactly-once apply); an invalid one is a
  :class:`Refusal`, told to them privately with what is wrong, and nothing is stored;
* a message in a personal chat with the bot -> ``chat_command`` ``help`` (studies are linked in channels);
* the bot's own activities, group chats and other activity types are acknowledged and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes

from adapters.teams import format as fmt
from adapters.teams.auth import AuthUnavailable, Unauthorized, authenticate
from adapters.web import read_limited
from core import clock, events, forms
from core.commands import registry
from core.errors import StorageUnavailable
from core.events import InboundEvent
from core.message import Text, cmd, join, text
from storage.teams import ConversationContext, TeamsStore, UserContext

log = logging.getLogger(__name__)

PLATFORM = "teams"
Record = Callable[[InboundEvent], Awaitable[bool]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FILE_TYPES = ("application/vnd.microsoft.teams.file", "image/", "video/", "audio/", "application/pdf")


def split_conversation_id(conversation_id: str) -> tuple[str, str | None]:
    """``19:x@thread.tacv2;messageid=17`` -> (``19:x@thread.tacv2``, ``17``)."""
    base, sep, root = conversation_id.partition(";messageid=")
    return base, (root if sep and root else None)


def _data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    return data if isinstance(data, dict) else {}


def _tenant(activity: Activity) -> str:
    tenant = (_data(activity).get("tenant") or {}).get("id")
    conversation = activity.conversation
    if not tenant and conversation is not None:
        tenant = conversation.tenant_id or (conversation.additional_properties or {}).get("tenantId")
    return str(tenant or "")


def channel_of(activity: Activity) -> str:
    channel = (_data(activity).get("channel") or {}).get("id")
    base, _root = split_conversation_id(activity.conversation.id if activity.conversation else "")
    return str(channel or base)


def _conversation_type(activity: Activity) -> str:
    return str((activity.conversation.conversation_type if activity.conversation else None) or "channel")


def context_of(activity: Activity) -> tuple[ConversationContext, str, UserContext | None]:
    """What to remember from an authenticated activity: the conversation reference and the speaker."""
    reference = TurnContext.get_conversation_reference(activity)
    personal = _conversation_type(activity) == "personal"
    sender = activity.from_property
    if personal and sender is not None:
        scope, conversation_id = f"personal:{sender.id}", activity.conversation.id
    else:
        conversation_id = channel_of(activity)
        scope = f"channel:{conversation_id}"
        if reference.conversation is not None:
            reference.conversation.id = conversation_id
    team_id = (_data(activity).get("team") or {}).get("id")
    context = ConversationContext(
        conversation_id=conversation_id,
        tenant_id=_tenant(activity) or None,
        team_id=team_id,
        service_url=activity.service_url or "",
        reference=reference.serialize(),
    )
    user = None
    if sender is not None and sender.id and sender.id != (activity.recipient.id if activity.recipient else None):
        user = UserContext(
            user_id=sender.id,
            name=sender.name or sender.id,
            aad_object_id=sender.aad_object_id,
            conversation_id=conversation_id,
            service_url=activity.service_url or "",
        )
    return context, scope, user


def _bot_mentions(activity: Activity) -> list[str]:
    bot_id = activity.recipient.id if activity.recipient else None
    texts: list[str] = []
    for mention in TurnContext.get_mentions(activity):
        props = mention.additional_properties or {}
        if (props.get("mentioned") or {}).get("id") == bot_id:
            texts.append(str(props.get("text") or f"<at>{(props.get('mentioned') or {}).get('name', '')}</at>"))
    return texts


def _has_files(activity: Activity) -> bool:
    return any(str(getattr(a, "content_type", "") or "").startswith(_FILE_TYPES) for a in (activity.attachments or []))


def _is_own(activity: Activity) -> bool:
    sender, recipient = activity.from_property, activity.recipient
    if sender is None or not sender.id:
        return True
    return bool(recipient is not None and sender.id == recipient.id) or (sender.role or "").lower() == "bot"


class Tell(Protocol):
    """How the route answers privately (``TeamsPlatform.post_private``): a refused form, before anything is stored."""

    async def __call__(self, channel: str, user_id: str, text: Text, *, root_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class Refusal:
    """A thread root's form that cannot become a command: what is wrong, for the person who submitted it."""

    channel: str
    user_id: str
    text: Text
    root_id: str | None


def refusal_text(form: fmt.SubmittedForm, errors: dict[str, Text]) -> Text:
    """Why a submitted form did nothing, field by field, and the command to type instead."""
    undone = "nothing was sent" if form.form == forms.RESCHEDULE else "nothing was scheduled"
    return text(
        f"{fmt.FORM_TITLES[form.form]} for {form.participant_id}: {undone}. ",
        join(" ", errors.values()),
        "\nFill in the form again, or type ",
        cmd(fmt.form_usage(form.form, form.participant_id)),
        ".",
    )


def _form_event(activity: Activity, form: fmt.SubmittedForm) -> InboundEvent | Refusal | None:
    """A root card's form, submitted in its channel, as the command it stands for (or why not)."""
    if _conversation_type(activity) != "channel" or activity.conversation is None:
        return None
    channel = channel_of(activity)
    _base, root = split_conversation_id(activity.conversation.id)
    user_id = activity.from_property.id
    filled = forms.fill(form.form, form.participant_id, form.values, now=clock.now())
    if filled.command is None:
        return Refusal(channel, user_id, refusal_text(form, filled.errors), root)
    return events.chat_command(
        platform=PLATFORM,
        request_id=f"{activity.conversation.id}:{activity.id}",  # a redelivered submission is one row
        workspace=_tenant(activity),
        channel=channel,
        user_id=user_id,
        text=filled.command,
        tz=getattr(activity, "local_timezone", None),
    )


def event_of(activity: Activity) -> InboundEvent | None:
    """The inbound event for an activity; None for what the bridge ignores (and for a refused form)."""
    found = translate(activity)
    return found if isinstance(found, InboundEvent) else None


def translate(activity: Activity) -> InboundEvent | Refusal | None:
    """The inbound event for an activity, a :class:`Refusal` for a form that cannot be used; None for what the
    bridge ignores."""
    if activity.type not in (ActivityTypes.message, ActivityTypes.message_update, ActivityTypes.message_delete):
        return None
    if _is_own(activity) or not activity.id or activity.conversation is None:
        return None
    kind = _conversation_type(activity)
    user_id = activity.from_property.id
    tenant = _tenant(activity)
    form = fmt.submitted_form(activity.value) if activity.type == ActivityTypes.message else None
    if form is not None:
        return _form_event(activity, form)
    submitted = fmt.submitted_command(activity.value) if activity.type == ActivityTypes.message else None
    if submitted is not None:
        # A button on one of our cards (Action.Submit): the command it carries, for the channel it names,
        # exactly as if typed there; keyed by the activity, so a redelivered click is one row.
        command, channel = submitted
        return events.chat_command(
            platform=PLATFORM,
            request_id=f"{activity.conversation.id}:{activity.id}",
            workspace=tenant,
            channel=channel,
            user_id=user_id,
            text=command,
            tz=getattr(activity, "local_timezone", None),
        )
    if kind == "personal":
        if activity.type != ActivityTypes.message:
            return None
        return events.chat_command(
            platform=PLATFORM,
            request_id=f"{activity.conversation.id}:{activity.id}",
            workspace=tenant,
            channel=activity.conversation.id,
            user_id=user_id,
            text="help",
        )
    if kind != "channel":
        return None  # group chats are not bridged
    channel = channel_of(activity)
    _base, root = split_conversation_id(activity.conversation.id)
    thread_ts = root if root and root != activity.id else None
    if activity.type != ActivityTypes.message:
        event_type = str(_data(activity).get("eventType") or "")
        if event_type == "undeleteMessage":
            return None
        deleted = activity.type == ActivityTypes.message_delete or event_type == "softDeleteMessage"
        return events.chat_message_changed(
            platform=PLATFORM,
            event_id=f"{channel}:{activity.id}:{event_type or activity.type}:{activity.timestamp or ''}",
            workspace=tenant,
            channel=channel,
            user_id=user_id,
            ts=activity.id,
            thread_ts=thread_ts,
            change="deleted" if deleted else "edited",
        )
    text = activity.text or ""
    mentions = _bot_mentions(activity)
    if mentions:
        words = fmt.command_text(text, mentions)
        first = words.split()[0].lower() if words.split() else ""
        if thread_ts is None or first in registry.reserved_in_threads():
            return events.chat_command(
                platform=PLATFORM,
                request_id=f"{channel}:{activity.id}",
                workspace=tenant,
                channel=channel,
                user_id=user_id,
                text=words,
                tz=getattr(activity, "local_timezone", None),  # IANA zone of the sender's client, when Teams sends it
            )
    return events.chat_message(
        platform=PLATFORM,
        event_id=f"{channel}:{activity.id}",
        workspace=tenant,
        channel=channel,
        user_id=user_id,
        ts=activity.id,
        thread_ts=thread_ts,
        text=text,
        has_files=_has_files(activity),
    )


def _refuse(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


@dataclass
class TeamsRoute:
    adapter: CloudAdapter
    auth: ConfigurationBotFrameworkAuthentication
    store: TeamsStore
    record: Record
    app_id: str
    max_body: int
    tell: Tell | None = None  # how a refused form is answered (the platform's private note)

    async def _refuse_form(self, refusal: Refusal) -> None:
        if self.tell is None:
            log.warning("a Teams form was refused but the route cannot answer privately")
            return
        try:
            await self.tell(refusal.channel, refusal.user_id, refusal.text, root_id=refusal.root_id)
        except Exception as exc:  # best effort: nothing was stored, and the form can be submitted again
            log.warning("could not tell a Teams user why their form was refused: %s", type(exc).__name__)

    async def _turn(self, turn: TurnContext) -> None:
        activity = turn.activity
        event = translate(activity)
        if activity.service_url and activity.conversation is not None and activity.conversation.id:
            context, scope, user = context_of(activity)
            try:
                await self.store.remember(context, scope, user)
            except Exception as exc:
                log.error("could not store the Teams conversation reference: %s", type(exc).__name__)
                raise StorageUnavailable(type(exc).__name__) from exc
        if event is None:
            log.debug("teams activity %s ignored", activity.type)
            return
        if isinstance(event, Refusal):
            await self._refuse_form(event)
            return
        await self.record(event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, self.max_body)
        if isinstance(raw, web.Response):
            return raw
        header = request.headers.get("Authorization")
        if self.app_id and (not header or not header.startswith("Bearer ") or len(header) <= len("Bearer ")):
            return _refuse(401, "missing Authorization: Bearer token")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _refuse(400, "body is not a JSON activity")
        if not isinstance(body, dict) or not body.get("type"):
            return _refuse(400, "JSON body is not an activity (no 'type')")
        try:
            activity = Activity().deserialize(body)
        except Exception:
            return _refuse(400, "JSON body is not a valid activity")
        try:
            result = await authenticate(self.auth, activity, header if self.app_id else None)
        except Unauthorized as exc:
            log.info("teams request refused: %s", exc)
            return _refuse(401, "invalid or expired Bot Framework token")
        except AuthUnavailable:
            return _refuse(503, "cannot verify the token right now, retry")
        try:
            await self.adapter.process_activity(result, activity, self._turn)
        except StorageUnavailable:
            return _refuse(503, "storage unavailable, retry later")
        return web.json_response({}, status=200)
