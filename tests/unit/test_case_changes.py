"""How a thread's case changes: times decide, not the order messages reach the bridge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core import case_changes
from core.case_changes import CaseChange
from core.records import Thread

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _thread(**values: object) -> Thread:
    base = Thread(
        id=1,
        study_id="st_1",
        participant_id="pa_1",
        person_id=None,
        email=None,
        display_name="Jordan L.",
        respondent_project_id="proj",
        respondent_user_id="u1",
        conversation_uid=None,
        scheduling_url=None,
        session_starts_at=None,
        opted_out=False,
        platform="slack",
        workspace="T1",
        channel="C1",
        root_id="1.1",
        created_at=T0,
    )
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


def _apply(thread: Thread, change: CaseChange | None) -> Thread:
    return thread if change is None else dataclasses.replace(thread, **change.values)


def test_a_participant_message_starts_a_wait_and_a_reply_ends_it() -> None:
    waiting = _apply(_thread(), case_changes.participant_wrote(_thread(), T0))
    assert (waiting.waiting_since, waiting.last_in_at) == (T0, T0)
    later = _apply(waiting, case_changes.participant_wrote(waiting, T0 + timedelta(minutes=5)))
    assert later.waiting_since == T0  # the wait began with the first unanswered message
    answered = _apply(later, case_changes.team_wrote(later, T0 + timedelta(minutes=7)))
    assert answered.waiting_since is None and answered.last_out_at == T0 + timedelta(minutes=7)


def test_a_message_that_reaches_the_bridge_after_its_answer_starts_no_wait() -> None:
    answered = _apply(_thread(), case_changes.team_wrote(_thread(), T0 + timedelta(minutes=1)))
    late = _apply(answered, case_changes.participant_wrote(answered, T0))
    assert late.waiting_since is None and late.last_in_at == T0


def test_a_reply_older_than_the_wait_does_not_end_it() -> None:
    waiting = _apply(_thread(), case_changes.participant_wrote(_thread(), T0))
    still = _apply(waiting, case_changes.team_wrote(waiting, T0 - timedelta(minutes=1)))
    assert still.waiting_since == T0 and still.last_out_at == T0 - timedelta(minutes=1)


def test_a_failed_reply_makes_them_wait_again_since_their_last_message() -> None:
    thread = _thread(last_in_at=T0, last_out_at=T0 + timedelta(minutes=2))
    again = _apply(thread, case_changes.not_answered(thread))
    assert again.waiting_since == T0
    assert case_changes.not_answered(again) is None


def test_a_nudge_stage_is_recorded_once_and_only_for_the_wait_it_is_about() -> None:
    waiting = _thread(waiting_since=T0)
    first = case_changes.nudged(waiting, T0, 1)
    assert first is not None and not first.redraw
    done = _apply(waiting, first)
    assert case_changes.nudged(done, T0, 1) is None  # another replica: nothing to do
    assert case_changes.nudged(done, T0 + timedelta(hours=1), 2) is None  # another wait


def test_seen_and_a_new_message_of_ours() -> None:
    seen = _apply(_thread(), case_changes.seen(_thread(), 42))
    assert seen.seen_message_id == 42 and case_changes.seen(seen, 42) is None
    assert _apply(seen, case_changes.team_wrote(seen, T0)).seen_message_id is None


def test_only_case_fields_can_be_changed() -> None:
    with pytest.raises(ValueError, match="not case fields"):
        CaseChange({"opted_out": True})
