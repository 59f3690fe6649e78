"""CI runs the bounded reliability suite: every reliability scenario against real `rallybridge serve` processes.

The seed is printed; RALLYBRIDGE_RELIABILITY_SEED replays a run. The report goes to a temporary file here, so that
`docs/reliability.md` (written by `make reliability`) is not rewritten by every test run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability.harness import compare, lis_length
from reliability.report import Row, render
from reliability.runner import choose_seed, run_suite

pytestmark = pytest.mark.slow


def test_tally_counts_lost_duplicated_and_out_of_order() -> None:
    assert compare(["a", "b", "c"], ["a", "b", "c"]) == (0, 0, 0)
    assert compare(["a", "b", "c"], ["a", "c"]) == (1, 0, 0)
    assert compare(["a", "b", "c"], ["a", "b", "b", "c", "x"]) == (0, 2, 0)
    assert compare(["a", "b", "c", "d"], ["b", "a", "c", "d"]) == (0, 0, 1)
    assert lis_length([3, 1, 2, 5, 4]) == 3


def test_report_names_seed_machine_and_every_row() -> None:
    row = Row(1, "Crashes", load="10 messages", faults="2 SIGKILLs")
    row.check("something held", True)
    text = render([row], mode="bounded (CI)", seed=42, command="python -m reliability --bounded", total_seconds=3)
    assert "`42`" in text and "CPUs" in text and "| 1 | Crashes | 10 messages | 2 SIGKILLs |" in text
    assert "**pass**" in text


async def test_bounded_reliability_suite_passes_every_scenario(tmp_path: Path) -> None:
    seed = choose_seed(None)
    print(f"reliability seed: {seed} (RALLYBRIDGE_RELIABILITY_SEED={seed} replays it)")
    out = tmp_path / "reliability.md"
    rows = await run_suite(bounded=True, seed=seed, out=out)
    strict = os.environ.get("RALLYBRIDGE_REQUIRE_POSTGRES") == "1"  # CI: a scenario that cannot run fails
    failed = [
        f"{r.number} {r.name}: {r.not_run or r.failures() or r.counts}"
        for r in rows
        if not r.passed and (strict or r.not_run is None)
    ]
    assert not failed, f"seed {seed}:\n" + "\n".join(failed) + "\n" + out.read_text()
    assert len(rows) == 8
