"""How a mock answer's body reaches the client: at once, late, or cut off (no HTTP stack here)."""

from __future__ import annotations

import dataclasses

CUT_MESSAGE = "peer closed connection without sending complete message body (incomplete chunked read)"
"""httpx's own words when a chunked body stops early."""


@dataclasses.dataclass(frozen=True)
class Delivery:
    """How a body reaches the client: ``delay`` seconds before the first chunk
    (``Fault.slow_first_token``), cut off after ``cut_after`` chunks (``Fault.cut_stream``),
    read by a client whose read timeout is ``read_timeout`` (``None``: no timeout)."""

    delay: float = 0.0
    cut_after: int | None = None
    read_timeout: float | None = None
    interval: float = 0.0
    """Seconds between one chunk and the next (a :class:`Pace`'s tokens per second)."""

    @property
    def delays_or_cuts(self) -> bool:
        """True when the body does not simply arrive at once and whole."""
        return bool(self.delay) or bool(self.interval) or self.cut_after is not None

    def cut_at(self, cut_after: int) -> Delivery:
        """The same delivery, cut off after ``cut_after`` chunks instead."""
        return dataclasses.replace(self, cut_after=cut_after)


@dataclasses.dataclass(frozen=True)
class Pace:
    """How fast the mock "generates" (opt-in: ``MockModelRunner(pace=Pace(first_token=0.2,
    tokens_per_second=50))``): ``first_token`` seconds before the first token, then
    ``tokens_per_second``. A stream waits before its first chunk and between chunks; a whole answer
    arrives once all its tokens would have been generated. Waits are ``asyncio.sleep`` on an async
    client (the event loop runs on), ``time.sleep`` on a sync one."""

    first_token: float = 0.0
    tokens_per_second: float | None = None

    def __post_init__(self) -> None:
        if self.first_token < 0:
            raise ValueError(f"Pace(first_token=...) must be 0 or more, got {self.first_token!r}")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError(f"Pace(tokens_per_second=...) must be more than 0, got {self.tokens_per_second!r}")

    @property
    def per_token(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0

    def applied(self, delivery: Delivery, *, streamed: bool, tokens: int) -> Delivery:
        """``delivery`` slowed to this pace: a stream's chunks spaced out, a whole body late."""
        if streamed:
            return dataclasses.replace(delivery, delay=delivery.delay + self.first_token, interval=self.per_token)
        return dataclasses.replace(delivery, delay=delivery.delay + self.first_token + tokens * self.per_token)


AT_ONCE = Delivery()
"""The usual delivery: the whole body, at once."""
