"""3. Duplicates: every Slack event four times (original + X-Slack-Retry-Num 1-3), every Respondent webhook twice,
every Rally webhook twice with the same svix-id, spread over two replicas at once, on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp

from reliability import pg
from reliability.harness import Stage, Suite, Who, unfinished, wait_until
from reliability.report import Row
from storage.migrate import upgrade_async
from tests.integration.flows import roots


async def _post(url: str, raw: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as response:
        return response.status


async def rally_twice(stage: Stage, event: Mapping[str, object]) -> list[int]:
    """One Rally webhook, delivered to every replica at once with the same svix-id."""
    raw = json.dumps(event, separators=(",", ":")).encode()
    msg_id = "msg_" + secrets.token_hex(12)
    urls = stage.urls("/webhooks/rally")
    return list(
        await asyncio.gather(*(_post(u, raw, stage.world.rally.signed_headers(msg_id, raw)) for u in (urls * 2)[:2]))
    )


async def run(suite: Suite, row: Row) -> None:
    problem = await pg.shared_problem()
    if problem:
        row.not_run = problem
        return
    rng = suite.rng("duplicates")
    n_people, n_messages, n_late = suite.size(5, 20), suite.size(40, 300), suite.size(2, 8)
    url, name = await pg.fresh_database()
    try:
        await upgrade_async(url)
        async with Stage(suite, "duplicates", url, participants=n_people, replicas=2) as stage:
            w, c = stage.world, stage.world.cast
            slack_urls = stage.urls("/slack/events")
            respondent_urls = stage.urls("/webhooks/respondent")
            statuses: list[int] = []
            late: list[Who] = []
            for i in range(n_late):
                who = Who(
                    f"pa_late{i}",
                    f"Lee{i:02d}",
                    "Morgan",
                    f"lee{i}.{stage.tag}@participants.example.net",
                    f"{0x6960391FBD5465B2DE000000 + i:024x}",
                )
                w.rally.add_participant(
                    c.study_id,
                    who.participant_id,
                    who.first_name,
                    who.last_name,
                    email=who.email,
                    respondent_user_id=who.respondent_user_id,
                    approval_status="PENDING",
                )
                late.append(who)

            async def approve(who: Who) -> None:
                w.rally.participants[c.study_id][who.participant_id].update(
                    approvalStatus="APPROVED", status="SCREENER_QUALIFIED"
                )
                event = {
                    "_eventType": "participant.status_changed",
                    "participantId": who.participant_id,
                    "personId": f"pe_{who.participant_id}",
                    "studyId": c.study_id,
                    "status": "SCREENER_QUALIFIED",
                    "priorStatus": "SCREENER_COMPLETED",
                    "updatedAt": datetime.now(UTC).isoformat(),
                }
                statuses.extend(await rally_twice(stage, event))
                if await wait_until(lambda: bool(roots(w, who)), within=30):  # type: ignore[arg-type]
                    who.root_ts = str(roots(w, who)[0]["ts"])  # type: ignore[arg-type]
                    stage.people.append(who)
                    stage.expected_replies[who.participant_id] = []
                    stage.expected_writes[who.participant_id] = []

            lanes = 4
            # Each sender lane writes to its own participants, so no two lanes race within one thread.
            mine: dict[int, list[Who]] = {i: stage.people[i::lanes] for i in range(lanes)}

            async def lane(index: int, count: int) -> None:
                for k in range(count):
                    if k == count // 2:
                        for who in late[index::lanes]:
                            await approve(who)
                            if who in stage.people:
                                mine[index].append(who)
                    who = rng.choice(mine[index])
                    if rng.random() < 0.5:
                        body = f"R{index}-{k:03d} {stage.tag} would Tuesday work?"
                        envelope = stage.post(who, body)
                        ok = await stage.deliver_envelope(envelope, copies=4, urls=slack_urls)
                    else:
                        ok = await stage.write(who, f"P{index}-{k:03d} {stage.tag} Tuesday works", urls=respondent_urls)
                    statuses.append(200 if ok else 0)

            await asyncio.gather(*(lane(i, n_messages // lanes) for i in range(lanes)))
            # Everything written so far is delivered first: a reply still queued when its participant opts out is
            # rightly refused ("has opted out"), which this scenario is not about.
            await stage.settle(suite.size(90, 240))
            # An opt-out, twice with one svix-id: one notice in the thread, not two.
            opted = stage.people[0]
            w.rally.participants[c.study_id][opted.participant_id]["status"] = "OPTED_OUT"
            optout_statuses = await rally_twice(
                stage, {"_eventType": "person.opted_out", "email": opted.email, "optedOut": True, "updatedAt": "x"}
            )
            rows = await stage.settle(suite.size(90, 240))
            row.counts = stage.tally()
            replies, writes = stage.total()
            row.load = (
                f"{replies} replies + {writes} participant messages, {len(stage.people)} participants "
                f"({n_late} approved mid-run), 2 replicas, PostgreSQL"
            )
            row.faults = (
                "Slack events ×4 (X-Slack-Retry-Num 1-3), Respondent webhooks ×2, Rally webhooks ×2 "
                "(same svix-id), across both replicas concurrently"
            )
            row.check("every delivery was acknowledged 2xx", all(200 <= s < 300 for s in statuses + optout_statuses))
            root_counts = [len(roots(w, who)) for who in stage.people]  # type: ignore[arg-type]
            row.check(
                f"one thread per participant, including the {n_late} approved by duplicated webhooks",
                all(n == 1 for n in root_counts) and len(stage.people) == n_people + n_late,
            )
            notices = [m for m in w.slack.thread(c.channel, opted.root_ts) if "opted out" in m.get("text", "")]
            row.check(f"duplicated opt-out webhook gave one notice in the thread ({len(notices)})", len(notices) == 1)
            inbox_keys = [r["key"] for r in rows if r["table"] == "inbox"]
            row.check("one inbox row per event identity", len(inbox_keys) == len(set(inbox_keys)))
            left = unfinished(rows)
            row.check(f"no inbox/outbox row left pending, working or failed ({len(left)} left)", not left)
            if left:
                row.notes.append("left: " + "; ".join(left[:5]))
    finally:
        await pg.drop_database(name)
