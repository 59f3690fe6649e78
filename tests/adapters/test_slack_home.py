"""The App Home view (``adapters/slack/home.py``) within Slack's limits, checked by the Slack stand-in's own
``views.publish`` validation; and the core's home model surviving the outbox (JSON) unchanged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from adapters.slack.home import MAX_HOME_BLOCKS, home_blocks, home_view
from core.domain import Action
from core.home import (
    ClosedStudy,
    FailedDelivery,
    HomeView,
    LastMessage,
    ParticipantLine,
    PendingReminder,
    StudyHome,
)
from core.message import CHAT, Text, cmd, text
from sandbox.slack.interactions import home_view_problem

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def _study(n: int, *, participants: int, failed: int, reminders: int, more: int = 0) -> StudyHome:
    return StudyHome(
        study_id=f"st_{n}",
        study_name=f"Study {n}",
        channel=f"C0STUDY{n}",
        participants=tuple(
            ParticipantLine(
                f"Person {i}.",
                f"pa_{n}_{i}",
                opted_out=i == 0,
                last_from=LastMessage(NOW - timedelta(hours=i)),
                last_to=LastMessage(NOW, "delivered", "Ana Ortiz") if i % 2 else None,
            )
            for i in range(participants)
        ),
        more_participants=more,
        failed=tuple(
            FailedDelivery(
                100 * n + i,
                f"Person {i}.",
                "Respondent 400 Bad Request: conversation closed",
                NOW,
                "Ana Ortiz",
                "Are you free on Tuesday?",
                Action("Retry", f"retry {100 * n + i}", "primary"),
            )
            for i in range(failed)
        ),
        reminders=tuple(
            PendingReminder(
                1000 * n + i,
                f"Person {i}.",
                "reminder",
                NOW + timedelta(days=1),
                "Chloe Park",
                "See you tomorrow",
                Action(f"Cancel #{1000 * n + i}", f"cancel {1000 * n + i}", "danger"),
            )
            for i in range(reminders)
        ),
    )


def _view(studies: tuple[StudyHome, ...], closed: tuple[ClosedStudy, ...] = (), status: str | None = None) -> HomeView:
    return HomeView(
        viewer_name="Ana Ortiz",
        built_at=NOW,
        status=text(status) if status is not None else None,
        may_act=text("You may message these participants."),
        studies=studies,
        closed=closed,
        closed_intro=text("Bridged in this workspace, but you may not act for them:") if closed else Text(),
        help=(text("Reply in a thread."), text(cmd("help"), " lists everything.")),
    )


def _texts(value: object) -> list[str]:
    """Every ``text`` string in the blocks, depth first."""
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        own = [value["text"]] if isinstance(value.get("text"), str) else []
        return own + [t for item in value.values() if isinstance(item, dict | list) for t in _texts(item)]
    return []


def test_a_small_home_shows_everything_with_one_button_per_failure_and_reminder() -> None:
    view = _view((_study(1, participants=3, failed=2, reminders=1),), status="Sending #100 again.")
    blocks = home_blocks(view)
    assert not home_view_problem(home_view(view))
    buttons = [b["accessory"] for b in blocks if "accessory" in b]
    assert [b["value"] for b in buttons] == ["retry 100", "retry 101", "cancel 1000"]  # type: ignore[index]
    assert len({b["action_id"] for b in buttons}) == 3  # type: ignore[index]
    text = "\n".join(_texts(blocks))
    assert ":information_source: Sending #100 again." in text and "• /rally help lists everything." in text
    assert "*Person 0.* · opted out · from them: <!date^" in text and "to them: nothing yet" in text
    assert "(delivered, Ana Ortiz)" in text and "…and" not in text


def test_a_home_over_100_blocks_is_cut_with_one_line_counting_what_is_left_out() -> None:
    studies = tuple(_study(n, participants=60, failed=20, reminders=20, more=7) for n in range(1, 4))
    closed = tuple(ClosedStudy(f"st_x{i}", f"Other {i}", "C0OTHER", text("You're not on the team.")) for i in range(5))
    view = _view(studies, closed)
    blocks = home_blocks(view)
    assert len(blocks) == MAX_HOME_BLOCKS and not home_view_problem(home_view(view))
    assert blocks[0]["type"] == "header" and "What you can do" in json.dumps(blocks[-1])
    total = sum(
        len(s.participants) + s.more_participants + len(s.failed) + s.more_failed + len(s.reminders) + s.more_reminders
        for s in studies
    ) + len(closed)
    texts = _texts(blocks)
    shown = sum(t.count("• *") for t in texts)  # participant and closed-study lines
    shown += sum(1 for b in blocks if "accessory" in b)  # failed deliveries and reminders
    shown += sum(int(m) for t in texts for m in re.findall(r"^…and (\d+) more (?:participants|failed|scheduled)", t))
    (cut,) = [t for t in texts if "not shown here" in t]
    hidden = int(re.match(r"…and (\d+) more not shown here", cut).group(1))  # type: ignore[union-attr]
    assert hidden > 0 and shown + hidden == total


def test_long_and_hostile_text_stays_inert_and_within_limits() -> None:
    hostile = "<!channel> & <@U0BEN> <https://evil.example|bank> " * 200
    study = StudyHome(
        "st_1",
        hostile,
        "C0STUDY",
        participants=(ParticipantLine(hostile[:200], "pa_1", False, None, None),),
        failed=(FailedDelivery(5, hostile[:200], hostile, None, hostile[:200], hostile[:80], None, text(hostile)),),
    )
    view = _view((study,), status=hostile)
    blocks = home_blocks(view)
    assert not home_view_problem(home_view(view))
    for shown in _texts(blocks):
        assert len(shown) <= 3000
        assert not {x for x in re.findall(r"<([^<>]*)>", shown) if not x.startswith(("!date^", "#C0STUDY"))}


def test_the_home_model_survives_the_outbox_as_json() -> None:
    view = _view(
        (_study(1, participants=2, failed=1, reminders=1, more=3),),
        (ClosedStudy("st_2", "Other", "C0OTHER", text("Not on the same email as in ", CHAT, ".")),),
        status="Done.",
    )
    assert HomeView.from_dict(json.loads(json.dumps(view.to_dict()))) == view


def test_a_home_queued_when_its_sentences_were_strings_is_still_drawn() -> None:
    """A ``chat.home`` row queued before texts had a structure carries plain strings: read as one part each."""
    legacy = _view((_study(1, participants=1, failed=1, reminders=0),), status="Done <now>.").to_dict()
    legacy.update(status="Done <now>.", may_act="You may.", closed_intro="", help=["Reply in a thread."])
    view = HomeView.from_dict(json.loads(json.dumps(legacy)))
    assert view.status == text("Done <now>.") and view.help == (text("Reply in a thread."),)
    shown = "\n".join(_texts(home_blocks(view)))
    assert ":information_source: Done &lt;now&gt;." in shown and "You may." in shown
