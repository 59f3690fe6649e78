"""6. Hostile and broken input: hundreds of generated requests that must be refused (status, a clear reason, no
inbox row, nothing sent); signed requests about unknown studies, participants, threads and users (acknowledged,
nothing sent); and awkward but legitimate content (40,000+ characters, control characters, zero-width and right-to-left
text, emoji, mrkdwn injection) that must arrive intact: escaped in Slack, split there and never truncated."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.respondent.webhooks import sign as respondent_sign
from adapters.slack.format import unescape
from reliability import pg
from reliability.harness import Stage, Suite, Who, wait_until
from reliability.report import Row
from storage.migrate import upgrade_async

MAX_BODY = 1_000_000
SLACK_LIMIT = 40_000


@dataclass
class Case:
    route: str
    name: str
    body: bytes
    headers: dict[str, str]
    status: int
    reason: str  # a word the refusal must contain
    chunked: bool = False


def _garbage(rng: random.Random, valid: bytes) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if kind == 1:
        return valid[: rng.randint(1, len(valid) - 1)]
    if kind == 2:
        return rng.choice([b"", b"null", b"[]", b"[1,2]", b'"text"', b"42", b"true", b"{", b"}{"])
    return b"\xff\xfe" + valid  # not UTF-8


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _slack_event(stage: Stage) -> bytes:
    c = stage.world.cast
    event = {"type": "message", "channel": c.channel, "user": c.owner.slack_id, "text": "hi", "ts": "1.000001"}
    return json.dumps(
        {"type": "event_callback", "team_id": stage.world.slack.team_id, "event_id": "Ev1", "event": event}
    ).encode()


def _slack_command(stage: Stage) -> bytes:
    c = stage.world.cast
    return f"command=%2Frally&text=help&channel_id={c.channel}&user_id={c.owner.slack_id}&trigger_id=1.2.3".encode()


def _respondent_body(uuid: str = "u-1", **resource: Any) -> bytes:
    data = {
        "event": "MESSAGES.CREATED",
        "uuid": uuid,
        "payload": {"resource": {"id": "m1", "type": "messages", **resource}},
    }
    return json.dumps(data).encode()


def _rally_body() -> bytes:
    return json.dumps({"_eventType": "person.opted_out", "email": "nobody@example.com", "optedOut": True}).encode()


def refusal_cases(stage: Stage, rng: random.Random, scale: int) -> list[Case]:
    slack, rally, respondent = stage.world.slack, stage.world.rally, stage.world.respondent
    cases: list[Case] = []
    now = int(time.time())

    def ssign(raw: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's v0 signature over the raw bytes (the sandbox's signer only takes UTF-8)."""
        ts = str(now if timestamp is None else timestamp)
        mac = hmac.new(slack.signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + mac.hexdigest()}

    def other_secret(body: bytes) -> dict[str, str]:
        ts = str(now)
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier("nope").generate_signature(timestamp=ts, body=body) or "",
        }

    slack_sigs: dict[str, Callable[[bytes], dict[str, str]]] = {
        "missing signature": lambda b: {},
        "missing timestamp": lambda b: {"X-Slack-Signature": ssign(b)["X-Slack-Signature"]},
        "wrong signature": lambda b: {**ssign(b), "X-Slack-Signature": "v0=" + "0" * 64},
        "expired timestamp": lambda b: ssign(b, timestamp=now - 301),
        "replayed timestamp (10 min old, valid MAC)": lambda b: ssign(b, timestamp=now - 600),
        "timestamp from the future": lambda b: ssign(b, timestamp=now + 600),
        "another app's secret": other_secret,
        "v1 scheme": lambda b: {
            **ssign(b),
            "X-Slack-Signature": ssign(b)["X-Slack-Signature"].replace("v0=", "v1="),
        },
        "signature of another body": lambda b: ssign(b + b" "),
    }
    for kind, body, ctype in (
        ("event", _slack_event(stage), "application/json"),
        ("command", _slack_command(stage), "application/x-www-form-urlencoded"),
    ):
        for name, sig in slack_sigs.items():
            cases.append(
                Case(
                    "/slack/events",
                    f"slack {kind}: {name}",
                    body,
                    {"Content-Type": ctype, **sig(body)},
                    401,
                    "signature",
                )
            )
    event = _slack_event(stage)
    for i in range(4 * scale):
        body = _garbage(rng, event)
        cases.append(
            Case(
                "/slack/events",
                f"slack garbage JSON #{i}",
                body,
                {"Content-Type": "application/json", **ssign(body)},
                400 if _utf8(body) else 401,  # Slack signs UTF-8 text; anything else cannot be signed
                "" if _utf8(body) else "signature",
            )
        )
    for body, reason in (
        (b'{"event": {}}', "type"),
        (b'{"type": "event_callback"}', "event"),
        (b'{"type": "event_callback", "event": "x"}', "event"),
        (b'{"type": "event_callback", "event": []}', "event"),
        (b"[]", "type"),
    ):
        cases.append(
            Case(
                "/slack/events",
                f"slack JSON shape {body[:30]!r}",
                body,
                {"Content-Type": "application/json", **ssign(body)},
                400,
                reason,
            )
        )
    for body, reason in (
        (b"foo=bar", "neither"),
        (b"payload=%7Bnope", "JSON"),
        (b"a=%ZZ&&", ""),
        (b"text=link+st_1", "neither"),
    ):
        headers = {"Content-Type": "application/x-www-form-urlencoded", **ssign(body)}
        cases.append(Case("/slack/events", f"slack form {body[:20]!r}", body, headers, 400, reason))
    for ctype in (
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/html",
        "",
    ):
        body = event
        headers = {**ssign(body)}
        if ctype:
            headers["Content-Type"] = ctype
        cases.append(Case("/slack/events", f"slack content type {ctype or 'none'}", body, headers, 400, "content type"))

    good = _respondent_body()
    for name, header in (
        ("missing", None),
        ("empty", ""),
        ("not base64", "sha256=@@@"),
        ("short", "sha256=AAAA"),
        ("sha1 scheme", respondent_sign(respondent.webhook_key, good).replace("sha256=", "sha1=")),
        ("other key", respondent_sign("wrong-key", good)),
        ("other body", respondent_sign(respondent.webhook_key, good + b" ")),
        ("no scheme", respondent_sign(respondent.webhook_key, good).removeprefix("sha256=")),
    ):
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Respondent-Webhook-Signature"] = header
        cases.append(Case("/webhooks/respondent", f"respondent signature {name}", good, headers, 401, "Signature"))
    for i in range(3 * scale):
        body = _garbage(rng, good)
        headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": respondent.sign(body)}
        cases.append(Case("/webhooks/respondent", f"respondent garbage #{i}", body, headers, 400, ""))
    for data, reason in (
        ({"uuid": "u", "payload": {"resource": {"id": "m"}}}, "event"),
        ({"event": "MESSAGES.CREATED", "payload": {"resource": {"id": "m"}}}, "uuid"),
        ({"event": "MESSAGES.CREATED", "uuid": "u"}, "payload"),
        ({"event": "MESSAGES.CREATED", "uuid": "u", "payload": {}}, "resource"),
        ({"event": "MESSAGES.CREATED", "uuid": "u", "payload": {"resource": {}}}, "id"),
        ({"event": "MESSAGES.CREATED", "uuid": 7, "payload": {"resource": {"id": "m"}}}, "uuid"),
        ({"event": "MESSAGES.CREATED", "uuid": "u", "payload": {"resource": {"id": ["m"]}}}, "id"),
        ({"event": "MESSAGES.CREATED", "uuid": "u", "payload": []}, "payload"),
        ({"event": "MESSAGES.CREATED", "uuid": " ", "payload": {"resource": {"id": "m"}}}, "uuid"),
        (
            {"event": "MESSAGES.CREATED", "uuid": "u", "payload": {"resource": {"id": "m", "conversationUid": 5}}},
            "conversationUid",
        ),
    ):
        body = json.dumps(data).encode()
        headers = {"Content-Type": "application/json", "Respondent-Webhook-Signature": respondent.sign(body)}
        cases.append(Case("/webhooks/respondent", f"respondent fields {reason}", body, headers, 400, reason))

    rbody = _rally_body()
    fresh = rally.signed_headers("msg_h1", rbody)
    for name, headers in (
        ("no headers", {"Content-Type": "application/json"}),
        ("no svix-id", {k: v for k, v in fresh.items() if k != "svix-id"}),
        ("no svix-timestamp", {k: v for k, v in fresh.items() if k != "svix-timestamp"}),
        ("no svix-signature", {k: v for k, v in fresh.items() if k != "svix-signature"}),
        (
            "outside tolerance (10 min old)",
            rally.signed_headers("msg_h2", rbody, when=datetime.now(UTC) - timedelta(minutes=10)),
        ),
        (
            "outside tolerance (10 min ahead)",
            rally.signed_headers("msg_h3", rbody, when=datetime.now(UTC) + timedelta(minutes=10)),
        ),
        ("tampered signature", {**fresh, "svix-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        ("signature for another svix-id", {**fresh, "svix-id": "msg_other"}),
        ("v2 signature", {**fresh, "svix-signature": fresh["svix-signature"].replace("v1,", "v2,")}),
        ("timestamp not a number", {**fresh, "svix-timestamp": "soon"}),
    ):
        cases.append(
            Case(
                "/webhooks/rally", f"rally {name}", rbody, headers, 401, "signature" if "tolerance" not in name else ""
            )
        )
    cases.append(Case("/webhooks/rally", "rally body changed after signing", rbody + b" ", fresh, 401, ""))
    for i in range(3 * scale):
        body = _garbage(rng, rbody)
        while not _utf8(body):  # Svix signs text
            body = _garbage(rng, rbody)
        cases.append(
            Case("/webhooks/rally", f"rally garbage #{i}", body, rally.signed_headers(f"msg_g{i}", body), 400, "")
        )
    for data, reason in (
        ({"email": "x@example.com", "optedOut": True}, "_eventType"),
        ({"_eventType": "person.opted_out", "optedOut": True}, "email"),
        ({"_eventType": "person.opted_out", "email": "x@example.com", "optedOut": "yes"}, "optedOut"),
        ({"_eventType": "participant.status_changed", "participantId": "p"}, "studyId"),
        (
            {"_eventType": "participant.status_changed", "studyId": "st", "participantId": 3, "status": "X"},
            "participantId",
        ),
    ):
        body = json.dumps(data).encode()
        cases.append(
            Case(
                "/webhooks/rally",
                f"rally fields {reason}",
                body,
                rally.signed_headers(f"msg_f{reason}", body),
                400,
                reason,
            )
        )

    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    for route in ("/slack/events", "/webhooks/respondent", "/webhooks/rally"):
        for chunked in (False, True):
            headers = {"Content-Type": "application/json", **ssign(big)}
            cases.append(
                Case(
                    route,
                    f"{route} body over {MAX_BODY} bytes{' (chunked)' if chunked else ''}",
                    big,
                    headers,
                    413,
                    "limit",
                    chunked,
                )
            )
    return cases


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 65536):
        yield body[i : i + 65536]


async def send(http: aiohttp.ClientSession, base: str, case: Case) -> tuple[int, str]:
    data: Any = _chunks(case.body) if case.chunked else case.body
    headers = dict(case.headers)
    async with http.post(base + case.route, data=data, headers=headers, skip_auto_headers=["Content-Type"]) as r:
        raw = await r.read()
    try:
        parsed = json.loads(raw)
        reason = str(parsed.get("error", "")) if isinstance(parsed, dict) else ""
    except ValueError:
        reason = ""
    return r.status, reason


async def inbox_count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one())
    finally:
        await engine.dispose()


