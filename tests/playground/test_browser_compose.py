"""A newcomer saves a reply, sends it, and sends a study-wide update to three participants, in a real headless
Chromium: commands typed in the channel's box, buttons clicked under the private notes and the card. Each outcome
is asserted on the page and cross-checked in the stand-ins (what Respondent delivered)."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Locator, Page, expect

from playground import Playground
from playground.world import World
from tests.playground.conftest import Screenshots

expect.set_options(timeout=15_000)

UPDATE = "Hi {first_name}, sessions of {study} are in Room 4. — {researcher}"
SUMMARY = "Study update from Ana Ortiz to Checkout redesign interviews: 3 sent, 0 skipped (opted out), 0 failed."


def card(page: Page, tag: str) -> Locator:
    return page.locator("#channel-messages .slack-message:not(.private)", has_text=tag).filter(
        has_text="Reply in this thread"
    )


def private(page: Page, text: str) -> Locator:
    return page.locator("#channel-messages .slack-message.private", has_text=text)


async def type_command(page: Page, text: str) -> None:
    await page.fill("#channel-text", text)
    await page.click("#channel-send")
    await expect(page.locator("#channel-text")).to_have_value("")


async def inbox_of(page: Page, participant: str) -> Locator:
    await page.select_option("#participant-select", participant)
    return page.locator("#inbox .bubble.team .body")


async def test_newcomer_saves_a_reply_sends_it_and_updates_three_participants(
    browser: BrowserContext, playground: Playground, world: World, screenshots: Screenshots
) -> None:
    c = world.cast
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert playground.url is not None
    await page.goto(playground.url)
    await expect(page.locator("#ready")).to_have_text("bridge ready")

    # Ana links the study; Rally approves Priya and Sam: three threads.
    await page.select_option("#slack-person", c.owner.slack_id)
    await type_command(page, f"/rally link {c.study_id}")
    for who in (c.priya, c.sam):
        await page.locator(f"#rally-participants tr[data-participant={who.participant_id}] button.approve").click()
    for tag in ("Jordan L.", "Priya S.", "Sam C."):
        await expect(card(page, tag)).to_have_count(1)

    # A saved reply with placeholders, sent by command to Sam: he receives it filled in.
    await type_command(page, "/rally reply add welcome Hi {first_name}, see you on {session_time}. — {researcher}")
    await expect(private(page, "Saved reply “welcome” saved for the workspace")).to_have_count(1)
    await type_command(page, "/rally reply Sam welcome")
    sam = await inbox_of(page, c.sam.participant_id)
    await expect(sam).to_have_count(1)
    await expect(sam).to_contain_text("Hi Sam, see you on ")
    await expect(sam).to_contain_text(" UTC. — Ana Ortiz")
    await expect(sam).not_to_contain_text("{")

    # The same reply from Jordan's card: its Saved reply button, then the private offer's Send button.
    await card(page, "Jordan L.").locator("button.block-button", has_text="Saved reply").click()
    offer = private(page, "Send Jordan L. a saved reply")
    await expect(offer).to_have_count(1)
    await expect(offer).to_contain_text("Only visible to you")
    await offer.locator("button.block-button", has_text="Send “welcome”").click()
    jordan = await inbox_of(page, c.jordan.participant_id)
    await expect(jordan).to_have_count(1)
    await expect(jordan).to_contain_text("Hi Jordan, see you on ")
    await screenshots.take(page, "saved-reply-sent")

    # A study-wide update: the preview only Ana sees, with Confirm and Cancel; nothing leaves before Confirm.
    await type_command(page, f"/rally update all -- {UPDATE}")
    preview = private(page, "Update to 3 participants of Checkout redesign interviews (all)")
    await expect(preview).to_have_count(1)
    for name in ("Jordan L.", "Priya S.", "Sam C."):
        first = name.split()[0]
        await expect(preview).to_contain_text(f"→ {name}: Hi {first}, sessions of Checkout redesign interviews")
    await expect(preview.locator("button.block-button")).to_have_text(["Confirm: send to 3", "Cancel"])
    await screenshots.take(page, "update-preview")
    await world.quiet()
    assert all(
        not [m for m in world.respondent.messages_to(who.respondent_user_id) if "Room 4" in m["body"]]
        for who in (c.jordan, c.priya, c.sam)
    )
    await page.select_option("#slack-person", c.teammate.slack_id)
    await expect(private(page, "Update to 3 participants")).to_have_count(0)  # Ana's alone
    await page.select_option("#slack-person", c.owner.slack_id)

    await preview.locator("button.block-button", has_text="Confirm: send to 3").click()
    await expect(private(page, "Sending to 3 participants")).to_have_count(1)
    summary = page.locator("#channel-messages .slack-message:not(.private)", has_text="Study update from")
    await expect(summary).to_have_count(1)
    await expect(summary.locator(".body")).to_have_text(SUMMARY)
    for who in (c.jordan, c.priya, c.sam):
        expected = f"Hi {who.first_name}, sessions of Checkout redesign interviews are in Room 4. — Ana Ortiz"
        inbox = await inbox_of(page, who.participant_id)
        await expect(inbox.filter(has_text="Room 4")).to_have_text([expected])
    await screenshots.take(page, "update-sent")
    await world.quiet()
    for who in (c.jordan, c.priya, c.sam):
        bodies = [m["body"] for m in world.respondent.messages_to(who.respondent_user_id)]
        assert len([b for b in bodies if "Room 4" in b]) == 1, bodies
    assert errors == [], errors
