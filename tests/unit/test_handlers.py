"""The handlers on fakes: an in-memory unit of work and fake ports, no database, no HTTP. Each test is one event
in, and what the bridge decided to do (rows it queued, state it kept) out; the flows' integration tests check the
same behaviour end to end."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from core import events
from core.domain import Conversation, RespondentMessage
from core.errors import TemporaryFailure
from tests.fakes.bridge import CHANNEL, NOW, PROJECT, STUDY, Bridge, participant, researcher, study


def command(text: str, *, user: str = "U_OWNER", n: int = 1, channel: str = CHANNEL) -> events.InboundEvent:
    return events.chat_command(
        platform="slack", request_id=f"t{n}", workspace="T1", channel=channel, user_id=user, text=text
    )


@pytest.fixture
def bridge() -> Bridge:
    b = Bridge()
    b.rally.studies[STUDY] = study()
    b.rally.participants[STUDY] = [participant("pa_1"), participant("pa_2", first="Sam", last="Lee", approved=False)]
    researcher(b, "U_OWNER", "Ana Ortiz", role="OWNER")
    researcher(b, "U_NOPANEL", "Ben Ito", panel=False)
    researcher(b, "U_OUTSIDER", "Dan Reyes", on_team=False)
    return b


async def linked(bridge: Bridge) -> None:
    await bridge.process(command(f"link {STUDY}"))


async def test_link_bridges_the_study_and_opens_one_thread_per_approved_participant(bridge: Bridge) -> None:
    await linked(bridge)

    link = bridge.store.state.links[STUDY]
    assert link.active and link.channel == CHANNEL and link.respondent_project_id == PROJECT
    assert [t.participant_id for t in bridge.store.state.threads.values()] == ["pa_1"]
    assert [row.key for row in bridge.store.outbox("chat.root")] == [f"root:{STUDY}:pa_1"]
    (notice,) = bridge.notice_texts()
    assert "Ana Ortiz linked" in notice and "1 approved participant " in notice
    catch_up = [r for r in bridge.store.rows("inbox") if r.key.startswith(f"reconcile:{STUDY}:catch-up:")]
    assert len(catch_up) == 1 and catch_up[0].payload["respondent_user_ids"] == ["ru_pa_1"]


async def test_link_of_an_unknown_study_names_it_and_changes_nothing(bridge: Bridge) -> None:
    await bridge.process(command("link st_missing"))

    assert bridge.store.state.links == {}
    (answer,) = bridge.private_texts()
    assert "st_missing" in answer


async def test_link_of_a_study_that_does_not_recruit_from_respondent_is_refused(bridge: Bridge) -> None:
    bridge.rally.studies["st_ui"] = study("st_ui", respondent=False, name="Panel study")

    await bridge.process(command("link st_ui"))

    assert bridge.store.state.links == {}
    (answer,) = bridge.private_texts()
    assert "does not recruit from Respondent" in answer


async def test_link_by_a_teammate_without_panel_access_is_refused(bridge: Bridge) -> None:
    await bridge.process(command(f"link {STUDY}", user="U_NOPANEL"))

    assert bridge.store.state.links == {}
    assert bridge.outbox("chat.root") == [] and len(bridge.private_texts()) == 1


async def test_the_same_command_delivered_twice_is_handled_once(bridge: Bridge) -> None:
    await linked(bridge)
    again = await bridge.process(command(f"link {STUDY}"))

    assert again is None
    assert len(bridge.outbox("chat.notice")) == 1


async def test_unknown_command_answers_privately_with_the_help(bridge: Bridge) -> None:
    await bridge.process(command("frobnicate"))

    (answer,) = bridge.private_texts()
    assert 'don\'t know the command "frobnicate"' in answer and "link" in answer


async def _thread_with_root(bridge: Bridge) -> str:
    await linked(bridge)
    (thread,) = bridge.store.state.threads.values()
    async with bridge.store.transaction() as uow:
        await uow.threads.set_root(thread.id, "100.000")
    return "100.000"


def reply(text: str, *, user: str, ts: str = "200.000", root: str = "100.000") -> events.InboundEvent:
    return events.chat_message(
        platform="slack",
        event_id=f"Ev{ts}",
        workspace="T1",
        channel=CHANNEL,
        user_id=user,
        ts=ts,
        thread_ts=root,
        text=text,
    )


async def test_a_permitted_reply_in_a_thread_is_queued_for_the_participant_once(bridge: Bridge) -> None:
    await _thread_with_root(bridge)

    await bridge.process(reply("See you tomorrow", user="U_OWNER"))
    await bridge.process(reply("See you tomorrow", user="U_OWNER"))  # Slack's retry

    (relay,) = bridge.outbox("respondent.send")
    assert relay["body"] == "See you tomorrow" and relay["author"]["name"] == "Ana Ortiz"
    (message,) = bridge.store.state.messages.values()
    assert message.state == "pending" and message.post_id == "200.000"


async def test_a_reply_by_someone_not_on_the_team_is_refused_privately_and_nothing_leaves(bridge: Bridge) -> None:
    await _thread_with_root(bridge)

    await bridge.process(reply("hello", user="U_OUTSIDER"))

    assert bridge.outbox("respondent.send") == []
    assert bridge.store.state.messages == {}
    ((channel, who),) = [(p["channel"], p["user_id"]) for p in bridge.outbox("chat.private")]
    assert (channel, who) == (CHANNEL, "U_OUTSIDER")


async def test_an_internal_note_stays_in_the_thread(bridge: Bridge) -> None:
    await _thread_with_root(bridge)

    await bridge.process(reply("// she prefers mornings", user="U_OWNER"))

    assert bridge.outbox("respondent.send") == [] and bridge.private_texts() == []


async def test_a_participant_message_is_mirrored_and_archived_once(bridge: Bridge) -> None:
    await _thread_with_root(bridge)
    message = RespondentMessage("m1", "Is parking available?", None, "ru_pa_1")
    bridge.respondent.conversations["cv_1"] = Conversation("cv_1", PROJECT, ("ru_pa_1",), (message,))
    webhook = events.respondent_message_created(
        delivery_uuid="d1", message_id="m1", conversation_uid="cv_1", project_id=PROJECT
    )
    redelivered = events.respondent_message_created(
        delivery_uuid="d2", message_id="m1", conversation_uid="cv_1", project_id=PROJECT
    )

    await bridge.process(webhook)
    await bridge.process(redelivered)

    (mirror,) = bridge.outbox("chat.mirror")
    assert mirror["body"] == "Is parking available?" and mirror["author_name"] == "Alex K."
    (archive,) = bridge.outbox("rally.archive")
    assert archive["external_id"] == "respondent:m1" and archive["direction"] == "FROM_PARTICIPANT"
    (thread,) = bridge.store.state.threads.values()
    assert thread.conversation_uid == "cv_1"


async def test_an_opt_out_is_announced_once_and_blocks_replies(bridge: Bridge) -> None:
    await _thread_with_root(bridge)

    for n in (1, 2):
        await bridge.process(
            events.rally_person_opted_out(svix_id=f"msg_{n}", email="alex@example.com", opted_out=True)
        )
    await bridge.process(reply("Still there?", user="U_OWNER"))

    notices = [text for text in bridge.notice_texts() if "opted out" in text]
    assert len(notices) == 1
    assert bridge.outbox("respondent.send") == []
    assert any("opted out" in text for text in bridge.private_texts())


async def test_unlink_stops_bridging_and_says_so_in_the_channel(bridge: Bridge) -> None:
    await linked(bridge)

    await bridge.process(command(f"unlink {STUDY}", n=2))

    assert not bridge.store.state.links[STUDY].active
    assert any("unlinked" in text.lower() for text in bridge.notice_texts())


async def test_a_failed_handler_changes_nothing(bridge: Bridge) -> None:
    """The unit of work is all or nothing: a handler's writes that fail halfway leave no trace."""
    await linked(bridge)
    before = len(bridge.store.outbox())

    with pytest.raises(RuntimeError):
        async with bridge.store.transaction() as uow:
            await uow.outbox.add(key="x", kind="chat.notice", lane="l", payload={})
            raise RuntimeError("boom")

    assert len(bridge.store.outbox()) == before


