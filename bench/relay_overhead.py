"""Benchmark 3: CPU seconds per relayed researcher message, the bridge against a bare forwarder, side by side.

    .venv/bin/python -m bench.relay_overhead            # 300 messages per phase, 3 runs, SQLite and PostgreSQL
    .venv/bin/python -m bench.relay_overhead --quick    # 60 messages, 1 run
    .venv/bin/python -m bench.relay_overhead --messages 500 --rate 40 --databases postgres --no-write

One relayed message, end to end: a teammate's reply in a participant's Slack thread arrives as a signed
event; it is checked (Slack ``users.info``, Rally team and user look-ups), sent through Respondent, archived
in Rally and marked delivered in Slack (``reactions.add``). The bridge does that with its inbox, workers and
outbox on a real database (``rallybridge serve``). ``bench/forwarder.py`` makes the same HTTP calls with no
storage at all: the floor for this work in Python on aiohttp. Both run as separate processes against the same
stand-ins; phases alternate (bridge, forwarder, bridge, ...) at the same open-loop rate, spread over the three
participants' threads, and each phase ends when every message carries its ✅. Reported: CPU seconds (user +
system, from ``/proc/<pid>/stat``) of that process per message, the HTTP calls it made per message (read at the
stand-ins, so the two are seen to do the same hops), and the ratio bridge / forwarder (median over runs of
the per-run ratios). A report, never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from playground.world import World, free_port

TARGET_RATIO = 3.0
DELIVERED = "white_check_mark"


@dataclass
class Process:
    """A process whose CPU time we read: the bridge or the forwarder."""

    name: str
    pid: int
    url: str


@contextlib.asynccontextmanager
async def forwarder(world: World, roots: dict[str, str], workdir: Path) -> AsyncIterator[Process]:
    """``python -m bench.forwarder`` wired to the same stand-ins, knowing the three participants' threads."""
    c = world.cast
    port = free_port()
    threads = {
        roots[who.participant_id]: {
            "study_id": c.study_id,
            "participant_id": who.participant_id,
            "project_id": c.project_id,
            "respondent_user_id": who.respondent_user_id,
        }
        for who in (c.jordan, c.priya, c.sam)
    }
    env = {**os.environ, **world.env(), "FORWARDER_PORT": str(port), "FORWARDER_THREADS": json.dumps(threads)}
    log = (workdir / "forwarder.log").open("w")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.forwarder", env=env, cwd=str(common.ROOT), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await common.wait_healthy(url, process=process)
        yield Process("forwarder", process.pid, url)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()


def hop_counts(world: World) -> collections.Counter[str]:
    """Calls answered so far by each stand-in, by API method / endpoint."""
    counts: collections.Counter[str] = collections.Counter()
    for call in world.slack.request_log:
        counts[f"slack {call.method}"] += 1
    for record in world.respondent.request_log:
        counts[f"respondent {record.method}"] += 1
    for record in world.rally.request_log:
        counts[f"rally {record.method}"] += 1
    return counts


