"""One row per scenario, and the markdown page the suite publishes."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

TARGETS = ("Respondent", "Slack", "Rally")


@dataclass
class Counts:
    """Lost / duplicated per target, and order violations (messages out of their per-thread order)."""

    lost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    duplicated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    order_violations: int = 0

    def add(self, other: Counts) -> None:
        for target in TARGETS:
            self.lost[target] += other.lost[target]
            self.duplicated[target] += other.duplicated[target]
        self.order_violations += other.order_violations

    @property
    def clean(self) -> bool:
        return not any(self.lost.values()) and not any(self.duplicated.values()) and self.order_violations == 0


@dataclass
class Row:
    number: int
    name: str
    load: str = ""
    faults: str = ""
    counts: Counts = field(default_factory=Counts)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    not_run: str | None = None

    def check(self, what: str, ok: bool) -> bool:
        self.checks.append((what, bool(ok)))
        return bool(ok)

    @property
    def passed(self) -> bool:
        return self.error is None and self.not_run is None and self.counts.clean and all(ok for _, ok in self.checks)

    @property
    def verdict(self) -> str:
        if self.not_run is not None:
            return "NOT RUN"
        return "pass" if self.passed else "FAIL"

    def failures(self) -> list[str]:
        out = [what for what, ok in self.checks if not ok]
        if self.error:
            out.append(f"error: {self.error}")
        return out


def _fmt(values: dict[str, int]) -> str:
    return " / ".join(str(values[t]) for t in TARGETS)


def machine() -> str:
    try:
        uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        uname = " ".join(platform.uname())
    return f"`{uname}`, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def render(rows: list[Row], *, mode: str, seed: int, command: str, total_seconds: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    passed = all(r.passed for r in rows)
    lines = [
        "# Reliability",
        "",
        "Written by the reliability suite (`reliability/`), not by hand. It runs the real `rallybridge serve`",
        "processes against the sandbox stand-ins of Slack, Respondent and Rally over real HTTP, injects the faults",
        "below and counts, per target, every message lost or duplicated and every per-thread order violation.",
        "",
        f"- **Run**: {mode}, {now}, {total_seconds:.0f} s wall time, overall **{'pass' if passed else 'FAIL'}**",
        f"- **Seed**: `{seed}` (replay: `{command} --seed {seed}` or `RALLYBRIDGE_RELIABILITY_SEED={seed}`)",
        f"- **Machine**: {machine()}",
        "",
        "Lost and duplicated are given as Respondent / Slack / Rally archive.",
        "",
        "| # | Scenario | Load | Faults injected | Lost | Duplicated | Order violations | Result | Time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.number} | {r.name} | {r.load} | {r.faults} | {_fmt(r.counts.lost)} | "
            f"{_fmt(r.counts.duplicated)} | {r.counts.order_violations} | **{r.verdict}** | {r.seconds:.0f} s |"
        )
    lines += ["", "## What each row checked", ""]
    for r in rows:
        lines.append(f"### {r.number}. {r.name}: {r.verdict}")
        lines.append("")
        if r.not_run:
            lines.append(f"- Not run: {r.not_run}")
        for what, ok in r.checks:
            lines.append(f"- {'✅' if ok else '❌'} {what}")
        if r.error:
            lines.append(f"- ❌ error: `{r.error}`")
        for note in r.notes:
            lines.append(f"- {note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
