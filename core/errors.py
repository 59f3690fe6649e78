"""The one family of errors the core understands.

Adapters translate their wire failures into these; the outbox decides what to do from the class alone.
"""

from __future__ import annotations


class RallyBridgeError(Exception):
    """Root of every error raised on purpose by Rally Bridge."""


class TemporaryFailure(RallyBridgeError):
    """The call failed but may succeed later (429, 408, 5xx, connection refused before sending).

    ``retry_after`` is the delay the remote asked for, in seconds, when it said one.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class UnknownOutcome(TemporaryFailure):
    """The request may or may not have taken effect (timeout, reset mid-call).

    The next attempt must check at the target before sending again.
    """


class Paced(TemporaryFailure):
    """Nothing was sent: the call would exceed the platform's send budget (our own pacing said so).

    Not a failure: the outbox puts the row back until ``retry_after`` without counting an attempt, and takes
    other work meanwhile.
    """


class PermanentFailure(RallyBridgeError):
    """The remote refused for good (a 4xx other than 408/429); retrying cannot help. Shown to people."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotFound(PermanentFailure):
    """The remote says the thing does not exist (404)."""


class InvalidInput(RallyBridgeError):
    """An inbound request is malformed; the reason is safe to return to the sender."""


class StorageUnavailable(Exception):
    """An inbound event (or what must be stored with it) could not be stored: answer 503 so that the sender retries.

    Outside the family above on purpose: it is never a delivery outcome, only an answer at an inbound edge.
    """
