"""Slack interactivity: Block Kit buttons and the scheduling modals, and the Bolt listeners for their payloads.

* A private reply's actions (``core.domain.Action``) are Block Kit buttons whose ``value`` is the command. A click
  (``block_actions``) is stored in the inbox exactly like the typed command, keyed by the click's ``trigger_id``
  (a repeated delivery of one click is one row), so the command pipeline checks permission and answers.
* The App Home's Retry and Cancel buttons (``adapters/slack/home.py``) are the same kind of button. A click there
  carries no channel (``view.type`` is ``home``): it is stored with ``origin`` home and the clicker's user id in
  place of the channel, and the pipeline answers by publishing their home again with a status line
  (``bridge/home.py``), not with a channel or DM message.
* A thread root carries Remind / Follow up / Send scheduling link buttons naming the participant. A click opens a
  modal at once with ``views.open`` (the ``trigger_id`` expires after 3 s; opening a form changes nothing, so no
  inbox row). The submitted modal (``view_submission``) is checked by ``core.forms``: a problem is
  answered ``response_action: errors`` (shown next to the field, nothing stored); otherwise the equivalent
  command is stored keyed by the view id and the modal closes. The answer comes privately in the channel.

All payloads arrive signed on ``/slack/events`` (form field ``payload``); the route checks the signature first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import format as fmt
from core import clock, events, forms
from core.domain import Action
from core.events import InboundEvent

log = logging.getLogger(__name__)

Record = Callable[[InboundEvent], Awaitable[bool]]
PLATFORM = "slack"
RUN_ACTION = "rallybridge_run_"  # + index: a private reply's button; value = the command
OPEN_ACTION = "rallybridge_open_"  # + form: a thread root's button; value = the participant (JSON)
ROOT_BLOCK = "rallybridge_root"
FORM_CALLBACK = "rallybridge_form"
MAX_BLOCKS = 50  # per message
MAX_BUTTONS = 25  # per actions block
MAX_SECTION = 3000
MAX_LABEL = 75
_STYLES = {"primary", "danger"}

ROOT_BUTTONS = (
    (forms.REMIND, "Remind", "primary"),
    (forms.FOLLOWUP, "Follow up", None),
    (forms.RESCHEDULE, "Send scheduling link", None),
)
TITLES = {
    forms.REMIND: "Schedule a reminder",
    forms.FOLLOWUP: "Schedule a follow-up",
    forms.RESCHEDULE: "Send scheduling link",
}
SUBMITS = {forms.REMIND: "Schedule", forms.FOLLOWUP: "Schedule", forms.RESCHEDULE: "Send"}


class BadInteraction(ValueError):
    """An interactivity payload the bridge cannot act on (answered 400; nothing stored)."""


@dataclass(frozen=True)
class FormTarget:
    """Whom a form is for and where: carried by the root button's value, then the modal's ``private_metadata``."""

    form: str
    channel: str
    participant_id: str
    name: str
    study: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "form": self.form,
                "channel": self.channel,
                "participant": self.participant_id,
                "name": self.name,
                "study": self.study,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> FormTarget:
        try:
            data = json.loads(raw)
            target = cls(
                str(data["form"]), str(data["channel"]), str(data["participant"]), str(data["name"]), str(data["study"])
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInteraction("the form does not say whom it is for") from exc
        if target.form not in forms.FORMS or not target.channel or not target.participant_id:
            raise BadInteraction("the form does not say whom it is for")
        return target


# --- rendering ---------------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def root_actions(participant_id: str, name: str, study: str) -> dict[str, Any]:
    """The thread root's buttons; each value names the participant (id for the command, name for the form)."""
    value = json.dumps({"participant": participant_id, "name": _cut(name, 200), "study": _cut(study, 200)})
    buttons = [
        ButtonElement(text=label, action_id=f"{OPEN_ACTION}{form}", value=value, style=style)
        for form, label, style in ROOT_BUTTONS
    ]
    return ActionsBlock(block_id=ROOT_BLOCK, elements=buttons).to_dict()


def _pieces(line: str) -> list[str]:
    """A line cut into pieces of at most 3000 characters, never inside an ``&amp;``-style entity."""
    pieces = []
    while len(line) > MAX_SECTION:
        cut = MAX_SECTION
        amp = line.rfind("&", MAX_SECTION - 5, MAX_SECTION)
        if amp > 0 and ";" not in line[amp:MAX_SECTION]:
            cut = amp
        pieces.append(line[:cut])
        line = line[cut:]
    return [*pieces, line]


