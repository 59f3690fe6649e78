"""Shared harness of the benchmarks in ``bench/``: the real ``rallybridge serve`` against the sandbox stand-ins.

Every benchmark is a script run as ``.venv/bin/python -m bench.<name>`` from the repository root. The pieces:

- :func:`add_arguments` / :func:`parse_args` - the options every benchmark takes (``--quick``, ``--runs``,
  ``--databases sqlite,postgres``, ``--no-write``, ``--doc``).
- :func:`bridge` - an async context manager: a fresh database of a backend (a temporary SQLite file, or a new
  PostgreSQL database that is dropped afterwards), migrated; the sandbox :class:`~playground.world.World`
  (Slack, Respondent, Rally stand-ins on real ports); and a ``rallybridge serve`` subprocess wired to them,
  healthy before it is yielded as a :class:`Stack`. ``Stack.serve.cpu_seconds()`` reads the process's CPU time.
- :func:`link_study` - ``/rally link`` of the cast's study, as a researcher does it; returns Jordan's thread ts.
- :func:`signed_thread_reply` - a signed Slack ``message`` event (body, headers) for a reply in a thread.
- :func:`open_loop` - fire requests on a fixed schedule, so a slow server cannot slow the load.
- :func:`latency_summary`, :func:`median_of`, :func:`markdown_table`, :func:`print_table` - figures and tables.
- :func:`write_section` - replace one benchmark's section of ``docs/performance.md`` (between
  ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``), leaving the rest of the page as it is.

Figures are reports, never assertions: a benchmark prints and records them, whatever they are.

A benchmark in a few lines::

    from bench import common

    async def one_run(backend: str) -> dict[str, float]:
        async with common.bridge(backend, env={"RALLYBRIDGE_POLL_SECONDS": "0.5"}) as stack:
            roots = await common.link_study(stack.world)
            cpu_before = stack.serve.cpu_seconds()
            ...  # drive stack.world / stack.serve.url, measure
            return {"cpu_s": stack.serve.cpu_seconds() - cpu_before}

    def main() -> None:
        parser = argparse.ArgumentParser(description=__doc__)
        common.add_arguments(parser)
        args = common.parse_args(parser)
        figures = {b: common.median_of([asyncio.run(one_run(b)) for _ in range(args.runs)]) for b in args.databases}
        table = common.print_table("My benchmark", ["database", "CPU s"], [(b, f["cpu_s"]) for b, f in figures.items()])
        if not args.no_write:
            common.write_section("mine", "## My benchmark\\n\\n" + table, doc=args.doc)
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playground.world import World  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
RALLYBRIDGE = ROOT / ".venv" / "bin" / "rallybridge"
BACKENDS = ("sqlite", "postgres")
POSTGRES_URL = os.environ.get(
    "RALLYBRIDGE_BENCH_POSTGRES_URL",
    os.environ.get("RALLYBRIDGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not run (no PostgreSQL, the bridge did not start, ...); the message says why."""


