"""DMR's request log, ``GET /engines/requests`` (DMR's ``pkg/metrics/openai_recorder.go``), with no I/O.

What DMR records, and how (read from its source, snapshot of July 2026):

- **Which requests.** Every request that reaches the scheduler's inference handler *after* its runner
  is loaded: ``chat/completions``, ``completions``, ``embeddings``, ``images/generations``,
  ``messages`` and ``messages/count_tokens`` under ``/engines[/{backend}]/v1`` (and the ``/v1``
  alias), and ``/engines[/{backend}]/rerank|score`` (and the ``/rerank``, ``/score`` aliases). The
  front-ends go through it too: ``/anthropic/v1/messages`` is recorded as ``/engines/v1/messages``,
  Ollama's ``/api/chat`` and ``/api/generate`` and the Responses API as
  ``/engines[/{backend}]/v1/chat/completions`` with DMR's translated chat body. Not recorded: a
  request refused before the load (bad JSON, no model, unknown model or backend, load failure) and
  a preload (``X-Preload-Only: true``).
- **Keys.** Records are kept per model *ID* (``sha256:...``; DMR's ``ResolveID``, which falls back
  to the reference itself), at most :data:`MAX_RECORDS_PER_MODEL`, oldest dropped first. A model's
  entry is created with its runner's configuration when a runner starts (``count`` 0), and dropped,
  records and all, when any of its runners terminates (unload, idle timeout, eviction).
- **A record** (:func:`record_json`): ``id`` ``<model ID>_<Unix nanoseconds>``, ``model`` the name
  the request used, ``method``, ``url`` (the path only, after the alias rewrite), ``request`` (the
  body, with base64 media cut, :func:`truncate_media`), ``timestamp`` (Unix **seconds**),
  ``status_code`` (0 while the answer is in flight, 408 when none was written), ``user_agent``,
  ``origin`` (the ``X-Request-Origin`` header: ``ollama/completion``, ``anthropic/messages``), and
  ``response`` or ``error`` (:func:`outcome`): a streamed answer is reassembled into one JSON body.
  The Responses front-end sends a fresh request: no ``user_agent`` and no ``origin``.
- **JSON.** ``[{"count","model","config","records":[...]}]`` (Go's encoder: trailing newline);
  ``model`` is the model ID; ``[]`` when nothing matches ``?model=`` (never a 404). DMR lists
  models in Go's random map order; here, in the order they were first recorded.
- **Events** (``Accept`` exactly ``text/event-stream``): with ``?include_existing=true``, one
  ``existing_request`` event per stored record first; then ``connected``; then one ``new_request``
  per *completed* request (``?model=`` compared with the name the request used, not its ID).

:class:`RequestLog` holds the records (thread-safe, no clock: callers pass times); the encoders
turn what it returns into DMR's bytes.
"""

from __future__ import annotations

import decimal
import json
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_dmr.protocol._regex import compiled
from pytest_dmr.protocol.encoding import EVENT_STREAM, JSON_CONTENT_TYPE

__all__ = [
    "CONNECTED_EVENT",
    "EVENT_STREAM_HEADERS",
    "MAX_MEDIA_DATA_LENGTH",
    "MAX_RECORDS_PER_MODEL",
    "ORIGIN_ANTHROPIC_MESSAGES",
    "ORIGIN_OLLAMA_COMPLETION",
    "REQUESTS_PATH",
    "REQUEST_ORIGIN_HEADER",
    "SUBSCRIBER_BUFFER",
    "Outcome",
    "RequestLog",
    "Subscription",
    "default_record_id",
    "encode_event",
    "go_marshal",
    "outcome",
    "record_json",
    "records_body",
    "request_origin",
    "truncate_media",
    "wants_event_stream",
]

REQUESTS_PATH = "/engines/requests"
MAX_RECORDS_PER_MODEL = 10
SUBSCRIBER_BUFFER = 100
"""Events a subscriber may have waiting; DMR drops new ones for a subscriber that falls behind."""
MAX_MEDIA_DATA_LENGTH = 100
STREAMING_ERROR_STATUS = 400
"""The ``status_code`` of a streaming error that carries no ``code``."""
NO_RESPONSE_STATUS = 408
"""Recorded when the handler wrote no status (the request was cancelled before an answer)."""

REQUEST_ORIGIN_HEADER = "X-Request-Origin"
ORIGIN_OLLAMA_COMPLETION = "ollama/completion"
ORIGIN_ANTHROPIC_MESSAGES = "anthropic/messages"

EVENT_STREAM_HEADERS = (("Content-Type", EVENT_STREAM), ("Cache-Control", "no-cache"), ("Connection", "keep-alive"))
JSON_HEADERS = (("Content-Type", JSON_CONTENT_TYPE),)

