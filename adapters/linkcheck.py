"""The links of a researcher's message asked about on the web before the message goes out (``core.links``).

Each link: ``HEAD``, and ``GET`` when ``HEAD`` answers 4xx/5xx (many servers answer ``HEAD`` wrongly: 405 or 501,
403 from storage links signed for ``GET`` only, 404 from some app routers; ``GET`` decides, and it costs a second
request only for links that look broken). No request ever carries a body, and a ``GET``'s answer is dropped
unread. Redirects are followed by hand, up to 5, within one overall timeout per link (3 s by default).

Private addresses: a link (or any redirect on the way) to a loopback, private, link-local, multicast, reserved or
unspecified address is refused *before connecting*, unless the allowlist names its host or ``host:port``. Host
names are resolved by :class:`GuardedResolver`, which the connector connects through: the addresses checked are
exactly the addresses connected to, so a name cannot resolve to a public address for the check and a private one
for the connection (DNS rebinding). Addresses written in the link itself never reach a resolver (aiohttp connects
to them directly) and are checked before each request.

Results, good and bad, are remembered per link for 10 minutes. Logs name the host only, never a path or query
(links may carry tokens).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from core.links import LinkProblem

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_CACHE_SECONDS = 600.0
MAX_REDIRECTS = 5
DEFAULT_CONCURRENCY = 8
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CACHE_LIMIT = 4096
_USER_AGENT = "RallyBridge-LinkCheck/1.0 (checks links in a message before it is sent)"

Allowed = Callable[[str, int], bool]


class PrivateAddressError(OSError):
    """A host resolved to an address the bridge must not connect to (raised before any connection)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} resolves to a private network address")
        self.host = host


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address on the public internet: not private, loopback, link-local, multicast, reserved,
    unspecified or otherwise special (IPv4 embedded in IPv6, mapped or 6to4 or Teredo, counts as that IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and not is_public(embedded):
            return False
    special = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not special


def normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def allowlist(entries: Iterable[str]) -> Allowed:
    """A test of ``(host, port)`` against hosts and ``host:port`` entries (``localhost``, ``127.0.0.1:8080``,
    ``[::1]:8080``, ``intranet.example.com``), case-insensitive."""
    hosts: set[str] = set()
    pairs: set[tuple[str, int]] = set()
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if sep and port.isdigit() and (host.endswith("]") or ":" not in host):
            pairs.add((normalise_host(host), int(port)))
        else:
            hosts.add(normalise_host(entry))

    def allowed(host: str, port: int) -> bool:
        name = normalise_host(host)
        return name in hosts or (name, port) in pairs

    return allowed


class GuardedResolver(AbstractResolver):
    """Resolves with the loop's ``getaddrinfo`` and raises :class:`PrivateAddressError` when ANY address of the
    host is not public, unless ``allowed(host, port)``. The connector connects to exactly the addresses returned."""

    def __init__(self, allowed: Allowed) -> None:
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        trusted = self._allowed(host, port)
        results: list[ResolveResult] = []
        for info_family, _, proto, _, sockaddr in infos:
            if info_family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = str(sockaddr[0])
            if not trusted and not is_public(ipaddress.ip_address(address)):
                raise PrivateAddressError(host)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"{host} has no address")
        return results

    async def close(self) -> None:
        return None


