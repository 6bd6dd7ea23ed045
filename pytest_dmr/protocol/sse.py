"""Server-sent events: framing and an incremental decoder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pytest_dmr.protocol.encoding import dumps


SSE_DONE = "[DONE]"


def encode_sse(payload: Mapping[str, Any] | str) -> bytes:
    """One SSE event: ``data: {json}`` and a blank line; a ``str`` is sent as is (``[DONE]``)."""
    data = payload if isinstance(payload, str) else dumps(payload)
    return f"data: {data}\n\n".encode()


SSE_DONE_EVENT = encode_sse(SSE_DONE)


class SSEDecoder:
    """Incremental SSE decoder: feed it lines (without their newline), get each event's data.

    ``feed`` returns the joined ``data:`` of an event when a blank line ends it, else ``None``;
    ``flush`` returns a last event left unterminated at the end of the stream. Comments (``:``)
    and ``event:``/``id:`` fields are ignored. llama.cpp reports a failure mid-stream as an
    ``error:`` field; its value is kept on :attr:`error`.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self.error: str | None = None

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\r")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "error":
            self.error = value
        return None

    def flush(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Every event's data from an iterable of lines, ``[DONE]`` included."""
    decoder = SSEDecoder()
    for line in lines:
        data = decoder.feed(line)
        if data is not None:
            yield data
    data = decoder.flush()
    if data is not None:
        yield data
