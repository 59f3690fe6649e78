"""Benchmark 1: acknowledgement latency of signed Slack events (of a chosen mix) against a real `rallybridge serve`.

    .venv/bin/python -m bench.ack_latency                 # 50, 200, 500 req/s x 30 s, mixes replies and busy,
                                                          # SQLite and PostgreSQL, 3 runs
    .venv/bin/python -m bench.ack_latency --quick         # 5 s per rate, 1 run
    .venv/bin/python -m bench.ack_latency --rates 200 --seconds 10 --databases sqlite --mix ignored --no-write

Load is open loop: request i leaves at ``i / rate`` seconds whatever the answers do, each on its own
connection-pool slot (no client-side cap). Every request is a Slack ``event_callback`` signed with the
workspace's signing secret, of an event mix (``--mix``, ``bench/events.py``): ``replies`` is replies in 100
threads of the linked channel the bridge does not bridge (the bridge verifies each, stores it in the inbox and
answers, and its inbox worker then reads and drops it, so the workers' database writes compete with the
acknowledgements, as they do in production); ``ignored`` adds what a workspace sends that the bridge ignores
(top-level messages in unlinked channels, bot echoes, channel joins); ``busy`` is that plus 2% teammates' replies
in participants' threads, relayed through Respondent. Each (database, mix, rate, run) gets a fresh database and
a fresh serve process, the study linked with its three participants' threads, and a warm-up. Latency is
measured by the client from just before the request to its full answer, on 127.0.0.1. Reported per mix and
rate: medians over runs of p50 / p99 / max, the share answered within Slack's 3 s, non-2xx answers, the serve
process's CPU use during the load, and how long its workers took to empty the inbox after the last request. A
report, never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, events

SLACK_DEADLINE = 3.0
TARGET_RATE, TARGET_P99_MS = 200, 10.0  # issue 13, goal 4 (was 50 ms)


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
    backend: str, mix: str, rate: int, seconds: float, *, profile: Path | None = None, code: Path | None = None
) -> dict[str, float]:
    async with common.bridge(backend, code=code) as stack:
        world = stack.world
        roots = await events.link_study(world)
        factory = events.EventFactory(world, roots)
        # Warm up: every kind once, and a relay per thread, so connection set-up and first-use imports are not
        # measured.
        await events.warm_up(world, [stack.serve.url], factory, "bridge")
        # Signed up front (the signature stays valid for 5 minutes), so the generator only sends.
        requests = [(e.body, e.headers) for e in factory.build(mix, int(rate * seconds))]
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

            cpu_before, wall_before = stack.serve.cpu_seconds(), time.perf_counter()
            db_before = common.postgres_cpu_seconds(stack.database_url) if backend == "postgres" else 0.0
            async with common.profiled(stack.serve.pid, profile):
                load = await common.open_loop(rate, seconds, send)
            load_wall = time.perf_counter() - wall_before
            cpu_load = stack.serve.cpu_seconds() - cpu_before
            db_load = (
                common.postgres_cpu_seconds(stack.database_url) - db_before if backend == "postgres" else float("nan")
            )
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
    "mix",
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


def row(backend: str, mix: str, rate: int, f: dict[str, float]) -> list[Any]:
    return [
        backend,
        mix,
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


Key = tuple[str, str, int]  # database, mix, rate


def verdict(results: dict[Key, dict[str, float]]) -> list[str]:
    lines = []
    for (backend, mix, rate), f in sorted(results.items()):
        if rate == TARGET_RATE:
            met = f["p99_ms"] <= TARGET_P99_MS
            lines.append(
                f"- {backend}, {mix}, {rate} req/s: p99 {f['p99_ms']:.1f} ms, target <= {TARGET_P99_MS:.0f} ms: "
                f"**{'met' if met else 'not met'}**"
            )
        if rate == 500:
            met = f["max_ms"] <= SLACK_DEADLINE * 1000 and f["non_2xx"] == 0
            lines.append(
                f"- {backend}, {mix}, {rate} req/s: max {f['max_ms']:.0f} ms, {int(f['non_2xx'])} non-2xx, target "
                f"none over 3 s: **{'met' if met else 'not met'}**"
            )
    return lines


def comparison(
    before: dict[Key, dict[str, float]], after: dict[Key, dict[str, float]]
) -> tuple[list[str], list[list[Any]]]:
    headers = ["database", "mix", "rate/s", "p50 ms before / after", "p99 ms before / after", "max ms before / after"]
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
    events.add_mix_argument(parser, "replies,busy")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of serve")
    common.add_baseline_argument(parser)
    args = common.parse_args(parser)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    runs = args.runs
    variants = common.variants(parser, args)

    results: dict[str, dict[Key, dict[str, float]]] = {name: {} for name, _ in variants}
    started = time.monotonic()
    for backend in args.databases:
        for mix in args.mix:
            for rate in args.rates:
                figures: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
                for run in range(runs):
                    for name, code in variants:  # interleaved, so both meet the same noise
                        profile = (
                            args.profile / f"ack-{name}-{backend}-{mix}-{rate}-{run + 1}.txt" if args.profile else None
                        )
                        figure = asyncio.run(one_run(backend, mix, rate, seconds, profile=profile, code=code))
                        label = f"{name} " if code is not None else ""
                        print(
                            f"{label}{backend:8} {mix:8} {rate:4}/s run {run + 1}/{runs}: p50 {figure['p50_ms']:.1f} "
                            f"ms, p99 {figure['p99_ms']:.1f} ms, max {figure['max_ms']:.0f} ms, "
                            f"non-2xx {int(figure['non_2xx'])}, CPU {figure['cpu_ms']:.2f} ms/event",
                            flush=True,
                        )
                        figures[name].append(figure)
                for name in figures:
                    results[name][(backend, mix, rate)] = common.median_of(figures[name])
    title = f"Acknowledgement latency, {seconds:.0f} s per rate, median of {runs} run(s)"
    after = results["after"]
    table = common.print_table(title, HEADERS, [row(b, m, r, f) for (b, m, r), f in after.items()])
    lines = verdict(after)
    print("\n".join(lines))
    compared = ""
    if args.baseline is not None:
        headers, rows = comparison(results["before"], after)
        compared = common.print_table(f"Before ({args.baseline}) and after, side by side", headers, rows)
    print(f"took {time.monotonic() - started:.0f} s")
    if not args.no_write:
        mixes = "\n".join(f"- `{m}`: {events.describe(m)}." for m in args.mix)
        parts = [
            "## 1. Acknowledgement latency",
            f"Signed Slack events, open-loop at each rate for {seconds:.0f} s, each (database, mix, rate, run) on a "
            f"fresh database and serve process with the study linked and its three participants' threads open, "
            f"after a warm-up; figures are medians of {runs} run(s). Mixes (`bench/events.py`):\n\n{mixes}\n\n"
            "Latency is measured by the client on 127.0.0.1, from sending to the full answer. *serve CPU* is the "
            "serve process's CPU time during the load over its wall time (100% = one core), *PostgreSQL CPU* the "
            "same for the PostgreSQL server's backends of this database and its background processes; *CPU "
            "ms/event* is the serve process's CPU time from the first request until its workers had finished every "
            "stored event, per event; *inbox drained after* is how long the workers needed after the last request; "
            "*load lag max* is how far the load generator itself fell behind its schedule (its own CPU "
            "starvation).",
            table,
            f"Targets: p99 <= {TARGET_P99_MS:.0f} ms at {TARGET_RATE} req/s with the durable commit before the ack "
            "(issue 13, goal 4; 50 ms before), for every mix; no request over 3 s at 500 req/s.\n\n" + "\n".join(lines),
        ]
        if compared:
            parts += [f"Before/after, interleaved in the same run (before = `{args.baseline}`):", compared]
        common.write_section("ack_latency", "\n\n".join(parts), doc=args.doc)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as exc:
        raise SystemExit(f"ack_latency: {exc}") from None
