"""Which recorded exchange answers a request: both normalised as DMR would read them, then compared.

What is the same request (decided here, documented in the README's cassette section):

- the host is not part of it (a cassette replays against any runner, or none);
- paths as DMR routes them: cleaned (``//``), Docker Desktop's ``/exp/vDD4.40`` prefix dropped, the
  ``/v1/...`` alias the same as ``/engines/v1/...`` (a named backend, ``/engines/llama.cpp/v1/...``,
  stays apart: another backend may answer otherwise); a model reference in ``/models/{ref}``
  normalised;
- query parameters in any order, key-like values masked (they are never recorded);
- headers: only those that change DMR's answer: ``Accept`` (pull progress as JSON or text; absent
  is ``*/*``), ``Origin`` (CORS) and ``X-Preload-Only``. User agents, SDK telemetry
  (``x-stainless-*``), credentials and the like are not compared;
- JSON bodies as values: key order ignored, ``1.0`` equal to ``1``, the ``model`` (and a pull's
  ``from``) compared in DMR's canonical form (``smollm2`` = ``docker.io/ai/smollm2:latest``). No
  body field is ignored by default: ``seed``, ``user``, ``metadata``, ``stream_options`` all change
  or may change the answer. ``ignore`` takes dotted paths to leave out (``metadata.trace_id``).

Identical requests are answered by their recorded exchanges in order; once those are used up, the
last one answers again (a runner asked the same thing again answers alike; probes such as ``GET /``
happen a varying number of times).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from pytest_dmr.errors import CassetteMismatchError
from pytest_dmr.protocol import addresses, model_names, routes
from pytest_dmr.redaction import MASK, SECRET_HEADERS, is_secret_parameter
from pytest_dmr.cassettes.format import Exchange, RecordedRequest

MATCHED_HEADERS = ("accept", "origin", "x-preload-only")
"""Request headers that change DMR's answer, so take part in matching."""
RECORDED_HEADERS = frozenset(
    {*MATCHED_HEADERS, "content-type", "access-control-request-method", "access-control-request-headers", *SECRET_HEADERS}
)
"""Request headers written to a cassette (credentials masked: their presence only)."""
MODEL_FIELDS = ("model", "from")
"""Top-level body fields holding a model reference (``from``: a pull's ``/models/create`` body)."""

_FIXED_MODEL_ROUTES = frozenset({"create", "purge", "prune", "load", "json"})
_MISMATCH_HINT = (
    "Record it with --dmr-record=new (or =all), or let the mock answer what the cassette lacks; a field "
    "that changes from run to run can be left out of matching (ignore=['metadata.trace_id'])"
)


def capture(method: str, path: str, query: str, headers: Iterable[tuple[str, str]], body: bytes) -> RecordedRequest:
    """A request as a cassette keeps it: no host, selected headers, every credential masked."""
    pairs = [(name, MASK if is_secret_parameter(name) else value) for name, value in parse_qsl(query, keep_blank_values=True)]
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in RECORDED_HEADERS:
            kept[lower] = MASK if lower in SECRET_HEADERS else value
    return RecordedRequest(method.upper(), path, pairs, kept, body)


@lru_cache(maxsize=512)  # a pure function of few distinct values: each replayed call would redo it
def normalize_path(method: str, path: str) -> str:
    """The route DMR would take: see the module docstring."""
    path = routes.clean_path(path)
    prefix = addresses.DESKTOP_SOCKET_PREFIX
    if path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    if path.startswith(routes.ALIAS_PREFIX + "/"):
        path = routes.ENGINES_PREFIX + path[len(routes.ALIAS_PREFIX) :]
    if method in ("GET", "DELETE"):
        for models in (routes.MANAGEMENT_MODELS_PATH + "/", routes.ENGINES_PREFIX + routes.MODELS + "/"):
            ref = path[len(models) :] if path.startswith(models) else ""
            if ref and ref not in _FIXED_MODEL_ROUTES:
                return models + model_names.canonical_model_name(ref)
    return path


