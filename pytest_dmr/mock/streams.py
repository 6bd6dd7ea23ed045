"""The body of a streamed mock answer: one chunk per SSE event or pull line, sync and async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx

CUT_MESSAGE = "peer closed connection without sending complete message body (incomplete chunked read)"
"""httpx's own words when a chunked body stops early."""


class MockByteStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Yields ``chunks`` one by one; optionally waits before the first, or breaks off after ``cut_after``.

    ``delay`` longer than ``read_timeout`` waits the timeout, then raises ``httpx.ReadTimeout``,
    as a client reading a silent server would.
    """

    def __init__(
        self,
        chunks: Sequence[bytes],
        *,
        request: httpx.Request,
        delay: float = 0.0,
        cut_after: int | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.chunks = chunks
        self.request = request
        self.delay = delay
        self.cut_after = cut_after
        self.read_timeout = read_timeout

    def _wait(self) -> float:
        """How long to wait before the first chunk (bounded by the read timeout)."""
        if self.read_timeout is not None and self.delay > self.read_timeout:
            return self.read_timeout
        return self.delay

    def _timed_out(self) -> bool:
        return self.read_timeout is not None and self.delay > self.read_timeout

    def _sent(self) -> Sequence[bytes]:
        return self.chunks if self.cut_after is None else self.chunks[: self.cut_after]

    def _cut(self) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(CUT_MESSAGE, request=self.request)

    def __iter__(self) -> Iterator[bytes]:
        if self.delay:
            time.sleep(self._wait())
            if self._timed_out():
                raise httpx.ReadTimeout("timed out", request=self.request)
        yield from self._sent()
        if self.cut_after is not None:
            raise self._cut()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.delay:
            await asyncio.sleep(self._wait())
            if self._timed_out():
                raise httpx.ReadTimeout("timed out", request=self.request)
        for chunk in self._sent():
            yield chunk
        if self.cut_after is not None:
            raise self._cut()