def outward(stage: Stage) -> tuple[int, int, int]:
    """What left the bridge: public Slack posts, Respondent sends, Rally archive rows."""
    w = stage.world
    posts = sum(1 for m in w.slack.messages(w.cast.channel) if m.get("bot_id"))
    sends = sum(len(stage.relayed(p)) for p in stage.people)
    return posts, sends, len(w.rally.archived(w.cast.study_id))


CONTENT = {
    "exactly 40,000 characters": "a" * 40_000,
    "40,001 characters": "b" * 40_001,
    "100,000 characters of sentences": ("The coupon field was confusing. " * 3200)[:100_000],
    "30,000 characters that escaping grows past 40,000": "<&>" * 10_000,
    "control characters": "bell\x07 escape\x1b[31m red\x1b[0m tab\tvertical\x0bform\x0cfeed",
    "NUL character": "before\x00after",
    "zero-width characters": "zero\u200bwidth\u200c join\u200d bom\ufeff end",
    "right-to-left text": "\u202eevil.exe\u202c مرحبا بك שלום",
    "emoji": "👩🏽‍💻 🇩🇪 ❤️‍🔥 🧑‍🤝‍🧑",
    "mrkdwn injection": "<!channel> <!here> <@U0ANA> <https://evil.example|bank> <#C0STUDY> &amp; *bold*",
}
REPLIES = {
    "control characters": ("tab\there \x07bell", "tab\there \x07bell"),
    "zero-width": ("zero\u200bwidth", "zero\u200bwidth"),
    "right-to-left": ("\u202eabc مرحبا", "\u202eabc مرحبا"),
    "emoji": ("👍🏽 thanks! 🇯🇵", "👍🏽 thanks! 🇯🇵"),
    "escaped characters": ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
    "link with label": ("see <https://example.com/a|the form>", "see the form (https://example.com/a)"),
    "broadcast and mention": ("<!channel> ask <@U0CHLOE>", "@channel ask @Chloe Park"),
}


