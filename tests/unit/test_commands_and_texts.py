from __future__ import annotations

from core import texts
from core.commands import parse_command
from core.domain import Participant


def test_commands_are_parsed_case_insensitively_with_arguments() -> None:
    assert parse_command("  LINK st_1  ").name == "link"
    assert parse_command("link st_1").args == ("st_1",)
    assert parse_command("").name == "help"


def test_participants_are_shown_by_first_name_and_last_initial_only() -> None:
    p = Participant("pa", "pe", "st", "APPROVED", None, "Jordan", "Lee", None, "u", None, None, None)
    assert p.display_name == "Jordan L."
    assert p.is_approved and not p.has_opted_out


def test_help_names_the_internal_note_marker() -> None:
    assert "start a reply with >> to keep it as an internal note" in texts.help_text(">>")
