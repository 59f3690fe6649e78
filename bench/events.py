"""Event mixes for the load benchmarks (``bench/ack_latency.py``, ``bench/throughput.py``): signed Slack events of a
workspace, built up front so that the load generator only sends.

Every event is an ``event_callback`` envelope signed with the workspace's signing secret exactly as Slack signs it
(v0 HMAC-SHA256 over ``v0:timestamp:body``; see ``SlackSandbox.sign``), with a unique ``event_id``. The kinds:

- ``unlinked``: a top-level message in a channel no study is linked to (``#random``), by one of four people;
- ``unknown_thread``: a reply in a thread of the linked study channel that is not a participant's thread, by an
  outsider (what ``ack_latency`` has always sent);
- ``bot_echo``: a bot's post as Slack echoes it: half the bridge's own posts in the participants' threads (``user``
  the bot user, ``bot_id`` and ``app_id`` set, no subtype), half another app's posts in the study channel
  (``subtype: bot_message``, ``bot_id``, ``username``, no ``user``);
- ``join``: ``subtype: channel_join`` in the study channel or in ``#random``;
- ``relay``: a permitted teammate's reply (Chloe, on the study team with external-panel access) in one of the
  three participants' threads. The bridge relays it through Respondent, archives it in Rally and marks it ✅ in
  Slack. The reply is also stored in the Slack stand-in (so that it can take the reaction), and its text carries
  a unique token so that what Respondent received can be counted (lost, duplicated).

The mixes (shares in percent, exact within every block of 100 events, in a fixed shuffled order; ``MIXES``):

- ``replies``: 100% replies in unknown threads of the linked channel (the benchmark's load until issue 13);
- ``ignored``: 45% top-level messages in an unlinked channel, 27% replies in unknown threads of the linked
  channel, 15% bot echoes, 13% channel joins: nothing to relay;
- ``busy``: a busy workspace: 44% top-level messages in an unlinked channel, 26% replies in unknown threads,
  15% bot echoes, 13% channel joins and 2% teammate replies in participants' threads, which are relayed.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import common
from playground.world import World

UNLINKED_CHANNEL = "C0OTHER"  # seeded by the World as #random; no study is ever linked to it
UNKNOWN_THREADS = 100  # replies in unknown threads spread over this many thread ts (inbox lanes)
OTHER_APP_BOT = "B0CALENDAR"

MIXES: dict[str, dict[str, int]] = {
    "replies": {"unknown_thread": 100},
    "ignored": {"unlinked": 45, "unknown_thread": 27, "bot_echo": 15, "join": 13},
    "busy": {"unlinked": 44, "unknown_thread": 26, "bot_echo": 15, "join": 13, "relay": 2},
}
KIND_NAMES = {
    "unlinked": "top-level messages in an unlinked channel",
    "unknown_thread": "replies in unknown threads of the linked channel",
    "bot_echo": "bot echoes",
    "join": "channel joins",
    "relay": "teammates' replies in participants' threads, which are relayed",
}
TOKEN = re.compile(r"\[(tp-[0-9a-z]+-\d+)\]")


def describe(mix: str) -> str:
    """``"44% top-level messages in an unlinked channel, ..."`` for the page."""
    return ", ".join(f"{share}% {KIND_NAMES[kind]}" for kind, share in MIXES[mix].items())


def mixes_from(text: str) -> list[str]:
    """``"busy,ignored"`` -> ``["busy", "ignored"]``; an unknown name is an argparse error."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in MIXES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"mixes must be among {', '.join(MIXES)}; got {text!r}")
    return list(dict.fromkeys(names))


def add_mix_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--mix",
        type=mixes_from,
        default=mixes_from(default),
        help=f"comma-separated event mixes: {', '.join(MIXES)} (default {default}); see bench/events.py",
    )


def schedule(mix: str, count: int, *, seed: int = 13) -> list[str]:
    """The kind of each of ``count`` events: every block of 100 has the mix's exact shares, in a fixed order."""
    block = [kind for kind, share in MIXES[mix].items() for _ in range(share)]
    random.Random(seed).shuffle(block)
    return [block[i % len(block)] for i in range(count)]


@dataclass(frozen=True)
class Event:
    kind: str
    body: bytes
    headers: dict[str, str]
    token: str | None = None  # relays: the token their text carries
    ts: str = ""


