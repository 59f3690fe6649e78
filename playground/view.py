"""What the playground page shows, read from the stand-ins' state and the bridge's own HTTP routes.

Nothing here reaches into the bridge: its health and numbers come from ``GET /readyz`` and ``GET /metrics``
exactly as an operator (or Prometheus) would read them. Every value is plain data; the page escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.slack.interactive import RUN_ACTION
from playground.world import World

# Who the newcomer can be in the Slack pane, and what the bridge will make of them.
ROLES = {
    "owner": ("study owner", "study owner, on the team: may message participants"),
    "teammate": ("teammate", "on the study team: may message participants"),
    "no_access": ("no panel access", "on the team, but without external-panel access: may not message participants"),
    "outsider": ("not on the team", "not on the study team: may not message participants"),
}
REACTIONS = {"white_check_mark": "✅", "hourglass_flowing_sand": "⏳", "x": "❌", "eyes": "👀"}
METRIC_TIMEOUT = aiohttp.ClientTimeout(total=2)
FORM_BUTTON = "In Slack this opens a form, which the playground does not show: type the /rally command instead."


@dataclass
class CommandEcho:
    """A slash command's immediate answer (Slack shows the ack body to the person who ran it)."""

    user: str
    text: str
    ts: str
    thread_ts: str | None = None


@dataclass
class PlaygroundLog:
    """What the playground itself did that the stand-ins do not keep: command acks, the outage switch."""

    command_echoes: list[CommandEcho] = field(default_factory=list)
    respondent_down: bool = False


def people(world: World) -> list[dict[str, str]]:
    """The Slack users the newcomer can act as, with what the bridge will allow each of them."""
    c = world.cast
    cast = {"owner": c.owner, "teammate": c.teammate, "no_access": c.no_access, "outsider": c.outsider}
    return [
        {"id": p.slack_id, "name": p.name, "short": ROLES[key][0], "role": ROLES[key][1]} for key, p in cast.items()
    ]


def participants(world: World) -> list[dict[str, Any]]:
    """Every participant of the study in Rally, with their Respondent inbox (both directions, in order)."""
    c = world.cast
    out = []
    for p in world.rally.participants.get(c.study_id, {}).values():
        panel = p.get("externalPanel") or {}
        user_id = panel.get("userId")
        inbox: list[dict[str, Any]] = []
        conversation = world.respondent.conversation_with(c.project_id, user_id) if user_id else None
        entries = [e for e in (conversation or {}).get("participants", []) if e.get("uid") == user_id]
        for m in (conversation or {}).get("messages", []):
            mine = m["sender"]["uid"] == user_id
            inbox.append({"uid": m["uid"], "from": "participant" if mine else "team", "body": m["body"]})
        out.append(
            {
                "id": p["participantId"],
                "name": f"{p['firstName']} {p['lastName']}",
                "approval": p["approvalStatus"],
                "status": p["status"],
                "can_write": bool(user_id),
                "inbox": inbox,
                "read": bool(entries) and all(e.get("read") for e in entries),
            }
        )
    return out


def _user_name(world: World, user_id: str) -> str:
    return str(world.slack.users.get(user_id, {}).get("real_name", user_id))


def slack_channel(world: World, log: PlaygroundLog, viewer: str) -> dict[str, Any]:
    """The study channel as ``viewer`` sees it: messages (raw mrkdwn and blocks), reactions, and private notes; and
    the bot's direct messages to ``viewer``.

    Ephemeral messages and direct messages are only returned to the person they were sent to, as Slack shows them.
    """
    c = world.cast
    messages = [_message(world, c.channel, m) for m in world.slack.messages(c.channel)]
    dms = [_message(world, str(world.slack.dm_channel(viewer)), m) for m in world.slack.direct_messages(viewer)]
    private = [
        {"ts": e["message_ts"], "thread_ts": e.get("thread_ts"), "text": e["text"], "buttons": buttons(e.get("blocks"))}
        for e in world.slack.ephemerals
        if e["user"] == viewer and e["channel"] == c.channel
    ]
    private += [
        {"ts": echo.ts, "thread_ts": echo.thread_ts, "text": echo.text, "buttons": []}
        for echo in log.command_echoes
        if echo.user == viewer
    ]
    private.sort(key=lambda e: float(e["ts"]))
    users = {uid: u["real_name"] for uid, u in world.slack.users.items()}
    return {
        "id": c.channel,
        "name": c.channel_name,
        "messages": messages,
        "private": private,
        "users": users,
        "dms": dms,
    }


