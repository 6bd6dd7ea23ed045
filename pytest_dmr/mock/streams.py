"""The body of a streamed mock answer: one chunk per SSE event or pull line, sync and async."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx

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


class MockByteStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Yields ``chunks`` one by one, as ``delivery`` says: maybe late, maybe breaking off.

    A delay longer than the read timeout waits the timeout, then raises ``httpx.ReadTimeout``,
    as a client reading a silent server would.
    """

    def __init__(self, chunks: Sequence[bytes], *, request: httpx.Request, delivery: Delivery) -> None:
        self.chunks = chunks
        self.request = request
        self.delivery = delivery

    def _sent(self) -> Sequence[bytes]:
        cut_after = self.delivery.cut_after
        return self.chunks if cut_after is None else self.chunks[:cut_after]

    def _cut(self) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(CUT_MESSAGE, request=self.request)

    def __iter__(self) -> Iterator[bytes]:
        delivery = self.delivery
        if delivery.delay:
            time.sleep(delivery.first_wait)
            if delivery.times_out:
                raise httpx.ReadTimeout("timed out", request=self.request)
        yield from self._sent()
        if delivery.cut_after is not None:
            raise self._cut()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        delivery = self.delivery
        if delivery.delay:
            await asyncio.sleep(delivery.first_wait)
            if delivery.times_out:
                raise httpx.ReadTimeout("timed out", request=self.request)
        for chunk in self._sent():
            yield chunk
        if delivery.cut_after is not None:
            raise self._cut()
