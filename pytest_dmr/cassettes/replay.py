"""``ReplayTransport``: answers requests from a cassette, streams chunk for chunk.

A request the cassette lacks goes to ``fallback`` when there is one (the mock, or in ``new`` mode a
:class:`~pytest_dmr.cassettes.recording.RecordingTransport` on the live runner), else raises
:class:`~pytest_dmr.errors.CassetteMismatchError` naming the closest recorded request. Either way
it is counted (:attr:`ReplayTransport.replayed`, :attr:`ReplayTransport.passed_on`) and a mismatch
is kept in :attr:`ReplayTransport.mismatches`, so a caller whose client wraps transport errors
(the OpenAI SDK retries them, then raises its own ``APIConnectionError``) can still report it.

What a replayed call costs: a lookup of the request as sent (see :meth:`Index.key
<pytest_dmr.cassettes.matching.Index.key>`), and a response built from a :class:`Ready` answer
(headers, bytes and chunks made once per exchange). With ``pace``, streams keep their recorded
gaps (``--dmr-replay-pacing``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from pytest_dmr.cassettes import _stack
from pytest_dmr.cassettes.format import Cassette, Exchange, RecordedResponse
from pytest_dmr.cassettes.matching import Index, normalize
from pytest_dmr.errors import CassetteMismatchError
from pytest_dmr.mock import stacks
from pytest_dmr.mock.streams import CUT_MESSAGE
from pytest_dmr.protocol import addresses

Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]


class Ready:
    """A recorded answer made ready to send again, once: body bytes or stream chunks, the seconds
    before each chunk, and its headers as each stack's ``Headers`` (copied, not parsed, per call).
    A whole body gets its ``content-length``; an incomplete one is sent as one chunk, then cut."""

    def __init__(self, recorded: RecordedResponse) -> None:
        self.status = recorded.status
        self.complete = recorded.complete
        self.body = recorded.body
        self.chunks: tuple[bytes, ...] | None = None
        self.gaps: tuple[float, ...] = ()
        self.header_pairs = list(recorded.headers)
        if recorded.chunks is not None:
            self.chunks = tuple(chunk.data for chunk in recorded.chunks)
            self.gaps = tuple(chunk.ms / 1000 for chunk in recorded.chunks)
        elif not recorded.complete:
            self.chunks = (recorded.body,)
        else:
            self.header_pairs.append(("content-length", str(len(recorded.body))))
        self._headers: dict[ModuleType, Any] = {}

    def headers(self, module: ModuleType) -> Any:
        """The headers as ``module``'s ``Headers`` (a response copies their list: no parsing per call)."""
        headers = self._headers.get(module)
        if headers is None:
            headers = self._headers[module] = module.Headers(self.header_pairs)
        return headers


class _Chunks:
    """A recorded stream, chunk for chunk; with ``pace``, each chunk after its recorded gap
    (``sleep`` in sync clients; ``async_sleep``, which leaves the event loop free, in async
    ones). Ends with the stack's ``RemoteProtocolError`` when the recording was incomplete."""

    def __init__(self, ready: Ready, request: Any, module: ModuleType, pace: bool, sleep: Sleep | None,
                 async_sleep: AsyncSleep | None) -> None:
        self.ready = ready
        self.request = request
        self.module = module
        self.pace = pace
        self.sleep = sleep
        self.async_sleep = async_sleep

    def _end(self) -> None:
        if not self.ready.complete:
            raise self.module.RemoteProtocolError(CUT_MESSAGE, request=self.request)

    def __iter__(self) -> Iterator[bytes]:
        chunks = self.ready.chunks or ()
        if self.pace and self.ready.gaps:
            sleep = self.sleep or time.sleep
            for gap, data in zip(self.ready.gaps, chunks):
                if gap:
                    sleep(gap)
                yield data
        else:
            yield from chunks
        self._end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self.ready.chunks or ()
        if self.pace and self.ready.gaps:
            sleep = self.async_sleep or asyncio.sleep
            for gap, data in zip(self.ready.gaps, chunks):
                if gap:
                    await sleep(gap)
                yield data
        else:
            for data in chunks:
                yield data
        self._end()

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def response_for(recorded: RecordedResponse | Ready, request: Any, *, pace: bool = False, sleep: Sleep | None = None,
                 async_sleep: AsyncSleep | None = None) -> Any:
    """A recorded answer as the request's stack's ``Response`` (unread, as a transport returns it)."""
    ready = recorded if isinstance(recorded, Ready) else Ready(recorded)
    module = stacks.for_request(request).module
    if ready.chunks is None:
        stream = module.ByteStream(ready.body)
    else:
        stream = _stack.stream_class(module, _Chunks)(ready, request, module, pace, sleep, async_sleep)
    return module.Response(ready.status, headers=ready.headers(module), stream=stream)


