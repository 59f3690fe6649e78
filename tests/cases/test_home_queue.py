"""Behaviour 6 of the live case: App Home lists the participants waiting on the team first, longest wait first, with
owner and session time, with a study filter; ``/rally status`` gives each study's median first response (7 days)."""

from __future__ import annotations

from playground.world import World
from sandbox.slack.interactions import PublishedHome
from tests.cases.conftest import FakeClock, card_of, command, linked, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes, root_of

SECOND = "st_diary"


async def _open_home(world: World, user: str) -> PublishedHome:
    before = len(world.slack.interactions.home_publishes)
    await world.slack.open_home(user)
    found = await eventually(
        lambda: [h for h in world.slack.interactions.home_publishes[before:] if h.user == user], what="home"
    )
    return found[-1]


def _queue_lines(home: PublishedHome) -> list[str]:
    text = unescape(home.text())
    start = text.index("*Waiting for an answer*")
    lines = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("• "):
            break
        lines.append(line)
    return lines


async def test_home_lists_who_waits_longest_first_with_owner_and_a_study_filter(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    jordan_root = await linked(world)
    await world.rally.approve(c.study_id, c.priya.participant_id)
    await root_of(world, c.priya)
    # A second study, linked in another channel: the filter shows one study at a time.
    world.rally.add_study(SECOND, "Diary study", respondent_project_id="6960aaaaaaaaaaaaaaaaaaaa")
    world.rally.add_team_member(SECOND, "usr_ana", c.owner.email, c.owner.name, role="OWNER")
    world.rally.add_participant(
        SECOND,
        "pa_noor",
        "Noor",
        "Haddad",
        email="noor@example.net",
        respondent_user_id="6960ffffffffffffffffffff",
        approval_status="APPROVED",
    )
    assert (await world.slack.run_command("C0OTHER", c.owner.slack_id, f"link {SECOND}")).status == 200

    await participant_writes(world, c.jordan, "First question")
    await eventually(lambda: "Waiting on the team" in card_of(world, jordan_root), what="Jordan waiting")
    await participant_writes(world, c.priya, "Second question")
    await world.respondent.participant_writes(
        "6960aaaaaaaaaaaaaaaaaaaa", "6960ffffffffffffffffffff", "Diary q", first_name="Noor", last_name="Haddad"
    )
    assert (await world.slack.run_command(c.channel, c.owner.slack_id, "assign Priya")).status == 200
    await world.quiet()

    home = await _open_home(world, c.owner.slack_id)
    lines = _queue_lines(home)
    assert [line.split("*")[1] for line in lines] == ["Jordan L.", "Priya S.", "Noor H."]  # longest wait first
    assert "no owner" in lines[0] and "owner Ana Ortiz" in lines[1] and "session" in lines[0]

    before = len(world.slack.interactions.home_publishes)
    await world.slack.click_home(c.owner.slack_id, "Diary study", view=home)
    filtered = (await eventually(lambda: world.slack.interactions.home_publishes[before:], what="the filtered home"))[
        -1
    ]
    assert [line.split("*")[1] for line in _queue_lines(filtered)] == ["Noor H."]
    assert "Checkout redesign interviews" not in unescape(filtered.text())


async def test_status_gives_the_median_first_response_of_the_last_week(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    said = unescape(await command(world, c.owner.slack_id, "status"))
    assert "no answered waits in the last 7 days" in said
    await participant_writes(world, c.jordan, "Hello?")
    await eventually(lambda: "Waiting on the team" in card_of(world, root_ts), what="Jordan waiting")
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Hi Jordan!", thread_ts=root_ts)
    await eventually(lambda: "Waiting on the participant" in card_of(world, root_ts), what="answered")
    said = unescape(await command(world, c.owner.slack_id, "status"))
    assert "Checkout redesign interviews: median first response" in said and "(1 answered)" in said