def _number(text: str) -> float | int:
    """A JSON number with a fraction or exponent: ``1.0`` as ``1`` (the same value to DMR)."""
    value = float(text)
    return int(value) if value.is_integer() else value


_DECODER = json.JSONDecoder(parse_float=_number)
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # made once: json.dumps(sort_keys=...) makes one per call
canonical_model = lru_cache(maxsize=512)(model_names.canonical_model_name)
""":func:`~pytest_dmr.protocol.model_names.canonical_model_name`, remembered (a run names few models)."""


def _drop(value: Any, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value.pop(last, None)


def normalize_body(body: bytes, ignore: Iterable[str] = ()) -> Any:
    """A JSON body as a value (model names canonical, ``ignore``'s fields left out); other bodies as text."""
    if not body:
        return None
    try:
        value = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError):
        try:
            return {"<text>": body.decode("utf-8")}
        except UnicodeDecodeError:
            return {"<bytes>": body.hex()}
    if isinstance(value, dict):
        for name in MODEL_FIELDS:
            model = value.get(name)
            if isinstance(model, str):
                value[name] = canonical_model(model)
        for dotted in ignore:
            _drop(value, dotted)
    return value


@dataclass(frozen=True)
class Normalized:
    """A request reduced to what matching compares; ``key`` is its identity."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: Any
    key: str

    def fields(self) -> dict[str, Any]:
        """Every compared field by name: ``method``, ``path``, ``query.NAME``, ``header.NAME``, ``body.a[0].b``."""
        flat: dict[str, Any] = {"method": self.method, "path": self.path}
        for name, value in self.query:
            flat[f"query.{name}"] = value
        for name, value in self.headers:
            flat[f"header.{name}"] = value
        _flatten(self.body, "body", flat)
        return flat


def _flatten(value: Any, prefix: str, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", into)
    elif isinstance(value, list) and value:
        for number, item in enumerate(value):
            _flatten(item, f"{prefix}[{number}]", into)
    else:
        into[prefix] = value


def _parts(method: str, path: str, query: Iterable[tuple[str, str]], header: Callable[[str], str | None], body: bytes,
           ignore: Iterable[str]) -> tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], Any, str]:
    method = method.upper()
    path = normalize_path(method, path)
    pairs = tuple(sorted((name, MASK if is_secret_parameter(name) else value) for name, value in query))
    headers = tuple((name, value) for name in MATCHED_HEADERS if (value := header(name) or ("*/*" if name == "accept" else "")))
    value = normalize_body(body, ignore)
    key = _KEY_ENCODER.encode([method, path, pairs, headers, value])
    return method, path, pairs, headers, value, key


def normalize(request: RecordedRequest, ignore: Iterable[str] = ()) -> Normalized:
    """``request`` as matching sees it (see the module docstring)."""
    return Normalized(*_parts(request.method, request.path, request.query, request.headers.get, request.body, ignore))


_MATCHED_RAW = {name.encode(): name for name in MATCHED_HEADERS}


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def sent_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The :data:`MATCHED_HEADERS` among a stack's ``headers.raw``; of a repeated one, the last
    value, as :func:`capture` keeps it in a cassette (so a request replays as it was recorded)."""
    headers: dict[str, str] = {}
    for name, value in raw_headers:
        matched = _MATCHED_RAW.get(name.lower())
        if matched is not None:
            headers[matched] = _text(value)
    return headers


_ABSENT = object()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(recorded: Normalized, sent: Normalized, limit: int = 8) -> list[str]:
    """``field: recorded X, sent Y`` for every compared field that differs (at most ``limit`` lines)."""
    old, new = recorded.fields(), sent.fields()
    lines = [
        f"{name}: recorded {_show(old.get(name, _ABSENT))}, sent {_show(new.get(name, _ABSENT))}"
        for name in [*old, *(name for name in new if name not in old)]
        if old.get(name, _ABSENT) != new.get(name, _ABSENT)
    ]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more fields"]
    return lines