def mirrored_text(stage: Stage, who: Who) -> tuple[str, int]:
    """The participant's mirrored message(s) rejoined from their parts, and the longest part."""
    pieces, longest = [], 0
    for m in stage.world.slack.thread(stage.world.cast.channel, who.root_ts):
        text_ = m.get("text", "")
        if m.get("bot_id") and "(participant" in text_.split("\n", 1)[0]:
            longest = max(longest, len(text_))
            pieces.append(text_.split("\n", 1)[1] if "\n" in text_ else "")
    return unescape("".join(pieces)), longest


async def run(suite: Suite, row: Row) -> None:
    problem = await pg.shared_problem()
    if problem:
        row.not_run = problem
        return
    rng = suite.rng("hostile")
    url, name = await pg.fresh_database()
    try:
        await upgrade_async(url)
        async with Stage(suite, "hostile", url, participants=len(CONTENT) + 1) as stage:
            w, c = stage.world, stage.world.cast
            base = stage.processes[0].url
            cases = refusal_cases(stage, rng, suite.size(10, 40))
            await wait_until(lambda: False, within=1.0)  # the link's notices settle
            before_out = outward(stage)
            before_inbox = await inbox_count(url)
            wrong: list[str] = []
            async with aiohttp.ClientSession() as http:
                for case in cases:
                    status, reason = await send(http, base, case)
                    count = await inbox_count(url)
                    ok = status == case.status and bool(reason) and case.reason.lower() in reason.lower()
                    if not ok or count != before_inbox:
                        wrong.append(f"{case.name}: {status} {reason[:80]!r} (inbox {count - before_inbox:+d})")
                        before_inbox = count
            await wait_until(lambda: False, within=1.0)
            after_out = outward(stage)
            row.check(
                f"{len(cases)} refused requests: each the expected 4xx with a clear reason and no inbox row "
                f"({len(cases) - len(wrong)}/{len(cases)})",
                not wrong,
            )
            row.notes += [f"wrong: {x}" for x in wrong[:8]]
            row.check("nothing was posted, sent or archived for any refused request", before_out == after_out)

            # Signed and well-formed, but about things the bridge does not know: acknowledged (stored; a chat message
            # concerning no participant thread is answered without a row, bridge/edge.py), nothing sent.
            unknown = await unknown_references(stage, http_base=base)
            await wait_until(lambda: False, within=2.0)
            row.check(
                f"{len(unknown)} requests about unknown studies/participants/threads/users/conversations: "
                "2xx, nothing posted, sent or archived",
                all(200 <= s < 300 for s in unknown.values()) and outward(stage)[:3] == after_out,
            )

            # Awkward but legitimate content, both ways.
            people = stage.people[1:]
            for body, who in zip(CONTENT.values(), people, strict=False):
                await stage.write(who, body)
            reply_to = stage.people[0]
            for slack_text, _expected in REPLIES.values():
                await stage.reply(reply_to, slack_text)
            stage.expected_replies[reply_to.participant_id] = [e for _s, e in REPLIES.values()]

            def content_arrived() -> bool:
                return all(
                    mirrored_text(stage, who)[0] == body
                    for (_label, body), who in zip(CONTENT.items(), people, strict=False)
                ) and len(stage.relayed(reply_to)) >= len(REPLIES)

            await wait_until(content_arrived, within=suite.size(60, 120))
            bad_content = []
            for (label, body), who in zip(CONTENT.items(), people, strict=False):
                shown, longest = mirrored_text(stage, who)
                archived = stage.archived(who)
                if shown != body or longest > SLACK_LIMIT or archived != [body]:
                    bad_content.append(
                        f"{label}: shown {len(shown)}/{len(body)} chars, longest part {longest}, "
                        f"archived {len(archived)}"
                    )
            row.check(
                f"{len(CONTENT)} participant messages (40,000+ chars, control, zero-width, RTL, emoji, mrkdwn) shown "
                "exactly in Slack, split into parts of at most 40,000 characters, never truncated, archived once",
                not bad_content,
            )
            row.notes += bad_content
            raw_markup = [
                m.get("text", "")[:60]
                for m in w.slack.messages(c.channel)
                if m.get("bot_id")
                and any(s in m.get("text", "") for s in ("<!channel>", "<!here>", "<@U0ANA>", "<https://evil"))
            ]
            row.check("no participant text became a mention, broadcast or disguised link in Slack", not raw_markup)
            got = stage.relayed(reply_to)
            row.check(
                f"{len(REPLIES)} researcher replies with awkward content reached Respondent as plain text, exactly",
                got == [e for _s, e in REPLIES.values()],
            )
            if got != [e for _s, e in REPLIES.values()]:
                row.notes.append(f"relayed: {got!r}"[:300])
            total = len(cases) + len(unknown) + len(CONTENT) + len(REPLIES)
            row.load = f"{total} generated cases on 3 routes, PostgreSQL"
            row.faults = (
                "bad/expired/replayed signatures, malformed bodies, wrong types, oversize, unknown ids, hostile text"
            )
            # Archive calls follow the relays: let the queues drain before judging what is left.
            rows = [r for r in await _rows(url) if r["status"] in ("pending", "working")]
            deadline = time.monotonic() + suite.size(30, 60)
            while rows and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                rows = [r for r in await _rows(url) if r["status"] in ("pending", "working")]
            row.check("no queue row left pending or working", not rows)
            row.counts = stage.tally([reply_to])
    finally:
        await pg.drop_database(name)


