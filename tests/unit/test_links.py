"""core.links: the links of a message as it will be sent, their shape, and problems() with a fake checker."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.links import LinkChecker, LinkProblem, find_urls, problems, shape_problems


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Join here: https://example.com/session/42", ["https://example.com/session/42"]),
        ("Consent form (https://forms.example.com/f?id=7&x=y) before Monday", ["https://forms.example.com/f?id=7&x=y"]),
        ("See https://example.com/a.", ["https://example.com/a"]),
        (
            "Try https://example.com/a, or http://example.org/b; then https://x.io/c: ok? https://y.io/d!",
            [
                "https://example.com/a",
                "http://example.org/b",
                "https://x.io/c",
                "https://y.io/d",
            ],
        ),
        ("Read https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("the article (https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://example.com/x]", ["https://example.com/x"]),
        ('"https://example.com/q"', ["https://example.com/q"]),
        ("HTTPS://EXAMPLE.COM/Up", ["HTTPS://EXAMPLE.COM/Up"]),
        ("twice https://a.io and https://a.io", ["https://a.io", "https://a.io"]),
        ("https://de.wikipedia.org/wiki/Müller ok", ["https://de.wikipedia.org/wiki/Müller"]),
        ("no links here, not even ftp://files.example.com or www.example.com", []),
        ("xhttps://glued.example.com", []),
        ("https:// nothing after the scheme", []),
        ("", []),
    ],
)
def test_find_urls(text: str, urls: list[str]) -> None:
    assert find_urls(text) == urls


def test_find_urls_keeps_what_makes_a_link_look_cut_off() -> None:
    assert find_urls("see https://example.com/very/long... for more") == ["https://example.com/very/long..."]
    assert find_urls("see https://example.com/very/long…") == ["https://example.com/very/long…"]
    assert find_urls("<https://example.com/a|the form") == ["https://example.com/a|the"]
    assert find_urls("https://example.com/(open") == ["https://example.com/(open"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/a", None),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", None),
        ("https://example.com/?q=[1]{2}", None),
        ("http://[2001:db8::1]:8080/", None),
        ("https://example.com/very/long...", "looks cut off (ends in ...)"),
        ("https://example.com/very/long…", "looks cut off (ends in …)"),
        ("https://example.com/a|label", "has a | left from Slack formatting"),
        ("https://example.com/(open", "has unbalanced brackets"),
        ("https://example.com/a]b", "has unbalanced brackets"),
        ("https://example.com/(a]", "has unbalanced brackets"),
        ("https://example.com/{a", "has unbalanced brackets"),
    ],
)
def test_shape_problems(url: str, reason: str | None) -> None:
    assert shape_problems(url) == reason


class FakeChecker:
    """Answers from a table; remembers what it was asked."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[list[str]] = []

    async def check(self, urls: Sequence[str]) -> list[LinkProblem]:
        self.asked.append(list(urls))
        return [LinkProblem(url, self.answers[url]) for url in reversed(urls) if url in self.answers]


async def test_problems_reports_shape_without_asking_and_the_rest_from_the_checker_in_text_order() -> None:
    checker = FakeChecker({"https://gone.example.com/x": "answered 404 Not Found"})
    checker_as_port: LinkChecker = checker
    text = (
        "Hi! Form: https://gone.example.com/x, then https://ok.example.com/y and "
        "https://cut.example.com/abc... and again https://ok.example.com/y"
    )
    found = await problems(text, checker_as_port)
    assert found == [
        LinkProblem("https://gone.example.com/x", "answered 404 Not Found"),
        LinkProblem("https://cut.example.com/abc...", "looks cut off (ends in ...)"),
    ]
    assert checker.asked == [["https://gone.example.com/x", "https://ok.example.com/y"]]


async def test_problems_skips_trusted_links_with_or_without_a_trailing_slash() -> None:
    checker = FakeChecker({"https://cal.example.com/book": "answered 500 Internal Server Error"})
    text = "Book at https://cal.example.com/book/ or https://cal.example.com/book, and read https://docs.example.com/a"
    found = await problems(text, checker, trusted=["https://cal.example.com/book"])
    assert found == []
    assert checker.asked == [["https://docs.example.com/a"]]

    other = FakeChecker()
    await problems("https://cal.example.com/book", other, trusted={"https://cal.example.com/book/"})
    assert other.asked == []


async def test_a_trusted_link_is_not_even_shape_checked() -> None:
    checker = FakeChecker()
    assert await problems("https://cal.example.com/a|b", checker, trusted=["https://cal.example.com/a|b"]) == []


async def test_problems_with_the_check_off_reports_nothing() -> None:
    assert await problems("https://cut.example.com/abc... https://x.io/(", None) == []


async def test_problems_without_links_never_asks_the_checker() -> None:
    checker = FakeChecker()
    assert await problems("Thanks, see you Monday!", checker) == []
    assert await problems("https://only-cut.example.com/a...", checker) == [
        LinkProblem("https://only-cut.example.com/a...", "looks cut off (ends in ...)")
    ]
    assert checker.asked == []
