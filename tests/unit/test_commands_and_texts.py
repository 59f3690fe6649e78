from __future__ import annotations

import ast
from pathlib import Path

from core import texts
from core.commands import parse_command
from core.domain import Participant
from core.message import Cmd, HomeOnly, Text

ROOT = Path(__file__).resolve().parents[2]


def test_commands_are_parsed_case_insensitively_with_arguments() -> None:
    assert parse_command("  LINK st_1  ").name == "link"
    assert parse_command("link st_1").args == ("st_1",)
    assert parse_command("").name == "help"


def test_participants_are_shown_by_first_name_and_last_initial_only() -> None:
    p = Participant("pa", "pe", "st", "APPROVED", None, "Jordan", "Lee", None, "u", None, None, None)
    assert p.display_name == "Jordan L."
    assert p.is_approved and not p.has_opted_out


def test_help_names_the_internal_note_marker() -> None:
    assert "start a reply with >> to keep it as an internal note" in texts.help_text(">>").plain()


def test_every_text_function_is_reexported_by_the_package() -> None:
    """``from core import texts; texts.x(...)`` reaches every function of every topic module."""
    for module in sorted((ROOT / "core" / "texts").glob("*.py")):
        if module.name == "__init__.py":
            continue
        tree = ast.parse(module.read_text())
        for name in (n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
            assert name in texts.__all__ and callable(getattr(texts, name)), f"{module.name}: {name}"


def test_commands_and_home_clauses_are_elements_not_words() -> None:
    said = texts.not_delivered("bad", 12)
    assert Cmd("retry 12") in said.parts and any(isinstance(p, HomeOnly) for p in said.parts)
    assert not any("/rally" in p for p in said.parts if isinstance(p, str))
    assert not any(isinstance(p, HomeOnly) for p in texts.not_delivered("bad").parts)


def test_what_a_participant_reads_stays_plain_text() -> None:
    """Reminder bodies go to Respondent as they are: no platform renders them."""
    assert isinstance(texts.default_reminder("Study", None), str)
    assert isinstance(texts.default_followup("Study"), str)
    assert isinstance(texts.scheduling_message("Study", "https://x", ""), str)
    assert isinstance(texts.reminder_usage("remind"), Text)
