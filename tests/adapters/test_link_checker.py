"""HttpLinkChecker against real aiohttp servers on 127.0.0.1, reachable only because each test names them in the
allowlist; the private-address guard is checked by the requests that never arrive."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from adapters.linkcheck import GuardedResolver, HttpLinkChecker, PrivateAddressError, allowlist, is_public
from core.links import LinkProblem


class Site:
    """A local web server answering by path, recording every request (method, path, body headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str | None, bytes]] = []
        self.redirect_to = "/ok"
        self.release = asyncio.Event()
        self.in_flight = self.most_in_flight = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def allow(self) -> list[str]:
        return [f"127.0.0.1:{self.port}"]

    def count(self, path: str) -> int:
        return sum(1 for _, seen in self.requests if seen == path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        self.bodies.append((request.headers.get("Content-Length"), await request.read()))
        if path == "/ok":
            return web.Response(text="hello " * 1000)
        if path == "/missing":
            return web.Response(status=404)
        if path == "/broken":
            return web.Response(status=500)
        if path == "/slow":
            await asyncio.wait_for(self.release.wait(), 10)
            return web.Response()
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/moved":
            raise web.HTTPMovedPermanently("/ok")
        if path == "/away":
            raise web.HTTPFound(self.redirect_to)
        if path == "/head-405":
            return web.Response(status=405) if request.method == "HEAD" else web.Response(text="fine")
        if path == "/busy":
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(0.1)
            self.in_flight -= 1
            return web.Response()
        return web.Response(status=404)

    async def start(self) -> Site:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.release.set()
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = await Site().start()
    yield s
    await s.stop()


@pytest.fixture
async def other_site() -> AsyncIterator[Site]:
    s = await Site().start()
    yield s
    await s.stop()


@pytest.fixture
async def make_checker() -> AsyncIterator[Callable[..., HttpLinkChecker]]:
    made: list[HttpLinkChecker] = []

    def make(**kwargs: Any) -> HttpLinkChecker:
        checker = HttpLinkChecker(**kwargs)
        made.append(checker)
        return checker

    yield make
    for checker in made:
        await checker.close()


async def one(checker: HttpLinkChecker, url: str) -> LinkProblem | None:
    found = await checker.check([url])
    return found[0] if found else None


# ---- answers -----------------------------------------------------------------------------------------------


async def test_a_link_that_answers_200_is_fine(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker(allow=site.allow)
    assert await checker.check([f"{site.base}/ok"]) == []
    assert site.requests == [("HEAD", "/ok")]


@pytest.mark.parametrize(
    ("path", "reason"), [("/missing", "answered 404 Not Found"), ("/broken", "answered 500 Internal Server Error")]
)
async def test_a_link_that_answers_4xx_or_5xx_is_a_problem_with_its_status(
    site: Site, make_checker: Callable[..., HttpLinkChecker], path: str, reason: str
) -> None:
    checker = make_checker(allow=site.allow)
    url = f"{site.base}{path}"
    assert await checker.check([url]) == [LinkProblem(url, reason)]
    # HEAD's failure is only a hint: GET decides.
    assert site.requests == [("HEAD", path), ("GET", path)]


async def test_head_answered_405_is_asked_again_with_get(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow)
    assert await checker.check([f"{site.base}/head-405"]) == []
    assert site.requests == [("HEAD", "/head-405"), ("GET", "/head-405")]


async def test_a_slow_link_took_longer_than_the_timeout(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow, timeout=0.5)
    started = time.monotonic()
    problem = await one(checker, f"{site.base}/slow")
    assert problem is not None and problem.reason == "took longer than 0.5 s"
    assert time.monotonic() - started < 2


async def test_a_301_to_a_200_is_fine(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker(allow=site.allow)
    assert await checker.check([f"{site.base}/moved"]) == []
    assert site.requests == [("HEAD", "/moved"), ("HEAD", "/ok")]


async def test_a_redirect_loop_stops_after_5_redirects(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow)
    url = f"{site.base}/loop"
    assert await checker.check([url]) == [LinkProblem(url, "redirects more than 5 times")]
    assert site.count("/loop") == 6  # the link and 5 redirects


async def test_no_request_ever_carries_a_body(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker(allow=site.allow)
    paths = ["/ok", "/missing", "/head-405", "/moved", "/loop"]
    await checker.check([f"{site.base}{path}" for path in paths])
    assert {method for method, _ in site.requests} == {"HEAD", "GET"}
    assert site.bodies and all(length in (None, "0") and body == b"" for length, body in site.bodies)


# ---- private addresses -------------------------------------------------------------------------------------


async def test_without_the_allowlist_a_loopback_link_is_refused_and_never_requested(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker()
    url = f"{site.base}/ok"
    assert await checker.check([url]) == [LinkProblem(url, "points to a private network address")]
    assert site.requests == []


async def test_localhost_by_name_is_refused_at_resolution_and_never_requested(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=["127.0.0.1"])  # the address is allowed, the name localhost:<port> is not
    url = f"http://localhost:{site.port}/ok"
    assert await checker.check([url]) == [LinkProblem(url, "points to a private network address")]
    assert site.requests == []


async def test_a_host_allowed_by_name_is_reached(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker(allow=[f"LOCALHOST:{site.port}"])
    assert await checker.check([f"http://localhost:{site.port}/ok"]) == []
    assert site.requests == [("HEAD", "/ok")]


async def test_a_redirect_from_an_allowed_server_to_another_local_server_is_refused_before_connecting(
    site: Site, other_site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow)
    site.redirect_to = f"http://localhost:{other_site.port}/ok"
    url = f"{site.base}/away"
    assert await checker.check([url]) == [LinkProblem(url, "redirects to a private network address")]
    assert site.requests == [("HEAD", "/away")]
    assert other_site.requests == []


async def test_a_redirect_to_a_private_address_literal_is_refused_without_trying_to_connect(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow, timeout=2)
    site.redirect_to = "http://10.255.255.1/"  # unroutable: a connection attempt would hang until the timeout
    url = f"{site.base}/away"
    started = time.monotonic()
    assert await checker.check([url]) == [LinkProblem(url, "redirects to a private network address")]
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:80/"]
)
async def test_private_address_literals_are_refused(make_checker: Callable[..., HttpLinkChecker], url: str) -> None:
    checker = make_checker(timeout=1)
    assert await checker.check([url]) == [LinkProblem(url, "points to a private network address")]


async def test_a_host_that_does_not_resolve(make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker()
    url = "http://does-not-exist.invalid/"
    assert await checker.check([url]) == [LinkProblem(url, "does not resolve")]


async def test_the_resolver_refuses_a_host_when_any_of_its_addresses_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.10", port)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(PrivateAddressError):
        await GuardedResolver(allowlist([])).resolve("mixed.example", 443)
    allowed = await GuardedResolver(allowlist(["mixed.example"])).resolve("mixed.example", 443)
    assert [(r["host"], r["port"]) for r in allowed] == [("93.184.215.14", 443), ("192.168.1.10", 443)]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_the_allowlist_takes_hosts_and_host_port_pairs() -> None:
    allowed = allowlist([" Intranet.Example.com ", "127.0.0.1:8080", "[::1]:9000", "::2", ""])
    assert allowed("intranet.example.com", 443) and allowed("INTRANET.example.com.", 80)
    assert allowed("127.0.0.1", 8080) and not allowed("127.0.0.1", 8081)
    assert allowed("::1", 9000) and not allowed("::1", 9001)
    assert allowed("::2", 1)
    assert not allowed("localhost", 8080)


# ---- cache and concurrency ---------------------------------------------------------------------------------


async def test_results_are_cached_good_and_bad(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    checker = make_checker(allow=site.allow)
    urls = [f"{site.base}/ok", f"{site.base}/missing"]
    first = await checker.check(urls)
    seen = len(site.requests)
    assert await checker.check(urls) == first
    assert len(site.requests) == seen


async def test_the_cache_expires(site: Site, make_checker: Callable[..., HttpLinkChecker]) -> None:
    now = [1000.0]
    checker = make_checker(allow=site.allow, cache_seconds=600, clock=lambda: now[0])
    url = f"{site.base}/ok"
    await checker.check([url])
    now[0] += 599
    await checker.check([url])
    assert site.count("/ok") == 1
    now[0] += 2
    await checker.check([url])
    assert site.count("/ok") == 2


async def test_many_links_run_concurrently_a_bounded_number_at_a_time(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow, concurrency=3)
    urls = [f"{site.base}/busy?n={n}" for n in range(9)]
    started = time.monotonic()
    assert await checker.check(urls) == []
    assert site.most_in_flight == 3
    assert time.monotonic() - started < 0.9 * 0.1 * 9


async def test_the_same_link_checked_twice_at_once_is_asked_once(
    site: Site, make_checker: Callable[..., HttpLinkChecker]
) -> None:
    checker = make_checker(allow=site.allow)
    url = f"{site.base}/busy"
    await asyncio.gather(checker.check([url, url]), checker.check([url]))
    assert site.count("/busy") == 1