CONNECTED_EVENT = b'event: connected\ndata: {"status": "connected"}\n\n'
"""Sent once a subscriber is registered (and after any ``existing_request`` events); note the space DMR writes."""


def wants_event_stream(accept: str | None) -> bool:
    """DMR streams events only when the (first) ``Accept`` header is exactly ``text/event-stream``."""
    return accept == EVENT_STREAM


def request_origin(path: str, header: str | None) -> str:
    """The ``origin`` DMR records: the ``X-Request-Origin`` header; for a path ending in
    ``/v1/messages`` without one, ``anthropic/messages`` (set by the scheduler)."""
    if header:
        return header
    return ORIGIN_ANTHROPIC_MESSAGES if path.endswith("/v1/messages") else ""


def default_record_id(model_id: str, now_ns: int) -> str:
    """DMR's record ID: ``<model ID>_<Unix nanoseconds>``."""
    return f"{model_id}_{now_ns}"


# Go's encoding/json for what DMR decodes into ``map[string]interface{}`` and marshals back


def _reject_constant(constant: str) -> Any:
    raise ValueError(constant)


def _float64(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} out of range")
    return number


def _go_loads(text: str) -> Any:
    """``json.Unmarshal`` into ``interface{}``: every number a float64; :class:`ValueError` for what
    Go rejects (``NaN``, ``Infinity``, a number out of float64's range)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_float64, parse_int=_float64)


def _is_go_json(text: str) -> bool:
    try:
        _go_loads(text)
    except ValueError:
        return False
    return True


_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _go_float(number: float) -> str:
    """A float64 as Go's encoder writes it: shortest digits, fixed notation for 1e-6 <= |x| < 1e21,
    else exponent notation with at least one exponent digit (``1e-7``, ``1e+21``)."""
    if number == 0:
        return "-0" if str(number).startswith("-") else "0"
    magnitude = abs(number)
    if 1e-6 <= magnitude < 1e21:
        text = format(decimal.Decimal(repr(number)), "f")
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, exponent = repr(number).partition("e")
    mantissa = mantissa[:-2] if mantissa.endswith(".0") else mantissa
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    return f"{mantissa}e{sign}{digits}"


def go_marshal(value: Any, *, maps: bool = False) -> str:
    """Go's ``json.Marshal``: compact, ``<``, ``>``, ``&`` escaped. ``maps``: the value went through
    ``map[string]interface{}``, so object keys come out sorted and every number is a float64
    (``1.0`` -> ``1``, ``1e21`` -> ``1e+21``); otherwise keys keep their order (a Go struct) and
    only floats are reformatted."""
    if isinstance(value, Mapping):
        items = sorted(value.items()) if maps else value.items()
        return "{" + ",".join(go_marshal(str(key)) + ":" + go_marshal(item, maps=maps) for key, item in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_marshal(item, maps=maps) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) or (maps and isinstance(value, int)):
        return _go_float(float(value))
    if isinstance(value, int):
        return str(value)
    text = compiled(r"[\ud800-\udfff]").sub("\ufffd", str(value))  # Go: a lone surrogate becomes U+FFFD
    return json.dumps(text, ensure_ascii=False).translate(_HTML_SAFE)


# What a record holds


def _truncate_base64(data: str) -> str:
    """DMR's ``truncateBase64Data``: keep the first 100 characters of the payload and say how many went.
    Lengths count UTF-8 bytes, as Go does (base64 is ASCII)."""
    limit = MAX_MEDIA_DATA_LENGTH
    if len(data.encode()) <= limit:
        return data
    if data.startswith("data:"):
        head, comma, payload = data.partition(",")
        raw = payload.encode()
        if comma and len(raw) > limit:
            kept = raw[:limit].decode(errors="replace")
            return f"{head},{kept}...[truncated {len(raw) - limit} chars]"
        return data
    raw = data.encode()
    return f"{raw[:limit].decode(errors='replace')}...[truncated {len(raw) - limit} chars]"


def truncate_media(body: bytes | str) -> str:
    """The ``request`` DMR records: a body with a ``messages`` array is decoded and marshalled again
    (keys sorted, numbers as float64, ``image_url.url`` and ``input_audio.data`` of content parts cut
    to 100 characters); any other body (not JSON, no ``messages``) is kept as sent."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        data = _go_loads(text)
    except ValueError:
        return text
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        return text
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            image_url, audio = part.get("image_url"), part.get("input_audio")
            if isinstance(image_url, dict) and isinstance(image_url.get("url"), str):
                image_url["url"] = _truncate_base64(image_url["url"])
            if isinstance(audio, dict) and isinstance(audio.get("data"), str):
                audio["data"] = _truncate_base64(audio["data"])
    return go_marshal(data, maps=True)


