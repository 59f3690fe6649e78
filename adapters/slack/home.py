"""The bridge's home (``core.home.HomeView``) as a Slack App Home view: Block Kit for ``views.publish``.

* Every outside string (study and participant names, failure reasons from Respondent, reply and reminder
  previews, people's names) is escaped with ``format.escape``, and the bridge's own sentences (``core.message.Text``:
  the status line, help, why a study is closed) are rendered with ``format.render``, which escapes each part:
  nothing on the home can mention anyone or disguise a link. Only ids the bridge stored (channels) and dates become
  Slack markup.
* Retry and Cancel are buttons with the same action ids and values as the buttons under private replies
  (``interactive.RUN_ACTION``; value = the command): the click is stored as that command with ``origin`` home
  (``interactive.run_event``), and the answer is this view published again with a status line.
* Slack allows 100 blocks in a home view. The header and the "what you can do" part always show; studies fill the
  rest in order, and what does not fit is summed up in one "…and N more" line. Sections stay within 3000
  characters, button labels within 75.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.slack import format as fmt
from adapters.slack.interactive import MAX_LABEL, MAX_SECTION, RUN_ACTION
from core.domain import Action
from core.home import (
    ClosedStudy,
    FailedDelivery,
    HomeView,
    LastMessage,
    ParticipantLine,
    PendingReminder,
    QueueLine,
    StudyHome,
)
from core.message import Text

MAX_HOME_BLOCKS = 100
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
_STYLES = {"primary", "danger"}


@dataclass
class _Block:
    """One block and how many items of the home (participants, deliveries, reminders, studies) it shows."""

    block: dict[str, Any]
    items: int = 0


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date(at: datetime) -> str:
    """A date Slack shows in the reader's own time zone; the fallback (UTC) where it cannot."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    fallback = f"{at:%a} {at.day} {at:%b %Y, %H:%M} UTC"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _channel(channel: str) -> str:
    """A channel the bridge stored, as a link to it; anything unexpected only as (escaped) text."""
    return f"<#{channel}>" if _CHANNEL_ID.fullmatch(channel) else fmt.escape(channel)


def _section(mrkdwn: str, *, button: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": _cut(mrkdwn, MAX_SECTION) or " "}}
    if button is not None:
        block["accessory"] = button
    return block


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(mrkdwn, MAX_SECTION) or " "}]}


def _button(action: Action, index: int) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _cut(action.label, MAX_LABEL)},
        "action_id": f"{RUN_ACTION}{index}",
        "value": action.command,
    }
    if action.style in _STYLES:
        button["style"] = action.style
    return button


