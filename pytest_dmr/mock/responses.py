"""httpx responses with the headers DMR and llama.cpp send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from pytest_dmr.protocol import encoding, error_bodies, openai_api
from pytest_dmr.mock.streams import Delivery, MockByteStream

_PLAIN_HEADERS = (("content-type", encoding.TEXT_PLAIN), ("x-content-type-options", "nosniff"))
_JSON_HEADERS = (("content-type", encoding.JSON_CONTENT_TYPE),)
_BACKEND_JSON_HEADERS = (("content-type", openai_api.LLAMACPP_JSON_CONTENT_TYPE),)
_SSE_HEADERS = (("content-type", encoding.EVENT_STREAM), ("cache-control", "no-cache"))


def plain_error(status: int, message: str) -> httpx.Response:
    """Go's ``http.Error``: plain text, ``nosniff``, the message and ``\\n``."""
    return httpx.Response(status, headers=_PLAIN_HEADERS, content=error_bodies.plain_error_body(message))


def raw(status: int, body: bytes, content_type: str) -> httpx.Response:
    headers = _PLAIN_HEADERS if content_type == encoding.TEXT_PLAIN else (("content-type", content_type),)
    return httpx.Response(status, headers=headers, content=body)


def management_json(value: Any, status: int = 200) -> httpx.Response:
    """DMR's own JSON: Go's streaming encoder, so a trailing ``\\n``."""
    return httpx.Response(status, headers=_JSON_HEADERS, content=encoding.json_line(value))


def backend_json(value: Any, status: int = 200) -> httpx.Response:
    """A body from llama.cpp, passed through by DMR: compact JSON, no trailing newline."""
    return httpx.Response(status, headers=_BACKEND_JSON_HEADERS, content=encoding.dumps(value).encode())


def event_stream(events: Sequence[bytes], *, request: httpx.Request, delivery: Delivery) -> httpx.Response:
    stream = MockByteStream(events, request=request, delivery=delivery)
    return httpx.Response(200, headers=_SSE_HEADERS, stream=stream)


def line_stream(lines: Sequence[bytes], *, content_type: str, request: httpx.Request, delivery: Delivery) -> httpx.Response:
    """A pull: one chunk per line, status 200 (DMR flushes after each line)."""
    stream = MockByteStream(lines, request=request, delivery=delivery)
    return httpx.Response(200, headers=(("content-type", content_type), ("cache-control", "no-cache")), stream=stream)