def _message(world: World, channel: str, m: dict[str, Any]) -> dict[str, Any]:
    """A Slack message as the page shows it: its current text and blocks (a card updated in place shows its new
    ones, marked ``edited``), and its reactions."""
    reactions = sorted(world.slack.reactions(channel, m["ts"]))
    return {
        "ts": m["ts"],
        "thread_ts": m.get("thread_ts"),
        "user": m.get("user"),
        "user_name": _user_name(world, str(m.get("user", ""))),
        "is_bot": bool(m.get("bot_id")),
        "text": m.get("text", ""),
        "blocks": m.get("blocks"),
        "buttons": buttons(m.get("blocks")),
        "edited": bool(m.get("edited")),
        "reply_count": int(m.get("reply_count", 0)),
        "reactions": [{"name": r, "emoji": REACTIONS.get(r, f":{r}:")} for r in reactions],
    }


def buttons(blocks: Any) -> list[dict[str, Any]]:
    """The buttons of a message's ``actions`` blocks as the page shows them: label, style, and whether the playground
    can click it (a button that runs a /rally command: yes; one that opens a Slack form: no, ``why`` says so)."""
    found = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict) or block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if not isinstance(element, dict) or element.get("type") != "button":
                continue
            runs = str(element.get("action_id", "")).startswith(RUN_ACTION)
            label = str((element.get("text") or {}).get("text", ""))
            style = str(element.get("style") or "")
            found.append({"label": label, "style": style, "clickable": runs, "why": "" if runs else FORM_BUTTON})
    return found


def archive(world: World) -> list[dict[str, Any]]:
    """The study's chat archive in Rally, in arrival order."""
    rows = []
    names = {
        pid: f"{p['firstName']} {p['lastName']}"
        for pid, p in world.rally.participants.get(world.cast.study_id, {}).items()
    }
    for row in world.rally.archived(world.cast.study_id):
        author = row.get("author") or {}
        rows.append(
            {
                "id": row["id"],
                "participant": names.get(row["participantId"], row["participantId"]),
                "direction": row["direction"],
                "author": author.get("name") or author.get("type", ""),
                "source": row.get("source", ""),
                "body": row["body"],
                "sent_at": row.get("sentAt", ""),
            }
        )
    return rows


# The /metrics samples the status strip shows, and what it calls them.
SHOWN_METRICS = {
    ("rallybridge_messages_total", "direction", "to_participant"): "to_participant",
    ("rallybridge_messages_total", "direction", "from_participant"): "from_participant",
    ("rallybridge_effects_total", None, None): "effects",
    ("rallybridge_retries_total", None, None): "retries",
    ("rallybridge_permanent_failures_total", None, None): "permanent_failures",
    ("rallybridge_queue_depth", "queue", "inbox"): "inbox_depth",
    ("rallybridge_queue_depth", "queue", "outbox"): "outbox_depth",
    ("rallybridge_request_duration_seconds_count", None, None): "requests",
}


def summarize_metrics(exposition: str) -> dict[str, float]:
    """Sum the samples the status strip shows out of a Prometheus text exposition."""
    totals = dict.fromkeys(SHOWN_METRICS.values(), 0.0)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for (name, label, value), shown in SHOWN_METRICS.items():
                if sample.name == name and (label is None or sample.labels.get(label) == value):
                    totals[shown] += sample.value
    return totals


async def bridge_status(session: aiohttp.ClientSession, bridge_url: str) -> dict[str, Any]:
    """The bridge's ``/readyz`` and ``/metrics``, read over HTTP; unreachable is reported, not raised."""
    status: dict[str, Any] = {"url": bridge_url, "ready": False, "detail": "", "metrics": None}
    try:
        async with session.get(f"{bridge_url}/readyz", timeout=METRIC_TIMEOUT) as response:
            body = await response.json(content_type=None)
            status["ready"] = response.status == 200 and bool(body.get("ready"))
            status["detail"] = "" if status["ready"] else str(body)
        async with session.get(f"{bridge_url}/metrics", timeout=METRIC_TIMEOUT) as response:
            status["metrics"] = summarize_metrics(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        status["detail"] = f"bridge unreachable: {type(exc).__name__}"
    return status