def _lines(lines: Sequence[str]) -> list[_Block]:
    """Escaped mrkdwn lines packed into sections of at most 3000 characters; each line is one item."""
    blocks: list[_Block] = []
    chunk: list[str] = []
    for line in (_cut(line, MAX_SECTION) for line in lines):
        if chunk and len("\n".join([*chunk, line])) > MAX_SECTION:
            blocks.append(_Block(_section("\n".join(chunk)), len(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_Block(_section("\n".join(chunk)), len(chunk)))
    return blocks


def _last(label: str, message: LastMessage | None) -> str:
    if message is None:
        return f"{label}: nothing yet"
    extra = [x for x in (message.state, fmt.escape(message.author) if message.author else None) if x]
    return f"{label}: {_date(message.at)}" + (f" ({', '.join(extra)})" if extra else "")


def _owner(owner: str | None) -> str:
    return f"owner {fmt.escape(owner)}" if owner else "no owner"


def _participant(line: ParticipantLine) -> str:
    name = f"*{fmt.escape(line.name)}*" + (" · opted out" if line.opted_out else "")
    waiting = f" · :red_circle: waiting since {_date(line.waiting_since)}" if line.waiting_since else ""
    owner = f" · {_owner(line.owner)}" if line.owner else ""
    return f"• {name}{waiting}{owner} · {_last('from them', line.last_from)} · {_last('to them', line.last_to)}"


def _queued(line: QueueLine) -> str:
    session = f" · session {_date(line.session_starts_at)}" if line.session_starts_at else ""
    return (
        f"• *{fmt.escape(line.name)}* ({fmt.escape(line.study_name)}, {_channel(line.channel)}) · waiting since "
        f"{_date(line.waiting_since)} · {_owner(line.owner)}{session}"
    )


def _queue(view: HomeView, buttons: list[int]) -> list[_Block]:
    """Who waits on the team, longest wait first; the study filter's buttons above it."""
    blocks: list[_Block] = []
    if view.filters:
        elements = []
        for action in view.filters:
            buttons[0] += 1
            elements.append(_button(action, buttons[0]))
        blocks.append(_Block({"type": "actions", "elements": elements[:25]}))
    blocks.append(_Block(_section("*Waiting for an answer* (longest first)")))
    if view.queue:
        blocks += _lines([_queued(q) for q in view.queue])
    else:
        blocks.append(_Block(_context("Nobody is waiting for an answer.")))
    return blocks


def _failed(failed: FailedDelivery, index: int) -> _Block:
    who = f" by {fmt.escape(failed.author)}" if failed.author else ""
    when = f", failed {_date(failed.failed_at)}" if failed.failed_at else ""
    text = (
        f"*#{failed.delivery_id}* to *{fmt.escape(failed.participant_name)}*{who}{when}\n"
        f"Reason: {fmt.escape(_cut(failed.reason, 500))}\n"
        f"> {fmt.escape(failed.preview) or ' '}"
    )
    if failed.note:
        text += f"\n_{fmt.render(failed.note)}_"
    button = _button(failed.action, index) if failed.action is not None else None
    return _Block(_section(text, button=button), 1)


def _reminder(reminder: PendingReminder, index: int) -> _Block:
    text = (
        f"*#{reminder.reminder_id}* {fmt.escape(reminder.kind)} for *{fmt.escape(reminder.participant_name)}*, "
        f"{_date(reminder.due_at)}, by {fmt.escape(reminder.created_by)}\n"
        f"> {fmt.escape(reminder.preview) or ' '}"
    )
    return _Block(_section(text, button=_button(reminder.action, index)), 1)


def _more(count: int, what: str, hint: str) -> list[_Block]:
    return [_Block(_context(f"…and {count} more {what}. {hint}"), count)] if count > 0 else []


def _study(study: StudyHome, buttons: list[int]) -> list[_Block]:
    """One permitted study; ``buttons`` numbers the buttons across the whole view (action ids must be unique)."""

    def next_index() -> int:
        buttons[0] += 1
        return buttons[0]

    channel = _channel(study.channel)
    blocks = [_Block({"type": "divider"}), _Block(_section(f"*{fmt.escape(study.study_name)}* · {channel}"))]
    if study.participants:
        blocks += _lines([_participant(p) for p in study.participants])
    else:
        blocks.append(_Block(_context("No approved participants yet.")))
    blocks += _more(study.more_participants, "participants", f"Ask /rally status <participant> in {channel}.")
    if study.failed:
        blocks.append(_Block(_context("*Not delivered*")))
        blocks += [_failed(f, next_index()) for f in study.failed]
        blocks += _more(study.more_failed, "failed deliveries", "Retry these first; the older ones show next.")
    if study.reminders:
        blocks.append(_Block(_context("*Scheduled*")))
        blocks += [_reminder(r, next_index()) for r in study.reminders]
        blocks += _more(study.more_reminders, "scheduled messages", f"/rally reminders in {channel} lists them.")
    return blocks


def _closed(intro: Text, closed: Sequence[ClosedStudy]) -> list[_Block]:
    lines = [f"• *{fmt.escape(c.study_name)}* · {_channel(c.channel)}: {fmt.render(c.reason)}" for c in closed]
    return [_Block({"type": "divider"}), _Block(_section(fmt.render(intro))), *_lines(lines)]


def home_blocks(view: HomeView, *, limit: int = MAX_HOME_BLOCKS) -> list[dict[str, Any]]:
    """The view's blocks, at most ``limit``; what does not fit is counted in one "…and N more" line."""
    head = [
        {"type": "header", "text": {"type": "plain_text", "text": "Rally Bridge"}},
        _context(f"For {fmt.escape(view.viewer_name)} · updated {_date(view.built_at)}"),
    ]
    if view.status:
        head.append(_section(f":information_source: {fmt.render(view.status)}"))
    footer = [
        {"type": "divider"},
        _section("*What you can do*\n" + "\n".join(f"• {fmt.render(line)}" for line in view.help)),
    ]
    body: list[_Block] = []
    if view.empty:
        body.append(_Block(_section(fmt.render(view.empty))))
    if view.may_act:
        body.append(_Block(_context(fmt.render(view.may_act))))
    buttons = [-1]
    if view.studies:
        body += _queue(view, buttons)
    for study in view.studies:
        body += _study(study, buttons)
    if view.closed:
        body += _closed(view.closed_intro, view.closed)
    room = limit - len(head) - len(footer)
    if len(body) > room:
        kept, dropped = body[: room - 1], body[room - 1 :]
        hidden = sum(b.items for b in dropped)
        body = [
            *kept,
            _Block(
                _context(
                    f"…and {hidden} more not shown here (Slack shows at most {limit} blocks on a Home tab). "
                    "Use /rally status and /rally reminders in the study channels."
                )
            ),
        ]
    return [*head, *(b.block for b in body), *footer]


def home_view(view: HomeView) -> dict[str, Any]:
    """The ``view`` argument of ``views.publish``."""
    return {"type": "home", "callback_id": "rallybridge_home", "blocks": home_blocks(view)}
