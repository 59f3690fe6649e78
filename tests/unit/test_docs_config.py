"""docs/configuration.md stays true to bot/settings.py: every setting documented once, with the code's default,
and nothing documented that the code does not read. A failure prints the rows to paste."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices

from bot.settings import REQUIRED_FOR_SERVE, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(?P<name>[A-Z][A-Z0-9_]*)` \| (?P<default>[^|]*?) \| (?P<meaning>.*) \|$")


def _env_names(field: Any) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def documented_default(value: Any) -> str:
    """How the doc writes a default: in backticks as you would type it, or (unset) for none."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def settings_by_env() -> dict[str, Any]:
    """Environment variable -> the default of the setting it fills."""
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        names = _env_names(field)
        assert names, f"setting {name} has no environment variable name (validation_alias)"
        for env in names:
            out[env] = field.get_default(call_default_factory=True)
    return out


def documented_rows() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        name = match["name"]
        assert name not in rows, f"{name} is documented twice in {DOC.name}"
        rows[name] = (match["default"].strip(), match["meaning"].strip())
    return rows


def test_every_setting_is_documented_and_nothing_else() -> None:
    code, doc = settings_by_env(), documented_rows()
    missing = sorted(set(code) - set(doc))
    invented = sorted(set(doc) - set(code))
    paste = "\n".join(f"| `{env}` | {documented_default(code[env])} | <what it does> |" for env in missing)
    assert not missing, f"settings missing from docs/configuration.md; add (and describe) these rows:\n{paste}"
    assert not invented, f"docs/configuration.md documents variables bot/settings.py does not read: {invented}"


def test_documented_defaults_are_the_code_defaults() -> None:
    code, doc = settings_by_env(), documented_rows()
    wrong = []
    for env, (default, meaning) in doc.items():
        assert meaning and "<what it does>" not in meaning, f"{env} has no meaning in docs/configuration.md"
        if env not in code:
            continue
        value = code[env]
        if value is None:
            # No default: the doc says whether serve needs it.
            expected = "(required" if env in REQUIRED_FOR_SERVE else "("
            if not default.startswith(expected):
                wrong.append(f"{env}: documented default {default!r}, expected {expected}...)")
        elif default != documented_default(value):
            wrong.append(f"{env}: documented default {default!r}, the code's is {documented_default(value)}")
    assert not wrong, "docs/configuration.md disagrees with bot/settings.py:\n" + "\n".join(wrong)


def test_the_doc_table_format_is_what_the_checks_read() -> None:
    """A row the pattern cannot read would silently escape both checks above."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    table_rows = [line for line in lines if line.startswith("| `")]
    assert table_rows and all(ROW.match(line) for line in table_rows), [
        line for line in table_rows if not ROW.match(line)
    ]


# ---- links between the operator docs ---------------------------------------------------------------------

ROOT = DOC.parents[1]
OPERATOR_DOCS = ["configuration.md", "slack-setup.md", "teams-setup.md", "operations.md", "troubleshooting.md"]
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation and emoji dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = [line.lstrip("#") for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    return {github_anchor(h) for h in headings}


def test_links_in_the_operator_docs_reach_a_file_and_a_heading() -> None:
    broken = []
    for name in OPERATOR_DOCS:
        source = ROOT / "docs" / name
        for match in LINK.finditer(source.read_text(encoding="utf-8")):
            target = match["target"]
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path_part, _, fragment = target.partition("#")
            path = (source.parent / path_part).resolve() if path_part else source
            if not path.exists():
                broken.append(f"{name}: {target} (no such file)")
            elif fragment and path.suffix == ".md" and fragment not in anchors(path):
                broken.append(f"{name}: {target} (no such heading in {path.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)
