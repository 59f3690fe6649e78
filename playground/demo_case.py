"""The demo's scenes of the live case: a thread gets an owner, nobody answers the participant (the owner gets a
direct message, then the thread a note), and a reply the participant read is marked seen.

Nobody waits an hour in a demo: the bridge's clock (``core.clock``) is moved forward for the nudge, the output says
so and by how much, and it is put back afterwards. Every outcome is read back from the stand-ins after waiting for it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core import clock
from core.case import NudgePolicy, format_wait, nudge_due
from core.records import Thread
from playground.demo_base import DemoFailure, Scenes, say, step, until
from playground.world import Candidate

ZONE = "Europe/Berlin"  # the zone of everyone in the demo's Slack workspace: whose working hours count
STAGES = (1, 2)  # 1: a direct message to the owner; 2: a note in the thread, after twice the threshold


def real_now() -> datetime:
    return datetime.now(UTC)


def local(moment: datetime) -> str:
    return f"{moment.astimezone(ZoneInfo(ZONE)):%a %d %b %H:%M} ({ZONE})"


def _aware(moment: datetime) -> datetime:
    """The bridge's moments are UTC; SQLite gives them back without their zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class CaseScenes(Scenes):
    async def stored_thread(self, who: Candidate) -> Thread:
        """``who``'s thread as the bridge stores it (read through its store: the facts the nudge tick reads)."""
        bridge = self.w.bridge
        if bridge is None:
            raise DemoFailure("the bridge is not running in this process")
        async with bridge.services.store.transaction() as uow:
            thread = await uow.threads.for_participant(self.c.study_id, who.participant_id)
        if thread is None:
            raise DemoFailure(f"the bridge has no thread for {who.first_name}")
        return thread

    async def live_case(self) -> None:
        c, priya = self.c, self.c.priya
        bridge = self.w.bridge
        if bridge is None:
            raise DemoFailure("the bridge is not running in this process")
        step(7, f"The live case: {c.owner.name} takes {priya.first_name}'s thread, and nobody answers her")
        say(f'    {c.owner.name} runs "/rally assign {priya.first_name}" in #{c.channel_name}')
        await self.command(c.owner, f"assign {priya.first_name}")
        notice = await until(
            lambda: [m for m in self.thread(priya) if "now owns" in m.get("text", "")],
            f"the new owner's notice in {priya.first_name}'s thread",
        )
        self.slack_line(notice[0], f"[{priya.first_name}'s thread]")
        await self.show_card(priya, f"Owner: {c.owner.name}", what="the new owner")

        thread = await self.stored_thread(priya)
        if thread.waiting_since is None:
            raise DemoFailure(f"the bridge does not have {priya.first_name} waiting on the team")
        since = _aware(thread.waiting_since)
        session = _aware(thread.session_starts_at) if thread.session_starts_at else None
        policy = NudgePolicy()

        def due(stage: int, now: datetime) -> datetime:
            return nudge_due(since, stage=stage, policy=policy, tz=ZONE, session_starts_at=session, now=now)

        started = real_now()
        dues = [due(stage, started) for stage in STAGES]
        target = max(dues)
        while (later := max(due(stage, target) for stage in STAGES)) > target:  # both due at that moment too
            target = later
        offset = max(target - started, timedelta(0))
        hours = policy.day_start.strftime("%H:%M") + "-" + policy.day_end.strftime("%H:%M")
        say(
            f"    {priya.first_name}'s question stays unanswered. The study's thresholds (the defaults; /rally "
            f"settings changes them): {format_wait(policy.wait)} of working time (weekdays {hours} in the owner's "
            f"zone, {ZONE}) for a direct message to the owner, twice that for a note in the thread."
        )
        say(
            f"    {priya.first_name} has waited since {local(since)}: the direct message is due {local(dues[0])}, "
            f"the note {local(dues[1])}."
        )
        say(
            f"    The demo moves the bridge's clock forward by {format_wait(policy.wait * len(STAGES))} of working "
            f"time: {offset.total_seconds() / 3600:.1f} hours on the wall clock, to {local(target)}. Nobody waits: "
            "only the bridge's clock moves. Then the bridge's nudge tick runs once."
        )
        try:
            clock.set_clock(lambda: real_now() + offset)
            await bridge.queue_nudges()
            tag = f"{priya.first_name} {priya.last_name[0]}."
            dms = await until(
                lambda: [m for m in self.w.slack.direct_messages(c.owner.slack_id) if tag in m.get("text", "")],
                f"the direct message to {c.owner.name}",
            )
            say(f"    Slack, direct message from the bot to {c.owner.name}: {dms[0]['text']}")
            note = await until(
                lambda: [m for m in self.thread(priya) if "nobody has replied yet" in m.get("text", "")],
                f"the note in {priya.first_name}'s thread",
            )
            self.slack_line(note[0], f"[{priya.first_name}'s thread]")
            if f"<@{c.owner.slack_id}>" in note[0]["text"]:
                say(f"    (<@{c.owner.slack_id}> is a real mention: Slack notifies {c.owner.name})")
        finally:
            clock.set_clock(None)
        say("    The bridge's clock is back to real time.")

    async def seen(self) -> None:
        c, jordan = self.c, self.c.jordan
        bridge = self.w.bridge
        if bridge is None:
            raise DemoFailure("the bridge is not running in this process")
        reply = self.replies[jordan.participant_id]
        step(8, f"{jordan.first_name} reads {c.teammate.name}'s reply on Respondent")
        self.w.respondent.participant_reads(jordan.respondent_user_id, c.project_id)
        say(
            f"    Respondent marks {jordan.first_name}'s conversation read; the bridge's next reconcile of the study "
            "reads it (the demo queues one now instead of waiting for the schedule)"
        )
        await bridge.queue_reconciles(cycle=f"demo-seen-{time.time_ns()}")
        await until(lambda: self.reacted(reply, "eyes"), f"the 👀 reaction on {c.teammate.name}'s reply")
        say(f"    Slack: 👀 added to {c.teammate.name}'s reply (seen by {jordan.first_name})")
        await self.show_card(jordan, "Seen by participant", what="seen")