class ReplayTransport(_stack.Transports):
    """A transport for httpx2 and httpx clients (sync and async) that answers from ``cassette``.

    ``fallback``: a transport for requests the cassette lacks (``None``: raise
    :class:`~pytest_dmr.errors.CassetteMismatchError`). ``pace``: send stream chunks with their
    recorded gaps, waiting with ``sleep`` (sync clients; default ``time.sleep``) or ``async_sleep``
    (async clients; default ``asyncio.sleep``, which leaves the event loop free). ``ignore``: dotted body fields left out of matching (``metadata.trace_id``).

    >>> replay = ReplayTransport(Cassette.load("tests/cassettes/test_chat/test_hi.json"))
    >>> client = openai.OpenAI(base_url=replay.base_url + "/engines/v1", api_key="unused",
    ...                        http_client=httpx2.Client(transport=replay))
    """

    def __init__(self, cassette: Cassette, fallback: Any = None, *, pace: bool = False, ignore: Iterable[str] = (),
                 index: Index | None = None, sleep: Sleep | None = None, async_sleep: AsyncSleep | None = None) -> None:
        self.cassette = cassette
        self.fallback = fallback
        self.pace = pace
        self.sleep = sleep
        self.async_sleep = async_sleep
        self.index = index if index is not None else Index(cassette.exchanges, ignore)
        self._ready: dict[int, Ready] = {}
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

    @property
    def backend(self) -> str:
        """``replay``, or ``live`` when what the cassette lacks is recorded from the live runner (``new`` mode)."""
        return "live" if isinstance(self.fallback, _recording_transport()) else "replay"

    def _find(self, request: Any, body: bytes) -> Exchange | None:
        url = request.url
        query = url.query.decode("ascii", "replace") if url.query else ""
        exchange = self.index.answer(self.index.key(request.method, url.path, query, request.headers.raw, body))
        with self._lock:
            if exchange is not None:
                self.replayed += 1
                return exchange
            if self.fallback is not None:
                self.passed_on += 1
                return None
            recorded = _stack.recorded_request(request, body)
            error = self.index.mismatch(recorded, normalize(recorded, self.index.ignore), str(self.cassette.path or ""))
            self.mismatches.append(error)
        raise error

    def _response(self, exchange: Exchange, request: Any) -> Any:
        ready = self._ready.get(id(exchange))
        if ready is None:
            ready = self._ready[id(exchange)] = Ready(exchange.response)
        return response_for(ready, request, pace=self.pace, sleep=self.sleep, async_sleep=self.async_sleep)

    def handle_request(self, request: Any) -> Any:
        exchange = self._find(request, request.read())
        if exchange is None:
            return self.fallback.handle_request(request)
        return self._response(exchange, request)

    async def handle_async_request(self, request: Any) -> Any:
        exchange = self._find(request, await request.aread())
        if exchange is None:
            return await self.fallback.handle_async_request(request)
        return self._response(exchange, request)

    def close(self) -> None:
        if self.fallback is not None:
            self.fallback.close()

    async def aclose(self) -> None:
        if self.fallback is not None:
            await self.fallback.aclose()


def _recording_transport() -> type:
    from pytest_dmr.cassettes.recording import RecordingTransport  # it imports this module's neighbours: imported late

    return RecordingTransport
