"""The scheduling forms behind a thread root's buttons (Remind, Follow up, Send scheduling link).

A chat platform shows a form for one participant (Slack: a modal); what the researcher fills in becomes the
command they could have typed, ``remind pa_9 tomorrow 9am -- Please bring your ID``, stored in the inbox like a
typed one. So permission, the researcher's zone and the answer are the command's, and this module only checks
what can be checked from the words alone, so a form can show the problem next to the field instead of after it
closed. ``--`` separates the message, so a message starting with "30 min" is never read as part of the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import texts
from core.message import Text, text
from core.when import WhenError, parse_duration, parse_noshow, parse_when

REMIND, FOLLOWUP, RESCHEDULE = "remind", "followup", "reschedule"
FORMS = (REMIND, FOLLOWUP, RESCHEDULE)
# Field names, also the ids a platform gives its inputs (so errors can be shown next to them).
WHEN, AFTER, NOTE = "when", "after", "note"
FIELDS = {REMIND: (WHEN, NOTE), FOLLOWUP: (AFTER, NOTE), RESCHEDULE: (NOTE,)}


@dataclass(frozen=True)
class Filled:
    """The command a filled form stands for, or what is wrong with it, per field."""

    command: str | None
    errors: dict[str, Text] = field(default_factory=dict)  # field -> what is wrong (the platform renders it)


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _note(value: str | None) -> str:
    return (value or "").strip()


def _check_when(typed: str, now: datetime) -> Text | None:
    """Why ``typed`` is not, as a whole, a ``<when>``; None when it may be (the command checks the rest: past
    moments in the researcher's zone, the session time)."""
    words = typed.split()
    if not words:
        return texts.form_when_missing()
    noshow = parse_noshow(words)  # the no-show follow-up: counted from the session, which the command knows
    if noshow == len(words):
        return None
    if noshow:
        return texts.form_when_leftover(" ".join(words[:noshow]), " ".join(words[noshow:]))
    try:
        when = parse_when(words, now=now, tz=None, session_starts_at=None, strict=False)
    except WhenError as exc:
        return text(str(exc))
    if when.consumed < len(words):
        return texts.form_when_leftover(when.spec, " ".join(words[when.consumed :]))
    return None


def _check_after(typed: str) -> Text | None:
    words = typed.split()
    if words and words[0].lower() == "after":
        words = words[1:]
    found = parse_duration(words)
    if found is None or found[1] < len(words) or found[0] <= timedelta(0):
        return texts.form_after_unreadable(typed)
    return None


def fill(form: str, participant_id: str, values: Mapping[str, str | None], *, now: datetime) -> Filled:
    """The command for ``form`` filled with ``values`` (field name -> text as typed) for ``participant_id``."""
    if form not in FORMS:
        return Filled(None, {"form": texts.form_refused(f"unknown form {form!r}")})
    if not participant_id or len(participant_id.split()) != 1:
        return Filled(None, {"form": texts.form_refused("it does not name a participant")})
    note = _note(values.get(NOTE))
    tail = f" -- {note}" if note else ""
    if form == REMIND:
        when = _clean(values.get(WHEN))
        problem = _check_when(when, now)
        if problem is not None:
            return Filled(None, {WHEN: problem})
        return Filled(f"remind {participant_id} {when}{tail}")
    if form == FOLLOWUP:
        after = _clean(values.get(AFTER))
        if after:
            problem = _check_after(after)
            if problem is not None:
                return Filled(None, {AFTER: problem})
            after = after[len("after ") :] if after.lower().startswith("after ") else after
            return Filled(f"followup {participant_id} after {after}{tail}")
        return Filled(f"followup {participant_id}{tail}")
    return Filled(f"reschedule {participant_id}{tail}")