@dataclass(frozen=True)
class Outcome:
    """What a finished request leaves on its record: ``response`` or ``error`` (the other empty)."""

    status_code: int
    response: str = ""
    error: str = ""


def _streaming_error(message: str, details: str, *, status: int = STREAMING_ERROR_STATUS, type: str = "") -> str:
    """DMR's ``StreamingError`` as JSON: ``status_code``, ``message``, then ``type`` and ``details`` when set."""
    error: dict[str, Any] = {"status_code": status, "message": message}
    if type:
        error["type"] = type
    if details:
        error["details"] = details
    return go_marshal(error)


def _object(text: str) -> dict[str, Any] | None:
    """``json.Unmarshal`` into ``map[string]interface{}``: the object, ``None`` for ``null``; :class:`ValueError` otherwise."""
    value = _go_loads(text)
    if value is None or isinstance(value, dict):
        return value
    raise ValueError("not an object")


_T = TypeVar("_T")


def _get(data: Mapping[str, Any] | None, key: str, kind: type[_T]) -> _T | None:
    """A Go type assertion: ``data[key]`` when it is a ``kind`` (``bool`` is no number), else ``None``."""
    value = data.get(key) if data is not None else None
    return value if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool) else None


def _openai_stream(body: str) -> tuple[str, str]:
    """DMR's ``convertStreamingResponse``: ``(response, streaming error JSON or "")``. The text of
    every ``delta.content`` (and ``reasoning_content``) becomes one ``message`` on the last chunk's
    first choice, over the last chunk (usage included); tool-call deltas are not kept."""
    content, reasoning = [], []
    last_chunk: dict[str, Any] | None = None
    last_choice: dict[str, Any] | None = None
    for line in body.split("\n"):
        if line.startswith("error: "):
            data = line[len("error: "):]
            try:
                error = _object(data)
            except ValueError:
                return body, _streaming_error("unparseable streaming error", data)
            code = _get(error, "code", float)
            return body, _streaming_error(
                _get(error, "message", str) or "streaming error", data,
                status=STREAMING_ERROR_STATUS if code is None else int(code), type=_get(error, "type", str) or "",
            )  # fmt: skip
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            break
        try:
            last_chunk = _object(data)
        except ValueError:
            continue
        choices = _get(last_chunk, "choices", list)
        if choices and isinstance(choices[0], dict):
            last_choice = choices[0]
            delta = _get(last_choice, "delta", dict)
            content.append(_get(delta, "content", str) or "")
            reasoning.append(_get(delta, "reasoning_content", str) or "")
    if last_chunk is None:
        return body, ""
    choice = dict(last_choice or {})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
    if "".join(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    choice["message"] = message
    choice.pop("delta", None)
    choice.setdefault("finish_reason", "stop")
    final = {**last_chunk, "choices": [choice], "object": "chat.completion"}
    return go_marshal(final, maps=True), ""


def _anthropic_stream(body: str) -> tuple[str, str]:
    """DMR's ``convertAnthropicStreamingResponse``: the ``message_start`` message with the text of
    every ``text_delta`` as one text block, and the last ``message_delta``'s usage and stop reason."""
    text: list[str] = []
    message: dict[str, Any] | None = None
    event = ""
    for line in body.split("\n"):
        if line.startswith("event: "):
            event = line[len("event: "):]
            continue
        if not line.startswith("data: ") or line == "data: ":
            continue
        data = line[len("data: "):]
        try:
            chunk = _object(data)
        except ValueError:
            continue
        kind = _get(chunk, "type", str)
        if event == "error" or kind == "error":
            error = _get(chunk, "error", dict)
            return body, _streaming_error(
                _get(error, "message", str) or "streaming error", data, type=_get(error, "type", str) or ""
            )
        delta = _get(chunk, "delta", dict)
        if kind == "message_start" and _get(chunk, "message", dict) is not None:
            message = _get(chunk, "message", dict)
        elif kind == "content_block_delta" and _get(delta, "type", str) == "text_delta":
            text.append(_get(delta, "text", str) or "")
        elif kind == "message_delta" and message is not None:
            usage, stop_reason = _get(chunk, "usage", dict), _get(delta, "stop_reason", str)
            if usage is not None:
                message["usage"] = usage
            if stop_reason is not None:
                message["stop_reason"] = stop_reason
    if message is None:
        return body, ""
    final = {**message, "content": [{"type": "text", "text": "".join(text)}]}
    final.setdefault("stop_reason", "end_turn")
    return go_marshal(final, maps=True), ""


def _error_json(text: str) -> str:
    """DMR's ``normalizeErrorToJSON``: JSON as is, other text wrapped (with Go's space after the colon)."""
    if text == "":
        return '{"error": "unknown error"}'
    if _is_go_json(text):
        return text
    return '{"error": ' + go_marshal(text) + "}"


def outcome(status_code: int, body: bytes | str, *, origin: str = "") -> Outcome:
    """What DMR records for an answer (``RecordResponse``): a body containing ``data: `` is taken as
    a stream and reassembled (a chat completion, or a Messages body for the ``anthropic/messages``
    origin); a streaming error (an ``error:`` line, an Anthropic ``error`` event) or a status >= 400
    gives ``error`` instead of ``response``. Status 0 (no answer written) is recorded as 408."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    status = status_code or NO_RESPONSE_STATUS
    response, streaming_error = text, ""
    if "data: " in text:
        convert = _anthropic_stream if origin == ORIGIN_ANTHROPIC_MESSAGES else _openai_stream
        response, streaming_error = convert(text)
    if streaming_error:
        return Outcome(status, error=streaming_error)
    if status >= 400:
        return Outcome(status, error=_error_json(response))
    return Outcome(status, response=response)


def record_json(
    *,
    id: str,
    model: str,
    method: str,
    url: str,
    request: str,
    timestamp: int,
    status_code: int = 0,
    response: str = "",
    error: str = "",
    user_agent: str = "",
    origin: str = "",
) -> dict[str, Any]:
    """One ``RequestResponsePair``, fields in DMR's order, empty ``response``, ``error``,
    ``user_agent`` and ``origin`` left out."""
    record: dict[str, Any] = {"id": id, "model": model, "method": method, "url": url, "request": request}
    if response:
        record["response"] = response
    if error:
        record["error"] = error
    record.update(timestamp=timestamp, status_code=status_code)
    if user_agent:
        record["user_agent"] = user_agent
    if origin:
        record["origin"] = origin
    return record


def _entry(model: str, config: Mapping[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``ModelRecordsResponse``: ``count``, ``model``, ``config``, ``records``."""
    return {"count": len(records), "model": model, "config": dict(config), "records": records}


def records_body(entries: list[dict[str, Any]]) -> bytes:
    """The JSON body of ``GET /engines/requests`` (``application/json``): Go's encoder, so a newline ends it."""
    return (go_marshal(entries) + "\n").encode()


def encode_event(name: str, entries: list[dict[str, Any]]) -> bytes:
    """One SSE event of the request stream: ``event: <name>`` and ``data: <JSON array>``
    (``new_request`` or ``existing_request``, each carrying one record)."""
    return f"event: {name}\ndata: {go_marshal(entries)}\n\n".encode()


# The log


class _ModelData:
    __slots__ = ("config", "records")

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []


class Subscription:
    """One listener of the event stream: :meth:`get` the next ``new_request`` payload (a one-entry
    list, as :func:`encode_event` takes it) or ``None`` after ``timeout`` seconds. Its buffer holds
    :data:`SUBSCRIBER_BUFFER` payloads; more are dropped, as DMR drops them."""

    def __init__(self, model: str = "", buffer: int = SUBSCRIBER_BUFFER) -> None:
        self.model = model
        self._queue: queue.Queue[list[dict[str, Any]]] = queue.Queue(maxsize=buffer)

    def offer(self, entries: list[dict[str, Any]]) -> None:
        """Queue a payload unless this subscriber filters on another model name or is full."""
        if self.model and entries and entries[0]["model"] != self.model:
            return
        try:
            self._queue.put_nowait(entries)
        except queue.Full:
            pass

    def get(self, timeout: float | None = None) -> list[dict[str, Any]] | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self, timeout: float | None = None) -> Iterator[bytes]:
        """``new_request`` events as they come, until ``timeout`` passes with none."""
        while (entries := self.get(timeout)) is not None:
            yield encode_event("new_request", entries)