def _sections(escaped: str) -> list[dict[str, Any]]:
    """``escaped`` mrkdwn as section blocks of at most 3000 characters each, cut between lines where possible."""
    chunks: list[str] = []
    for piece in (p for line in escaped.split("\n") for p in _pieces(line)):
        if chunks and len(chunks[-1]) + 1 + len(piece) <= MAX_SECTION:
            chunks[-1] = f"{chunks[-1]}\n{piece}"
        else:
            chunks.append(piece)
    return [SectionBlock(text=MarkdownTextObject(text=chunk or " ")).to_dict() for chunk in chunks]


def private_blocks(mrkdwn: str, actions: Sequence[Action]) -> list[dict[str, Any]]:
    """A private reply with buttons: its text (mrkdwn already rendered and escaped, ``format.render``), then the
    actions, 25 to a row, within 50 blocks.

    Buttons that do not fit are left off; the text always says how to do the same by command.
    """
    blocks = _sections(mrkdwn)[: MAX_BLOCKS - 1]
    room = (MAX_BLOCKS - len(blocks)) * MAX_BUTTONS
    buttons = [
        ButtonElement(
            text=_cut(action.label, MAX_LABEL),
            action_id=f"{RUN_ACTION}{index}",
            value=action.command,
            style=action.style if action.style in _STYLES else None,
        )
        for index, action in enumerate(actions[:room])
    ]
    for start in range(0, len(buttons), MAX_BUTTONS):
        blocks.append(ActionsBlock(elements=buttons[start : start + MAX_BUTTONS]).to_dict())
    return blocks


def _about(target: FormTarget) -> str:
    who, study = f"*{fmt.escape(target.name)}*", fmt.escape(target.study)
    if target.form == forms.REMIND:
        return (
            f"A reminder to {who} ({study}). The bridge sends it for you at that time, once, and archives it to Rally."
        )
    if target.form == forms.FOLLOWUP:
        return (
            f"A gentle follow-up to {who} ({study}), sent only if they have not written by then; "
            "cancelled as soon as they do."
        )
    return f"Sends {who} ({study}) their personal scheduling link from Rally now, to pick or change their session time."


def _input(
    block_id: str, label: str, placeholder: str, *, optional: bool, hint: str | None = None, multiline: bool = False
) -> InputBlock:
    element = PlainTextInputElement(
        action_id=block_id, placeholder=placeholder, multiline=multiline, max_length=3000 if multiline else 200
    )
    return InputBlock(block_id=block_id, label=label, element=element, optional=optional, hint=hint)


def form_view(target: FormTarget) -> dict[str, Any]:
    """The modal for ``target``: prefilled for the participant (context names them), examples as placeholders."""
    blocks: list[Any] = [ContextBlock(elements=[MarkdownTextObject(text=_about(target))])]
    if target.form == forms.REMIND:
        blocks.append(
            _input(
                forms.WHEN,
                "When",
                "tomorrow 9am, in 2h, fri 14:30, 1h before session",
                optional=False,
                hint="In your Slack time zone unless you add one (UTC, Europe/Berlin).",
            )
        )
        blocks.append(
            _input(
                forms.NOTE, "Message", "Empty: a short reminder of their session time", optional=True, multiline=True
            )
        )
    elif target.form == forms.FOLLOWUP:
        blocks.append(
            _input(
                forms.AFTER,
                "After",
                "2d, 4h, 1d 12h",
                optional=True,
                hint="Counted from your last message to them. Empty: 24h.",
            )
        )
        blocks.append(_input(forms.NOTE, "Message", "Empty: a short, friendly check-in", optional=True, multiline=True))
    else:
        blocks.append(
            _input(
                forms.NOTE, "Note", "Added under the link, e.g. Sorry for the change!", optional=True, multiline=True
            )
        )
    view = View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title=TITLES[target.form],
        submit=SUBMITS[target.form],
        close="Cancel",
        private_metadata=target.to_json(),
        blocks=blocks,
    )
    return view.to_dict()


def form_values(view: dict[str, Any]) -> dict[str, str | None]:
    """What was typed into the modal, by field (Slack: ``state.values[block_id][action_id].value``)."""
    values: dict[str, str | None] = {}
    for block_id, inputs in ((view.get("state") or {}).get("values") or {}).items():
        if isinstance(inputs, dict):
            entry = inputs.get(block_id) or next(iter(inputs.values()), None)
            value = entry.get("value") if isinstance(entry, dict) else None
            values[str(block_id)] = value if isinstance(value, str) else None
    return values


# --- listeners ---------------------------------------------------------------------------------------------


