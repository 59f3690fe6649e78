"""The demo's scene of messages a researcher composes once and sends many times: a saved reply with placeholders,
filled in for one participant, then a study-wide update previewed privately and sent to every participant on
Confirm (each in their own thread, then one summary in the channel).

Every outcome is read back from the stand-ins after waiting for it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from playground.demo_base import DemoFailure, say, step, until
from playground.demo_case import CaseScenes
from playground.world import Candidate, Person

SAVED_NAME = "welcome"
SAVED = (
    "Hi {first_name}, welcome to {study}! Your session is on {session_time}; "
    "to move it: {scheduling_link} — {researcher}"
)
UPDATE = "Hi {first_name}, for everyone in {study}: sessions are in Room 4, 2nd floor. Bring a photo ID. — {researcher}"
UPDATE_MARK = "sessions are in Room 4"  # how the demo recognises the update among what Respondent received


def buttons(note: dict[str, Any]) -> list[str]:
    """The labels of the buttons under a Slack message or a private note (its ``actions`` blocks)."""
    return [
        str((element.get("text") or {}).get("text", ""))
        for block in note.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements") or []
        if element.get("type") == "button"
    ]


class ComposeScenes(CaseScenes):
    async def ask(self, person: Person, text: str, *, what: str) -> dict[str, Any]:
        """``person`` runs ``/rally <text>``; the private answer, once it arrived."""
        before = len(self.private_notes(person))
        say(f'    {person.name} runs "/rally {text}"')
        await self.command(person, text)
        notes = await until(lambda: self.private_notes(person)[before:], what)
        return notes[0]

    def private_line(self, person: Person, note: dict[str, Any]) -> None:
        shown = str(note["text"]).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")  # as Slack shows it
        lines = [line for line in shown.splitlines() if line.strip()] or [""]
        say(f"    Slack, only {person.name} sees: {lines[0]}")
        for line in lines[1:]:
            say(f"        {line}")
        if labels := buttons(note):
            say("        " + " ".join(f"[{label}]" for label in labels))

    def notices(self, who: Candidate, part: str) -> list[dict[str, Any]]:
        return [m for m in self.thread(who) if part in m.get("text", "")]

    async def composed(self) -> None:
        c, ana, sam = self.c, self.c.owner, self.c.sam
        everyone = (c.jordan, c.priya, c.sam)
        step(
            10,
            f"{ana.name} saves a reply with placeholders, sends it to {sam.first_name}, then one update to all three",
        )
        saved = await self.ask(ana, f"reply add {SAVED_NAME} {SAVED}", what="the saved reply's confirmation")
        self.private_line(ana, saved)
        say(f'    {ana.name} runs "/rally reply {sam.first_name} {SAVED_NAME}" (filled in for {sam.first_name})')
        await self.command(ana, f"reply {sam.first_name} {SAVED_NAME}")
        notice = await until(
            lambda: self.notices(sam, "sent the saved reply"), f"the notice in {sam.first_name}'s thread"
        )
        self.slack_line(notice[0], f"[{sam.first_name}'s thread]")
        got = await until(lambda: self.received(sam), f"the saved reply to reach {sam.first_name}")
        say(f'    Respondent, {sam.first_name} received (plain text): "{got[0]}"')
        if "{" in got[0]:
            raise DemoFailure(f"{sam.first_name} received a placeholder unfilled")
        row = (await until(lambda: self.archived_by("rallybridge:saved:"), "the saved reply in the Rally archive"))[0]
        say(f"    Rally archived {row['id']} ({row['direction']}, {row['participantId']}, by {row['author']['name']})")

        before = {who.participant_id: len(self.received(who)) for who in everyone}
        preview = await self.ask(ana, f"update all -- {UPDATE}", what="the update's private preview")
        self.private_line(ana, preview)
        await asyncio.sleep(0.5)
        if any(len(self.received(who)) != before[who.participant_id] for who in everyone):
            raise DemoFailure("the preview sent something before Confirm")
        counts = ", ".join(f"{who.first_name} {len(self.received(who))}" for who in everyone)
        say(f"    Nothing sent before Confirm: messages from the team on Respondent still {counts}")
        confirm = next((label for label in buttons(preview) if label.startswith("Confirm")), None)
        if confirm is None:
            raise DemoFailure(f"the preview has no Confirm button: {buttons(preview)}")
        notes = len(self.private_notes(ana))
        say(f'    {ana.name} clicks "{confirm}"')
        clicked = await self.w.slack.click(c.channel, ana.slack_id, confirm, ephemeral=preview)
        if clicked.status != 200:
            raise DemoFailure(f"the bridge answered HTTP {clicked.status} to the click on {confirm!r}")
        said = await until(lambda: self.private_notes(ana)[notes:], "the answer to Confirm")
        self.private_line(ana, said[0])
        for who in everyone:
            update = await until(partial(self.update_to, who), f"the update to reach {who.first_name}")
            say(f'    Respondent, {who.first_name} received: "{update[0]}"')
        shown = {}
        for who in everyone:
            found = await until(partial(self.notices, who, "sent a study-wide update"), f"{who.first_name}'s notice")
            shown[who.first_name] = len(found)
        say(f"    Slack: “{ana.name} sent a study-wide update” in each participant's own thread: {shown}")
        summary = await until(self.summaries, "the update's summary in the channel")
        self.slack_line(summary[0], "[channel]")
        await until(lambda: len(self.archived_by("rallybridge:update:")) == len(everyone), "the updates archived")
        await asyncio.sleep(0.5)
        copies = [len(self.update_to(who)) for who in everyone]
        if copies != [1] * len(everyone) or len(self.summaries()) != 1:
            raise DemoFailure(f"the update was received {copies} times, summarised {len(self.summaries())} times")
        say(f"    Each received it exactly once; {len(everyone)} archived in Rally as sent by {ana.name}; one summary")

    def update_to(self, who: Candidate) -> list[str]:
        """What ``who`` received of the update."""
        return [body for body in self.received(who) if UPDATE_MARK in body]

    def archived_by(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.archived() if str(r.get("externalId", "")).startswith(prefix)]

    def summaries(self) -> list[dict[str, Any]]:
        return [m for m in self.w.slack.messages(self.c.channel) if "Study update from" in m.get("text", "")]
