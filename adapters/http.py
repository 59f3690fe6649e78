"""Shared aiohttp plumbing for the Rally and Respondent adapters.

Everything here turns wire failures into ``core.errors``:

* 429 -> ``TemporaryFailure`` with ``retry_after`` from ``Retry-After``; 408 and 5xx -> ``TemporaryFailure``.
* 404 -> ``NotFound``; any other 4xx (or an unexpected 3xx) -> ``PermanentFailure`` whose reason comes from
  the error body (Respondent ``message``, Rally ``errors[].message``), else the status text;
  it always carries the status.
* Cannot connect (nothing was sent) -> ``TemporaryFailure``; timeout, server disconnect or socket error after
  the request may have gone out -> ``UnknownOutcome``.

Exception texts never contain credentials, request bodies or message bodies: only the service name, the
HTTP method, the path template the caller chose, the status and the remote's own error text.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from core.errors import (
    NotFound,
    PermanentFailure,
    RallyBridgeError,
    TemporaryFailure,
    UnknownOutcome,
)

_MAX_REASON = 300


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def parse_datetime(value: Any) -> datetime | None:
    """Lenient ISO-8601 parse (``Z`` suffix, any fraction length); naive values are taken as UTC.

    Returns ``None`` for ``None``, non-strings and unparseable text.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_datetime(value: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` suffix, as both APIs show their timestamps."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def error_reason(body: Any) -> str | None:
    """The remote's own explanation from an error body, if it gave one.

    Respondent (S4): ``{"message": "..." | ["...", ...]}``. Rally (R4): ``{"errors": [{"message": "..."}]}``.
    """
    if not isinstance(body, Mapping):
        return None
    errors = body.get("errors")
    if isinstance(errors, list):
        texts = [str(e["message"]) for e in errors if isinstance(e, Mapping) and e.get("message")]
        if texts:
            return "; ".join(texts)
    message = body.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    if isinstance(message, list):
        texts = [str(m) for m in message if isinstance(m, str | int | float) and str(m).strip()]
        if texts:
            return "; ".join(texts)
    return None


def error_for_status(
    service: str, status: int, status_text: str | None, body: Any, headers: Mapping[str, str] | None = None
) -> RallyBridgeError:
    """The ``core.errors`` exception for a non-2xx response (``body`` is the parsed JSON, or ``None``)."""
    label = f"{status} {status_text}".strip() if status_text else str(status)
    remote = error_reason(body)
    reason = f"{service} {label}: {remote}" if remote else f"{service} {label}"
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    if status == 429:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return TemporaryFailure(reason, retry_after=retry_after)
    if status == 408 or status >= 500:
        return TemporaryFailure(reason)
    if status == 404:
        return NotFound(reason, status=status)
    # Other 4xx, and 1xx/3xx (redirects are not followed: a wrong base URL is a configuration error).
    return PermanentFailure(reason, status=status)


def error_for_exception(service: str, what: str, exc: BaseException) -> TemporaryFailure | PermanentFailure:
    """The ``core.errors`` exception for an aiohttp/asyncio failure while calling ``what`` (e.g. ``POST /x``)."""
    kind = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        # The connection was never made: nothing reached the remote.
        return TemporaryFailure(f"{service} {what}: cannot connect ({kind})")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentFailure(f"{service} {what}: invalid URL")
    if isinstance(exc, TimeoutError):
        return UnknownOutcome(f"{service} {what}: timed out, the request may have been processed")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UnknownOutcome(f"{service} {what}: connection lost ({kind}), the request may have been processed")
    return UnknownOutcome(f"{service} {what}: unexpected failure ({kind})")


def malformed(service: str, what: str, detail: str) -> UnknownOutcome:
    """A 2xx whose body does not match the contract: the call may have worked, but we cannot tell."""
    return UnknownOutcome(f"{service} {what}: unexpected response ({detail})")


class JsonHttp:
    """A tiny JSON-over-HTTP client with the error mapping above.

    Owns its ``aiohttp.ClientSession`` unless one is passed in (then ``close`` leaves it open).
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        """Close the session if this object created it."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, parsed JSON)`` for a 2xx, raise ``core.errors`` otherwise.

        ``what`` names the call in error texts (a path template, never ids or bodies with content).
        """
        session = self._get_session()
        headers = dict(self._headers)
        headers.setdefault("Accept", "application/json")
        try:
            async with session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirected POST would silently become a GET
            ) as resp:
                raw = await resp.read()
                status = resp.status
                status_text = resp.reason
                resp_headers = resp.headers  # case-insensitive
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise error_for_exception(self.service, what, exc) from exc
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = None
                if 200 <= status < 300:
                    raise malformed(self.service, what, "body is not JSON") from None
        if not 200 <= status < 300:
            raise error_for_status(self.service, status, status_text, body, resp_headers)
        return status, body
