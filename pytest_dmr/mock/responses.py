"""The mock's answers, stack-neutral: status, DMR's and llama.cpp's headers, and the body (whole, or
in pieces for streams). :mod:`pytest_dmr.mock.stacks` turns one into an httpx or httpx2 response."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pytest_dmr.protocol import encoding, error_bodies, openai_api, routes
from pytest_dmr.mock.streams import AT_ONCE, Delivery

Headers = Sequence[tuple[str, str]]

_PLAIN_HEADERS = (("content-type", encoding.TEXT_PLAIN), ("x-content-type-options", "nosniff"))
_JSON_HEADERS = (("content-type", encoding.JSON_CONTENT_TYPE),)
_LLAMACPP_SERVER = ("server", "llama.cpp")
_BACKEND_JSON_HEADERS = (("content-type", openai_api.LLAMACPP_JSON_CONTENT_TYPE), _LLAMACPP_SERVER)
UPSTREAM_STREAM_HEADERS = (_LLAMACPP_SERVER, ("x-accel-buffering", "no"))
"""What llama.cpp sends with a stream besides its content type: DMR's streaming front-ends (Responses,
Ollama) write into the proxy's header map, so these reach the client too."""
_SSE_HEADERS = (("content-type", encoding.EVENT_STREAM), *UPSTREAM_STREAM_HEADERS)


@dataclass
class Answer:
    """One answer: ``body`` whole, or ``chunks`` (SSE events, pull lines) sent one by one as
    ``delivery`` says. Header names are lowercase; ``content-length`` is the stack glue's to add."""

    status: int
    headers: Headers = ()
    body: bytes = b""
    chunks: Sequence[bytes] | None = None
    delivery: Delivery = AT_ONCE
    tokens: int = 0
    """A generated answer's completion tokens (what a :class:`~pytest_dmr.mock.streams.Pace` times)."""
    content_length: str | None = None
    """``content-length`` when it is not the whole body's (a streamed body has none): ``HEAD``'s
    answer, the length of the body not sent, or ``""`` for none."""

    def delivered(self, delivery: Delivery) -> Answer:
        """This answer sent as ``delivery`` says: a whole body late, or cut after its first half
        (a non-streamed request hit by a stream fault)."""
        if self.chunks is not None:
            return self
        chunks: Sequence[bytes] = [self.body]
        if delivery.cut_after is not None:  # the first half, then the break
            half = len(self.body) // 2
            chunks = [self.body[:half], self.body[half:]]
            delivery = delivery.cut_at(1)
        return Answer(self.status, self.headers, chunks=chunks, delivery=delivery, content_length=self.content_length)

    def headless(self) -> Answer:
        """This answer to a ``HEAD``: Go's server writes the headers, and no body
        (:func:`~pytest_dmr.protocol.routes.head_content_length`)."""
        length = routes.head_content_length(len(self.body)) if self.chunks is None else None
        return replace(self, body=b"", chunks=None, content_length=length or "")


def empty(status: int) -> Answer:
    return Answer(status)


def plain_error(status: int, message: str) -> Answer:
    """Go's ``http.Error``: plain text, ``nosniff``, the message and ``\\n``."""
    return Answer(status, _PLAIN_HEADERS, error_bodies.plain_error_body(message))


def raw(status: int, body: bytes, content_type: str) -> Answer:
    headers = _PLAIN_HEADERS if content_type == encoding.TEXT_PLAIN else (("content-type", content_type),)
    return Answer(status, headers, body)


def management_json(value: Any, status: int = 200) -> Answer:
    """DMR's own JSON: Go's streaming encoder, so a trailing ``\\n``."""
    return Answer(status, _JSON_HEADERS, encoding.json_line(value))


def backend_json(value: Any, status: int = 200) -> Answer:
    """A body from llama.cpp, passed through by DMR: compact JSON, no trailing newline."""
    return backend_text(encoding.dumps(value), status)


def backend_text(text: str, status: int = 200) -> Answer:
    """:func:`backend_json` for JSON already written."""
    return Answer(status, _BACKEND_JSON_HEADERS, text.encode())


def event_stream(events: Sequence[bytes], *, delivery: Delivery) -> Answer:
    return Answer(200, _SSE_HEADERS, chunks=events, delivery=delivery)


def line_stream(lines: Sequence[bytes], *, content_type: str, delivery: Delivery) -> Answer:
    """A pull: one chunk per line, status 200 (DMR flushes after each line)."""
    return Answer(200, (("content-type", content_type), ("cache-control", "no-cache")), chunks=lines, delivery=delivery)
