"""Slack App Home end to end: opening the Home tab publishes the viewer's home (linked studies they may act for with
participants and last activity, failed deliveries with Retry, pending reminders with Cancel; the others with why
not); Retry re-sends the very same outbox row once; Cancel cancels; both re-publish the home. Real bridge on a real
port, the Slack stand-in (views.publish, app_home_opened, clicks from a home view) driven by the real SDK clients,
SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import select

from playground.world import World
from sandbox.slack.interactions import PublishedHome, home_view_problem
from storage import reminders as store
from storage.models import OutboxItem
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, root_of, sent_to


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def _open_home(world: World, user: str) -> PublishedHome:
    """``user`` opens the Home tab; the view the bridge published for them in answer."""
    before = len(world.slack.interactions.home_publishes)
    await world.slack.open_home(user)
    found = await eventually(
        lambda: [h for h in world.slack.interactions.home_publishes[before:] if h.user == user],
        what=f"{user}'s home to be published",
    )
    home: PublishedHome = found[-1]
    assert not home_view_problem(home.view) and len(home.blocks) <= 100
    return home


async def _click(world: World, user: str, label: str, *, view: PublishedHome | None = None) -> PublishedHome:
    """``user`` clicks ``label`` on their Home tab (or on ``view``); their home as published again in answer."""
    before = len(world.slack.interactions.home_publishes)
    clicked = await world.slack.click_home(user, label, view=view)
    assert (clicked.status, clicked.body) == (200, "")
    found = await eventually(
        lambda: [h for h in world.slack.interactions.home_publishes[before:] if h.user == user],
        what=f"{user}'s home to be published again",
    )
    home: PublishedHome = found[-1]
    return home


def _labels(home: PublishedHome) -> list[str]:
    return [button["text"]["text"] for _block, button in home.buttons()]


def _status(home: PublishedHome) -> str:
    """The status line at the top of the tab (the answer to a click), or ""."""
    texts = [str((b.get("text") or {}).get("text", "")) for b in home.blocks if b["type"] == "section"]
    return next((_unescape(t) for t in texts if t.startswith(":information_source:")), "")


async def _relay_rows(world: World) -> list[OutboxItem]:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        query = select(OutboxItem).where(OutboxItem.kind == "respondent.send").order_by(OutboxItem.id)
        return list((await session.execute(query)).scalars())


async def _refused_reply(world: World, text: str) -> tuple[str, str, int]:
    """The owner replies to Jordan and Respondent refuses it for good (400): (root ts, reply ts, outbox id)."""
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    world.respondent.fail_next(1, status=400, path_contains="/messages")
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, text, thread_ts=root_ts)
    await eventually(lambda: "x" in world.slack.reactions(c.channel, ts), what="the reply marked failed")
    (row,) = await _relay_rows(world)
    assert row.status == "failed"
    return root_ts, ts, row.id


async def test_a_permitted_researcher_sees_the_study_its_participants_and_their_last_activity(world: World) -> None:
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    await participant_writes(world, c.jordan, "Hi, is Tuesday fine?")
    await eventually(lambda: world.slack.thread(c.channel, root_ts), what="the participant's message mirrored")
    ts = await world.slack.user_posts(c.channel, c.teammate.slack_id, "Tuesday works", thread_ts=root_ts)
    await eventually(lambda: "white_check_mark" in world.slack.reactions(c.channel, ts), what="delivered")

    home = await _open_home(world, c.owner.slack_id)
    text = _unescape(home.text())
    assert home.view["type"] == "home" and home.blocks[0]["type"] == "header"
    assert f"*{c.study_name}* · <#{c.channel}>" in text
    assert "You may message these participants" in text
    line = next(line for line in text.split("\n") if "*Jordan L.*" in line)
    # Last message each way, as dates Slack shows in the reader's zone, and the delivery state with the author.
    assert re.search(r"from them: <!date\^\d+\^\{date_short_pretty\} \{time\}\|[^>]+>", line)
    assert re.search(r"to them: <!date\^\d+\^[^>]+> \(delivered, Chloe Park\)", line)
    assert "What you can do" in text and "/rally link <studyId>" in text
    assert _labels(home) == [], "nothing failed, nothing scheduled: no buttons"
    # Opening the tab again publishes again (each app_home_opened is its own inbox row), the same view id.
    again = await _open_home(world, c.owner.slack_id)
    assert again.view_id == home.view_id and world.slack.calls("views.publish") == 2


async def test_someone_not_on_the_team_sees_that_the_study_exists_why_they_may_not_act_and_what_to_do(
    world: World,
) -> None:
    c = world.cast
    await link_study(world)
    home = await _open_home(world, c.outsider.slack_id)
    text = _unescape(home.text())
    assert "you may not act for them" in text
    assert f'*{c.study_name}* · <#{c.channel}>: You\'re not on the team of "{c.study_name}" in Rally' in text
    assert "Ask the study owner to add you as a teammate with external-panel access" in text
    assert "Jordan" not in text and "You may message" not in text and _labels(home) == []
    ben = _unescape((await _open_home(world, c.no_access.slack_id)).text())
    assert "without external-panel access" in ben and "Jordan" not in ben


async def test_nothing_linked_says_how_to_start(world: World) -> None:
    text = _unescape((await _open_home(world, world.cast.owner.slack_id)).text())
    assert "No Rally study is bridged in this workspace yet" in text and "/rally link <studyId>" in text


async def test_a_refused_relay_shows_with_retry_and_retry_resends_it_exactly_once(world: World) -> None:
    c = world.cast
    root_ts, ts, delivery_id = await _refused_reply(world, "Can you do Tuesday?")
    notice = next(m["text"] for m in world.slack.thread(c.channel, root_ts) if "Not delivered" in m["text"])
    assert f"/rally retry {delivery_id}" in notice

    home = await _open_home(world, c.owner.slack_id)
    text = _unescape(home.text())
    assert "*Not delivered*" in text
    assert f"*#{delivery_id}* to *Jordan L.* by Ana Ortiz, failed <!date^" in text
    assert "Reason: " in text and "400" in text and "> Can you do Tuesday?" in text
    ((_block, button),) = home.buttons()
    assert (button["text"]["text"], button["value"], button["style"]) == ("Retry", f"retry {delivery_id}", "primary")
    assert sent_to(world, c.jordan) == []

    # The cause is gone (the 400 was one answer); Ana clicks Retry on her Home tab.
    after = await _click(world, c.owner.slack_id, "Retry")
    assert f"Sending #{delivery_id} to Jordan L. again" in _status(after)
    assert _labels(after) == [], "the Retry button is gone once the row is queued again"
    await eventually(lambda: sent_to(world, c.jordan) == ["Can you do Tuesday?"], what="the retried relay")
    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"white_check_mark"}, what="✅ replaces ❌")
    await eventually(lambda: len(archived(world)) == 1, what="archived once")
    await world.quiet()
    assert sent_to(world, c.jordan) == ["Can you do Tuesday?"] and len(archived(world)) == 1
    (row,) = await _relay_rows(world)
    assert (row.id, row.status) == (delivery_id, "done")
    assert row.key == f"relay:slack:msg:{world.slack.team_id}:{c.channel}:{ts}", "the very same row, same key"
    thread = [m["text"] for m in world.slack.thread(c.channel, root_ts)]
    assert any(f"Ana Ortiz asked to send #{delivery_id}" in t for t in thread)

    # The same id again, typed: a clear answer, nothing sent.
    before = len([e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id])
    await world.slack.run_command(c.channel, c.owner.slack_id, f"retry {delivery_id}")
    answers = await eventually(
        lambda: [e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id][before:], what="answer"
    )
    assert f"Delivery #{delivery_id} was delivered already" in _unescape(answers[0]["text"])
    await world.slack.run_command(c.channel, c.owner.slack_id, "retry 999")
    answers = await eventually(
        lambda: [e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id][before + 1 :], what="answer"
    )
    assert "There is no failed delivery #999" in _unescape(answers[0]["text"])
    assert sent_to(world, c.jordan) == ["Can you do Tuesday?"]


async def test_a_typed_retry_confirms_privately_in_the_thread_and_a_second_failure_is_shown_again(
    world: World,
) -> None:
    c = world.cast
    root_ts, ts, delivery_id = await _refused_reply(world, "Thursday then?")
    world.respondent.fail_next(1, status=400, path_contains="/messages")  # still refused the second time
    await world.slack.run_command(c.channel, c.teammate.slack_id, f"retry #{delivery_id}")
    confirmation = await eventually(
        lambda: [e for e in world.slack.ephemerals if e["user"] == c.teammate.slack_id], what="confirmation"
    )
    assert confirmation[0]["thread_ts"] == root_ts and f"Sending #{delivery_id}" in confirmation[0]["text"]
    await eventually(
        lambda: len([m for m in world.slack.thread(c.channel, root_ts) if "Not delivered" in m["text"]]) == 2,
        what="the second failure shown in the thread too",
    )
    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"x"}, what="❌ again")
    (row,) = await _relay_rows(world)
    assert (row.id, row.status, row.payload["retries"]) == (delivery_id, "failed", 1)
    assert sent_to(world, c.jordan) == []
    # And a third time, now accepted.
    await world.slack.run_command(c.channel, c.teammate.slack_id, f"retry {delivery_id}")
    await eventually(lambda: sent_to(world, c.jordan) == ["Thursday then?"], what="delivered on the third round")
    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"white_check_mark"}, what="✅")


async def test_retry_by_someone_not_on_the_team_is_refused_and_nothing_is_sent(world: World) -> None:
    c = world.cast
    _root_ts, _ts, delivery_id = await _refused_reply(world, "Are you still in?")
    await _open_home(world, c.owner.slack_id)
    await _open_home(world, c.outsider.slack_id)
    # Dan has no Retry on his tab; a forged click (Ana's button, Dan as the clicker) is checked like a typed one.
    refused = await _click(world, c.outsider.slack_id, "Retry", view=world.slack.home_of(c.owner.slack_id))
    assert "You're not on the team" in _status(refused) and _labels(refused) == []
    await world.slack.run_command(c.channel, c.outsider.slack_id, f"retry {delivery_id}")
    answer = await eventually(
        lambda: [e for e in world.slack.ephemerals if e["user"] == c.outsider.slack_id], what="refusal"
    )
    assert "You're not on the team" in _unescape(answer[0]["text"])
    await world.quiet()
    (row,) = await _relay_rows(world)
    assert (row.status, row.attempts) == ("failed", 1) and "retries" not in row.payload
    assert sent_to(world, c.jordan) == []


async def test_cancel_on_the_home_cancels_a_pending_reminder_and_the_home_no_longer_shows_it(world: World) -> None:
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    await world.slack.run_command(c.channel, c.owner.slack_id, "remind Jordan in 2h -- See you soon")
    await eventually(lambda: any("Reminder #1" in e["text"] for e in world.slack.ephemerals), what="scheduled")

    home = await _open_home(world, c.teammate.slack_id)
    text = _unescape(home.text())
    assert "*Scheduled*" in text and "*#1* reminder for *Jordan L.*, <!date^" in text
    assert "by Ana Ortiz" in text and "> See you soon" in text
    assert _labels(home) == ["Cancel #1"]

    after = await _click(world, c.teammate.slack_id, "Cancel #1")
    assert "Chloe Park cancelled #1, the message to Jordan L." in _status(after)
    assert _labels(after) == [] and "*Scheduled*" not in after.text()
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        row = await store.by_id(session, 1)
        assert row is not None and (row.status, row.outcome) == ("cancelled", "by Chloe Park")
    await eventually(
        lambda: any("Chloe Park cancelled #1" in m["text"] for m in world.slack.thread(c.channel, root_ts)),
        what="the thread told",
    )
    # The same button on the tab as it was before (a stale view): nothing more is cancelled, and it says so.
    stale = await _click(world, c.teammate.slack_id, "Cancel #1", view=home)
    assert "There is no pending reminder #1" in _status(stale)
    notices = [m for m in world.slack.thread(c.channel, root_ts) if "cancelled #1" in m["text"]]
    assert len(notices) == 1


async def test_hostile_names_and_texts_are_escaped_in_the_view(world: World) -> None:
    c = world.cast
    world.rally.studies[c.study_id]["name"] = "Checkout <!channel> & <@U0BEN> <https://evil.example|docs>"
    world.rally.add_participant(
        c.study_id,
        "pa_evil",
        "<!here>",
        "<https://evil.example|Bank>",
        email="evil@example.net",
        respondent_user_id="6960391fbd5465b2dd6bd6f9",
        approval_status="APPROVED",
    )
    await link_study(world)
    await world.slack.run_command(c.channel, c.owner.slack_id, "remind pa_evil in 3h -- <!everyone> *come* <@U0DAN>")
    await eventually(lambda: any("Reminder #1" in e["text"] for e in world.slack.ephemerals), what="scheduled")

    home = await _open_home(world, c.owner.slack_id)
    raw = home.text()
    for hostile in ("<!channel>", "<!here>", "<!everyone>", "<@U0BEN>", "<@U0DAN>", "<https://evil.example"):
        assert hostile not in raw
    assert "Checkout &lt;!channel&gt; &amp; &lt;@U0BEN&gt;" in raw
    assert "*&lt;!here&gt; &lt;.*" in raw and "&lt;!everyone&gt; *come* &lt;@U0DAN&gt;" in raw
    # The only Slack markup on the tab is what the bridge made: dates and the study channel.
    controls = set(re.findall(r"<([^<>]*)>", raw))
    assert controls and all(x.startswith("!date^") or x == f"#{c.channel}" for x in controls), controls


async def test_each_workspace_sees_its_own_studies_published_on_its_own_token(database_url: str) -> None:
    """OAuth mode (several workspaces): the home lists the links of the viewer's workspace only, and views.publish
    goes out on that workspace's bot token (picked from the call's user_id)."""
    from tests.integration import test_oauth as oauth

    w = await World.create(database_url, slack_options={"rate_limit": False})
    client_secret = "s3cret-for-the-home-test"
    w.slack.configure_oauth(oauth.CLIENT_ID, client_secret, [f"{w.bridge_url}/slack/oauth_redirect"])
    w.slack.add_workspace(oauth.SECOND, "Acme Research")
    w.slack.add_workspace_channel(oauth.SECOND, oauth.CHANNEL2, "pricing-study")
    w.slack.add_workspace_user(oauth.SECOND, oauth.ADMIN2, "Ike Admin", "ike@acme.test")
    w.slack.add_workspace_user(oauth.SECOND, oauth.ANA2, "Ana Ortiz", w.cast.owner.email)
    w.rally.add_study(oauth.STUDY2, "Acme pricing interviews", respondent_project_id=oauth.PROJECT2)
    w.rally.add_team_member(oauth.STUDY2, "usr_ana", w.cast.owner.email, w.cast.owner.name, role="OWNER")
    await w.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        retry_base_seconds=0.2,
        retry_cap_seconds=2,
        slack_client_id=oauth.CLIENT_ID,
        slack_client_secret=client_secret,
        public_url=w.bridge_url,
    )
    try:
        async with oauth.browser(w) as session:
            status, path, page = await oauth.install(w, session, oauth.SECOND, oauth.ADMIN2)
        assert (status, path) == (200, "/slack/oauth_redirect"), page
        assert (await w.slack.run_command(oauth.CHANNEL2, oauth.ANA2, f"link {oauth.STUDY2}")).status == 200
        await link_study(w)

        acme = _unescape((await _open_home(w, oauth.ANA2)).text())
        assert f"*Acme pricing interviews* · <#{oauth.CHANNEL2}>" in acme and w.cast.study_name not in acme
        first = _unescape((await _open_home(w, w.cast.owner.slack_id)).text())
        assert w.cast.study_name in first and "Acme" not in first
        publishes = [team for method, team in w.slack.team_calls if method == "views.publish"]
        assert publishes == [oauth.SECOND, w.slack.team_id]
    finally:
        await w.stop()
