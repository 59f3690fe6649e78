"""What a research team on Teams sees: link, one reply chain per participant, mirrored messages, replies relayed."""

from __future__ import annotations

import html

from sqlalchemy import select

from storage.models import OutboxItem
from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes
from tests.teams.conftest import CHANNEL, OTHER_CHANNEL, TeamsWorld


async def test_link_in_a_teams_channel_opens_a_chain_for_the_approved_participant(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    notices = await eventually(lambda: [n for n in tw.notices() if "linked Rally study" in n], what="link notice")
    assert len(notices) == 1 and "Ana Ortiz linked" in notices[0] and "1 approved participant" in notices[0]
    (root,) = tw.roots("Jordan L.")
    assert root["id"] == root_id
    card = root["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    body = str(card["content"])
    assert tw.study.study_name in body and "Reply in this thread" in body and "Session" in body
    assert {
        "type": "Action.OpenUrl",
        "title": "Scheduling link",
        "url": "https://app.rallyuxr.com/schedule/pa_jordan",
    } in card["content"]["actions"]


async def test_link_refusals_are_private_and_name_the_reason(tw: TeamsWorld) -> None:
    await tw.teams.command(CHANNEL, tw.cast.outsider, f"link {tw.study.study_id}")
    assert "not on the team" in (await eventually(lambda: tw.private(tw.cast.outsider), what="refusal"))[0]
    await tw.teams.command(CHANNEL, tw.cast.owner, "link st_nope")
    unknown = (await eventually(lambda: tw.private(tw.cast.owner), what="unknown study"))[0]
    assert 'no study "st_nope"' in html.unescape(unknown)  # the "_" reaches Teams as a character reference
    await tw.teams.command(CHANNEL, tw.cast.owner, "help")
    help_text = (await eventually(lambda: tw.private(tw.cast.owner)[1:], what="help"))[0]
    # Same words as Slack, addressed the Teams way; our own text is escaped too.
    assert "@Rally Bridge link &lt;studyId&gt;" in help_text and "/rally" not in help_text
    assert tw.notices() == []


async def test_a_study_has_one_channel_in_teams_too(tw: TeamsWorld) -> None:
    await tw.link()
    await tw.teams.command(OTHER_CHANNEL, tw.cast.owner, f"link {tw.study.study_id}")
    assert "already bridged to another channel" in (await eventually(lambda: tw.private(tw.cast.owner)))[0]
    assert tw.teams.connector.roots(OTHER_CHANNEL) == []


async def test_duplicate_approval_webhooks_give_one_chain(tw: TeamsWorld) -> None:
    c = tw.study
    await tw.link()
    await tw.world.rally.approve(c.study_id, c.priya.participant_id, deliveries=3)
    await eventually(lambda: tw.roots("Priya S."), what="Priya's chain")
    assert tw.world.bridge is not None
    await tw.world.bridge.queue_reconciles()
    await tw.quiet()
    assert len(tw.roots("Priya S.")) == 1 and len(tw.roots("Jordan L.")) == 1


async def test_participant_messages_appear_in_the_chain_escaped_attributed_in_order_once(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    evil = (
        'Hi <at>General</at> <a href="https://evil.example">your bank</a> & <script>x()</script>'
        " [label](https://evil.example)"
    )
    await participant_writes(tw.world, tw.study.jordan, evil, deliveries=2)
    for n in range(3):
        await participant_writes(tw.world, tw.study.jordan, f"message {n}", deliveries=2)
    replies = await eventually(lambda: len(tw.replies(root_id)) >= 4 and tw.replies(root_id), what="4 replies")
    await tw.quiet()
    replies = tw.replies(root_id)
    assert len(replies) == 4
    first = replies[0]
    assert first.startswith("<b>Jordan L.</b> (participant):<br>")
    assert "&lt;at&gt;General&lt;/at&gt;" in first and "<at>" not in first
    assert '&lt;a href="https://evil.example"&gt;' in first and "<a " not in first
    assert "&amp;" in first and "<script>" not in first
    # Nor a Markdown link: its brackets reach Teams as character references, shown as typed.
    assert "[label]" not in first and "](" not in first and "&#91;label&#93;&#40;https://evil.example)" in first
    assert [r.rsplit("message ", 1)[-1] for r in replies[1:]] == ["0", "1", "2"]
    sent = [a for a in tw.teams.connector.replies(CHANNEL, root_id)]
    assert all(a["textFormat"] == "xml" and a["replyToId"] == root_id for a in sent)
    await eventually(lambda: len(tw.archived()) == 4, what="archived")


async def test_teammate_reply_is_relayed_archived_and_acknowledged(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    text = 'Hi Jordan &lt;3 see <a href="https://rally.example/s">the schedule</a> <at>Ana Ortiz</at>'
    ts = await tw.teams.posts(CHANNEL, tw.cast.teammate, text, root=root_id)
    sent = await eventually(tw.sent_to_jordan, what="relay to Respondent")
    assert sent == ["Hi Jordan <3 see the schedule (https://rally.example/s) @Ana Ortiz"]
    entry = (await eventually(tw.archived, what="archive"))[0]
    assert entry["source"] == "TEAMS" and entry["direction"] == "TO_PARTICIPANT"
    assert (entry["author"]["userId"], entry["author"]["name"]) == ("usr_chloe", "Chloe Park")
    assert entry["externalId"] == f"teams:tenant-sandbox:{CHANNEL}:{ts}"
    ack = await eventually(lambda: [r for r in tw.replies(root_id) if "delivered" in r], what="acknowledgement")
    assert ack == ["✓ Chloe Park's reply was delivered to Jordan L."]


async def test_non_teammates_are_refused_privately_and_nothing_leaves(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    await tw.teams.posts(CHANNEL, tw.cast.outsider, "let me jump in", root=root_id)
    await tw.teams.posts(CHANNEL, tw.cast.no_access, "me too", root=root_id)
    assert "not on the team" in (await eventually(lambda: tw.private(tw.cast.outsider)))[0]
    assert "external-panel access" in (await eventually(lambda: tw.private(tw.cast.no_access)))[0]
    await tw.quiet()
    assert tw.sent_to_jordan() == [] and tw.archived() == []
    assert tw.replies(root_id) == []  # nothing shown to the channel


async def test_internal_notes_files_and_edits_in_teams(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    owner = tw.cast.owner
    await tw.teams.posts(CHANNEL, owner, "// she seemed unsure", root=root_id)
    await tw.teams.posts(CHANNEL, owner, "", root=root_id, files=True)
    assert "Files can't be sent" in (await eventually(lambda: tw.private(owner)))[0]
    ts = await tw.teams.posts(CHANNEL, owner, "See you Tuesday", root=root_id)
    await eventually(tw.sent_to_jordan, what="relay")
    await tw.teams.edits(CHANNEL, owner, ts, "See you Wednesday", root=root_id)
    await eventually(lambda: any("Edits can't be relayed" in t for t in tw.private(owner)), what="edit notice")
    assert tw.sent_to_jordan() == ["See you Tuesday"]


async def test_a_mention_of_the_bot_with_a_command_word_in_a_chain_is_a_command(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    await tw.teams.posts(CHANNEL, tw.cast.owner, "help", root=root_id, mention_bot=True)
    assert "link &lt;studyId&gt;" in (await eventually(lambda: tw.private(tw.cast.owner)))[0]
    await tw.teams.posts(CHANNEL, tw.cast.owner, "please tell Jordan hi", root=root_id, mention_bot=True)
    assert await eventually(tw.sent_to_jordan) == ["please tell Jordan hi"]


async def test_the_same_activity_delivered_twice_is_relayed_once(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    activity = tw.teams.activity(CHANNEL, tw.cast.owner, "only once please", root=root_id)
    assert [(await tw.teams.deliver(activity)).status for _ in range(3)] == [200, 200, 200]
    await eventually(tw.sent_to_jordan, what="relay")
    await tw.quiet()
    assert tw.sent_to_jordan() == ["only once please"] and len(tw.archived()) == 1


async def test_a_retried_reply_that_is_refused_again_is_acknowledged_as_not_delivered_again(tw: TeamsWorld) -> None:
    """Teams cannot take a ✗ off, only post one: each failed round of a retried relay gets its own acknowledgement."""
    root_id = await tw.link()
    world = tw.world
    world.respondent.fail_next(1, status=400, path_contains="/messages")
    await tw.teams.posts(CHANNEL, tw.cast.teammate, "Thursday then?", root=root_id)

    def refused() -> list[str]:
        return [r for r in tw.replies(root_id) if r.startswith("✗") and "was not delivered" in r]

    assert len(await eventually(refused, what="the first ✗")) == 1
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        (delivery_id,) = (
            await session.execute(select(OutboxItem.id).where(OutboxItem.kind == "respondent.send"))
        ).scalars()
    world.respondent.fail_next(1, status=400, path_contains="/messages")  # refused the second time too
    await tw.teams.command(CHANNEL, tw.cast.teammate, f"retry {delivery_id}")

    await eventually(lambda: len(refused()) == 2, what="a second ✗ for the second failed round")
    await tw.quiet()
    assert len(refused()) == 2 and tw.sent_to_jordan() == []
