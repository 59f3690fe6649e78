"""``python -m reliability [--bounded] [--seed N] [--only crashes,outages] [--out PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reliability.runner import DOC, choose_seed, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--bounded", action="store_true", help="the CI size (a few minutes)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (also RALLYBRIDGE_RELIABILITY_SEED)")
    parser.add_argument("--only", default="", help="comma-separated scenario modules or numbers")
    parser.add_argument("--out", default=str(DOC), help="where to write the report ('-' for nowhere)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the bridge logs even when all pass")
    args = parser.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    out = None if args.out == "-" else Path(args.out)
    rows = asyncio.run(
        run_suite(bounded=args.bounded, seed=choose_seed(args.seed), only=only, out=out, keep_logs=args.keep_logs)
    )
    return 0 if rows and all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
