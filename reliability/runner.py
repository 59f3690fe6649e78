"""Run the scenarios, print the seed, write ``docs/reliability.md``."""

from __future__ import annotations

import importlib
import os
import random
import shutil
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from reliability.harness import Suite
from reliability.report import Row, render, write

# (number, name, module under reliability.scenarios)
SCENARIOS: list[tuple[int, str, str]] = [
    (1, "Crashes", "crashes"),
    (2, "Outages", "outages"),
    (3, "Duplicates", "duplicates"),
    (4, "Two replicas, one dies", "replicas"),
    (5, "Database restart", "dbrestart"),
    (6, "Hostile and broken input", "hostile"),
    (7, "Permissions", "permissions"),
    (8, "Secrets and privacy", "privacy"),
]
SEED_ENV = "RALLYBRIDGE_RELIABILITY_SEED"
DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def choose_seed(given: int | None) -> int:
    if given is not None:
        return given
    env = os.environ.get(SEED_ENV)
    return int(env) if env else random.SystemRandom().randrange(1_000_000)


async def run_suite(
    *,
    bounded: bool,
    seed: int,
    only: Sequence[str] = (),
    out: Path | None = DOC,
    keep_logs: bool = False,
    say: Callable[[str], None] = print,
) -> list[Row]:
    """Run the scenarios (all, or those named in ``only``) and write the page to ``out`` (None: do not write)."""
    mode = "bounded (CI)" if bounded else "full"
    say(f"reliability suite, {mode}: seed {seed} ({SEED_ENV}={seed} or --seed {seed} replays it)")
    workdir = Path(tempfile.mkdtemp(prefix="rb-reliability-"))
    suite = Suite(bounded=bounded, seed=seed, workdir=workdir)
    rows: list[Row] = []
    started = time.monotonic()
    for number, name, module in SCENARIOS:
        if only and module not in only and str(number) not in only:
            continue
        row = Row(number, name)
        t0 = time.monotonic()
        say(f"[{number}] {name} ...")
        try:
            scenario: Callable[[Suite, Row], Awaitable[None]] = importlib.import_module(
                f"reliability.scenarios.{module}"
            ).run
            await scenario(suite, row)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:500]
            say(traceback.format_exc())
        row.seconds = time.monotonic() - t0
        rows.append(row)
        say(f"[{number}] {name}: {row.verdict} in {row.seconds:.0f}s " + "; ".join(row.failures()))
    total = time.monotonic() - started
    command = "python -m reliability" + (" --bounded" if bounded else "")
    if out is not None:
        write(out, render(rows, mode=mode, seed=seed, command=command, total_seconds=total))
        say(f"wrote {out}")
    if keep_logs or not all(r.passed for r in rows):
        say(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows
