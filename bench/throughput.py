"""Benchmark 6: sustained throughput of signed Slack events: one serve process at 500 events/s, and two replicas.

    .venv/bin/python -m bench.throughput                  # both parts, full length (about 15 min on 2 cores)
    .venv/bin/python -m bench.throughput --quick          # 5 s loads, a short ramp (about 3 min)
    .venv/bin/python -m bench.throughput --parts sustain --databases sqlite --mix busy --seconds 20 --no-write
    .venv/bin/python -m bench.throughput --parts ramp --ramp 300,500,700 --replicas 1,2

**sustain** (section ``throughput``): per database and event mix (``bench/events.py``), a fresh database and
serve process, the study linked with its three participants' threads; ``--rate`` events/s (default 500) open-loop
for ``--seconds`` (default 60). Then: how long the bridge needed to empty its inbox after the last request left
(``rallybridge_queue_depth{queue="inbox"}`` of its /metrics, watched up to ``--drain-watch`` seconds), whether
every relayed reply reached Respondent exactly once (counted at the stand-in by the token each text carries: lost,
duplicated) and carries its ✅, and the CPU time (``/proc/<pid>/stat``) of serve from the first event until all
that was done: **events per CPU-second**. Then ``bench/forwarder.py`` (no storage) gets the same mix at the same
rate and duration on the same stand-ins, and its events per CPU-second are the floor beside the bridge's.

**ramp** (section ``throughput_replicas``): PostgreSQL only; for 1 and for 2 serve processes on one database
(the second on its own port, same stand-ins; requests alternate between them), ``--ramp`` rates (default
300,600,900,1200,1500,1800,2400 events/s) for ``--ramp-seconds`` (default 15) each, every step on a fresh
database. A step is *sustained* when the ack p99 is under 1 s, every request got a 2xx, the inbox was empty
within 10 s after the load, no relay was lost or duplicated, and the load generator really sent at least 95% of
the rate (otherwise the generator, not the bridge, was the limit, and the step says so). A replica count's ramp
stops at its first step not sustained (``--full-ramp``: run every step). Reported: the highest sustained rate
of each, and their ratio.

On one machine the load generator and the stand-ins (this process), the serve process(es), the forwarder and
PostgreSQL share the same cores: every table shows each one's share of a core during the load. A report, never
a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import common, events
from bench.ack_latency import inbox_depth
from bench.relay_overhead import forwarder
from playground.world import World, free_port

TARGET_RATE, TARGET_SECONDS, TARGET_DRAIN_S = 500, 60.0, 10.0
TARGET_REPLICA_RATIO = 1.6
SUSTAINED_P99_MS = 1000.0
GENERATOR_FLOOR = 0.95  # a step counts only if the generator really sent this share of the rate
RAMP_DRAIN_WATCH = 30.0  # 3x the 10 s criterion, so that a step that misses it still says by how much
RELAY_WATCH = 120.0  # after the inbox is empty, how long relays may take to reach Respondent and get their ✅
NAN = float("nan")


def _ints(low: int, high: int) -> Any:
    def parse(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"whole numbers separated by commas, got {text!r}") from None
        if not values or any(not low <= v <= high for v in values):
            raise argparse.ArgumentTypeError(f"each must be between {low} and {high}, got {text!r}")
        return values

    return parse


def _parts(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names or any(n not in ("sustain", "ramp") for n in names):
        raise argparse.ArgumentTypeError(f"parts must be among sustain, ramp; got {text!r}")
    return names


# --- one load phase ----------------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where the load goes: one or more processes answering ``POST /slack/events``."""

    name: str
    urls: list[str]  # requests alternate between them
    pids: list[int]
    metrics_url: str | None  # a bridge's /metrics (inbox depth); None for the forwarder

    def cpu_seconds(self) -> float:
        return sum(common.cpu_seconds(pid) for pid in self.pids)

    def waiting_seconds(self) -> float:
        return sum(common.runqueue_wait_seconds(pid) for pid in self.pids)


async def phase(
    world: World,
    target: Target,
    factory: events.EventFactory,
    mix: str,
    rate: float,
    seconds: float,
    *,
    database_url: str,
    drain_watch: float,
    duplicate_watch: float = 0.0,
) -> dict[str, float]:
    """``rate`` x ``seconds`` events of ``mix`` to ``target``, open loop; then the drain, the relays and the CPU."""
    batch = factory.build(mix, int(rate * seconds))
    relays = [e for e in batch if e.token is not None]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    dispatched: list[float] = [NAN, NAN]  # when the first and the last request left
    last = len(batch) - 1
    async with common.unlimited_session(timeout=30) as http:

        async def send(i: int) -> None:
            nonlocal errors
            event = batch[i]
            start = time.perf_counter()
            if i in (0, last):
                dispatched[0 if i == 0 else 1] = start
            url = target.urls[i % len(target.urls)]
            try:
                async with http.post(f"{url}/slack/events", data=event.body, headers=event.headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies.append(time.perf_counter() - start)

        me = os.getpid()
        cpu_before, gen_before, wall_before = target.cpu_seconds(), common.cpu_seconds(me), time.perf_counter()
        wait_before = target.waiting_seconds()
        postgres = database_url.startswith("postgresql")
        db_before = common.postgres_cpu_seconds(database_url) if postgres else NAN
        load = await common.open_loop(rate, seconds, send)
        answered_at = time.perf_counter()
        load_wall = answered_at - wall_before
        cpu_load = target.cpu_seconds() - cpu_before
        wait_load = target.waiting_seconds() - wait_before
        gen_load = common.cpu_seconds(me) - gen_before
        db_load = common.postgres_cpu_seconds(database_url) - db_before if postgres else NAN
        ended = dispatched[1]  # the load ends when its last request leaves; drain and relays count from there
        drain = NAN
        if target.metrics_url is not None:
            while time.perf_counter() - ended < drain_watch:
                if await inbox_depth(http, target.metrics_url) == 0:
                    drain = time.perf_counter() - ended
                    break
                await asyncio.sleep(0.1)
        else:
            drain = 0.0  # nothing is stored
        tokens = [e.token for e in relays if e.token is not None]
        relays_done = NAN
        deadline = time.perf_counter() + RELAY_WATCH
        while time.perf_counter() < deadline:
            if len(events.relays_received(world, tokens)) == len(tokens) and events.relays_marked(world, relays) == len(
                relays
            ):
                relays_done = time.perf_counter() - ended
                break
            await asyncio.sleep(0.2)
        cpu_all = target.cpu_seconds() - cpu_before
        db_all = common.postgres_cpu_seconds(database_url) - db_before if postgres else NAN
        if tokens and duplicate_watch > 0:
            await asyncio.sleep(duplicate_watch)  # a relay sent again when its lease ran out would show by now
        received = events.relays_received(world, tokens)
    again = await attempted_again(database_url) if target.metrics_url is not None else {}
    if again:
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(again.items()))
        print(f"{target.name}: outbox rows attempted more than once: {detail}", flush=True)
    summary = common.latency_summary(latencies)
    span = dispatched[1] - dispatched[0]
    return {
        "events": float(len(batch)),
        "achieved": (len(batch) - 1) / span if span > 0 else NAN,
        "non_2xx": float(sum(n for s, n in statuses.items() if not 200 <= s < 300) + errors),
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "max_ms": summary["max_ms"],
        "drain_s": drain,
        "relays": float(len(tokens)),
        "lost": float(sum(1 for t in tokens if received[t] == 0)),
        "duplicated": float(sum(n - 1 for n in received.values() if n > 1)),
        "relays_done_s": relays_done,
        "cpu_s": cpu_all,
        "events_per_cpu_s": len(batch) / cpu_all if cpu_all > 0 else NAN,
        "db_cpu_s": db_all,
        "events_per_cpu_s_with_db": len(batch) / (cpu_all + db_all) if postgres else NAN,
        "cpu_share": cpu_load / load_wall,
        "wait_share": wait_load / load_wall,
        "db_share": db_load / load_wall,
        "gen_share": gen_load / load_wall,
        "lag_ms": load.max_lag * 1000,
        "again": float(sum(again.values())),
    }


async def attempted_again(database_url: str) -> dict[str, int]:
    """Outbox rows attempted more than once, by kind: a retry, or a row taken over when its lease ran out (then
    ``needs_verify`` is set and the next attempt checks at the target first, which a first attempt still in
    flight can beat)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT kind, count(*) FROM outbox WHERE attempts > 1 GROUP BY kind"))
            return {str(kind): int(n) for kind, n in rows}
    finally:
        await engine.dispose()


def serve_env(lease: float) -> dict[str, str]:
    """Settings of the serve processes beyond the stand-ins' (``World.env``): the row lease."""
    return {"RALLYBRIDGE_LEASE_SECONDS": f"{lease:g}"}


# --- sustain --------------------------------------------------------------------------------------------------


async def sustain_run(
    backend: str, mix: str, rate: float, seconds: float, *, drain_watch: float, with_forwarder: bool, lease: float
) -> dict[str, float]:
    """One fresh stack: (optionally) the forwarder phase, then the bridge phase, on the same stand-ins.

    The forwarder goes first: it leaves nothing behind, while a bridge that fell behind still works through its
    inbox and outbox after its phase, which would take CPU from a forwarder measured after it.
    """
    async with common.bridge(backend, env=serve_env(lease)) as stack:
        world = stack.world
        roots = await events.link_study(world)
        factory = events.EventFactory(world, roots)
        bridge = Target("bridge", [stack.serve.url], [stack.serve.pid], stack.serve.url)
        # The bridge's warm-up first: its first relays open the participants' Respondent conversations, which the
        # forwarder only looks up.
        await events.warm_up(world, bridge.urls, factory, "bridge")
        floor: dict[str, float] = {"fwd_events_per_cpu_s": NAN, "fwd_lost": NAN, "fwd_share": NAN}
        if with_forwarder:
            async with forwarder(world, roots, stack.workdir) as process:
                target = Target("forwarder", [process.url], [process.pid], None)
                await events.warm_up(world, target.urls, factory, target.name)
                f = await phase(
                    world, target, factory, mix, rate, seconds, database_url=stack.database_url, drain_watch=0
                )
            floor = {
                "fwd_events_per_cpu_s": f["events_per_cpu_s"],
                "fwd_lost": f["lost"] + f["duplicated"],
                "fwd_share": f["cpu_share"],
            }
        figures = await phase(
            world,
            bridge,
            factory,
            mix,
            rate,
            seconds,
            database_url=stack.database_url,
            drain_watch=drain_watch,
            duplicate_watch=lease + 1,
        )
    return {**figures, **floor}


SUSTAIN_HEADERS = [
    "database",
    "mix",
    "events",
    "sent/s",
    "non-2xx",
    "ack p50 / p99 / max ms",
    "inbox drained after",
    "relayed: sent / lost / duplicated",
    "relays done after",
    "serve CPU during load",
    "serve waiting for a core",
    "PostgreSQL CPU",
    "generator + stand-ins CPU",
    "events per CPU-s: serve",
    "serve + PostgreSQL",
    "forwarder",
    "forwarder / serve",
]


def _seconds_or(value: float, watched: float) -> str:
    return f"> {watched:.0f} s (not empty)" if value != value else f"{value:.1f} s"


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.0%}"


def sustain_row(backend: str, mix: str, f: dict[str, float], drain_watch: float) -> list[Any]:
    ratio = f["fwd_events_per_cpu_s"] / f["events_per_cpu_s"]
    return [
        backend,
        mix,
        int(f["events"]),
        f"{f['achieved']:.0f}",
        int(f["non_2xx"]),
        f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f} / {f['max_ms']:.0f}",
        _seconds_or(f["drain_s"], drain_watch),
        f"{int(f['relays'])} / {int(f['lost'])} / {int(f['duplicated'])}",
        _seconds_or(f["relays_done_s"], RELAY_WATCH),
        _pct(f["cpu_share"]),
        _pct(f["wait_share"]),
        _pct(f["db_share"]),
        _pct(f["gen_share"]),
        f"{f['events_per_cpu_s']:.0f}",
        "-"
        if f["events_per_cpu_s_with_db"] != f["events_per_cpu_s_with_db"]
        else f"{f['events_per_cpu_s_with_db']:.0f}",
        "-" if ratio != ratio else f"{f['fwd_events_per_cpu_s']:.0f}",
        "-" if ratio != ratio else f"{ratio:.1f}x",
    ]


def sustain_verdict(backend: str, mix: str, rate: float, seconds: float, f: dict[str, float]) -> str:
    drained = f["drain_s"] == f["drain_s"] and f["drain_s"] <= TARGET_DRAIN_S
    exact = f["lost"] == 0 and f["duplicated"] == 0 and f["non_2xx"] == 0
    at_target = rate >= TARGET_RATE and seconds >= TARGET_SECONDS and f["achieved"] >= GENERATOR_FLOOR * rate
    met = drained and exact and at_target
    drain = "not empty within the watch" if f["drain_s"] != f["drain_s"] else f"drained after {f['drain_s']:.1f} s"
    why = [] if at_target else [f"load was {f['achieved']:.0f}/s for {seconds:.0f} s, not {TARGET_RATE}/s for 60 s"]
    if f["again"] > 0:
        why.append(f"{int(f['again'])} outbox rows attempted more than once")
    if f["fwd_lost"] > 0:  # the floor's own relays: it has no retries, so a lost one means the machine was overrun
        why.append(f"the forwarder lost or duplicated {int(f['fwd_lost'])} relays")
    return (
        f"- {backend}, {mix}: inbox {drain}, {int(f['lost'])} lost, {int(f['duplicated'])} duplicated, "
        f"{int(f['non_2xx'])} non-2xx; target {TARGET_RATE}/s for {TARGET_SECONDS:.0f} s drained within "
        f"{TARGET_DRAIN_S:.0f} s, 0 lost, 0 duplicated: **{'met' if met else 'not met'}**"
        + (f" ({'; '.join(why)})" if why else "")
    )


# --- ramp ---------------------------------------------------------------------------------------------------------


async def ramp_step(replicas: int, mix: str, rate: float, seconds: float, *, lease: float) -> dict[str, float]:
    """``replicas`` serve processes on one fresh PostgreSQL database, ``rate`` events/s alternated between them."""
    env = serve_env(lease)
    async with common.bridge("postgres", env=env) as stack, contextlib.AsyncExitStack() as more:
        world = stack.world
        serves = [stack.serve]
        for k in range(2, replicas + 1):
            log = stack.workdir / f"serve-{k}.log"
            port = {"RALLYBRIDGE_PORT": str(free_port())}
            serves.append(await more.enter_async_context(common.start_serve(world, {**env, **port}, log_path=log)))
        roots = await events.link_study(world)
        factory = events.EventFactory(world, roots)
        target = Target(f"{replicas} replica(s)", [s.url for s in serves], [s.pid for s in serves], stack.serve.url)
        await events.warm_up(world, target.urls, factory, target.name)
        return await phase(
            world,
            target,
            factory,
            mix,
            rate,
            seconds,
            database_url=stack.database_url,
            drain_watch=RAMP_DRAIN_WATCH,
            duplicate_watch=lease + 1,
        )


def sustained(rate: float, f: dict[str, float]) -> tuple[bool, str]:
    """Whether a ramp step held, and if not, why."""
    why = []
    if f["achieved"] < GENERATOR_FLOOR * rate:
        why.append(f"generator-bound: sent {f['achieved']:.0f}/s")
    if not f["p99_ms"] < SUSTAINED_P99_MS:
        why.append(f"p99 {f['p99_ms']:.0f} ms")
    if f["non_2xx"]:
        why.append(f"{int(f['non_2xx'])} non-2xx")
    if not f["drain_s"] <= TARGET_DRAIN_S:
        why.append("inbox " + ("not empty within 30 s" if f["drain_s"] != f["drain_s"] else f"{f['drain_s']:.0f} s"))
    if f["lost"] or f["duplicated"]:
        why.append(f"{int(f['lost'])} lost, {int(f['duplicated'])} duplicated")
    return not why, "; ".join(why)


RAMP_HEADERS = [
    "replicas",
    "rate/s",
    "sent/s",
    "ack p50 / p99 / max ms",
    "non-2xx",
    "inbox drained after",
    "relayed: sent / lost / duplicated",
    "serve CPU (all replicas)",
    "serve waiting for a core",
    "PostgreSQL CPU",
    "generator + stand-ins CPU",
    "events per CPU-s: serve",
    "sustained",
]


def ramp_row(replicas: int, rate: int, f: dict[str, float]) -> list[Any]:
    ok, why = sustained(rate, f)
    return [
        replicas,
        rate,
        f"{f['achieved']:.0f}",
        f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f} / {f['max_ms']:.0f}",
        int(f["non_2xx"]),
        _seconds_or(f["drain_s"], RAMP_DRAIN_WATCH),
        f"{int(f['relays'])} / {int(f['lost'])} / {int(f['duplicated'])}",
        _pct(f["cpu_share"]),
        _pct(f["wait_share"]),
        _pct(f["db_share"]),
        _pct(f["gen_share"]),
        f"{f['events_per_cpu_s']:.0f}",
        "yes" if ok else f"no ({why})",
    ]


def ramp_verdict(best: dict[int, int | None], rates: Sequence[int]) -> list[str]:
    lines = []
    for replicas, rate in best.items():
        top = " (the top of the ramp: may hold more)" if rate == max(rates) else ""
        lines.append(f"- {replicas} replica(s): highest sustained rate {rate or 'none'}{'/s' if rate else ''}{top}")
    one, two = best.get(1), best.get(2)
    if one and two and one == two == max(rates):
        lines.append(
            f"- 2 replicas / 1 replica: undetermined, both held the top of the ramp ({max(rates)}/s); a ramp to "
            f"higher rates (--ramp) tells; target >= {TARGET_REPLICA_RATIO}x"
        )
    elif one and two:
        ratio = two / one
        capped = " (at least: 2 replicas reached the top of the ramp)" if two == max(rates) else ""
        lines.append(
            f"- 2 replicas / 1 replica: {ratio:.2f}x{capped}, target >= {TARGET_REPLICA_RATIO}x: "
            f"**{'met' if ratio >= TARGET_REPLICA_RATIO else 'not met'}**"
        )
    elif 1 in best and 2 in best:
        lines.append(
            f"- 2 replicas / 1 replica: no ratio (a count sustained no step), target >= {TARGET_REPLICA_RATIO}x"
        )
    return lines


# --- the page -------------------------------------------------------------------------------------------------------


def tree_state() -> str:
    """``commit 82a484e; uncommitted changes to bridge/inbox.py, ...`` of the code under test."""
    try:
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h"], cwd=common.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--short", "--", "bridge", "storage", "core", "adapters", "bot"],
            cwd=common.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = sorted(line[3:] for line in status if line.strip())
    inbox = "bridge/inbox.py " + ("changed" if "bridge/inbox.py" in changed else "as committed")
    if not changed:
        return f"commit {head}, no uncommitted changes to the product code ({inbox})"
    return f"commit {head} plus uncommitted changes to {len(changed)} product file(s): {', '.join(changed)} ({inbox})"


def machine_note() -> str:
    return (
        f"All on one machine of {os.cpu_count()} cores: the load generator and the three stand-ins (one Python "
        "process, *generator + stand-ins CPU*), the serve process(es), the forwarder and PostgreSQL's server "
        "processes share them, with whatever else runs on the machine (the load average is in the stamp below); "
        "each CPU column is that process's CPU time during the load over the wall time (100% = one core). *serve "
        "waiting for a core* is the time serve's threads were ready to run but had no core "
        "(`/proc/<pid>/task/*/schedstat`), over the same wall time: when it is large, slow answers are the "
        "machine's contention, not the bridge's own work or waits. The figures are this machine's, not a "
        "bridge's on a machine of its own."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser, runs=1, quick_runs=1)
    events.add_mix_argument(parser, "busy,ignored")
    parser.add_argument("--parts", type=_parts, default=["sustain", "ramp"], help="sustain, ramp (default both)")
    parser.add_argument(
        "--rate", type=common.bounded(float, 1, 5000), default=float(TARGET_RATE), help="events/s (500)"
    )
    parser.add_argument(
        "--seconds", type=common.bounded(float, 1, 3600), default=None, help="load (default 60; 5 quick)"
    )
    parser.add_argument(
        "--drain-watch",
        type=common.bounded(float, 1, 3600),
        default=120.0,
        help="watch the inbox after the load (120 s)",
    )
    parser.add_argument("--no-forwarder", action="store_true", help="skip the forwarder phase of sustain")
    parser.add_argument(
        "--lease",
        type=common.bounded(float, 0.5, 600),
        default=5.0,
        help="serve's row lease, RALLYBRIDGE_LEASE_SECONDS (default 5, as in every benchmark; production default 60)",
    )
    parser.add_argument(
        "--ramp", type=_ints(1, 5000), default=None, help="ramp rates (300,600,900,1200,1500,1800,2400)"
    )
    parser.add_argument(
        "--ramp-seconds", type=common.bounded(float, 1, 600), default=None, help="per step (15; 5 quick)"
    )
    parser.add_argument("--ramp-mix", type=events.mixes_from, default=["busy"], help="the ramp's mix (busy)")
    parser.add_argument("--replicas", type=_ints(1, 4), default=[1, 2], help="replica counts of the ramp (1,2)")
    parser.add_argument("--full-ramp", action="store_true", help="run every step, even after one that did not hold")
    args = common.parse_args(parser)
    seconds = args.seconds or (5.0 if args.quick else TARGET_SECONDS)
    ramp_rates = args.ramp or ([300, 600] if args.quick else [300, 600, 900, 1200, 1500, 1800, 2400])
    ramp_seconds = args.ramp_seconds or (5.0 if args.quick else 15.0)
    state = tree_state()
    print(f"code under test: {state}", flush=True)
    if "sustain" in args.parts:
        run_sustain(args, seconds, state)
    if "ramp" in args.parts:
        if "postgres" not in args.databases:
            print("ramp skipped: replicas share a PostgreSQL database (--databases has no postgres)", flush=True)
            return
        run_ramp(args, ramp_rates, ramp_seconds, state)


def run_sustain(args: argparse.Namespace, seconds: float, state: str) -> None:
    started = time.monotonic()
    results: dict[tuple[str, str], dict[str, float]] = {}
    for backend in args.databases:
        for mix in args.mix:
            runs = []
            for run in range(args.runs):
                f = asyncio.run(
                    sustain_run(
                        backend,
                        mix,
                        args.rate,
                        seconds,
                        drain_watch=args.drain_watch,
                        with_forwarder=not args.no_forwarder,
                        lease=args.lease,
                    )
                )
                print(
                    f"{backend:8} {mix:8} run {run + 1}/{args.runs}: sent {f['achieved']:.0f}/s, "
                    f"p99 {f['p99_ms']:.1f} ms, "
                    f"inbox drained after {_seconds_or(f['drain_s'], args.drain_watch)}, relays {int(f['relays'])} / "
                    f"lost {int(f['lost'])} / dup {int(f['duplicated'])}, {f['events_per_cpu_s']:.0f} events per "
                    f"serve CPU-s (forwarder {f['fwd_events_per_cpu_s']:.0f})",
                    flush=True,
                )
                runs.append(f)
            results[(backend, mix)] = common.median_of(runs)
    title = f"Sustained throughput, {args.rate:g} events/s for {seconds:g} s, median of {args.runs} run(s)"
    rows = [sustain_row(b, m, f, args.drain_watch) for (b, m), f in results.items()]
    table = common.print_table(title, SUSTAIN_HEADERS, rows)
    lines = [sustain_verdict(b, m, args.rate, seconds, f) for (b, m), f in results.items()]
    print("\n".join(lines))
    took = time.monotonic() - started
    print(f"took {took:.0f} s")
    if args.no_write:
        return
    mixes = "\n".join(f"- `{m}`: {events.describe(m)}." for m in args.mix)
    parts = [
        "## 6. Sustained throughput",
        f"Signed Slack events (`bench/events.py`; every one signed with the workspace's signing secret as Slack "
        f"signs it) open-loop at {args.rate:g} events/s for {seconds:g} s into one `rallybridge serve`, each "
        f"(database, mix, run) on a fresh database and serve process with the study linked and its three "
        f"participants' threads open, after a warm-up. Mixes:\n\n{mixes}",
        table,
        f"*sent/s* is what the generator really sent; *inbox drained after* is from the last request sent until "
        f'`rallybridge_queue_depth{{queue="inbox"}}` read 0 (watched {args.drain_watch:.0f} s); *relayed* counts '
        f"the teammates' replies at the Respondent stand-in by the token in each text (lost: never received; "
        f"duplicated: received more than once, counted {args.lease + 1:g} s after the last arrived, past serve's "
        f"row lease of {args.lease:g} s, `RALLYBRIDGE_LEASE_SECONDS`, production's default being 60 s); *relays "
        f"done after* is until every one had reached Respondent and carried its ✅. *Events per CPU-s* is the "
        f"events of the phase over the CPU time (user + system, `/proc/<pid>/stat`) of serve from the first event "
        f"until the inbox was empty and every relay done; *serve + PostgreSQL* adds the CPU of the PostgreSQL "
        f"server's backends of this database and its background processes over the same span. *forwarder* is "
        f"`bench/forwarder.py` (signature check, JSON, the same relay HTTP calls, no storage) fed the same mix at "
        f"the same rate for as long, on the same stand-ins, until its relays were done; it runs first, so that a "
        f"bridge still working off a backlog cannot take CPU from it.",
        machine_note(),
        f"Target (issue 13, goal 3): one serve process sustains {TARGET_RATE} signed events/s for "
        f"{TARGET_SECONDS:.0f} s on SQLite and on PostgreSQL with the inbox drained within {TARGET_DRAIN_S:.0f} s "
        f"after the load, 0 lost, 0 duplicated.\n\n" + "\n".join(lines),
        f"Code under test: {state}. Whole run {took / 60:.1f} min.",
    ]
    common.write_section("throughput", "\n\n".join(parts), doc=args.doc)


