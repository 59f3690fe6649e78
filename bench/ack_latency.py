"""Acknowledgement latency of signed Slack thread replies against a real `rallybridge serve` process.

    .venv/bin/python bench/ack_latency.py --rate 50 --seconds 10 [--database postgresql+asyncpg://...]

Prints p50 / p99 / max and the share answered within Slack's 3 s. A report, never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.world import World  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402


async def wait_healthy(url: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("bridge did not become healthy")


def event_body(world: World, thread_ts: str) -> bytes:
    ts = f"{time.time():.6f}"
    event = {
        "type": "event_callback",
        "team_id": world.slack.team_id,
        "api_app_id": world.slack.api_app_id,
        "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel": world.cast.channel,
            "user": world.cast.outsider.slack_id,
            "text": "latency probe",
            "ts": ts,
            "thread_ts": thread_ts,
            "channel_type": "channel",
        },
    }
    return json.dumps(event).encode()


async def run(rate: float, seconds: float, database: str | None) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    url = database or f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    await upgrade_async(url)
    world = await World.create(url, slack_options={"rate_limit": False})
    env = {**os.environ, **world.env(), "RALLYBRIDGE_LOG_LEVEL": "WARNING"}
    log = open(tmp / "serve.log", "w")  # noqa: SIM115, ASYNC230
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv/bin/rallybridge"), "serve", env=env, stdout=log, stderr=log
    )
    try:
        await wait_healthy(world.bridge_url)
        # Replies in a thread the bridge does not know: each is verified, stored, acknowledged, then ignored.
        thread_ts = "1795626633.000001"
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        interval = 1.0 / rate
        async with aiohttp.ClientSession() as http:

            async def one() -> None:
                body = event_body(world, thread_ts)
                headers = {"Content-Type": "application/json", **world.slack.sign(body)}
                start = time.perf_counter()
                async with http.post(f"{world.bridge_url}/slack/events", data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - start)

            tasks = []
            begin = time.perf_counter()
            n = 0
            while time.perf_counter() - begin < seconds:
                tasks.append(asyncio.create_task(one()))
                n += 1
                await asyncio.sleep(max(0.0, begin + n * interval - time.perf_counter()))
            await asyncio.gather(*tasks)
        latencies.sort()
        return {
            "requests": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "max_ms": latencies[-1] * 1000,
            "within_3s": sum(1 for x in latencies if x <= 3) / len(latencies),
            "non_2xx": sum(v for k, v in statuses.items() if k >= 300),
        }
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
        log.close()
        await world.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds, args.database))
    print(f"{'rate/s':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'<=3s':>6} {'non-2xx':>7}")
    print(
        f"{args.rate:>7.0f} {result['requests']:>8.0f} {result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} "
        f"{result['max_ms']:>8.1f} {result['within_3s']:>6.1%} {result['non_2xx']:>7.0f}"
    )


if __name__ == "__main__":
    main()
