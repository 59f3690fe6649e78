"""Benchmark 1: acknowledgement latency of signed Slack thread replies against a real `rallybridge serve`.

    .venv/bin/python -m bench.ack_latency                 # 50, 200, 500 req/s x 30 s, SQLite and PostgreSQL, 3 runs
    .venv/bin/python -m bench.ack_latency --quick         # 5 s per rate, 1 run
    .venv/bin/python -m bench.ack_latency --rates 200 --seconds 10 --databases sqlite --runs 5 --no-write

Load is open loop: request i leaves at ``i / rate`` seconds whatever the answers do, each on its own
connection-pool slot (no client-side cap). Every request is a Slack ``event_callback`` for a reply in one of
100 threads the bridge does not bridge, signed with the workspace's signing secret: the bridge verifies it,
stores it in the inbox and answers, and its inbox worker then reads and drops each one (so the workers'
database writes compete with the acknowledgements, as they do in production). Each (database, rate, run)
gets a fresh database and a fresh serve process. Latency is measured by the client from just before the
request to its full answer, on 127.0.0.1. Reported per rate: medians over runs of p50 / p99 / max, the share
answered within Slack's 3 s, non-2xx answers, the serve process's CPU use during the load, and how long its
workers took to empty the inbox after the last request. A report, never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import common

THREADS = 100  # replies spread over this many threads (inbox lanes), as many participants' threads would
SLACK_DEADLINE = 3.0
TARGET_RATE, TARGET_P99_MS = 200, 50.0


def _rates(text: str) -> list[int]:
    try:
        rates = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be whole numbers separated by commas, got {text!r}") from None
    if not rates or any(r < 1 or r > 5000 for r in rates):
        raise argparse.ArgumentTypeError(f"each rate must be between 1 and 5000 per second, got {text!r}")
    return rates


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"seconds must be between 0.5 and 3600, got {value}")
    return value


async def inbox_depth(http: aiohttp.ClientSession, url: str) -> int | None:
    """Unfinished inbox rows, from the bridge's own /metrics (None if it cannot be read)."""
    try:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    match = re.search(r'^rallybridge_queue_depth\{queue="inbox"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return int(float(match.group(1))) if match else None


async def one_run(
    backend: str, rate: int, seconds: float, *, profile: Path | None = None, code: Path | None = None
) -> dict[str, float]:
    async with common.bridge(backend, code=code) as stack:
        world = stack.world
        # Signed up front (the signature stays valid for 5 minutes), so the generator only sends.
        requests = [
            common.signed_thread_reply(
                world, world.cast.outsider.slack_id, f"1795626633.{i % THREADS:06d}", "latency probe"
            )
            for i in range(int(rate * seconds))
        ]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        errors = 0
        url = f"{stack.serve.url}/slack/events"
        async with common.unlimited_session(timeout=30) as http:

            async def send(i: int) -> None:
                nonlocal errors
                body, headers = requests[i]
                start = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as response:
                        await response.read()
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    latencies.append(float("inf"))
                    return
                latencies.append(time.perf_counter() - start)

            # Warm up: a few requests so connection set-up and first-use imports are not measured.
            for i in range(5):
                body, headers = common.signed_thread_reply(world, world.cast.outsider.slack_id, "1795626633.9", "w")
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise common.BenchError(f"warm-up request {i} answered {response.status}")
            cpu_before, wall_before = stack.serve.cpu_seconds(), time.perf_counter()
            db_before = common.processes_cpu_seconds("postgres") if backend == "postgres" else 0.0
            async with common.profiled(stack.serve.pid, profile):
                load = await common.open_loop(rate, seconds, send)
            load_wall = time.perf_counter() - wall_before
            cpu_load = stack.serve.cpu_seconds() - cpu_before
            db_load = (common.processes_cpu_seconds("postgres") - db_before) if backend == "postgres" else float("nan")
            drained_at = time.perf_counter()
            drain = float("nan")
            while time.perf_counter() - drained_at < 120:
                depth = await inbox_depth(http, stack.serve.url)
                if depth == 0:
                    drain = time.perf_counter() - drained_at
                    break
                await asyncio.sleep(0.1)
            cpu_all = stack.serve.cpu_seconds() - cpu_before
        summary = common.latency_summary([x for x in latencies if x != float("inf")], within=SLACK_DEADLINE)
        answered = summary["requests"]
        return {
            **summary,
            "within": summary["within"] * answered / len(latencies) if latencies else 0.0,
            "non_2xx": float(sum(n for status, n in statuses.items() if not 200 <= status < 300) + errors),
            "cpu_share": cpu_load / load_wall,
            "db_share": db_load / load_wall,
            "cpu_ms": cpu_all * 1000 / len(requests),
            "drain_s": drain,
            "lag_ms": load.max_lag * 1000,
        }


HEADERS = [
    "database",
    "rate/s",
    "requests",
    "p50 ms",
    "p99 ms",
    "max ms",
    "within 3 s",
    "non-2xx",
    "serve CPU",
    "PostgreSQL CPU",
    "CPU ms/event",
    "inbox drained after",
    "load lag max",
]


def row(backend: str, rate: int, f: dict[str, float]) -> list[Any]:
    return [
        backend,
        rate,
        int(f["requests"]),
        f["p50_ms"],
        f["p99_ms"],
        f["max_ms"],
        f"{f['within']:.2%}",
        int(f["non_2xx"]),
        f"{f['cpu_share']:.0%}",
        "-" if f["db_share"] != f["db_share"] else f"{f['db_share']:.0%}",
        f["cpu_ms"],
        "-" if f["drain_s"] != f["drain_s"] else f"{f['drain_s']:.1f} s",
        f"{f['lag_ms']:.0f} ms",
    ]


def verdict(results: dict[tuple[str, int], dict[str, float]]) -> list[str]:
    lines = []
    for (backend, rate), f in sorted(results.items()):
        if rate == TARGET_RATE:
            met = f["p99_ms"] <= TARGET_P99_MS
            lines.append(
                f"- {backend}, {rate} req/s: p99 {f['p99_ms']:.1f} ms, target <= {TARGET_P99_MS:.0f} ms: "
                f"**{'met' if met else 'not met'}**"
            )
        if rate == 500:
            met = f["max_ms"] <= SLACK_DEADLINE * 1000 and f["non_2xx"] == 0
            lines.append(
                f"- {backend}, {rate} req/s: max {f['max_ms']:.0f} ms, {int(f['non_2xx'])} non-2xx, target none over "
                f"3 s: **{'met' if met else 'not met'}**"
            )
    return lines


def comparison(
    before: dict[tuple[str, int], dict[str, float]], after: dict[tuple[str, int], dict[str, float]]
) -> tuple[list[str], list[list[Any]]]:
    headers = ["database", "rate/s", "p50 ms before / after", "p99 ms before / after", "max ms before / after"]
    headers += ["CPU ms/event before / after", "CPU ratio after/before"]
    rows = []
    for key, a in after.items():
        b = before[key]
        rows.append(
            [
                *key,
                f"{b['p50_ms']:.1f} / {a['p50_ms']:.1f}",
                f"{b['p99_ms']:.1f} / {a['p99_ms']:.1f}",
                f"{b['max_ms']:.0f} / {a['max_ms']:.0f}",
                f"{b['cpu_ms']:.2f} / {a['cpu_ms']:.2f}",
                f"{a['cpu_ms'] / b['cpu_ms']:.2f}x",
            ]
        )
    return headers, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser)
    parser.add_argument("--rates", type=_rates, default=[50, 200, 500], help="requests per second (default 50,200,500)")
    parser.add_argument("--seconds", type=_seconds, default=None, help="load per rate (default 30; 5 with --quick)")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of serve")
    common.add_baseline_argument(parser)
    args = common.parse_args(parser)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    runs = args.runs
    variants = common.variants(parser, args)

    results: dict[str, dict[tuple[str, int], dict[str, float]]] = {name: {} for name, _ in variants}
    started = time.monotonic()
    for backend in args.databases:
        for rate in args.rates:
            figures: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
            for run in range(runs):
                for name, code in variants:  # interleaved, so both meet the same noise
                    profile = args.profile / f"ack-{name}-{backend}-{rate}-{run + 1}.txt" if args.profile else None
                    figure = asyncio.run(one_run(backend, rate, seconds, profile=profile, code=code))
                    label = f"{name} " if code is not None else ""
                    print(
                        f"{label}{backend:8} {rate:4}/s run {run + 1}/{runs}: p50 {figure['p50_ms']:.1f} ms, "
                        f"p99 {figure['p99_ms']:.1f} ms, max {figure['max_ms']:.0f} ms, "
                        f"non-2xx {int(figure['non_2xx'])}, CPU {figure['cpu_ms']:.2f} ms/event",
                        flush=True,
                    )
                    figures[name].append(figure)
            for name in figures:
                results[name][(backend, rate)] = common.median_of(figures[name])
    title = f"Acknowledgement latency, {seconds:.0f} s per rate, median of {runs} run(s)"
    after = results["after"]
    table = common.print_table(title, HEADERS, [row(b, r, f) for (b, r), f in after.items()])
    lines = verdict(after)
    print("\n".join(lines))
    compared = ""
    if args.baseline is not None:
        headers, rows = comparison(results["before"], after)
        compared = common.print_table(f"Before ({args.baseline}) and after, side by side", headers, rows)
    print(f"took {time.monotonic() - started:.0f} s")
    if not args.no_write:
        parts = [
            "## 1. Acknowledgement latency",
            f"Signed Slack thread-reply events, open-loop at each rate for {seconds:.0f} s, each (database, rate, "
            f"run) on a fresh database and serve process; figures are medians of {runs} run(s). Latency is "
            "measured by the client on 127.0.0.1, from sending to the full answer. *serve CPU* is the serve "
            "process's CPU time during the load over its wall time (100% = one core), *PostgreSQL CPU* the same for "
            "every `postgres` process on the machine (the server's backends); *CPU ms/event* is the serve "
            "process's CPU time from the first request until its workers had finished every stored event, per "
            "event; *inbox drained after* is how long the workers needed after the last request; *load lag max* "
            "is how far the load generator itself fell behind its schedule (its own CPU starvation).",
            table,
            "Targets: p99 <= 50 ms at 200 req/s; no request over 3 s at 500 req/s.\n\n" + "\n".join(lines),
        ]
        if compared:
            parts += [f"Before/after, interleaved in the same run (before = `{args.baseline}`):", compared]
        common.write_section("ack_latency", "\n\n".join(parts), doc=args.doc)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as exc:
        raise SystemExit(f"ack_latency: {exc}") from None