def run_ramp(args: argparse.Namespace, rates: Sequence[int], seconds: float, state: str) -> None:
    started = time.monotonic()
    mix = args.ramp_mix[0]
    rows: list[list[Any]] = []
    best: dict[int, int | None] = {}
    for replicas in args.replicas:
        best[replicas] = None
        for rate in rates:
            runs = [asyncio.run(ramp_step(replicas, mix, rate, seconds, lease=args.lease)) for _ in range(args.runs)]
            f = common.median_of(runs)
            ok, why = sustained(rate, f)
            print(
                f"{replicas} replica(s) {rate:5}/s: sent {f['achieved']:.0f}/s, p99 {f['p99_ms']:.0f} ms, inbox "
                f"drained after {_seconds_or(f['drain_s'], RAMP_DRAIN_WATCH)}, {'sustained' if ok else 'not: ' + why}",
                flush=True,
            )
            rows.append(ramp_row(replicas, rate, f))
            if ok:
                best[replicas] = rate
            elif not args.full_ramp:
                break
    title = f"Replicas on one PostgreSQL, {seconds:g} s per step, mix {mix}, median of {args.runs} run(s)"
    table = common.print_table(title, RAMP_HEADERS, rows)
    lines = ramp_verdict(best, rates)
    print("\n".join(lines))
    took = time.monotonic() - started
    print(f"took {took:.0f} s")
    if args.no_write:
        return
    parts = [
        "## 6. Throughput of replicas",
        f"1 and {max(args.replicas)} `rallybridge serve` processes on one PostgreSQL database (each replica on its "
        f"own port, the same stand-ins; requests alternate between them), mix `{mix}` ({events.describe(mix)}), "
        f"rates {', '.join(map(str, rates))} events/s for {seconds:g} s each, every step on a fresh database, "
        f"serve's row lease {args.lease:g} s. "
        f"A step is sustained when the ack p99 is under {SUSTAINED_P99_MS / 1000:.0f} s, every request got a 2xx, "
        f"the inbox was empty within {TARGET_DRAIN_S:.0f} s after the load (watched {RAMP_DRAIN_WATCH:.0f} s), no "
        f"relay was lost or duplicated, and the generator really sent at least {GENERATOR_FLOOR:.0%} of the rate "
        f"(below that the machine could not produce the load, and the step says so). "
        + (
            "Every step was run." if args.full_ramp else "A replica count's ramp stops at its first step not sustained."
        ),
        table,
        machine_note(),
        f"Target (issue 13, goal 3): two replicas on one PostgreSQL sustain at least {TARGET_REPLICA_RATIO}x one "
        f"replica's rate.\n\n" + "\n".join(lines),
        f"Code under test: {state}. Whole run {took / 60:.1f} min.",
    ]
    common.write_section("throughput_replicas", "\n\n".join(parts), doc=args.doc)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as exc:
        raise SystemExit(f"throughput: {exc}") from None
