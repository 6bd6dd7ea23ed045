"""``ReplayTransport``: answers requests from a cassette, streams chunk for chunk.

A request the cassette lacks goes to ``fallback`` when there is one (the mock, or in ``new`` mode a
:class:`~pytest_dmr.cassettes.recording.RecordingTransport` on the live runner), else raises
:class:`~pytest_dmr.errors.CassetteMismatchError` naming the closest recorded request. Either way
it is counted (:attr:`ReplayTransport.replayed`, :attr:`ReplayTransport.passed_on`) and a mismatch
is kept in :attr:`ReplayTransport.mismatches`, so a caller whose client wraps transport errors
(the OpenAI SDK retries them, then raises its own ``APIConnectionError``) can still report it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from pytest_dmr.cassettes import _stack
from pytest_dmr.cassettes.format import Cassette, Chunk, Exchange, RecordedResponse
from pytest_dmr.cassettes.matching import Index, normalize
from pytest_dmr.errors import CassetteMismatchError
from pytest_dmr.mock import stacks
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.streams import AT_ONCE, CUT_MESSAGE, Delivery
from pytest_dmr.protocol import addresses


class _PacedChunks:
    """A recorded stream sent with its recorded gaps (``time.sleep`` in sync clients, ``asyncio.sleep``
    in async ones), ending with the stack's ``RemoteProtocolError`` when the recording was incomplete."""

    def __init__(self, chunks: list[Chunk], complete: bool, request: Any, module: Any) -> None:
        self.chunks = chunks
        self.complete = complete
        self.request = request
        self.module = module

    def _end(self) -> None:
        if not self.complete:
            raise self.module.RemoteProtocolError(CUT_MESSAGE, request=self.request)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if chunk.ms:
                time.sleep(chunk.ms / 1000)
            yield chunk.data
        self._end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if chunk.ms:
                await asyncio.sleep(chunk.ms / 1000)
            yield chunk.data
        self._end()


def response_for(recorded: RecordedResponse, request: Any, *, pace: bool = False) -> Any:
    """A recorded answer as the request's stack's ``Response`` (unread, as a transport returns it)."""
    stack = stacks.for_request(request)
    if recorded.chunks is not None and pace:
        stream = _stack.stream_class(stack.module, _PacedChunks)(recorded.chunks, recorded.complete, request, stack.module)
        return stack.module.Response(recorded.status, headers=recorded.headers, stream=stream)
    delivery: Delivery = AT_ONCE
    chunks: list[bytes] | None = None
    if recorded.chunks is not None:
        chunks = [chunk.data for chunk in recorded.chunks]
    elif not recorded.complete:
        chunks = [recorded.body]
    if not recorded.complete and chunks is not None:
        delivery = Delivery(cut_after=len(chunks))
    answer = Answer(recorded.status, recorded.headers, body=recorded.body, chunks=chunks, delivery=delivery)
    return stack.response(answer, request)


class ReplayTransport(_stack.Transports):
    """A transport for httpx2 and httpx clients (sync and async) that answers from ``cassette``.

    ``fallback``: a transport for requests the cassette lacks (``None``: raise
    :class:`~pytest_dmr.errors.CassetteMismatchError`). ``pace``: send stream chunks with their
    recorded gaps. ``ignore``: dotted body fields left out of matching (``metadata.trace_id``).

    >>> replay = ReplayTransport(Cassette.load("tests/cassettes/test_chat/test_hi.json"))
    >>> client = openai.OpenAI(base_url=replay.base_url + "/engines/v1", api_key="unused",
    ...                        http_client=httpx2.Client(transport=replay))
    """

    def __init__(self, cassette: Cassette, fallback: Any = None, *, pace: bool = False, ignore: Iterable[str] = (),
                 index: Index | None = None) -> None:
        self.cassette = cassette
        self.fallback = fallback
        self.pace = pace
        self.index = index if index is not None else Index(cassette.exchanges, ignore)
        self.replayed = 0
        self.passed_on = 0
        self.mismatches: list[CassetteMismatchError] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The fallback's own base URL (the mock's), else the mock's address (any host replays)."""
        base_url = getattr(self.fallback, "base_url", None)
        return base_url if isinstance(base_url, str) else addresses.MOCK_BASE_URL

    def unused(self) -> list[Exchange]:
        """Recorded exchanges no request has used (yet)."""
        return self.index.unused()

    def _find(self, request: Any, body: bytes) -> Exchange | None:
        recorded = _stack.recorded_request(request, body)
        normalized = normalize(recorded, self.index.ignore)
        exchange = self.index.answer(normalized)
        with self._lock:
            if exchange is not None:
                self.replayed += 1
                return exchange
            if self.fallback is not None:
                self.passed_on += 1
                return None
            error = self.index.mismatch(recorded, normalized, str(self.cassette.path or ""))
            self.mismatches.append(error)
        raise error

    def handle_request(self, request: Any) -> Any:
        exchange = self._find(request, request.read())
        if exchange is None:
            return self.fallback.handle_request(request)
        return response_for(exchange.response, request, pace=self.pace)

    async def handle_async_request(self, request: Any) -> Any:
        exchange = self._find(request, await request.aread())
        if exchange is None:
            return await self.fallback.handle_async_request(request)
        return response_for(exchange.response, request, pace=self.pace)

    def close(self) -> None:
        if self.fallback is not None:
            self.fallback.close()

    async def aclose(self) -> None:
        if self.fallback is not None:
            await self.fallback.aclose()
