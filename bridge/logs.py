"""Structured logs through structlog: key=value on a terminal, JSON lines otherwise.

Every inbound event has one correlation id (``correlation_id``): 12 hex digits of the SHA-256 of its inbox key,
so every process (and the same process after a restart) derives the same id for the same event. It is bound in
structlog's context variables while the event is stored, processed and while each outbox row it caused is
performed, retried or given up (outbox rows carry it in their payload). Every log line of those hops, including
the lines of the adapters and of the libraries they call, carries it.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Generator
from contextlib import contextmanager
from typing import Literal

import structlog

CORRELATION_ID = "correlation_id"
LogFormat = Literal["auto", "json", "console"]


def correlation_id_for(key: str) -> str:
    """The correlation id of the inbound event stored under ``key`` (deterministic: no column, no state)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def current_correlation_id() -> str | None:
    """The correlation id bound in this context, if any."""
    value = structlog.contextvars.get_contextvars().get(CORRELATION_ID)
    return value if isinstance(value, str) else None


@contextmanager
def correlated(correlation_id: str | None, **fields: object) -> Generator[None, None, None]:
    """Bind ``correlation_id`` (and ``fields``) to every log line written inside the block, then restore.

    ``None`` keeps the id already bound (if any)."""
    if correlation_id:
        fields[CORRELATION_ID] = correlation_id
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def wants_json(log_format: LogFormat = "auto") -> bool:
    """``auto``: JSON unless stderr is a terminal."""
    return not sys.stderr.isatty() if log_format == "auto" else log_format == "json"


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    use_json = wants_json() if json is None else json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter (request lines carry no secrets, but they are noise at INFO).
    for noisy in ("aiohttp.access", "apscheduler", "slack_bolt", "slack_sdk", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