def _user(body: dict[str, Any]) -> str:
    user = (body.get("user") or {}).get("id")
    if not isinstance(user, str) or not user:
        raise BadInteraction("interactivity payload without a user")
    return user


def _team(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")


def _channel(body: dict[str, Any]) -> str:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if not isinstance(channel, str) or not channel:
        raise BadInteraction("interactivity payload without a channel")
    return channel


def from_home(body: dict[str, Any]) -> bool:
    """Whether an interaction came from the App Home tab (it then has no channel)."""
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def run_event(body: dict[str, Any], action: dict[str, Any]) -> InboundEvent:
    """A click on a private reply's (or the App Home's) button, as the command it stands for."""
    command = action.get("value")
    if not isinstance(command, str) or not command.strip():
        raise BadInteraction("button without a command")
    user = _user(body)
    request_id = body.get("trigger_id") or f"{action.get('action_ts')}:{user}"
    home = from_home(body)
    return events.chat_command(
        platform=PLATFORM,
        request_id=f"action:{request_id}",
        workspace=_team(body),
        channel=user if home else _channel(body),  # the home has no channel: its answer is the home itself
        user_id=user,
        text=command.strip(),
        origin=events.HOME if home else None,
    )


def open_target(body: dict[str, Any], action: dict[str, Any]) -> FormTarget:
    """The form a root button asks for, for whom, in which channel."""
    form = str(action.get("action_id", ""))[len(OPEN_ACTION) :]
    try:
        value = json.loads(str(action.get("value") or ""))
        participant, name, study = (
            str(value["participant"]),
            str(value.get("name") or ""),
            str(value.get("study") or ""),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInteraction("the button does not name a participant") from exc
    return FormTarget.from_json(
        json.dumps(
            {
                "form": form,
                "channel": _channel(body),
                "participant": participant,
                "name": name or participant,
                "study": study,
            }
        )
    )


def submitted_event(body: dict[str, Any], view: dict[str, Any]) -> tuple[InboundEvent | None, dict[str, str]]:
    """A submitted form: the command to store, or the errors to show next to the fields (plain text: Slack does not
    read mrkdwn there)."""
    target = FormTarget.from_json(str(view.get("private_metadata") or ""))
    filled = forms.fill(target.form, target.participant_id, form_values(view), now=clock.now())
    if filled.command is None:
        errors = {name: fmt.wording(problem) for name, problem in filled.errors.items()}
        if set(errors) - set(forms.FIELDS[target.form]):
            raise BadInteraction("; ".join(errors.values()))
        return None, errors
    view_id = view.get("id")
    if not isinstance(view_id, str) or not view_id:
        raise BadInteraction("view_submission without a view id")
    event = events.chat_command(
        platform=PLATFORM,
        request_id=f"view:{view_id}",
        workspace=_team(body),
        channel=target.channel,
        user_id=_user(body),
        text=filled.command,
    )
    return event, {}


def _form_failed(target: FormTarget, reason: str) -> str:
    usage = {
        forms.REMIND: f"/rally remind {target.participant_id} <when> [message]",
        forms.FOLLOWUP: f"/rally followup {target.participant_id} [after <duration>] [message]",
        forms.RESCHEDULE: f"/rally reschedule {target.participant_id} [note]",
    }[target.form]
    return f"I couldn't open the form (Slack said: {reason}). Click again, or type {usage}"


def register(app: AsyncApp, record: Record) -> None:
    """Add the interactivity listeners to the Bolt app (HTTP and Socket Mode alike)."""

    @app.action(re.compile(f"^{RUN_ACTION}"))
    async def on_run(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await record(run_event(body, action))
        await ack()

    @app.action(re.compile(f"^{OPEN_ACTION}"))
    async def on_open(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        target = open_target(body, action)
        user = _user(body)
        trigger_id = body.get("trigger_id")
        try:
            await client.views_open(trigger_id=trigger_id, view=form_view(target))
        except Exception as exc:  # any failure: say so; nothing was changed
            data = getattr(getattr(exc, "response", None), "data", None)
            reason = str(data.get("error")) if isinstance(data, dict) and data.get("error") else type(exc).__name__
            log.warning("slack views.open failed: %s", reason)
            try:
                await client.chat_postEphemeral(
                    channel=target.channel, user=user, text=fmt.escape(_form_failed(target, reason))
                )
            except Exception as tell_exc:  # best effort
                log.warning("could not tell the user that the form did not open: %s", type(tell_exc).__name__)
        await ack()

    @app.view(FORM_CALLBACK)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        event, errors = submitted_event(body, view)
        if event is None:
            await ack(response_action="errors", errors=errors)
            return
        await record(event)
        await ack()
