"""A newcomer plays every role in the playground, in a real headless Chromium, against the real bridge.

The page is driven only by clicks and typing; each outcome is asserted on the page and, where a person
elsewhere would notice it, cross-checked in the stand-ins (what Respondent delivered, what Rally archived).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import BrowserContext, Locator, Page, expect

from playground import Playground
from playground.world import World
from tests.playground.conftest import Screenshots

expect.set_options(timeout=15_000)

HOSTILE = 'Hi <!channel>! <img src=x onerror="window.__pwned=1"> <https://evil.example|your bank> *really*'


def channel_root(page: Page, text: str) -> Locator:
    return page.locator("#channel-messages .slack-message", has_text=text)


def in_thread(page: Page, text: str) -> Locator:
    return page.locator("#thread-messages .slack-message", has_text=text)


async def reply_in_thread(page: Page, person: str, text: str) -> None:
    await page.select_option("#slack-person", person)
    await page.fill("#thread-text", text)
    await page.click("#thread-send")
    await expect(page.locator("#thread-text")).to_have_value("")


async def test_newcomer_plays_every_role(
    browser: BrowserContext, playground: Playground, world: World, screenshots: Screenshots
) -> None:
    c = world.cast
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert playground.url is not None
    await page.goto(playground.url)
    await expect(page.locator("#ready")).to_have_text("bridge ready")
    await expect(page.locator("[data-metric=to_participant]")).to_have_text("0")

    # The study owner links the study with a slash command typed in the Slack pane.
    await page.select_option("#slack-person", c.owner.slack_id)
    await page.fill("#channel-text", f"/rally link {c.study_id}")
    await page.click("#channel-send")
    await expect(channel_root(page, "linked Rally study")).to_have_count(1)
    await expect(channel_root(page, "Jordan L.")).to_have_count(1)  # already approved: its thread opens at once
    await screenshots.take(page, "study-linked")

    # Rally: approve Alex -> one thread root for Alex in the Slack channel.
    alex_row = page.locator("#rally-participants tr[data-participant=pa_alex]")
    await expect(alex_row.locator(".approval")).to_have_text("Pending")
    await alex_row.locator("button.approve").click()
    await expect(alex_row.locator(".approval")).to_have_text("Approved")
    await expect(channel_root(page, "Alex K.")).to_have_count(1)
    await expect(channel_root(page, "Alex K.")).to_contain_text("Reply in this thread to message them.")
    await screenshots.take(page, "alex-approved-thread-opened")

    # The participant writes from their Respondent inbox: hostile text, shown as text everywhere.
    await page.select_option("#participant-select", "pa_alex")
    await page.fill("#participant-text", HOSTILE)
    await page.click("#participant-send")
    await expect(page.locator("#inbox .bubble.participant .body")).to_have_text([HOSTILE])
    await channel_root(page, "Alex K.").locator("button.open-thread").click()
    mirrored = in_thread(page, "(participant)")
    await expect(mirrored).to_have_count(1)
    await expect(mirrored.locator(".body")).to_contain_text("Alex K. (participant):")
    await expect(mirrored.locator(".body")).to_contain_text(HOSTILE.replace("*really*", "really"))
    await expect(mirrored.locator(".broadcast")).to_have_count(0)  # <!channel> arrives escaped: nobody is pinged
    await expect(mirrored.locator("a")).to_have_count(0)  # the disguised link is text, not a link
    await expect(page.locator("#archive li", has_text=HOSTILE)).to_have_count(1)
    await expect(page.locator("img")).to_have_count(0)
    assert await page.evaluate("window.__pwned") is None
    await expect(page.locator("[data-metric=from_participant]")).to_have_text("1")
    await screenshots.take(page, "participant-wrote")

    # A permitted researcher replies in the thread -> Alex receives it; ✅; Rally archives both directions.
    reply = "Thanks Alex & see you Wednesday: https://app.rallyuxr.com/schedule/pa_alex"
    await reply_in_thread(page, c.teammate.slack_id, reply)
    await expect(page.locator("#inbox .bubble.team .body")).to_have_text([reply])
    await expect(in_thread(page, "see you Wednesday").locator("[data-reaction=white_check_mark]")).to_have_count(1)
    alex_archive = page.locator("#archive li", has_text="Alex Kim")
    await expect(alex_archive).to_have_count(2)
    await expect(alex_archive.nth(1)).to_contain_text(f"→ Alex Kim · {c.teammate.name} · via Slack")
    await expect(alex_archive.nth(1)).to_contain_text(reply)
    await expect(page.locator("[data-metric=to_participant]")).to_have_text("1")
    assert [m["body"] for m in world.respondent.messages_to("6960391fbd5465b2dd6bd6e4")] == [reply]
    await screenshots.take(page, "researcher-replied")

    # Someone not on the study team replies -> only they see why; nothing reaches Alex or the archive.
    await reply_in_thread(page, c.outsider.slack_id, "Alex, can you also do a sales call?")
    refusal = page.locator("#thread-messages .private")
    await expect(refusal).to_have_count(1)
    await expect(refusal).to_contain_text("You're not on the team of")
    await expect(refusal).to_contain_text("Only visible to you")
    await screenshots.take(page, "outsider-refused-privately")
    await page.select_option("#slack-person", c.teammate.slack_id)
    await expect(in_thread(page, "sales call")).to_have_count(1)  # the message itself is in the channel...
    await expect(page.locator("#thread-messages .private")).to_have_count(0)  # ...the refusal is Dan's alone
    await world.quiet()  # a wrongly relayed reply would have arrived by now
    await expect(page.locator("#inbox .bubble.team")).to_have_count(1)
    await expect(page.locator("#archive li", has_text="sales call")).to_have_count(0)
    assert len(world.respondent.messages_to("6960391fbd5465b2dd6bd6e4")) == 1

    # Respondent goes down: the reply waits with ⏳ and the retries counter moves; back up: ✅, delivered once.
    await page.check("#outage")
    await reply_in_thread(page, c.teammate.slack_id, "Are you still there?")
    pending = in_thread(page, "Are you still there?")
    await expect(pending.locator("[data-reaction=hourglass_flowing_sand]")).to_have_count(1)
    await expect(page.locator("[data-metric=retries]")).not_to_have_text("0")
    await screenshots.take(page, "respondent-down-pending")
    await page.uncheck("#outage")
    await expect(pending.locator("[data-reaction=white_check_mark]")).to_have_count(1)
    await expect(pending.locator("[data-reaction=hourglass_flowing_sand]")).to_have_count(0)
    await expect(page.locator("#inbox .bubble.team .body")).to_have_text([reply, "Are you still there?"])
    await expect(alex_archive).to_have_count(3)
    await screenshots.take(page, "delivered-after-outage")

    assert errors == [], errors
    assert screenshots.count == 7


async def test_the_live_case_nudges_after_fast_forward_and_marks_a_read_reply_seen(
    browser: BrowserContext, playground: Playground, world: World, screenshots: Screenshots
) -> None:
    c = world.cast
    # Alex's session is in 5 h: a wait counts 10 min there (wall clock), so 2 h forward nudges on any day and hour.
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    await world.rally.move_session(c.study_id, "pa_alex", soon.isoformat().replace("+00:00", "Z"))
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert playground.url is not None
    await page.goto(playground.url)
    await expect(page.locator("#ready")).to_have_text("bridge ready")
    await expect(page.locator("#clock-offset")).to_have_text("bridge clock: real time")

    # Ana links the study, Rally approves Alex, Alex writes: nobody answers.
    await page.select_option("#slack-person", c.owner.slack_id)
    await page.fill("#channel-text", f"/rally link {c.study_id}")
    await page.click("#channel-send")
    await expect(channel_root(page, "Jordan L.")).to_have_count(1)
    await page.locator("#rally-participants tr[data-participant=pa_alex] button.approve").click()
    await expect(channel_root(page, "Alex K.")).to_have_count(1)
    await page.select_option("#participant-select", "pa_alex")
    await page.fill("#participant-text", "Is there parking at the <b>office</b>?")
    await page.click("#participant-send")
    await channel_root(page, "Alex K.").locator("button.open-thread").click()
    root = page.locator("#thread-messages .slack-message").first
    await expect(root).to_contain_text("🔴 Waiting on the team since")
    await expect(root.locator(".edited")).to_have_text("(edited)")  # the card, updated in place
    await expect(page.locator("#dm-messages .slack-message")).to_have_count(0)
    await screenshots.take(page, "alex-waiting")

    # Nobody answers: two hours forward, twice. Ana (who linked the study; Alex has no owner) gets a direct message,
    # the thread a note that mentions her.
    await page.click("#forward")
    await expect(page.locator("#clock-offset")).to_have_text("bridge clock +2 h")
    await page.click("#forward")
    await expect(page.locator("#clock-offset")).to_have_text("bridge clock +4 h")
    dm = page.locator("#dm-messages .slack-message")
    await expect(dm).to_have_count(1)
    await expect(dm).to_contain_text("Alex K. (Checkout redesign interviews) has waited")
    await expect(page.locator("#dm-count")).to_have_text("1")
    note = in_thread(page, "nobody has replied yet")
    await expect(note).to_have_count(1)
    await expect(note.locator(".mention")).to_have_text("@Ana Ortiz")
    await screenshots.take(page, "nudged")
    await page.select_option("#slack-person", c.teammate.slack_id)
    await expect(page.locator("#dm-messages .slack-message")).to_have_count(0)  # Ana's alone

    # Chloe replies; Alex reads it on Respondent: 👀 on the reply, and the card says so.
    await reply_in_thread(page, c.teammate.slack_id, "Yes, level -1. See you soon!")
    answered = in_thread(page, "See you soon!")
    await expect(answered.locator("[data-reaction=white_check_mark]")).to_have_count(1)
    await expect(root).not_to_contain_text("Waiting on the team")
    await expect(root).to_contain_text("🗓 Session soon")  # 1 h away on the bridge's clock
    await expect(page.locator("#participant-read-state")).to_have_text("Unread messages")
    await page.click("#participant-read")
    await expect(answered.locator("[data-reaction=eyes]")).to_have_text("👀 1")
    await expect(root).to_contain_text("👀 Seen by participant")
    await expect(page.locator("#participant-read-state")).to_have_text("All read")
    await expect(page.locator("img")).to_have_count(0)
    await screenshots.take(page, "seen")
    assert errors == [], errors
