"""``RecordingTransport``: forwards every request to a real transport and records the exchange.

Streamed answers pass through piece by piece as they arrive (nothing is buffered: the caller reads
each server-sent event when the runner sends it), each piece recorded with the milliseconds since
the previous one. The exchange joins the cassette when the body has been read to its end, or is
closed early (then marked incomplete). Credentials never reach the cassette (see
:func:`pytest_dmr.cassettes.matching.capture` and :data:`DROPPED_RESPONSE_HEADERS`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pytest_dmr.cassettes import _stack
from pytest_dmr.cassettes.format import Cassette, Chunk, Exchange, RecordedRequest, RecordedResponse
from pytest_dmr.mock import stacks
from pytest_dmr.protocol import addresses, routes
from pytest_dmr.redaction import redact_headers

DROPPED_RESPONSE_HEADERS = frozenset({"date", "content-length", "transfer-encoding", "connection", "keep-alive"})
"""Response headers not recorded: volatile (``date``) or the stack's to set again on replay."""
STREAM_TYPES = frozenset({"text/event-stream", "application/x-ndjson"})
"""Content types recorded chunk by chunk (as are pulls, whatever their content type)."""


def is_stream(request: RecordedRequest, headers: list[tuple[str, str]]) -> bool:
    """Whether an answer is recorded as chunks: server-sent events, NDJSON, pull progress."""
    content_type = next((value for name, value in headers if name == "content-type"), "")
    if content_type.split(";")[0].strip().lower() in STREAM_TYPES:
        return True
    return request.method == "POST" and request.path.endswith(routes.MODELS_CREATE_PATH)


class _Recorder:
    """One exchange being recorded: its pieces and their timing, written to the cassette once."""

    def __init__(self, cassette: Cassette, request: RecordedRequest, status: int, headers: list[tuple[str, str]]) -> None:
        self.cassette = cassette
        self.request = request
        self.status = status
        self.headers = redact_headers((name, value) for name, value in headers if name not in DROPPED_RESPONSE_HEADERS)
        self.chunks: list[Chunk] = []
        self.last = time.monotonic()
        self.done = False

    def piece(self, data: bytes) -> None:
        now = time.monotonic()
        self.chunks.append(Chunk(data, round((now - self.last) * 1000)))
        self.last = now

    def finish(self, *, complete: bool) -> None:
        if self.done:
            return
        self.done = True
        if is_stream(self.request, self.headers):
            response = RecordedResponse(self.status, self.headers, chunks=self.chunks, complete=complete)
        else:
            body = b"".join(chunk.data for chunk in self.chunks)
            response = RecordedResponse(self.status, self.headers, body=body, complete=complete)
        self.cassette.record(Exchange(self.request, response))


class _RecordingStream:
    """The live body, passed on piece by piece and recorded on the way."""

    def __init__(self, inner: Any, recorder: _Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def __iter__(self) -> Iterator[bytes]:
        try:
            for data in self.inner:
                self.recorder.piece(data)
                yield data
        except BaseException:
            self.recorder.finish(complete=False)
            raise
        self.recorder.finish(complete=True)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self.inner:
                self.recorder.piece(data)
                yield data
        except BaseException:
            self.recorder.finish(complete=False)
            raise
        self.recorder.finish(complete=True)

    def close(self) -> None:
        self.recorder.finish(complete=False)
        self.inner.close()

    async def aclose(self) -> None:
        self.recorder.finish(complete=False)
        await self.inner.aclose()


class RecordingTransport(_stack.Transports):
    """A transport for httpx2 and httpx clients (sync and async) that sends each request through
    ``inner`` (a real transport of the same stack, or a :class:`~pytest_dmr.mock.MockModelRunner`)
    and records the exchange into ``cassette``; save it with :func:`pytest_dmr.cassettes.save`.

    >>> cassette = Cassette(path=Path("tests/cassettes/test_chat/test_hi.json"))
    >>> client = httpx2.Client(transport=RecordingTransport(httpx2.HTTPTransport(), cassette),
    ...                        base_url="http://localhost:12434")
    """

    def __init__(self, inner: Any, cassette: Cassette) -> None:
        self.inner = inner
        self.cassette = cassette

    @property
    def base_url(self) -> str:
        """The inner transport's own base URL (the mock's), else DMR's host URL."""
        base_url = getattr(self.inner, "base_url", None)
        return base_url if isinstance(base_url, str) else addresses.DEFAULT_HOST_URL

    def _wrap(self, request: Any, recorded: RecordedRequest, response: Any) -> Any:
        module = stacks.for_request(request).module
        recorder = _Recorder(self.cassette, recorded, response.status_code, response.headers.multi_items())
        stream = _stack.stream_class(module, _RecordingStream)(response.stream, recorder)
        return module.Response(response.status_code, headers=response.headers.raw, stream=stream,
                               extensions=response.extensions)

    def handle_request(self, request: Any) -> Any:
        recorded = _stack.recorded_request(request, request.read())
        return self._wrap(request, recorded, self.inner.handle_request(request))

    async def handle_async_request(self, request: Any) -> Any:
        recorded = _stack.recorded_request(request, await request.aread())
        return self._wrap(request, recorded, await self.inner.handle_async_request(request))

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()
