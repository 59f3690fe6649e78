"""adapters.slack.format: escaping outside text and Slack markup to plain text."""

from __future__ import annotations

import pytest

from adapters.slack.format import escape, to_plain_text, unescape

NAMES = {"U123": "Dana Researcher", "U9": "Sam"}


async def resolve(user_id: str) -> str:
    return NAMES[user_id]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> hi", "&lt;!channel&gt; hi"),
        ("<!here>", "&lt;!here&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil|bank>", "&lt;https://evil|bank&gt;"),
        ("Tom & Jerry &amp; co", "Tom &amp; Jerry &amp;amp; co"),
        ("plain *bold* :smile:", "plain *bold* :smile:"),
    ],
)
def test_escape_makes_control_sequences_inert(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escape(raw)) == raw
    assert "<" not in escape(raw) and ">" not in escape(raw)


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("see <https://x.test/a|the doc>", "see the doc (https://x.test/a)"),
        ("<https://x.test/a>", "https://x.test/a"),
        ("<https://x.test/?a=1&amp;b=2|q>", "q (https://x.test/?a=1&b=2)"),
        ("<http://example.com|example.com>", "http://example.com"),
        ("<mailto:a@b.test|a@b.test>", "a@b.test"),
        ("<mailto:a@b.test|write us>", "write us (a@b.test)"),
        ("hi <@U123>", "hi @Dana Researcher"),
        ("hi <@U9|sam.old>", "hi @Sam"),
        ("in <#C1|general>", "in #general"),
        ("<!here> and <!channel> and <!everyone>", "@here and @channel and @everyone"),
        ("<!here|here>", "@here"),
        ("ping <!subteam^S1|@research-team>", "ping @research-team"),
        ("at <!date^1795626633^{date_short_pretty}|Fri 27 Nov 2026>", "at Fri 27 Nov 2026"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
        ("&amp;lt; literal", "&lt; literal"),
        ("thanks :smile: *really*", "thanks :smile: *really*"),
    ],
)
async def test_to_plain_text(slack: str, plain: str) -> None:
    assert await to_plain_text(slack, resolve) == plain


async def test_unresolvable_user_falls_back_to_label_then_id() -> None:
    async def broken(user_id: str) -> str:
        raise RuntimeError("users.info down")

    assert await to_plain_text("<@U1|jo>", broken) == "@jo"
    assert await to_plain_text("<@U1>", broken) == "@U1"


async def test_resolved_names_are_not_unescaped() -> None:
    async def odd(user_id: str) -> str:
        return "A &amp; B"

    assert await to_plain_text("<@U1> &amp;", odd) == "@A &amp; B &"
