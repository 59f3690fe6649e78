"""7. Permissions: a reply leaves for Respondent if and only if it is allowed. A hypothesis property over thousands
of combinations at the pipeline level (chat user, email match, team membership, role, external-panel access, Rally
user status, opt-out, linked or unlinked, internal-note marker), then a sample of combinations end to end."""

from __future__ import annotations

import asyncio

from playground.world import Person
from reliability.harness import Stage, Suite, wait_until
from reliability.permissions import run_property
from reliability.report import Row
from storage.migrate import upgrade_async


async def run(suite: Suite, row: Row) -> None:
    rng = suite.rng("permissions")
    examples = suite.size(1500, 5000)
    stats = await asyncio.to_thread(run_property, examples, suite.seed)
    row.check(
        f"property: {sum(stats.values())} generated combinations at the pipeline level "
        f"({stats['allowed']} allowed, {stats['refused']} refused), relay queued iff allowed",
        sum(stats.values()) > 0,
    )

    n_users = suite.size(16, 80)
    url = f"sqlite+aiosqlite:///{suite.workdir / 'permissions.sqlite3'}"
    await upgrade_async(url)
    async with Stage(suite, "permissions", url, participants=2) as stage:
        w, c = stage.world, stage.world.cast
        target, opted = stage.people
        allowed: list[str] = []
        envelopes = []
        refused: list[tuple[str, str]] = []  # (body, slack user) that must not leave
        for i in range(n_users):
            has_email, matches = rng.random() < 0.9, rng.random() < 0.85
            on_team, access = rng.random() < 0.85, rng.random() < 0.85
            status = rng.choice(["ACTIVE", "ACTIVE", "INVITED", "DEACTIVATED", None])
            note = rng.random() < 0.1
            team_email = f"r{i}.{stage.tag}@research.example.com"
            slack_email = (team_email.upper() if rng.random() < 0.3 else team_email) if matches else f"x{i}@example.org"
            person = Person(f"U0P{i:03d}", f"Researcher {i}", slack_email if has_email else "", f"usr_p{i}")
            w.slack.add_user(person.slack_id, person.name, slack_email if has_email else None)
            if on_team:
                w.rally.add_team_member(c.study_id, f"usr_p{i}", team_email, person.name, external_panel_access=access)
            if status is None:
                w.rally.users.pop(f"usr_p{i}", None)
            else:
                w.rally.users[f"usr_p{i}"] = {
                    "userId": f"usr_p{i}",
                    "fullname": person.name,
                    "email": team_email,
                    "status": status,
                }
            body = f"{'// ' if note else ''}E{i:03d} {stage.tag} hello from researcher {i}"
            ok = has_email and matches and on_team and access and status == "ACTIVE" and not note
            envelopes.append(stage.post(target, body, author=person))
            if ok:
                allowed.append(body)
            else:
                refused.append((body, person.slack_id))
        for envelope in envelopes:
            await stage.deliver_envelope(envelope)
        stage.expected_replies[target.participant_id] = list(allowed)

        # Opted out, then unlinked: the owner (allowed otherwise) is refused both times.
        await w.rally.opt_out(opted.email)
        await wait_until(
            lambda: any("opted out" in m.get("text", "") for m in w.slack.thread(c.channel, opted.root_ts)), 20
        )
        await stage.deliver_envelope(stage.post(opted, f"O {stage.tag} are you there?", author=c.owner))
        stage.expected_replies[opted.participant_id] = []
        await stage.settle(suite.size(60, 120))
        await w.slack.run_command(c.channel, c.owner.slack_id, f"unlink {c.study_id}")
        await wait_until(lambda: any(" unlinked " in m.get("text", "") for m in w.slack.messages(c.channel)), 20)
        await stage.deliver_envelope(stage.post(target, f"U {stage.tag} after unlink", author=c.owner))
        stage.expected_replies[target.participant_id] = list(allowed)
        await asyncio.sleep(2)
        rows = await stage.settle(suite.size(60, 120))
        row.counts = stage.tally()
        sent = stage.relayed(target) + stage.relayed(opted)
        leaked = [b for b in sent if b not in allowed]
        row.check(
            f"end to end: {n_users} sampled researchers + opted-out + unlinked: exactly the {len(allowed)} allowed "
            f"replies reached Respondent ({len(leaked)} leaked)",
            not leaked and stage.relayed(target) == allowed and not stage.relayed(opted),
        )
        if stage.relayed(target) != allowed:
            row.notes.append(f"relayed {stage.relayed(target)!r}; allowed {allowed!r}"[:600])
        told = {e["user"] for e in w.slack.ephemerals}
        not_told = [u for body, u in refused if not body.startswith("//") and u not in told]
        row.check(f"every refused researcher was told privately why ({len(not_told)} not told)", not not_told)
        row.load = f"{sum(stats.values())} property examples + {n_users + 2} end-to-end replies"
        row.faults = "random team/email/role/access/Rally status/opt-out/link/internal-note combinations"
        left = [r for r in rows if r["status"] in ("pending", "working")]
        row.check("no queue row left pending or working", not left)