class RequestLog:
    """DMR's request recorder for one runner: per model ID, the last :data:`MAX_RECORDS_PER_MODEL`
    requests and the model's runner configuration. Thread-safe; no clock (callers pass Unix
    nanoseconds). ``resolve_id`` maps a model name to its ID (DMR's ``ResolveID``: the name itself
    when the model is unknown); ``make_id`` makes record IDs from (model ID, nanoseconds)."""

    def __init__(
        self,
        resolve_id: Callable[[str], str] = str,
        *,
        make_id: Callable[[str, int], str] = default_record_id,
        max_records: int = MAX_RECORDS_PER_MODEL,
    ) -> None:
        self._resolve_id, self._make_id, self._max = resolve_id, make_id, max_records
        self._lock = threading.Lock()
        self._models: dict[str, _ModelData] = {}
        self._subscribers: list[Subscription] = []

    def _data(self, model_id: str) -> _ModelData:
        return self._models.setdefault(model_id, _ModelData())

    def set_config(self, model: str, config: Mapping[str, Any]) -> None:
        """A runner started for ``model`` with ``config`` (``RunnerConfig.to_json()``: ``{}`` or
        ``{"context-size": N}`` by default): its entry exists from now on, with ``count`` 0."""
        model_id = self._resolve_id(model)
        with self._lock:
            self._data(model_id).config = dict(config)

    def remove_model(self, model: str) -> None:
        """A runner of ``model`` terminated: DMR forgets the model's records and configuration."""
        model_id = self._resolve_id(model)
        with self._lock:
            self._models.pop(model_id, None)

    def record_request(
        self,
        model: str,
        *,
        url: str,
        body: bytes | str,
        now_ns: int,
        method: str = "POST",
        user_agent: str = "",
        origin: str = "",
    ) -> str:
        """Record a request as the scheduler starts to serve it (``status_code`` 0, no answer yet);
        returns its ID for :meth:`record_response`. ``url`` is the path after the alias rewrite."""
        model_id, request = self._resolve_id(model), truncate_media(body)
        with self._lock:
            record_id = self._make_id(model_id, now_ns)
            record = record_json(
                id=record_id, model=model, method=method, url=url, request=request,
                timestamp=now_ns // 1_000_000_000, user_agent=user_agent, origin=origin,
            )  # fmt: skip
            records = self._data(model_id).records
            records.append(record)
            del records[: max(0, len(records) - self._max)]
        return record_id

    def record_response(self, record_id: str, model: str, *, status_code: int, body: bytes | str) -> bool:
        """Complete a record with its answer (:func:`outcome`) and tell the subscribers. ``False``
        when the record is gone (pushed out by newer ones, or the model removed), as DMR only logs then."""
        model_id = self._resolve_id(model)
        with self._lock:
            data = self._models.get(model_id)
            record = next((r for r in reversed(data.records) if r["id"] == record_id), None) if data else None
            if data is None or record is None:
                return False
            result = outcome(status_code, body, origin=record.get("origin", ""))
            completed = record_json(
                **{**record, "status_code": result.status_code, "response": result.response, "error": result.error}
            )
            record.clear()
            record.update(completed)
            payload = [_entry(model, data.config, [dict(record)])]
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(payload)
        return True

    def record(
        self,
        model: str,
        *,
        url: str,
        body: bytes | str,
        now_ns: int,
        status_code: int,
        response: bytes | str,
        method: str = "POST",
        user_agent: str = "",
        origin: str = "",
    ) -> str:
        """:meth:`record_request` and :meth:`record_response` at once, for an answer already complete."""
        record_id = self.record_request(
            model, url=url, body=body, now_ns=now_ns, method=method, user_agent=user_agent, origin=origin
        )
        self.record_response(record_id, model, status_code=status_code, body=response)
        return record_id

    def records(self, model: str | None = None) -> list[dict[str, Any]]:
        """The ``GET /engines/requests[?model=]`` array: every model (an empty or missing ``model``),
        or the one ``model`` resolves to; ``[]`` when it has no entry. Each ``model`` is the model ID."""
        with self._lock:
            if not model:
                selected = list(self._models.items())
            else:
                model_id = self._resolve_id(model)
                selected = [(model_id, self._models[model_id])] if model_id in self._models else []
            return [_entry(key, data.config, [dict(r) for r in data.records]) for key, data in selected]

    def existing_events(self, model: str | None = None) -> bytes:
        """The ``existing_request`` events sent first for ``?include_existing=true``: one per record."""
        return b"".join(
            encode_event("existing_request", [_entry(entry["model"], entry["config"], [record])])
            for entry in self.records(model)
            for record in entry["records"]
        )

    def subscribe(self, model: str | None = None) -> Subscription:
        """Register a listener of ``new_request`` events, for ``?model=`` (matched against the name
        each request used). Send :meth:`stream_start`, then its events; :meth:`unsubscribe` at the end."""
        subscription = Subscription(model or "")
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def stream_start(self, model: str | None = None, *, include_existing: bool = False) -> bytes:
        """The first bytes of the event stream: the existing records when asked, then ``connected``."""
        return (self.existing_events(model) if include_existing else b"") + CONNECTED_EVENT
