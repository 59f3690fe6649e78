"""Saved replies, study-wide updates, links checked first: the same world as the live-case tests (stand-ins, the
real app, both databases, a controllable clock)."""

from __future__ import annotations

from tests.cases import conftest as cases
from tests.cases.conftest import fake_clock, pytest_runtest_makereport, world  # noqa: F401 (fixtures, report hook)

FakeClock = cases.FakeClock
card_of, command, linked, private_to = cases.card_of, cases.command, cases.linked, cases.private_to
thread_texts, unescape = cases.thread_texts, cases.unescape