# --- options ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, *, runs: int = 3, quick_runs: int = 1) -> None:
    """The options every benchmark takes. Read them with :func:`parse_args` (it settles ``--runs``)."""
    parser.add_argument("--quick", action="store_true", help="short runs (minutes, not tens of minutes)")
    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=None,
        help=f"runs per figure (default {runs}; {quick_runs} quick)",
    )
    parser.add_argument(
        "--databases",
        type=backends_from,
        default=list(BACKENDS),
        help="comma-separated backends: sqlite, postgres (default both)",
    )
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not update {DOC.relative_to(ROOT)}")
    parser.add_argument("--doc", type=Path, default=DOC, help="the page to write the section to")
    parser.set_defaults(_default_runs=runs, _quick_runs=quick_runs)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` with ``args.runs`` settled: as given, else the default for ``--quick`` or not."""
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = args._quick_runs if args.quick else args._default_runs
    return args


def add_baseline_argument(parser: argparse.ArgumentParser) -> None:
    """``--baseline DIR``: also run the bridge of another source tree, interleaved, for before/after figures."""
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also run the bridge of this source tree (git archive REF | tar -x -C DIR), interleaved; compare",
    )


# Where the command lives: today's tree, and trees from before the command moved out of the application package.
_CLI_MODULES = (("rallybridge", "cli.py"), ("bot", "cli.py"))


def variants(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    """What to run: ``[("after", None)]``, preceded by ``("before", DIR)`` when ``--baseline`` names a source tree
    (a parser error otherwise). ``None`` is this working tree."""
    if args.baseline is None:
        return [("after", None)]
    if not any(args.baseline.joinpath(*where).is_file() for where in _CLI_MODULES):
        parser.error(f"--baseline {args.baseline} is not a Rally Bridge source tree (no rallybridge/cli.py)")
    return [("before", args.baseline.resolve()), ("after", None)]


def bounded(kind: type[int] | type[float], low: float, high: float) -> Any:
    """An argparse type: a number of ``kind`` between ``low`` and ``high``, else a clear error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {value}")
        return value

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def backends_from(text: str) -> list[str]:
    """``"sqlite,postgres"`` -> ``["sqlite", "postgres"]``; an unknown name is an argparse error."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"databases must be among {', '.join(BACKENDS)}; got {text!r}")
    return names


# --- databases -------------------------------------------------------------------------------------------


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


async def postgres_version() -> str | None:
    """``"15.20"`` or None when PostgreSQL is not reachable at ``POSTGRES_URL``."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_admin_dsn(), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


async def migrate(url: str, code: Path | None = None) -> None:
    """Bring ``url`` to the newest schema of this tree, or of the source tree ``code`` (in a subprocess)."""
    if code is None:
        await upgrade_async(url)
        return
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])", url,
        env={**os.environ, "PYTHONPATH": str(code)}, cwd=str(code),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise BenchError(f"migrations of {code} failed:\n{out.decode(errors='replace')[-2000:]}")


@contextlib.asynccontextmanager
async def fresh_database(backend: str, workdir: Path, *, code: Path | None = None) -> AsyncIterator[str]:
    """A migrated, empty database URL: a SQLite file in ``workdir``, or a new PostgreSQL database (dropped after).

    ``code``: migrate with the schema of that source tree instead of this one (see :func:`bridge`).
    """
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
        await migrate(url, code)
        yield url
        return
    if backend != "postgres":
        raise BenchError(f"unknown backend {backend!r}")
    import asyncpg

    name = f"rb_bench_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(_admin_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BenchError(
            f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}); "
            "set RALLYBRIDGE_BENCH_POSTGRES_URL or pass --databases sqlite"
        ) from exc
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    try:
        await migrate(url, code)
        yield url
    finally:
        conn = await asyncpg.connect(_admin_dsn(), timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# --- the bridge process ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat`` utime + stime)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces; fields after it are fixed
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def processes_cpu_seconds(name: str) -> float:
    """User + system CPU seconds so far of every process called ``name`` (e.g. ``postgres``: the local server's
    backends), 0.0 when there is none. Processes that exit in between are not counted, so read it over short spans."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = stat.read_text()
            if raw[raw.index("(") + 1 : raw.rindex(")")] == name:
                total += cpu_seconds(int(stat.parent.name))
    return total


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of process ``pid`` have so far spent ready to run but waiting for a core (the second
    field of ``/proc/<pid>/task/<tid>/schedstat``, summed over threads): CPU contention, as opposed to waiting for
    I/O. 0.0 where the kernel keeps no such statistics."""
    total = 0
    for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(schedstat.read_text().split()[1])
    return total / 1e9


def postgres_cpu_seconds(database_url: str) -> float:
    """User + system CPU seconds so far of the local PostgreSQL server's work for one database: the backends
    connected to it (their process title names it) plus the server's shared background processes (WAL writer,
    checkpointer, autovacuum, ...); other databases' backends (other benchmarks or tests on a shared machine) are
    left out. Backends that exit in between are not counted, so read it over spans where the pool stays open."""
    database = database_url.rsplit("/", 1)[-1].split("?", 1)[0]
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = stat.read_text()
            if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
                continue
            title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            is_backend = re.search(r"\(\d+\)|\[local\]", title) is not None  # "... dbname 127.0.0.1(51440) idle"
            if not is_backend or f" {database} " in title:
                total += cpu_seconds(int(stat.parent.name))
    return total


@dataclass
class Serve:
    """A running ``rallybridge serve`` subprocess."""

    process: asyncio.subprocess.Process
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """What :func:`bridge` yields: the backend's database, the stand-ins and the bridge process."""

    backend: str
    database_url: str
    world: World
    serve: Serve
    workdir: Path
    extra: dict[str, Any] = field(default_factory=dict)


async def wait_healthy(url: str, within: float = 30.0, process: asyncio.subprocess.Process | None = None) -> None:
    """Until ``GET /healthz`` answers 200; BenchError after ``within`` seconds or if ``process`` exits."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process is not None and process.returncode is not None:
                raise BenchError(f"rallybridge serve exited with status {process.returncode}")
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise BenchError(f"the bridge at {url} did not become healthy within {within:.0f}s")


@contextlib.asynccontextmanager
async def start_serve(
    world: World, env: Mapping[str, str] | None = None, *, log_path: Path, code: Path | None = None
) -> AsyncIterator[Serve]:
    """``rallybridge serve`` wired to ``world`` (plus ``env``), healthy; terminated (SIGTERM, then SIGKILL) after.

    ``code``: run the bridge of that source tree (same virtualenv) instead of this one. ``env`` may set
    ``RALLYBRIDGE_PORT``: a second replica on the same database and stand-ins (``Serve.url`` follows the port).
    """
    full_env = {**os.environ, **world.env(), **(env or {})}
    url = f"http://127.0.0.1:{full_env['RALLYBRIDGE_PORT']}"
    command = [str(RALLYBRIDGE), "serve"]
    if code is not None:
        full_env["PYTHONPATH"] = str(code)
        package = next(p for p, _ in _CLI_MODULES if (code / p / "cli.py").is_file())
        command = [sys.executable, "-c", f"from {package}.cli import main; main()", "serve"]
    log = log_path.open("w")
    process = await asyncio.create_subprocess_exec(
        *command, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=str(code or log_path.parent)
    )
    serve = Serve(process, url, log_path)
    try:
        try:
            await wait_healthy(url, process=process)
        except BenchError as exc:
            raise BenchError(f"{exc}; last lines of {log_path}:\n{serve.log_tail()}") from exc
        yield serve
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


@contextlib.asynccontextmanager
async def bridge(
    backend: str,
    *,
    env: Mapping[str, str] | None = None,
    world_options: Mapping[str, Any] | None = None,
    code: Path | None = None,
) -> AsyncIterator[Stack]:
    """A fresh database of ``backend``, the stand-ins, and a healthy ``rallybridge serve`` wired to both.

    ``code`` runs the bridge (and its migrations) of another source tree, for before/after comparisons side by
    side: ``git archive <ref> | tar -x -C DIR`` gives one. The stand-ins are always this tree's.

    ``env`` adds or overrides settings of the serve process (e.g. ``{"RALLYBRIDGE_POLL_SECONDS": "0.5"}``);
    ``world_options`` go to :meth:`World.create` (Slack rate limits are off unless ``slack_options`` says
    otherwise). The serve log is ``Stack.workdir / "serve.log"``; the work directory is removed afterwards
    unless ``RALLYBRIDGE_BENCH_KEEP=1``.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"rb-bench-{backend}-"))
    options = dict(world_options or {})
    options.setdefault("slack_options", {"rate_limit": False})
    try:
        async with fresh_database(backend, workdir, code=code) as url:
            world = await World.create(url, **options)
            try:
                async with start_serve(world, env, log_path=workdir / "serve.log", code=code) as serve:
                    yield Stack(backend, url, world, serve, workdir)
            finally:
                await world.stop()
    finally:
        if os.environ.get("RALLYBRIDGE_BENCH_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def profiled(pid: int, output: Path | None, *, rate: int = 250) -> AsyncIterator[None]:
    """Sample process ``pid`` with py-spy while the block runs; collapsed stacks to ``output`` (None: no-op).

    Only the thread holding the GIL is sampled (``--gil``): the samples show where Python spends CPU (py-spy's
    idle detection does not work in every container, and waiting threads would otherwise dominate).

    ``py-spy`` is a dev tool, not a dependency: install it with ``.venv/bin/pip install py-spy``. The collapsed
    file reads with ``python -m bench.common top FILE`` or any flame-graph tool.
    """
    if output is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(RALLYBRIDGE.parent)) or shutil.which("py-spy")
    if spy is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(output),
        "--nonblocking", "--gil", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes its file and exits
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        except TimeoutError:
            process.kill()
            err = b""
        if not await asyncio.to_thread(output.exists):
            raise BenchError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
        print(f"profile of pid {pid}: {output}", flush=True)


def top_frames(collapsed: Path, *, limit: int = 25, own: bool = False) -> list[tuple[str, float]]:
    """From a py-spy raw (collapsed) file: the functions with the largest share of samples.

    ``own`` False counts a function whenever it is on the stack (inclusive); True only at the top (self time).
    """
    totals: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        names = {frames[-1]} if own else set(frames)
        for name in names:
            totals[name] = totals.get(name, 0) + count
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, count / samples) for name, count in ranked] if samples else []


# --- what people do --------------------------------------------------------------------------------------


async def eventually(
    predicate: Callable[[], Any], *, within: float = 30.0, what: str = "condition", interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); BenchError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def thread_roots(world: World) -> dict[str, str]:
    """Participant id -> ts of their thread root in the study channel, for the roots posted so far."""
    found: dict[str, str] = {}
    c = world.cast
    for who in (c.jordan, c.priya, c.sam):
        name = f"{who.first_name} {who.last_name[0]}."
        for message in world.slack.messages(c.channel):
            text = message.get("text", "")
            if name in text and "Reply in this thread" in text and message.get("thread_ts") in (None, message["ts"]):
                found[who.participant_id] = str(message["ts"])
                break
    return found


async def link_study(world: World, *, approve_all: bool = False) -> dict[str, str]:
    """``/rally link`` the cast's study as its owner; with ``approve_all`` Priya and Sam are approved too.

    Returns participant id -> thread root ts once every approved participant's root is posted.
    """
    c = world.cast
    result = await world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    if result.status != 200:
        raise BenchError(f"/rally link answered {result.status}")
    wanted = [c.jordan]
    if approve_all:
        for who in (c.priya, c.sam):
            await world.rally.approve(c.study_id, who.participant_id)
        wanted += [c.priya, c.sam]
    return dict(
        await eventually(
            lambda: (roots := thread_roots(world)) and all(w.participant_id in roots for w in wanted) and roots,
            what="the participants' thread roots",
        )
    )


def signed_thread_reply(
    world: World, user_id: str, thread_ts: str, text: str, *, ts: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A Slack ``event_callback`` for a reply by ``user_id`` in ``thread_ts``, signed now: (body, headers)."""
    now = time.time()
    event = {
        "type": "event_callback",
        "team_id": world.slack.team_id,
        "api_app_id": world.slack.api_app_id,
        "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}",
        "event_time": int(now),
        "event": {
            "type": "message",
            "channel": world.cast.channel,
            "user": user_id,
            "text": text,
            "ts": ts or world.slack.new_ts(),
            "thread_ts": thread_ts,
            "team": world.slack.team_id,
            "channel_type": "channel",
        },
    }
    body = json.dumps(event).encode()
    return body, {"Content-Type": "application/json", **world.slack.sign(body)}


# --- load --------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int
    max_lag: float  # seconds the generator fell behind its schedule at worst (its own CPU starvation)


async def open_loop(rate: float, seconds: float, send: Callable[[int], Coroutine[Any, Any, None]]) -> LoadResult:
    """Start ``send(i)`` for i = 0, 1, ... at ``rate`` per second for ``seconds``, on a fixed schedule.

    Each call runs as its own task, so a slow answer never delays the next request (open loop). Waits for
    every call to finish. Exceptions from ``send`` propagate.
    """
    total = int(rate * seconds)
    interval = 1.0 / rate
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    max_lag = 0.0
    for i in range(total):
        due = begin + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    return LoadResult(total, max_lag)


def unlimited_session(timeout: float = 30.0) -> aiohttp.ClientSession:
    """A client session with no connection cap (aiohttp's default of 100 would queue requests client-side)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=timeout))


# --- figures and tables -------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def latency_summary(latencies: Iterable[float], *, within: float = 3.0) -> dict[str, float]:
    """p50 / p99 / max in milliseconds and the share answered within ``within`` seconds, from seconds."""
    values = sorted(latencies)
    if not values:
        return {"requests": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "within": 0}
    return {
        "requests": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": values[-1] * 1000,
        "within": sum(1 for v in values if v <= within) / len(values),
    }


def median_of(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per key, the median over runs (keys of the first run)."""
    if not runs:
        return {}
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; numbers right-aligned."""
    body = [[_cell(v) for v in row] for row in rows]
    align = ["---:" if body and _numeric(body[0][i]) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+\s*(%|x|ms|s)?", text))


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print ``title`` and the table to stdout; return the table's Markdown."""
    table = markdown_table(headers, rows)
    print(f"\n{title}\n{table}\n", flush=True)
    return table


# --- the machine and the page ------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def machine_facts() -> dict[str, str]:
    """Cores, CPU model, RAM, OS, Python, PostgreSQL and SQLite versions, load average at the time of asking."""
    import sqlite3

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # works inside or outside a running event loop
        pg = pool.submit(asyncio.run, postgres_version()).result()
    load = os.getloadavg()
    return {
        "CPU cores": str(os.cpu_count()),
        "CPU model": _cpu_model(),
        "RAM": f"{_memory_gib():.0f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": pg or "not reachable",
        "SQLite": sqlite3.sqlite_version,
        "Load average (1/5/15 min) at write": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
    }


_PAGE_HEAD = """# Performance

Benchmarks of the real `rallybridge serve` process against the sandbox stand-ins of Slack, Respondent and
Rally over real HTTP on 127.0.0.1, on SQLite and on PostgreSQL. The sections between `bench:` markers are
written by the scripts in `bench/`; everything else on this page is prose and is kept as it is.

Reproduce (needs PostgreSQL at `127.0.0.1:5432`, trust auth, or `RALLYBRIDGE_BENCH_POSTGRES_URL`):

```sh
make bench         # every benchmark, full length, writes this page
make bench-quick   # the same, short runs (a couple of minutes), for a smoke check
.venv/bin/python -m bench.ack_latency --help   # one benchmark, its options
```

Shared machines are noisy: each figure is the median of several runs, and comparisons are ratios measured
side by side in the same run.
"""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(page: str, name: str, content: str) -> str:
    """``page`` with the section ``name`` replaced by ``content`` (appended when the page has no such section)."""
    start, end = _markers(name)
    block = f"{start}\n{content.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(page):
        return pattern.sub(lambda _m: block, page, count=1)
    return page.rstrip() + "\n\n" + block + "\n"


def machine_section(facts: Mapping[str, str]) -> str:
    rows = [(k, v) for k, v in facts.items()]
    return "## Machine (of the latest run)\n\n" + markdown_table(["", ""], rows).replace("|---:|", "|---|")


def write_section(
    name: str, content: str, *, doc: Path = DOC, facts: Mapping[str, str] | None = None, command: str | None = None
) -> None:
    """Write ``content`` (Markdown, usually a heading, tables and notes) as section ``name`` of ``doc``.

    Creates the page when missing, refreshes its machine section, and stamps the section with the date, the
    machine in one line and ``command`` (default: how this script was invoked).
    """
    facts = dict(facts) if facts is not None else machine_facts()
    page = doc.read_text() if doc.exists() else _PAGE_HEAD + "\n" + "\n".join(_markers("machine")) + "\n"
    stamp = (
        f"_Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {facts['CPU cores']} cores ({facts['CPU model']}), "
        f"load average at write {facts['Load average (1/5/15 min) at write']}; "
        f"`{command or invocation()}`._"
    )
    page = replace_section(page, "machine", machine_section(facts))
    page = replace_section(page, name, content.strip() + "\n\n" + stamp)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(page)
    print(f"wrote section {name!r} of {doc}", flush=True)


def invocation() -> str:
    """How this benchmark was started, e.g. ``python -m bench.ack_latency --quick``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None and spec.name else f"python {Path(sys.argv[0]).name}"
    return " ".join([program, *sys.argv[1:]])


def _main(argv: Sequence[str]) -> None:
    """``python -m bench.common top FILE [N] [--own]``: the hottest functions of a py-spy collapsed profile."""
    if len(argv) < 2 or argv[0] != "top":
        raise SystemExit("usage: python -m bench.common top PROFILE.txt [N] [--own]")
    limit = int(argv[2]) if len(argv) > 2 and argv[2].isdigit() else 25
    for name, share in top_frames(Path(argv[1]), limit=limit, own="--own" in argv):
        print(f"{share:6.1%}  {name}")


if __name__ == "__main__":
    _main(sys.argv[1:])
