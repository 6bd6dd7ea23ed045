"""The mock's clock: a time that only moves when a test moves it, so answers never depend on the wall clock."""

from __future__ import annotations

import threading

START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where every mock's clock starts."""


class MockClock:
    """Seconds since the Unix epoch, starting at :data:`START` and standing still until :meth:`advance`.

    It dates what DMR dates with ``time.Now()``: Responses' ``created_at`` and their one-hour store,
    Ollama's ``created_at``, the request log's timestamps. ``mock.clock.advance(3601)`` lets a test
    see a stored response expire.
    """

    def __init__(self, start: float = START) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back); returns the new time."""
        if seconds < 0:
            raise ValueError(f"the mock's clock only moves forward: advance({seconds!r})")
        with self._lock:
            self._now += seconds
            return self._now

    def reset(self) -> None:
        with self._lock:
            self._now = self._start