async def _rows(url: str) -> list[dict[str, Any]]:
    from tests.integration.processes import queue_rows

    return await queue_rows(url)


async def unknown_references(stage: Stage, *, http_base: str) -> dict[str, int]:
    w, c = stage.world, stage.world.cast
    out: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:

        async def post(name: str, route: str, body: bytes, headers: dict[str, str]) -> None:
            async with http.post(http_base + route, data=body, headers=headers) as r:
                out[name] = r.status

        for name, study, participant in (
            ("rally: unknown study", "st_unknown", "pa_x"),
            ("rally: unknown participant", c.study_id, "pa_unknown"),
        ):
            body = json.dumps(
                {
                    "_eventType": "participant.status_changed",
                    "studyId": study,
                    "participantId": participant,
                    "status": "X",
                }
            ).encode()
            await post(name, "/webhooks/rally", body, w.rally.signed_headers(f"msg_{participant}", body))
        body = json.dumps(
            {"_eventType": "person.opted_out", "email": "stranger@example.org", "optedOut": True}
        ).encode()
        await post(
            "rally: opt-out of an unknown person", "/webhooks/rally", body, w.rally.signed_headers("msg_stranger", body)
        )
        for name, resource in (
            ("respondent: unknown conversation", {"conversationUid": "0" * 24, "projectId": c.project_id}),
            ("respondent: unknown project", {"conversationUid": None, "projectId": "f" * 24}),
        ):
            body = _respondent_body(uuid=f"u-{name}", **resource)
            await post(
                name,
                "/webhooks/respondent",
                body,
                {"Content-Type": "application/json", "Respondent-Webhook-Signature": w.respondent.sign(body)},
            )
        root = stage.people[0].root_ts
        for name, channel, user, thread_ts in (
            ("slack: reply in an unknown thread", c.channel, c.owner.slack_id, "1700000000.000001"),
            ("slack: reply by an unknown user", c.channel, "U0NOBODY", root),
            ("slack: message in an unknown channel", "C0UNKNOWN", c.owner.slack_id, "1700000000.000002"),
            ("slack: top-level message", c.channel, c.owner.slack_id, None),
        ):
            event: dict[str, Any] = {
                "type": "message",
                "channel": channel,
                "user": user,
                "text": "hello?",
                "ts": w.slack.new_ts(),
            }
            if thread_ts:
                event["thread_ts"] = thread_ts
            raw = json.dumps(w.slack._envelope(event)).encode()
            await post(name, "/slack/events", raw, {"Content-Type": "application/json", **w.slack.sign(raw)})
    result = await w.slack.run_command(c.channel, c.owner.slack_id, "link st_does_not_exist")
    out["slack: link an unknown study"] = result.status
    return out
