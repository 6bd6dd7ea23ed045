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

    @property
    def delays_or_cuts(self) -> bool:
        """True when the body does not simply arrive at once and whole."""
        return bool(self.delay) or self.cut_after is not None

    @property
    def first_wait(self) -> float:
        """How long the client waits for the first chunk (at most its read timeout)."""
        return self.delay if self.read_timeout is None else min(self.delay, self.read_timeout)

    @property
    def times_out(self) -> bool:
        """True when the delay outlasts the read timeout."""
        return self.read_timeout is not None and self.delay > self.read_timeout

    def cut_at(self, cut_after: int) -> Delivery:
        """The same delivery, cut off after ``cut_after`` chunks instead."""
        return dataclasses.replace(self, cut_after=cut_after)


AT_ONCE = Delivery()
"""The usual delivery: the whole body, at once."""
