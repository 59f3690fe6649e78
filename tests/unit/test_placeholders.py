"""Placeholders are filled for one participant or the message is refused: never sent as literal braces."""

from __future__ import annotations

import pytest

from core.placeholders import Unfillable, fill, unknown_in

VALUES = {
    "first_name": "Jordan",
    "session_time": "Mon 7 Dec 2026, 14:00 UTC",
    "scheduling_link": "https://app.rallyuxr.com/schedule/pa_jordan",
    "study": "Checkout redesign interviews",
    "researcher": "Ana Ortiz",
}


def test_every_placeholder_is_filled() -> None:
    template = "Hi {first_name}! {study} on {session_time}; move it: {scheduling_link} — {researcher}"
    assert fill(template, VALUES) == (
        "Hi Jordan! Checkout redesign interviews on Mon 7 Dec 2026, 14:00 UTC; move it: "
        "https://app.rallyuxr.com/schedule/pa_jordan — Ana Ortiz"
    )


def test_unknown_and_empty_placeholders_are_named() -> None:
    with pytest.raises(Unfillable) as refused:
        fill("Hi {frist_name}, see you {session_time} {session_time}", {**VALUES, "session_time": None})
    assert refused.value.unknown == ("frist_name",) and refused.value.empty == ("session_time",)
    assert str(refused.value) == "unknown {frist_name}; nothing to fill {session_time}"
    assert unknown_in("{a} {b} {a} {first_name}") == ("a", "b")
    with pytest.raises(Unfillable):
        fill("{}", VALUES)  # empty braces are a placeholder nobody knows, not text


def test_text_without_placeholders_is_left_alone() -> None:
    assert fill("Costs 10 {EUR per hour}? { spaced }", VALUES) == "Costs 10 {EUR per hour}? { spaced }"
