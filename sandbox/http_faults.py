"""Shared machinery of the Rally and Respondent stand-ins: a server base class with a request log, fault
injection (fail next, outage, rate limit, random failures) and webhook delivery with retries.

Each stand-in supplies ``error_body(status, message)`` so injected errors have that API's error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RequestRecord:
    """One request the stand-in answered (``status`` 0 when the connection was dropped)."""

    method: str
    path: str
    status: int


@dataclass
class Fault:
    """A pending injected failure: answer ``status`` to the next ``remaining`` matching requests."""

    remaining: int
    status: int
    path_contains: str | None = None
    method: str | None = None
    retry_after: float | None = None

    def matches(self, request: web.Request) -> bool:
        if self.path_contains is not None and self.path_contains not in request.path:
            return False
        return self.method is None or request.method == self.method


@dataclass(frozen=True)
class DeliveryRecord:
    """One webhook delivery attempt: ``status`` is ``None`` when the receiver could not be reached."""

    event_id: str
    attempt: int
    url: str
    status: int | None
    error: str | None = None


@dataclass
class RandomFailures:
    """Fail a fraction ``probability`` of matching requests with ``status`` (seeded, reproducible)."""

    probability: float
    rng: random.Random
    status: int = 503
    path_contains: str | None = None
    method: str | None = None


class SandboxServer:
    """Base class: an ``aiohttp.web`` app on a real port, with request log and fault injection.

    Subclasses call ``super().__init__()`` after setting their own state, and implement ``setup_routes``
    and ``error_body`` (and ``authorized``).
    """

    unauthorized_message = "Unauthorized"

    def __init__(self) -> None:
        self.request_log: list[RequestRecord] = []
        self.webhook_deliveries: list[DeliveryRecord] = []
        self.base_url: str | None = None
        self._faults: list[Fault] = []
        self._outage: int | None = None
        self._random: RandomFailures | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.app = web.Application(middlewares=[self._middleware])
        self.setup_routes(self.app)

    # ---- subclass hooks -------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        """Add the API's routes to ``app``."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """The API's error body for ``status``."""
        raise NotImplementedError

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries valid credentials."""
        return True

    # ---- lifecycle ------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); return the base URL."""
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; requests held by ``hang_next_send`` are released first."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` or until ``stop`` is called, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # ---- fault injection ------------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, path_contains: str | None = None) -> None:
        """Answer ``status`` (API error body) to the next ``n`` requests whose path contains ``path_contains``."""
        self._faults.append(Fault(remaining=n, status=status, path_contains=path_contains))

    def rate_limit_next(self, n: int, retry_after: float = 1, path_contains: str | None = None) -> None:
        """Answer 429 with ``Retry-After: retry_after`` to the next ``n`` matching requests."""
        self._faults.append(Fault(remaining=n, status=429, path_contains=path_contains, retry_after=retry_after))

    def outage(self, status: int = 503) -> None:
        """Answer ``status`` to every request until ``heal``."""
        self._outage = status

    def heal(self) -> None:
        """End an outage and forget pending injected failures."""
        self._outage = None
        self._faults.clear()
        self._random = None

    def random_failures(
        self, probability: float, seed: int | None, *, path_contains: str | None = None, method: str | None = None
    ) -> None:
        """Fail each matching request with 503 with ``probability`` (0 disables)."""
        if probability <= 0:
            self._random = None
            return
        self._random = RandomFailures(probability, random.Random(seed), path_contains=path_contains, method=method)

    def error_response(
        self, status: int, message: str | None = None, *, retry_after: float | None = None
    ) -> web.Response:
        """An error in this API's shape."""
        text = message or HTTPStatus(status).phrase
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return web.json_response(self.error_body(status, text), status=status, headers=headers)

    def _injected(self, request: web.Request) -> web.Response | None:
        if self._outage is not None:
            return self.error_response(self._outage, "Service unavailable (sandbox outage)")
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(request):
                fault.remaining -= 1
                if fault.status == 429:
                    return self.error_response(429, "Too Many Requests", retry_after=fault.retry_after)
                return self.error_response(fault.status, "Injected failure")
        self._faults = [f for f in self._faults if f.remaining > 0]
        rnd = self._random
        if (
            rnd is not None
            and (rnd.path_contains is None or rnd.path_contains in request.path)
            and (rnd.method is None or rnd.method == request.method)
            and rnd.rng.random() < rnd.probability
        ):
            return self.error_response(rnd.status, "Injected random failure")
        return None

    def on_request(self, request: web.Request) -> None:
        """Called for every request before faults and auth (counters live here)."""

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.on_request(request)
        response: web.StreamResponse
        injected = self._injected(request)
        if injected is not None:
            response = injected
        elif not self.authorized(request):
            response = self.error_response(401, self.unauthorized_message)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = self.error_response(exc.status, exc.reason)
        dropped = request.transport is None or request.transport.is_closing()
        self.request_log.append(RequestRecord(request.method, request.path, 0 if dropped else response.status))
        return response

    # ---- webhooks -------------------------------------------------------------------------------------
    async def deliver(
        self,
        url: str,
        event_id: str,
        build: Callable[[int], tuple[dict[str, str], bytes]],
        *,
        retries: int,
        retry_delay: float,
    ) -> int | None:
        """POST a webhook until a 2xx, at most ``1 + retries`` times; ``build(attempt)`` gives headers and body.

        Every attempt is recorded in ``webhook_deliveries``. Returns the last status (``None`` if unreachable).
        """
        status: int | None = None
        async with aiohttp.ClientSession() as session:
            for attempt in range(1, retries + 2):
                headers, body = build(attempt)
                error = None
                try:
                    async with session.post(
                        url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
                    ) as resp:
                        status = resp.status
                        await resp.read()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    status, error = None, type(exc).__name__
                self.webhook_deliveries.append(DeliveryRecord(event_id, attempt, url, status, error))
                if status is not None and 200 <= status < 300:
                    return status
                if attempt <= retries:
                    await self.pause(retry_delay)
        return status
