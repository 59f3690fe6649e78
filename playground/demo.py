"""``rallybridge demo``: a realistic study played live against local stand-ins of Slack, Respondent and Rally.

Every line about an outcome is read back from the stand-ins after waiting for it; nothing is assumed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from playground.demo_base import DemoFailure, failed, say, step, until
from playground.demo_compose import ComposeScenes
from playground.world import Candidate, World
from storage.migrate import upgrade_async

OUTAGE_SECONDS = 3.0  # how long Respondent stays down in step 9
DEMO_DB = Path(".demo") / "demo.sqlite3"
SLACK_OPTIONS: dict[str, Any] = {}  # Slack's real rate limits stay on: the bridge has to cope
# With the playground, a newcomer may keep Respondent down for a minute: the bridge's backoff is capped lower than
# its default (300 s) so a pending reply is delivered within seconds of bringing Respondent back.
PLAYGROUND_RETRY_CAP_SECONDS = 10.0
IN, OUT = "←", "→"  # into the team (participant wrote), out to the participant (researcher wrote)


def fresh_sqlite_url() -> str:
    DEMO_DB.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///./{DEMO_DB.as_posix()}"


class Demo(ComposeScenes):
    """The script: one scene per step, in the order that keeps the story true (Priya's wait, nudged in the live
    case, ends with the reply during the outage; the study-wide update, which would end any wait, comes after)."""

    async def play(self) -> None:
        scenes = [self.link, self.refuse_link, self.approvals, self.participants_write, self.researchers_reply]
        for scene in [*scenes, self.live_case, self.seen, self.outage, self.composed, self.transcript]:
            await scene()
            await asyncio.sleep(self.pace)

    async def link(self) -> None:
        c = self.c
        step(2, f'{c.owner.name} (study owner) runs "/rally link {c.study_id}" in #{c.channel_name}')
        await self.command(c.owner, f"link {c.study_id}")
        confirmation = await until(
            lambda: [m for m in self.w.slack.messages(c.channel) if "linked Rally study" in m.get("text", "")],
            "the link confirmation in the channel",
        )
        self.slack_line(confirmation[0], "[channel]")
        say(f"    {c.jordan.first_name} was already approved in Rally, so the thread opens right away:")
        await self.root_of(c.jordan)

    async def refuse_link(self) -> None:
        c = self.c
        step(3, f'{c.owner.name} tries "/rally link {c.other_study_id}" (a study recruiting in Rally, not Respondent)')
        before = len(self.private_notes(c.owner))
        await self.command(c.owner, f"link {c.other_study_id}")
        refusal = await until(lambda: self.private_notes(c.owner)[before:], "the private refusal")
        self.refused.append(refusal[0])
        say(f"    Slack, only {c.owner.name} sees: {refusal[0]['text']}")

    async def approvals(self) -> None:
        c = self.c
        step(4, f"Rally approves {c.priya.first_name} and {c.sam.first_name} (signed participant webhooks)")
        for who in (c.priya, c.sam):
            await self.w.rally.approve(c.study_id, who.participant_id)
        for who in (c.priya, c.sam):
            await self.root_of(who)
        await asyncio.sleep(0.3)
        counts = {who.first_name: len(self.root_messages(who)) for who in (c.jordan, c.priya, c.sam)}
        say(f"    Thread roots in #{c.channel_name}: {counts} (one each)")

    async def participant_writes(self, who: Candidate, body: str) -> str:
        say(f'    {who.first_name} writes on Respondent: "{body}"')
        return await self.w.respondent.participant_writes(
            self.c.project_id, who.respondent_user_id, body, first_name=who.first_name, last_name=who.last_name
        )

    async def participants_write(self) -> None:
        c = self.c
        step(5, f"{c.jordan.first_name} and {c.priya.first_name} write to the team on Respondent")
        uids = [
            await self.participant_writes(c.jordan, "Hi <!channel>! Can we move my session to Wednesday?"),
            await self.participant_writes(c.priya, "Should I join from my laptop or my phone?"),
        ]
        for who in (c.jordan, c.priya):
            posted = await until(partial(self.thread, who), f"{who.first_name}'s message in the thread")
            self.slack_line(posted[0], f"[{who.first_name}'s thread]")
            if "<!channel>" in posted[0]["text"]:
                raise DemoFailure("a participant's <!channel> reached Slack unescaped")
        say("    (the <!channel> arrives escaped as &lt;!channel&gt;: shown as text, nobody is pinged)")

        def archived_both() -> list[dict[str, Any]]:
            rows = [r for r in self.archived() if r.get("respondentMessageUid") in uids]
            return rows if len(rows) == len(uids) else []

        rows = await until(archived_both, "both messages in the Rally archive")
        for row in rows:
            say(f"    Rally archived {row['id']} ({row['direction']}, {row['participantId']}): {row['body']}")
        await self.show_card(c.jordan, "Waiting on the team", what=f"{c.jordan.first_name} waiting on the team")

    async def researchers_reply(self) -> None:
        c = self.c
        step(6, f"{c.teammate.name} (on the study team) replies in {c.jordan.first_name}'s thread")
        text = "Hi Jordan, Wednesday works &amp; I moved it: <https://app.rallyuxr.com/schedule/pa_jordan|new time>"
        say(f'    Slack message as typed (Slack markup): "{text}"')
        ts = await self.w.slack.user_posts(c.channel, c.teammate.slack_id, text, thread_ts=self.roots["pa_jordan"])
        sent = await until(lambda: self.received(c.jordan), f"the reply to reach {c.jordan.first_name}")
        say(f'    Respondent, {c.jordan.first_name} received (plain text): "{sent[0]}"')
        self.replies[c.jordan.participant_id] = ts
        await until(lambda: self.reacted(ts), "the ✅ reaction on the reply")
        say(f"    Slack: ✅ added to {c.teammate.name}'s reply (delivered)")
        await self.show_card(c.jordan, "Waiting on the participant", what="the wait over")
        step("6b", f"{c.outsider.name} (not on the study team) replies in the same thread")
        await self.w.slack.user_posts(
            c.channel, c.outsider.slack_id, "Jordan, can you also do a sales call?", thread_ts=self.roots["pa_jordan"]
        )
        refusal = await until(lambda: self.private_notes(c.outsider), f"the private refusal to {c.outsider.name}")
        self.refused.append(refusal[-1])
        say(f"    Slack, only {c.outsider.name} sees: {refusal[-1]['text']}")
        await asyncio.sleep(0.5)
        if len(self.received(c.jordan)) != 1:
            raise DemoFailure(f"{c.outsider.name}'s reply reached {c.jordan.first_name}")
        say(f"    Respondent: {c.jordan.first_name} still has 1 message from the team (nothing from {c.outsider.name})")

    async def outage(self) -> None:
        c, respondent = self.c, self.w.respondent
        step(9, f"Respondent goes down; {c.owner.name}, nudged, replies to {c.priya.first_name} meanwhile")
        respondent.outage()
        started, seen = time.monotonic(), len(respondent.request_log)
        text = "A laptop is best, with a webcam. See you soon!"
        ts = await self.w.slack.user_posts(c.channel, c.owner.slack_id, text, thread_ts=self.roots["pa_priya"])

        def failures() -> int:
            return sum(1 for r in respondent.request_log[seen:] if r.status >= 500)

        await until(lambda: failures() >= 2, "the bridge to retry against the outage")
        say(
            f"    Respondent answered 503 to {failures()} attempts; {c.priya.first_name} has received "
            f"{len(self.received(c.priya))} messages; ✅ on the reply: {'yes' if self.reacted(ts) else 'not yet'}. "
            "Pending, retrying."
        )
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
        respondent.heal()
        healed = time.monotonic()
        say(f"    Respondent is back after {healed - started:.1f}s (outage healed)")
        await until(lambda: self.received(c.priya), f"the pending reply to reach {c.priya.first_name}")
        await until(lambda: self.reacted(ts), "the ✅ reaction after the outage")
        await until(lambda: any(r["body"] == text for r in self.archived()), "the archive of the pending reply")
        await asyncio.sleep(0.5)
        copies = self.received(c.priya).count(text)
        if copies != 1:
            raise DemoFailure(f"{c.priya.first_name} received the reply {copies} times")
        say(
            f"    Delivered {time.monotonic() - healed:.1f}s after healing, {failures()} failed attempts before; "
            f"{c.priya.first_name} received it exactly once; ✅ added; archived in Rally"
        )
        await self.show_card(c.priya, "Waiting on the participant", what=f"{c.priya.first_name}'s wait over")

    async def transcript(self) -> None:
        c = self.c
        step(11, f'The study record in Rally: "{c.study_name}" ({c.study_id}), as archived')
        rows = self.archived()
        people = {p.participant_id: p for p in (c.jordan, c.priya, c.sam)}
        for pid in dict.fromkeys(r["participantId"] for r in rows):
            who = people[pid]
            say(f"    {who.first_name} {who.last_name} ({pid})")
            for r in rows:
                if r["participantId"] == pid:
                    say("      " + transcript_line(r, f"{who.first_name} {who.last_name}"))
        say()
        say(self.summary(rows))

    def summary(self, rows: list[dict[str, Any]]) -> str:
        c = self.c
        everyone = (c.jordan, c.priya, c.sam)
        relayed = [(who.participant_id, body) for who in everyone for body in self.received(who)]
        mirrored = [m["text"] for who in everyone for m in self.thread(who) if "(participant)" in m["text"]]
        roots = [who.participant_id for who in everyone for _ in self.root_messages(who)]
        refused = sum(1 for e in self.w.slack.ephemerals if e in self.refused)
        answers = len(self.w.slack.ephemerals) - refused
        limited = sum(1 for call in self.w.slack.request_log if call.status == "ratelimited")
        archive_uids = [r.get("respondentMessageUid") for r in rows]
        duplicates = dupes(relayed) + dupes(mirrored) + dupes(archive_uids) + dupes(roots)
        line = (
            f"Summary: {len(relayed)} relayed to Respondent, {len(mirrored)} mirrored to Slack, "
            f"{len(rows)} archived in Rally, {refused} refused privately ({answers} other private answers); "
            f"duplicates: {duplicates} (checked by counting); Slack said 429 {limited}x (the bridge waited, retried)"
        )
        if duplicates:
            raise DemoFailure(line)
        return line


def dupes(items: list[Any]) -> int:
    return sum(n - 1 for n in Counter(items).values())


def transcript_line(row: dict[str, Any], participant: str) -> str:
    when = datetime.fromisoformat(str(row["sentAt"]).replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    inbound = row["direction"] == "FROM_PARTICIPANT"
    arrow, role, fallback = (IN, "participant", participant) if inbound else (OUT, "researcher", "a researcher")
    author = (row.get("author") or {}).get("name") or fallback
    return f"{when} {arrow} {author} ({role}, via {row['source'].title()}): {row['body']}"


async def run_demo(
    *, port: int, database_url: str | None, pace: float, script: bool = True, playground_port: int | None = None
) -> int:
    """Play the study (``script``), then serve the playground until Ctrl-C (``playground_port`` not None).

    0 when every outcome was seen (and the playground was stopped by the person), 1 when one was not (or the
    world could not start), 130 when interrupted during the script.
    """
    url = database_url or fresh_sqlite_url()
    world: World | None = None
    playing = False
    say("Rally Bridge demo: a realistic study on local stand-ins of Slack, Respondent and Rally (no network).")
    step(1, "Starting the stand-ins and the bridge (its embedded defaults, a fresh database)")
    try:
        await upgrade_async(url)
        world = await World.create(url, bridge_port=port or None, slack_options=SLACK_OPTIONS)
        if playground_port is None:
            await world.start_bridge()
        else:
            await world.start_bridge(retry_cap_seconds=PLAYGROUND_RETRY_CAP_SECONDS)
        say(f"  Slack stand-in       {world.slack.base_url}   (workspace with #{world.cast.channel_name})")
        say(f"  Respondent stand-in  {world.respondent.base_url}")
        say(f"  Rally stand-in       {world.rally.base_url}")
        say(f"  Bridge               {world.bridge_url}   (database {url})")
        if script:
            await Demo(world, pace).play()
            say()
            say("Demo finished: every outcome above was read back from the stand-ins.")
        if playground_port is None:
            return 0
        playing = True
        await play_in_browser(world, playground_port, after_script=script)
        say()
        say("Playground stopped.")
        return 0
    except DemoFailure as exc:
        hint = " (--database must name an empty or fresh database)" if database_url else ""
        return failed(f"{exc}{hint}")
    except OSError as exc:
        return failed(f"could not start the world: {exc}")
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task; stop cleanly instead of a traceback
        say()
        say("Interrupted: stopping the stand-ins and the bridge.")
        return 0 if playing else 130
    finally:
        if world is not None:
            await world.stop()


async def play_in_browser(world: World, port: int, *, after_script: bool) -> None:
    """Serve the playground for ``world`` and wait for Ctrl-C (SIGINT) or SIGTERM."""
    from playground import Playground

    playground = Playground(world)
    page = await playground.start(port)
    c = world.cast
    step("▶" if after_script else 2, "Your turn: play every role in your browser")
    say(f"    Open {page}")
    if page != f"http://127.0.0.1:{port}/" and port:
        say(f"    (port {port} was taken, so the playground took another)")
    if not after_script:
        say(f'    First link the study: in the Slack pane, as {c.owner.name}, send "/rally link {c.study_id}".')
    say(
        "    Then: approve Alex Kim in the Rally pane; write as Alex in the Participant pane; in Slack, as "
        f"{c.teammate.name}, open Alex's thread and reply; reply again as {c.outsider.name} (not on the team)."
    )
    say(
        "    The live case: let a participant wait and click Fast-forward 2 h (the bridge's clock; nudges count "
        "working hours) for the owner's direct message and the thread's note; reply, then Participant reads for 👀."
    )
    say(
        f'    Saved replies and updates, as {c.owner.name}: "/rally reply add hello Hi {{first_name}}!", then "/rally '
        'reply Alex hello" (or the card\'s Saved reply button); "/rally update all -- Hi {first_name}, ..." shows a '
        "preview only you see: click its Confirm button."
    )
    say("    Everything goes through the real HTTP paths (signed Slack events and webhooks). Ctrl-C stops.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await playground.stop()