class _Refused(Exception):
    """A link (or a redirect on the way) written with a private address: refused before any request."""


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class HttpLinkChecker:
    """``core.links.LinkChecker`` over HTTP. One session for all checks, opened on first use; call :meth:`close`."""

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        max_redirects: int = MAX_REDIRECTS,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = allowlist(allow)
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._max_redirects = max_redirects
        self._limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._cache: dict[str, tuple[float, LinkProblem | None]] = {}
        self._inflight: dict[str, asyncio.Task[LinkProblem | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def check(self, urls: Sequence[str]) -> list[LinkProblem]:
        """A problem for each link that has one, in the order given (each link once); the links run concurrently,
        at most ``concurrency`` at a time."""
        unique = list(dict.fromkeys(urls))
        results = await asyncio.gather(*(self.check_one(url) for url in unique))
        return [problem for problem in results if problem is not None]

    async def check_one(self, url: str) -> LinkProblem | None:
        now = self._clock()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        task = self._inflight.get(url)
        if task is None:
            task = asyncio.ensure_future(self._checked(url))
            self._inflight[url] = task
            task.add_done_callback(lambda _done: self._inflight.pop(url, None))
        # A caller giving up does not stop the check: the next caller finds its result.
        return await asyncio.shield(task)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _remember(self, url: str, problem: LinkProblem | None) -> None:
        now = self._clock()
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache = {key: value for key, value in self._cache.items() if value[0] > now}
            while len(self._cache) >= _CACHE_LIMIT:  # the oldest first: a dict keeps insertion order
                del self._cache[next(iter(self._cache))]
        self._cache.pop(url, None)
        self._cache[url] = (now + self._cache_seconds, problem)

    async def _checked(self, url: str) -> LinkProblem | None:
        async with self._limit:
            problem = await self._probe(url)
        self._remember(url, problem)
        host = _host_of(url)
        if problem is None:
            log.debug("link check: %s is fine", host)
        else:
            log.info("link check: a link to %s %s", host, problem.reason)
        return problem

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allowed), use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": _USER_AGENT, "Accept": "*/*"},
                trust_env=False,
            )
        return self._session

    async def _probe(self, url: str) -> LinkProblem | None:
        hop = 0
        try:
            async with asyncio.timeout(self._timeout):
                current = URL(url)
                if current.scheme not in ("http", "https") or not current.raw_host:
                    return LinkProblem(url, "is not a valid web address")
                use_get = False
                while True:
                    self._refuse_private_literal(current)
                    status, location = await self._request("GET" if use_get else "HEAD", current)
                    if status >= 400 and not use_get:
                        use_get = True
                        status, location = await self._request("GET", current)
                    if status in _REDIRECTS and location:
                        if hop >= self._max_redirects:
                            return LinkProblem(url, f"redirects more than {self._max_redirects} times")
                        target = current.join(URL(location))
                        if target.scheme not in ("http", "https"):
                            return None  # an app's own link (zoommtg:, mailto:): nothing more to ask the web
                        current, hop = target, hop + 1
                        continue
                    if 400 <= status <= 599:
                        return LinkProblem(url, f"answered {status} {_phrase(status)}".rstrip())
                    return None
        except TimeoutError:
            return LinkProblem(url, f"took longer than {self._timeout:g} s")
        except (_Refused, PrivateAddressError):
            return LinkProblem(url, _private(hop))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return LinkProblem(url, _reason(exc, hop))

    def _refuse_private_literal(self, url: URL) -> None:
        host = url.raw_host or ""
        address = _literal_address(host)
        if address is None:
            return
        if not is_public(address) and not self._allowed(host, url.port or 0):
            raise _Refused(host)

    async def _request(self, method: str, url: URL) -> tuple[int, str | None]:
        session = self._open_session()
        async with session.request(method, url, allow_redirects=False) as response:
            status, location = response.status, response.headers.get("Location")
            if method == "GET":
                response.close()  # the body is not read: the connection is dropped instead
        return status, location


def _private(hop: int) -> str:
    return "points to a private network address" if hop == 0 else "redirects to a private network address"


def _reason(exc: BaseException, hop: int) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, PrivateAddressError):
        return _private(hop)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "has a certificate problem"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "could not be reached"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed the connection without answering"
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return "is not a valid web address"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "gave an answer that is not valid HTTP"
    return "could not be checked"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _host_of(url: str) -> str:
    try:
        return URL(url).host or "?"
    except ValueError:
        return "?"
