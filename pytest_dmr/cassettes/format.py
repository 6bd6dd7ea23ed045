"""The cassette file: recorded exchanges as indented JSON, written to read well in a diff.

Why JSON, and this layout: YAML is not a dependency, and JSON Lines puts a whole exchange on one
line, so any change rewrites the line. Here every container that holds other containers is spread
over lines (two-space indent), and every *flat* one (a header pair, a message, a stream chunk, an
embedding's vector) is one line. A changed word in a reply is a one-line diff; an added stream
chunk is one added line. Keys keep a fixed order (the order written here, and a JSON body's own).

A cassette::

    {
      "pytest_dmr_cassette": 1,
      "exchanges": [
        {
          "request": {
            "method": "POST",
            "path": "/engines/v1/chat/completions",
            "headers": {"accept": "application/json", "content-type": "application/json"},
            "json": {
              "model": "ai/smollm2",
              "messages": [
                {"role": "user", "content": "Say hi"}
              ],
              "stream": true
            }
          },
          "response": {
            "status": 200,
            "headers": [["content-type", "text/event-stream"]],
            "chunks": [
              {"ms": 12, "text": "data: {...}\\n\\n"},
              {"ms": 3, "text": "data: [DONE]\\n\\n"}
            ]
          }
        }
      ]
    }

Bodies: ``json`` (a request's parsed body; a response's, only when re-encoding it in the recorded
``json_style`` gives back the exact bytes), else ``text`` (UTF-8), else ``base64``; no key for an
empty body. Streams (server-sent events, NDJSON, pull progress) keep their exact chunks, each with
the milliseconds since the previous one (``ms``); a stream the client stopped reading, or that
broke, has ``"complete": false``. ``query`` (a list of pairs) and ``headers`` are left out when empty.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_dmr.errors import CassetteError

FORMAT_KEY = "pytest_dmr_cassette"
FORMAT_VERSION = 1
EXTENSION = ".json"

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed body, exactly as it arrived, ``ms`` after the previous one."""

    data: bytes
    ms: int = 0


@dataclass
class RecordedRequest:
    """A request as the cassette keeps it: no host (a cassette replays against any runner), selected
    headers with credentials masked, key-like query values masked, the body parsed when JSON."""

    method: str
    path: str
    query: Pairs = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def describe(self) -> str:
        """``POST /engines/v1/chat/completions`` (with its query, if any)."""
        query = "&".join(f"{name}={value}" for name, value in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


@dataclass
class RecordedResponse:
    """An answer: status and headers, and either a whole ``body`` or the stream's ``chunks``."""

    status: int
    headers: Pairs = field(default_factory=list)
    body: bytes = b""
    chunks: list[Chunk] | None = None
    complete: bool = True

    @property
    def content(self) -> bytes:
        """The whole body, streamed or not."""
        return self.body if self.chunks is None else b"".join(chunk.data for chunk in self.chunks)


@dataclass
class Exchange:
    """One request and the answer it got."""

    request: RecordedRequest
    response: RecordedResponse


@dataclass
class Cassette:
    """The exchanges of one test (or of the tests sharing it), in the order their requests were sent."""

    exchanges: list[Exchange] = field(default_factory=list)
    path: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, exchange: Exchange) -> None:
        """Add an exchange (transports on several threads may record into one cassette)."""
        with self._lock:
            self.exchanges.append(exchange)

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read a cassette file; :class:`CassetteError` if it is not one this version can read."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CassetteError(f"cannot read cassette {path}: {exc}", path=str(path)) from exc
        return cls(parse(text, str(path)), path)

    def dumps(self) -> str:
        """The file's text (ends with a newline)."""
        return render({FORMAT_KEY: FORMAT_VERSION, "exchanges": [exchange_to_json(x) for x in self.exchanges]}) + "\n"


# -- bodies --------------------------------------------------------------------------------------

_JSON_STYLES: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},
    "spaced": {"ensure_ascii": False},
    "compact-ascii": {"separators": (",", ":")},
    "spaced-ascii": {},
}
_GO_HTML = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))


def _encode_json(value: Any, style: str) -> bytes:
    """``value`` as a JSON encoder writes it: ``style`` is a key of ``_JSON_STYLES``, ``+go`` (Go's
    HTML escaping of ``<``, ``>``, ``&``) and ``+newline`` (a trailing newline) as suffixes."""
    base, *extras = style.split("+")
    text = json.dumps(value, **_JSON_STYLES[base])
    if "go" in extras:
        for raw, escaped in _GO_HTML:
            text = text.replace(raw, escaped)
    return (text + ("\n" if "newline" in extras else "")).encode()


