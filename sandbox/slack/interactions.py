"""Slack interactivity in the sandbox: the ``trigger_id``s Slack issues with commands and clicks, the modals an app
opens with them (``views.open``), the App Home tabs it publishes (``views.publish``), and what the app answered to a
delivered interactivity payload."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TRIGGER_SECONDS = 3.0  # a trigger_id opens a view within 3 s of the interaction, once


@dataclass
class Interaction:
    """What the bridge answered to one interactivity payload, and the payload (deliver it again to retry)."""

    status: int
    body: str
    payload: dict[str, Any]

    @property
    def json(self) -> Any:
        """The answer parsed as JSON; None when empty or not JSON (an empty 200 closes a modal)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class OpenedView:
    """A modal the app opened with ``views.open``: Slack's stored view, for whom, and what became of it."""

    view: dict[str, Any]
    user: str
    trigger_id: str
    closed: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # the last ``response_action: errors`` answer

    @property
    def view_id(self) -> str:
        return str(self.view["id"])


@dataclass
class PublishedHome:
    """An App Home tab as the app last published it for ``user`` (``views.publish``), with Slack's view fields."""

    view: dict[str, Any]
    user: str

    @property
    def view_id(self) -> str:
        return str(self.view["id"])

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.view.get("blocks") or [])

    def buttons(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every button of the tab as (its block, the button), in order (actions blocks and section accessories)."""
        found = []
        for block in self.blocks:
            elements = [*(block.get("elements") or []), *([block["accessory"]] if block.get("accessory") else [])]
            found += [(block, e) for e in elements if isinstance(e, dict) and e.get("type") == "button"]
        return found

    def text(self) -> str:
        """Every text of the tab, one block a line (mrkdwn as the app sent it: still escaped)."""
        lines = []
        for block in self.blocks:
            texts = [block.get("text"), *(block.get("elements") or [])]
            lines += [str(t.get("text", "")) for t in texts if isinstance(t, dict) and "text" in t]
        return "\n".join(lines)


class Interactions:
    """``trigger_id``s Slack issued with commands and clicks, the views opened with them, the published Home tabs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._triggers: dict[str, tuple[str, float]] = {}  # trigger_id -> (user, issued at)
        self._exchanged: set[str] = set()
        self.views: list[OpenedView] = []
        self.homes: dict[str, PublishedHome] = {}  # user -> their Home tab as last published
        self.home_publishes: list[PublishedHome] = []  # every views.publish, oldest first

    def issue(self, user: str) -> str:
        """A fresh trigger_id (Slack's shape: ``<seconds>.<number>.<hex>``) for an interaction by ``user``."""
        trigger_id = f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"
        self._triggers[trigger_id] = (user, self._clock())
        return trigger_id

    def exchange(self, trigger_id: str) -> tuple[str | None, str | None]:
        """``(user, None)`` when ``trigger_id`` may open a view now (then it is used up), else ``(None, error)``."""
        issued = self._triggers.get(trigger_id)
        if issued is None:
            return None, "invalid_trigger_id"
        if trigger_id in self._exchanged:
            return None, "exchanged_trigger_id"
        if self._clock() - issued[1] > TRIGGER_SECONDS:
            return None, "expired_trigger_id"
        self._exchanged.add(trigger_id)
        return issued[0], None

    def view(self, view_id: str) -> OpenedView | None:
        return next((v for v in self.views if v.view_id == view_id), None)


MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_VALUE = 2000
MAX_ID = 255
MAX_TITLE = 24
MAX_METADATA = 3000


def _plain(obj: Any, limit: int) -> bool:
    return isinstance(obj, dict) and obj.get("type") == "plain_text" and 0 < len(str(obj.get("text") or "")) <= limit


MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10


def _element_ids(blocks: list[dict[str, Any]]) -> list[str]:
    ids = []
    for block in blocks:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and "action_id" in element:
                ids.append(str(element["action_id"]))
        for name in ("element", "accessory"):
            element = block.get(name)
            if isinstance(element, dict) and "action_id" in element:
                ids.append(str(element["action_id"]))
    return ids


def _text_object(obj: Any, limit: int) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in ("mrkdwn", "plain_text")
        and 0 < len(str(obj.get("text") or "")) <= limit
    )


def _button_problem(element: Any) -> bool:
    if not isinstance(element, dict) or element.get("type") != "button":
        return False
    if not _plain(element.get("text"), MAX_BUTTON_TEXT) or len(str(element.get("value", ""))) > MAX_VALUE:
        return True
    return element.get("style") not in (None, "primary", "danger")


def blocks_problem(blocks: list[dict[str, Any]], *, limit: int = MAX_MESSAGE_BLOCKS) -> bool:
    """Whether Slack would refuse these blocks (``invalid_blocks``): too many, a bad actions block or button, or
    the same block_id / action_id twice."""
    if len(blocks) > limit:
        return True
    block_ids = [str(b["block_id"]) for b in blocks if b.get("block_id")]
    if len(block_ids) != len(set(block_ids)) or any(len(b) > MAX_ID for b in block_ids):
        return True
    action_ids = _element_ids(blocks)
    if len(action_ids) != len(set(action_ids)) or any(not a or len(a) > MAX_ID for a in action_ids):
        return True
    for block in blocks:
        if block.get("type") == "section":
            if "text" in block and not _text_object(block["text"], MAX_SECTION_TEXT):
                return True
            if _button_problem(block.get("accessory")):
                return True
        if block.get("type") == "header" and not _plain(block.get("text"), MAX_HEADER_TEXT):
            return True
        if block.get("type") == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
                return True
            if not all(_text_object(e, MAX_SECTION_TEXT) for e in elements if e.get("type") != "image"):
                return True
        if block.get("type") != "actions":
            continue
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= MAX_ACTIONS:
            return True
        if any(_button_problem(element) for element in elements):
            return True
    return False


def view_problem(view: Any) -> bool:
    """Whether ``views.open`` would refuse ``view`` (``invalid_arguments``): a modal needs a title of at most 24
    characters, at most 100 valid blocks, a submit button when it has inputs, each input a label and an element
    with an action_id, and ``private_metadata`` of at most 3000 characters."""
    if not isinstance(view, dict) or view.get("type") != "modal" or not _plain(view.get("title"), MAX_TITLE):
        return True
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        return True
    if blocks_problem(blocks, limit=MAX_VIEW_BLOCKS):
        return True
    inputs = [b for b in blocks if b["type"] == "input"]
    if inputs and not _plain(view.get("submit"), MAX_TITLE):
        return True
    for block in inputs:
        element = block.get("element")
        if not _plain(block.get("label"), 2000) or not isinstance(element, dict) or not element.get("action_id"):
            return True
    if "close" in view and not _plain(view.get("close"), MAX_TITLE):
        return True
    metadata, callback_id = str(view.get("private_metadata") or ""), str(view.get("callback_id") or "")
    return len(metadata) > MAX_METADATA or len(callback_id) > MAX_ID


def home_view_problem(view: Any) -> bool:
    """Whether ``views.publish`` would refuse ``view`` (``invalid_arguments``): a ``home`` view of at most 100 valid
    blocks, without inputs, with ``private_metadata`` of at most 3000 characters."""
    if not isinstance(view, dict) or view.get("type") != "home":
        return True
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        return True
    if blocks_problem(blocks, limit=MAX_VIEW_BLOCKS) or any(b["type"] == "input" for b in blocks):
        return True
    metadata, callback_id = str(view.get("private_metadata") or ""), str(view.get("callback_id") or "")
    return len(metadata) > MAX_METADATA or len(callback_id) > MAX_ID