@pytest.fixture
def clock_at_noon():
    from core import clock

    clock.set_clock(lambda: NOW)
    yield NOW
    clock.set_clock(None)


async def test_remind_schedules_one_reminder_in_the_researchers_zone_and_confirms_privately(
    bridge: Bridge, clock_at_noon: datetime
) -> None:
    await linked(bridge)

    await bridge.process(command("remind Alex in 2h Bring your laptop", n=2))
    await bridge.process(command("remind Alex in 2h Bring your laptop", n=2))  # the same command again

    (reminder,) = bridge.store.state.reminders.values()
    assert reminder.due_at == clock_at_noon + timedelta(hours=2) and reminder.body == "Bring your laptop"
    assert reminder.created_by_name == "Ana Ortiz" and reminder.tz == "Europe/Berlin"
    assert any(f"Reminder #{reminder.id} for Alex K." in text for text in bridge.private_texts())


async def test_remind_for_someone_without_a_thread_lists_who_is_here(bridge: Bridge, clock_at_noon: datetime) -> None:
    await linked(bridge)

    await bridge.process(command("remind Zoe in 2h", n=2))

    assert bridge.store.state.reminders == {}
    assert any('Nobody called "Zoe"' in text and "Alex K." in text for text in bridge.private_texts())


async def test_cancel_by_a_teammate_without_panel_access_is_refused_and_the_reminder_stays(
    bridge: Bridge, clock_at_noon: datetime
) -> None:
    await linked(bridge)
    await bridge.process(command("remind Alex in 2h", n=2))
    (reminder,) = bridge.store.state.reminders.values()

    await bridge.process(command(f"cancel {reminder.id}", user="U_NOPANEL", n=3))

    assert bridge.store.state.reminders[reminder.id].status == "pending"
    await bridge.process(command(f"cancel {reminder.id}", n=4))
    assert bridge.store.state.reminders[reminder.id].status == "cancelled"
    assert any(f"cancelled #{reminder.id}" in text for text in bridge.notice_texts())


