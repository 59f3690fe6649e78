"""8. Secrets and privacy: run traffic with logging at INFO and at DEBUG. No configured secret in any log (also the
logs of every scenario run before this one), no message body in INFO logs, and no participant email ever in Slack."""

from __future__ import annotations

import json

from reliability.harness import Stage, Suite, wait_until
from reliability.report import Row
from storage.migrate import upgrade_async
from tests.integration.processes import slack_post


def _slack_text(stage: Stage) -> str:
    """Everything the bridge ever showed in Slack: messages (text, blocks, metadata) and private notices."""
    w = stage.world
    shown = [json.dumps(m) for ch in w.slack.channels for m in w.slack.messages(ch) if m.get("bot_id")]
    shown += [json.dumps(e) for e in w.slack.ephemerals]
    return "\n".join(shown)


async def _traffic(suite: Suite, level: str) -> tuple[Stage, list[str]]:
    url = f"sqlite+aiosqlite:///{suite.workdir / f'privacy-{level}.sqlite3'}"
    await upgrade_async(url)
    stage = Stage(suite, f"privacy-{level.lower()}", url, participants=3, env={"RALLYBRIDGE_LOG_LEVEL": level})
    await stage.start()
    w, c = stage.world, stage.world.cast
    bodies: list[str] = []
    for i, who in enumerate(stage.people):
        for k in range(3):
            body = f"secretbody{level}{i}{k}x{stage.tag} my card ends in 4242"
            bodies.append(body)
            await stage.write(who, body)
            reply = f"replybody{level}{i}{k}x{stage.tag} please don't share card numbers"
            bodies.append(reply)
            await stage.reply(who, reply)
    await stage.settle(suite.size(60, 120))
    # Refused and failing paths log too: an outsider's reply, a permanent failure, an opt-out by email.
    outsider = slack_post(
        w.slack, c.channel, c.outsider.slack_id, f"outsiderbody{stage.tag}", thread_ts=stage.people[0].root_ts
    )
    bodies.append(f"outsiderbody{stage.tag}")
    await stage.deliver_envelope(outsider.envelope)
    w.respondent.fail_next(1, 400, path_contains="/messages")
    refused = slack_post(
        w.slack, c.channel, c.owner.slack_id, f"refusedbody{stage.tag}", thread_ts=stage.people[1].root_ts
    )
    bodies.append(f"refusedbody{stage.tag}")
    await stage.deliver_envelope(refused.envelope)
    await wait_until(lambda: any("Not delivered" in m.get("text", "") for m in w.slack.messages(c.channel)), 20)
    await w.rally.opt_out(stage.people[2].email)
    await stage.settle(suite.size(60, 120))
    await wait_until(lambda: any(e["user"] == c.outsider.slack_id for e in w.slack.ephemerals), 10)
    return stage, bodies


async def run(suite: Suite, row: Row) -> None:
    earlier_logs = list(suite.log_files)
    found: dict[str, list[str]] = {}
    for level in ("INFO", "DEBUG"):
        stage, bodies = await _traffic(suite, level)
        try:
            secrets = [s for s in stage.secrets() if s]
            emails = [p.email for p in stage.people] + [
                stage.world.cast.jordan.email,
                stage.world.cast.priya.email,
                stage.world.cast.sam.email,
            ]
            shown = _slack_text(stage)
            found[f"participant emails in Slack ({level} run)"] = [
                e for e in emails if e.casefold() in shown.casefold()
            ]
            row.counts.add(stage.tally())
        finally:
            await stage.stop()
        log = "\n".join(p.log_path.read_text(errors="replace") for p in stage.processes)
        found[f"secrets in the {level} log"] = [s[:4] + "…" for s in secrets if s in log]
        if level == "INFO":
            found["message bodies in the INFO log"] = [b[:24] for b in bodies if b in log]
            found["participant emails in the INFO log"] = [e for e in emails if e in log]
        else:
            found["(DEBUG log has content)"] = [] if len(log) > 1000 else ["DEBUG log suspiciously short"]
    earlier = "\n".join(p.read_text(errors="replace") for p in earlier_logs if p.exists())
    found[f"secrets in the INFO logs of the {len(earlier_logs)} earlier scenario processes"] = [
        s[:4] + "…" for s in suite.secrets if s and s in earlier
    ]
    for what, hits in found.items():
        row.check(f"none: {what}" if not what.startswith("(") else what.strip("()"), not hits)
        if hits:
            row.notes.append(f"{what}: {hits[:5]}")
    row.load = "2 runs × (9 replies + 9 participant messages + refusals, a 400, an opt-out); logs of all scenarios"
    row.faults = "log level INFO and DEBUG; outsider reply, permanent failure, opt-out by email"