class Index:
    """A cassette's exchanges by request, answered in recorded order (the last one repeats); one
    index may serve several transports (a test's sync client and async adapter) on several threads."""

    def __init__(self, exchanges: Iterable[Exchange], ignore: Iterable[str] = ()) -> None:
        self.ignore = tuple(ignore)
        self._entries: list[tuple[Normalized, Exchange]] = []
        self._by_key: dict[str, list[Exchange]] = {}
        self._by_sent: dict[tuple[Any, ...], str] = {}
        self._next: dict[str, int] = {}
        self.used: set[int] = set()
        self._lock = threading.Lock()
        for exchange in exchanges:
            self.add(exchange)

    def add(self, exchange: Exchange) -> None:
        normalized = normalize(exchange.request, self.ignore)
        self._entries.append((normalized, exchange))
        self._by_key.setdefault(normalized.key, []).append(exchange)
        request = exchange.request
        sent = (request.method, request.path, tuple(request.query), tuple(map(request.headers.get, MATCHED_HEADERS)), request.body)
        self._by_sent.setdefault(sent, normalized.key)

    def key(self, method: str, path: str, query: str, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes) -> str:
        """The :attr:`Normalized.key` of a request as a client sends it (``raw_headers``: its stack's
        ``headers.raw``), what a replayed call pays: looked up when the request is byte for byte a
        recorded one (a cassette's JSON bodies are compact, as the SDKs and httpx send them), else
        normalised without first building its :class:`RecordedRequest`."""
        pairs = tuple(parse_qsl(query, keep_blank_values=True)) if query else ()
        headers = sent_headers(raw_headers)
        key = self._by_sent.get((method, path, pairs, tuple(map(headers.get, MATCHED_HEADERS)), body))
        return key if key is not None else _parts(method, path, pairs, headers.get, body, self.ignore)[-1]

    def __len__(self) -> int:
        return len(self._entries)

    def answer(self, request: Normalized | str) -> Exchange | None:
        """The next recorded exchange for ``request`` (or its key: the last one again once all are used), or ``None``."""
        key = request if isinstance(request, str) else request.key
        candidates = self._by_key.get(key)
        if not candidates:
            return None
        with self._lock:
            position = self._next.get(key, 0)
            self._next[key] = position + 1
            exchange = candidates[min(position, len(candidates) - 1)]
            self.used.add(id(exchange))
        return exchange

    def unused(self) -> list[Exchange]:
        """Recorded exchanges no request has used."""
        return [exchange for _, exchange in self._entries if id(exchange) not in self.used]

    def mismatch(self, request: RecordedRequest, normalized: Normalized, cassette: str) -> CassetteMismatchError:
        """The error for a request no exchange matches: the closest recorded request and what differs."""
        where = f"cassette {cassette}" if cassette else "the cassette"
        sent = request.describe()
        if not self._entries:
            return CassetteMismatchError(f"no recorded answer for {sent}: {where} is empty.\n{_MISMATCH_HINT}",
                                         path=cassette, request=sent)

        def distance(entry: tuple[int, tuple[Normalized, Exchange]]) -> tuple[int, int]:
            recorded = entry[1][0]
            route = (recorded.method != normalized.method) + (recorded.path != normalized.path)
            return (route, len(differences(recorded, normalized, limit=10**6)))

        number, (closest, exchange) = min(enumerate(self._entries, 1), key=distance)
        lines = "\n".join(f"  - {line}" for line in differences(closest, normalized))
        count = len(self._entries)
        described = exchange.request.describe()
        message = (
            f"no recorded answer for {sent} in {where} ({count} exchange{'s' if count != 1 else ''}). "
            f"The closest recorded request, exchange {number} ({described}), differs in:\n{lines}\n{_MISMATCH_HINT}"
        )
        return CassetteMismatchError(message, path=cassette, request=sent, closest=described)