async def test_retry_of_something_that_is_not_a_failed_delivery_says_so(bridge: Bridge) -> None:
    await linked(bridge)

    await bridge.process(command("retry 999", n=2))

    (answer,) = bridge.private_texts()
    assert "999" in answer


async def test_a_reply_that_races_its_threads_root_is_looked_at_again_not_dropped(bridge: Bridge) -> None:
    """Slack shows the root before the bridge has recorded its id: a reply in that moment waits, then is relayed."""
    await linked(bridge)
    async with bridge.store.transaction() as uow:
        (root_row,) = [
            r for r in await uow.outbox.claim(owner="w", lease=timedelta(minutes=1), limit=10) if r.kind == "chat.root"
        ]

    with pytest.raises(TemporaryFailure):
        await bridge.process(reply("Thursday then?", user="U_OWNER"))
    assert bridge.outbox("respondent.send") == []

    (thread,) = bridge.store.state.threads.values()
    async with bridge.store.transaction() as uow:
        await uow.threads.set_root(thread.id, "100.000")
        await uow.outbox.finish(root_row.id, "w")
    await bridge.process_due()
    assert [p["body"] for p in bridge.outbox("respondent.send")] == ["Thursday then?"]


async def test_a_reply_in_a_thread_that_is_not_a_participants_is_ignored(bridge: Bridge) -> None:
    await _thread_with_root(bridge)

    await bridge.process(reply("lunch?", user="U_OWNER", root="555.000"))

    assert bridge.outbox("respondent.send") == [] and bridge.private_texts() == []