class EventFactory:
    """Builds signed events of a world whose study is linked (``roots``: participant id -> thread root ts)."""

    def __init__(self, world: World, roots: dict[str, str]) -> None:
        self.world = world
        self.roots = [roots[p] for p in sorted(roots)]
        c = world.cast
        self.humans = [c.owner.slack_id, c.teammate.slack_id, c.no_access.slack_id, c.outsider.slack_id]
        self.run = uuid.uuid4().hex[:6]
        self.counter = 0

    def build(self, mix: str, count: int) -> list[Event]:
        """``count`` events of ``mix``, signed now (a signature stays valid for 5 minutes)."""
        return [self.make(kind) for kind in schedule(mix, count)]

    def make(self, kind: str) -> Event:
        i = self.counter
        self.counter += 1
        world, c = self.world, self.world.cast
        ts = world.slack.new_ts()
        event: dict[str, Any] = {"type": "message", "ts": ts, "team": world.slack.team_id, "channel_type": "channel"}
        token = None
        if kind == "unlinked":
            user = self.humans[i % len(self.humans)]
            event.update(channel=UNLINKED_CHANNEL, user=user, text=f"Lunch at noon? ({i})")
        elif kind == "unknown_thread":
            thread = f"1795626633.{i % UNKNOWN_THREADS:06d}"
            event.update(channel=c.channel, user=c.outsider.slack_id, text="latency probe", thread_ts=thread)
        elif kind == "bot_echo":
            if i % 2:
                event.update(
                    channel=c.channel,
                    user=world.slack.bot_user_id,
                    bot_id=world.slack.bot_id,
                    app_id=world.slack.api_app_id,
                    text=f"*Jordan L.*: I can do Tuesday at 10 ({i})",
                    thread_ts=self.roots[i % len(self.roots)],
                )
            else:
                event.update(
                    channel=c.channel,
                    subtype="bot_message",
                    bot_id=OTHER_APP_BOT,
                    username="Google Calendar",
                    text=f"Reminder: study sync in 10 minutes ({i})",
                )
        elif kind == "join":
            user = self.humans[i % len(self.humans)]
            channel = c.channel if i % 2 else UNLINKED_CHANNEL
            event.update(channel=channel, subtype="channel_join", user=user, text=f"<@{user}> has joined the channel")
        elif kind == "relay":
            thread = self.roots[i % len(self.roots)]
            token = f"tp-{self.run}-{i}"
            text = f"Thanks, that works for us. See you then! [{token}]"
            # The reply exists in the workspace (so it can take the ✅) and Slack tells the app about it.
            world.slack.store_message(
                c.channel, {"type": "message", "user": c.teammate.slack_id, "text": text, "ts": ts}
            )
            world.slack.find_message(c.channel, ts)["thread_ts"] = thread  # type: ignore[index]
            event.update(channel=c.channel, user=c.teammate.slack_id, text=text, thread_ts=thread)
        else:
            raise ValueError(f"unknown event kind {kind!r}")
        return Event(kind, *signed(world, event), token=token, ts=ts)


def signed(world: World, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """``event`` in an ``event_callback`` envelope, signed now: (body, headers)."""
    now = time.time()
    envelope = {
        "type": "event_callback",
        "team_id": world.slack.team_id,
        "api_app_id": world.slack.api_app_id,
        "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}",
        "event_time": int(now),
        "event": event,
    }
    body = json.dumps(envelope).encode()
    return body, {"Content-Type": "application/json", **world.slack.sign(body)}


def relays_received(world: World, tokens: Sequence[str]) -> collections.Counter[str]:
    """How many times Respondent received each of ``tokens`` (as the body of a message to a participant)."""
    wanted = set(tokens)
    seen: collections.Counter[str] = collections.Counter()
    c = world.cast
    for who in (c.jordan, c.priya, c.sam):
        for message in world.respondent.messages_to(who.respondent_user_id):
            for token in TOKEN.findall(message.get("body") or ""):
                if token in wanted:
                    seen[token] += 1
    return seen


def relays_marked(world: World, events: Sequence[Event]) -> int:
    """How many of the relays among ``events`` carry their ✅ in Slack."""
    channel = world.cast.channel
    return sum(
        1
        for e in events
        if e.token is not None and "white_check_mark" in world.slack.reactions.get((channel, e.ts), ())
    )


async def link_study(world: World) -> dict[str, str]:
    """``/rally link`` of the cast's study, then Priya and Sam approved once Jordan's thread is open: participant id ->
    thread root ts of all three. (``common.link_study(approve_all=True)`` approves while the link is still being
    worked on; the load benchmarks need the three threads, not that race.)"""
    c = world.cast
    first = await common.link_study(world)
    for who in (c.priya, c.sam):
        await world.rally.approve(c.study_id, who.participant_id)
    wanted = [who.participant_id for who in (c.jordan, c.priya, c.sam)]
    return dict(
        await common.eventually(
            lambda: (roots := {**first, **common.thread_roots(world)}) and all(p in roots for p in wanted) and roots,
            what="the three participants' thread roots",
        )
    )


async def warm_up(world: World, urls: Sequence[str], factory: EventFactory, name: str) -> None:
    """A few events of every kind and one relay per participant thread, alternating over ``urls``, each answered
    200 and the relays delivered: the first use of each path (imports, connections, look-ups) is not measured."""
    batch = [factory.make(kind) for kind in ("unlinked", "unknown_thread", "bot_echo", "bot_echo", "join")]
    batch += [factory.make("relay") for _ in range(len(factory.roots))]
    async with common.unlimited_session(timeout=30) as http:
        for i, event in enumerate(batch):
            url = urls[i % len(urls)]
            async with http.post(f"{url}/slack/events", data=event.body, headers=event.headers) as response:
                await response.read()
                if response.status != 200:
                    raise common.BenchError(f"warm-up {event.kind} to the {name} answered {response.status}")
    relays = [e for e in batch if e.token is not None]
    await common.eventually(
        lambda: relays_marked(world, relays) == len(relays), within=60, what=f"the warm-up relays ({name})"
    )