def _exact_json_style(data: bytes, value: Any) -> str | None:
    """The style that re-encodes ``value`` to exactly ``data``, if one does."""
    newline = "+newline" if data.endswith(b"\n") else ""
    for base in _JSON_STYLES:
        for go in ("", "+go"):
            style = base + go + newline
            if _encode_json(value, style) == data:
                return style
    return None


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def body_to_json(data: bytes, *, exact: bool) -> dict[str, Any]:
    """A body's keys: ``json`` (with ``json_style`` when ``exact``), ``text`` or ``base64``."""
    if not data:
        return {}
    value = _parse_json(data) if data[:1] in b"{[" else _NOT_JSON
    if value is not _NOT_JSON:
        if not exact:
            return {"json": value}
        style = _exact_json_style(data, value)
        if style is not None:
            return {"json": value, "json_style": style}
    return text_or_base64(data)


def text_or_base64(data: bytes) -> dict[str, Any]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:  # gzip, or a chunk that split a character
        return {"base64": base64.b64encode(data).decode("ascii")}


def body_from_json(item: dict[str, Any], where: str) -> bytes:
    """The bytes ``body_to_json`` (or ``text_or_base64``) wrote."""
    if "json" in item:
        return _encode_json(item["json"], item.get("json_style", "compact"))
    if "text" in item:
        return str(item["text"]).encode("utf-8")
    if "base64" in item:
        try:
            return base64.b64decode(str(item["base64"]), validate=True)
        except binascii.Error as exc:
            raise CassetteError(f"{where}: base64 that does not decode ({exc})", path=where) from exc
    return b""


# -- exchanges -----------------------------------------------------------------------------------


def exchange_to_json(exchange: Exchange) -> dict[str, Any]:
    request, response = exchange.request, exchange.response
    req: dict[str, Any] = {"method": request.method, "path": request.path}
    if request.query:
        req["query"] = [list(pair) for pair in request.query]
    if request.headers:
        req["headers"] = dict(request.headers)
    req.update(body_to_json(request.body, exact=False))
    resp: dict[str, Any] = {"status": response.status}
    if response.headers:
        resp["headers"] = [list(pair) for pair in response.headers]
    if response.chunks is None:
        resp.update(body_to_json(response.body, exact=True))
    else:
        resp["chunks"] = [{"ms": chunk.ms, **text_or_base64(chunk.data)} for chunk in response.chunks]
    if not response.complete:
        resp["complete"] = False
    return {"request": req, "response": resp}


def _pairs(value: Any, where: str) -> Pairs:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise CassetteError(f"{where}: expected a list of [name, value] pairs", path=where)
    return [(str(name), str(text)) for name, text in value]


def exchange_from_json(item: Any, where: str) -> Exchange:
    try:
        req, resp = item["request"], item["response"]
        request = RecordedRequest(
            method=str(req["method"]),
            path=str(req["path"]),
            query=_pairs(req.get("query", []), where),
            headers={str(k): str(v) for k, v in req.get("headers", {}).items()},
            body=body_from_json(req, where),
        )
        chunks = None
        if "chunks" in resp:
            chunks = [Chunk(body_from_json(chunk, where), int(chunk.get("ms", 0))) for chunk in resp["chunks"]]
        response = RecordedResponse(
            status=int(resp["status"]),
            headers=_pairs(resp.get("headers", []), where),
            body=body_from_json(resp, where) if chunks is None else b"",
            chunks=chunks,
            complete=bool(resp.get("complete", True)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CassetteError(f"{where}: not a recorded exchange ({type(exc).__name__}: {exc})", path=where) from exc
    return Exchange(request, response)


def parse(text: str, where: str = "<cassette>") -> list[Exchange]:
    """The exchanges of a cassette file's text."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CassetteError(f"cassette {where} is not JSON: {exc}", path=where, hint="Delete it and record it again") from exc
    if not isinstance(document, dict) or FORMAT_KEY not in document:
        raise CassetteError(f"{where} is not a pytest-dmr cassette (no {FORMAT_KEY!r} key)", path=where)
    version = document[FORMAT_KEY]
    if version != FORMAT_VERSION:
        raise CassetteError(
            f"cassette {where} has format version {version!r}; this pytest-dmr reads version {FORMAT_VERSION}",
            path=where,
            hint="Upgrade pytest-dmr, or record the cassette again",
        )
    exchanges = document.get("exchanges", [])
    if not isinstance(exchanges, list):
        raise CassetteError(f"{where}: 'exchanges' is not a list", path=where)
    return [exchange_from_json(item, f"{where} exchange {number}") for number, item in enumerate(exchanges, 1)]


# -- the layout ----------------------------------------------------------------------------------


def _is_flat(value: Any) -> bool:
    items: Iterable[Any] = value.values() if isinstance(value, dict) else value
    return not any(isinstance(item, (dict, list)) for item in items)


def render(value: Any, indent: str = "") -> str:
    """JSON with flat containers on one line and nested ones spread, two spaces per level."""
    if not isinstance(value, (dict, list)) or not value or _is_flat(value):
        return json.dumps(value, ensure_ascii=False)
    inner = indent + "  "
    parts: Sequence[str]
    if isinstance(value, dict):
        parts = [f"{inner}{json.dumps(key, ensure_ascii=False)}: {render(item, inner)}" for key, item in value.items()]
        opening, closing = "{", "}"
    else:
        parts = [inner + render(item, inner) for item in value]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(parts) + "\n" + indent + closing