async def relay_phase(
    world: World, target: Process, roots: dict[str, str], messages: int, rate: float, profile: Path | None = None
) -> dict[str, float | str]:
    """Send ``messages`` replies to ``target`` at ``rate``; CPU seconds of ``target`` until all are delivered."""
    c = world.cast
    threads = [roots[w.participant_id] for w in (c.jordan, c.priya, c.sam)]
    posts = []
    for i in range(messages):
        thread_ts = threads[i % len(threads)]
        ts = world.slack.new_ts()
        text = f"Thanks! Relay probe {i} for {target.name}."
        # The reply exists in the workspace (so it can take a reaction) and Slack tells the app about it.
        world.slack.store_message(c.channel, {"type": "message", "user": c.owner.slack_id, "text": text, "ts": ts})
        world.slack.find_message(c.channel, ts)["thread_ts"] = thread_ts  # type: ignore[index]
        posts.append((ts, common.signed_thread_reply(world, c.owner.slack_id, thread_ts, text, ts=ts)))
    hops_before = hop_counts(world)
    statuses: collections.Counter[int] = collections.Counter()
    async with common.unlimited_session() as http:

        async def send(i: int) -> None:
            body, headers = posts[i][1]
            async with http.post(f"{target.url}/slack/events", data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

        def delivered() -> bool:
            return all(DELIVERED in world.slack.reactions.get((c.channel, ts), set()) for ts, _ in posts)

        async with common.profiled(target.pid, profile):
            cpu_before, started = common.cpu_seconds(target.pid), time.perf_counter()
            await common.open_loop(rate, messages / rate, send)
            await common.eventually(delivered, within=300, what=f"{messages} messages delivered by the {target.name}")
            cpu = common.cpu_seconds(target.pid) - cpu_before
            wall = time.perf_counter() - started
    if set(statuses) != {200}:
        raise common.BenchError(f"the {target.name} answered {dict(statuses)}")
    hops = hop_counts(world) - hops_before
    per_message = ", ".join(f"{name} {n / messages:.2f}" for name, n in sorted(hops.items()))
    return {
        "cpu_ms": cpu * 1000 / messages,
        "wall_s": wall,
        "hops": sum(hops.values()) / messages,
        "hop_detail": per_message,
    }


async def one_run(
    backend: str, messages: int, rate: float, *, code: Path | None = None, profile: Path | None = None, label: str = ""
) -> dict[str, Any]:
    """One fresh stack: warm-up, then a bridge phase and a forwarder phase; the two figures and their ratio.

    ``code``: run the bridge of that source tree (a before/after comparison, see ``common.bridge``).
    """
    async with common.bridge(backend, code=code) as stack:
        world = stack.world
        roots = await common.link_study(world, approve_all=True)
        bridge = Process("bridge", stack.serve.pid, stack.serve.url)
        async with forwarder(world, roots, stack.workdir) as floor:
            # Warm-up: first use of each path (imports, connections, conversation look-ups) is not measured.
            for target in (bridge, floor):
                await relay_phase(world, target, roots, 6, rate)
            b = await relay_phase(
                world, bridge, roots, messages, rate, profile / f"{label}bridge.txt" if profile else None
            )
            f = await relay_phase(
                world, floor, roots, messages, rate, profile / f"{label}forwarder.txt" if profile else None
            )
    return {"bridge": b, "forwarder": f, "ratio": float(b["cpu_ms"]) / float(f["cpu_ms"])}


HEADERS = [
    "database",
    "messages x runs",
    "bridge CPU ms/msg",
    "forwarder CPU ms/msg",
    "ratio",
    "HTTP calls/msg bridge / forwarder",
    "phase wall s bridge / forwarder",
]


def summarize(backend: str, messages: int, results: list[dict[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
    import statistics

    b_cpu = statistics.median(float(r["bridge"]["cpu_ms"]) for r in results)
    f_cpu = statistics.median(float(r["forwarder"]["cpu_ms"]) for r in results)
    ratio = statistics.median(r["ratio"] for r in results)
    b_hops = statistics.median(float(r["bridge"]["hops"]) for r in results)
    f_hops = statistics.median(float(r["forwarder"]["hops"]) for r in results)
    b_wall = statistics.median(float(r["bridge"]["wall_s"]) for r in results)
    f_wall = statistics.median(float(r["forwarder"]["wall_s"]) for r in results)
    row = [
        backend,
        f"{messages} x {len(results)}",
        b_cpu,
        f_cpu,
        f"{ratio:.2f}x",
        f"{b_hops:.2f} / {f_hops:.2f}",
        f"{b_wall:.1f} / {f_wall:.1f}",
    ]
    detail = {"bridge": results[-1]["bridge"]["hop_detail"], "forwarder": results[-1]["forwarder"]["hop_detail"]}
    return row, {"ratio": ratio, "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser)
    parser.add_argument(
        "--messages",
        type=common.bounded(int, 10, 100000),
        default=None,
        help="per phase (default 300; 60 with --quick)",
    )
    parser.add_argument(
        "--rate", type=common.bounded(float, 1, 1000), default=20.0, help="messages per second (default 20)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of both processes")
    common.add_baseline_argument(parser)
    args = common.parse_args(parser)
    messages = args.messages or (60 if args.quick else 300)
    variants = common.variants(parser, args)
    started = time.monotonic()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for backend in args.databases:
        for run in range(args.runs):
            for name, code in variants:  # interleaved, so both meet the same noise
                label = f"relay-{name}-{backend}-{run + 1}-"
                figure = asyncio.run(
                    one_run(backend, messages, args.rate, code=code, profile=args.profile, label=label)
                )
                print(
                    f"{name + ' ' if code else ''}{backend:8} run {run + 1}/{args.runs}: bridge "
                    f"{float(figure['bridge']['cpu_ms']):.2f} ms CPU/message, forwarder "
                    f"{float(figure['forwarder']['cpu_ms']):.2f} ms, ratio {figure['ratio']:.2f}x",
                    flush=True,
                )
                results.setdefault((name, backend), []).append(figure)
    rows, notes = [], []
    for backend in args.databases:
        row, extra = summarize(backend, messages, results[("after", backend)])
        rows.append(row)
        met = extra["ratio"] <= TARGET_RATIO
        notes.append(
            f"- {backend}: {extra['ratio']:.2f}x the forwarder's CPU per message, target <= {TARGET_RATIO:.0f}x: "
            f"**{'met' if met else 'not met'}**"
        )
        notes.append(f"  - HTTP calls per message, bridge: {extra['detail']['bridge']}")
        notes.append(f"  - HTTP calls per message, forwarder: {extra['detail']['forwarder']}")
    title = f"Relay overhead, {messages} messages per phase at {args.rate:g}/s, median of {args.runs} run(s)"
    table = common.print_table(title, HEADERS, rows)
    print("\n".join(notes))
    compared = ""
    if args.baseline is not None:
        before_rows = [summarize(b, messages, results[("before", b)])[0] for b in args.databases]
        compared = common.print_table(
            f"Before ({args.baseline}), same runs, interleaved",
            HEADERS,
            [["before " + r[0], *r[1:]] for r in before_rows],
        )
    print(f"took {time.monotonic() - started:.0f} s")
    if not args.no_write:
        parts = [
            "## 3. Relay overhead",
            f"CPU time per relayed researcher message of the bridge (`rallybridge serve`: inbox, workers, outbox, "
            f"database) and of `bench/forwarder.py` (the same HTTP calls, no storage), read for each process "
            f"(`/proc/<pid>/stat` user + system) from the first event of a phase until every message of it carried "
            f"its ✅. Each run is a fresh stack: a bridge phase, then a forwarder phase on the same stand-ins, "
            f"{messages} messages each at {args.rate:g}/s (open loop, over three participants' threads); the ratio "
            "is the median of the per-run ratios. The database server's own CPU (PostgreSQL) is not counted: it is "
            "another process.",
            table,
            f"Target: {TARGET_RATIO:.0f}x or less.\n\n" + "\n".join(notes),
        ]
        if compared:
            parts += [f"Before/after, interleaved in the same run (before = `{args.baseline}`):", compared]
        common.write_section("relay_overhead", "\n\n".join(parts), doc=args.doc)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as exc:
        raise SystemExit(f"relay_overhead: {exc}") from None
