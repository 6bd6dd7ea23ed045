"""OpenAI Responses as DMR translates it to and from a chat completion (``pkg/responses``).

DMR does not forward ``/v1/responses`` to llama.cpp: it validates the request, turns it into a
``/engines/v1/chat/completions`` body, and turns the answer (plain or streamed) back into a
Response object or Responses SSE events, keeping finished responses for an hour. Every body here
is the JSON value DMR writes, fields in Go's order, empty ``omitempty`` fields left out (so a
stream's ``output_index`` 0 is absent, and an output text part has no ``annotations``).

Typical server use::

    request = parse_create_request(raw_body)                  # ResponsesError -> error_response_body
    history = store.history(request.get("previous_response_id") or "")
    chat_body = to_chat_request(request, history=history)
    base = new_response(request, id=make_id("resp_"), created_at=now)
    # plain:  completed_response(base, chat_json, make_id) or failed_response(base, status, text)
    # stream: ResponseStream(base, make_id).start() / .feed(chunk) / .finish()

IDs come from ``make_id(prefix)`` (``resp_``, ``msg_``, ``item_``, ``call_``): :func:`random_id`
as DMR does, or a seeded one in the mock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_dmr.protocol import encoding, error_bodies, openai_api
from pytest_dmr.protocol.encoding import decode_struct, go_json, go_json_line, random_id

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_REQUEST_BYTES",
    "PREFIXES",
    "RESPONSE_NOT_FOUND",
    "STREAM_HEADERS",
    "MakeId",
    "ResponseStore",
    "ResponseStream",
    "ResponsesError",
    "chat_path",
    "completed_response",
    "deleted_body",
    "encode_event",
    "error_body",
    "failed_response",
    "history_messages",
    "input_items_body",
    "new_response",
    "parse_create_request",
    "parse_failure_response",
    "random_id",
    "to_chat_request",
]

MakeId = Callable[[str], str]
"""``make_id(prefix)``: a fresh ID starting with ``prefix``."""

PREFIXES = ("/responses", "/v1/responses", "/engines/responses", "/engines/v1/responses")
"""Where DMR serves the family, besides ``/engines/{backend}/v1/responses`` (:func:`chat_path`)."""
MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_TTL_SECONDS = 3600.0
RESPONSE_NOT_FOUND = "Response not found"
_LAYER = "Docker Model Runner Responses compatibility layer"
STREAM_HEADERS = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Connection", "keep-alive"))
"""What DMR sets on a stream once the upstream answers 200 (on top of the upstream's own headers)."""


def chat_path(backend: str | None) -> str:
    """The chat-completions path DMR sends the translated request to."""
    return f"/engines/{backend}/v1/chat/completions" if backend else "/engines/v1/chat/completions"


# --------------------------------------------------------------------------------------------
# Errors and request validation
# --------------------------------------------------------------------------------------------


class ResponsesError(Exception):
    """A request DMR refuses: ``status`` and the ``{"error":{"code","message"}}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    """DMR's Responses error (sent as ``application/json``, with a trailing newline)."""
    return {"error": {"code": code, "message": message}}


def _invalid(message: str) -> ResponsesError:
    return ResponsesError(400, "invalid_request", message)


def _unsupported(name: str) -> str:
    return f"{name} is not supported by {_LAYER}"


_CREATE_FIELDS = {
    "model": "string", "instructions": "string", "previous_response_id": "string", "tools": "[]Tool",
    "parallel_tool_calls": "bool", "temperature": "float64", "top_p": "float64", "max_output_tokens": "int",
    "store": "bool", "include": "[]string", "stream": "bool", "top_logprobs": "int", "truncation": "string",
    "background": "bool", "service_tier": "string", "safety_identifier": "string",
    "metadata": "map[string]string", "reasoning_effort": "string", "user": "string",
}  # fmt: skip


def parse_create_request(raw: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> dict[str, Any]:
    """Check a ``POST <prefix>`` body as DMR does, in DMR's order: size (413), JSON, ``model``, then
    each unsupported field. Returns the decoded request; raises :class:`ResponsesError`."""
    if len(raw) > max_bytes:
        raise ResponsesError(413, "request_too_large", f"Request body too large (max {max_bytes} bytes)")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = raw.decode(errors="replace")  # Go replaces invalid UTF-8 in strings the same way
    request, problem = decode_struct(text, "responses.CreateRequest", _CREATE_FIELDS)
    if problem is not None:
        raise _invalid("Invalid JSON: " + problem)
    if not request.get("model"):
        raise _invalid(error_bodies.MODEL_REQUIRED)
    _check_unsupported(request)
    return request


def _check_unsupported(request: Mapping[str, Any]) -> None:
    if request.get("include"):
        raise _invalid(_unsupported("include"))
    if request.get("stream_options") is not None:
        raise _invalid(_unsupported("stream_options"))
    if request.get("top_logprobs") is not None:
        raise _invalid(_unsupported("top_logprobs"))
    truncation = request.get("truncation") or ""
    if truncation not in ("", "disabled"):
        raise _invalid(f"truncation value {encoding.go_quote(truncation)} is not supported by {_LAYER}")
    if request.get("background") is True:
        raise _invalid(f"background responses are not supported by {_LAYER}")
    if request.get("conversation") is not None:
        raise _invalid(f"{_unsupported('conversation')}; use previous_response_id instead")
    for name in ("prompt", "service_tier", "safety_identifier"):
        if request.get(name):
            raise _invalid(_unsupported(name))


# --------------------------------------------------------------------------------------------
# Request -> chat completion
# --------------------------------------------------------------------------------------------

_FORMAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _number(value: Any) -> Any:
    """A JSON number as Go's float64 writes it back (``1.0`` -> ``1``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _go_any(value: Any) -> Any:
    """A JSON value decoded into Go's ``interface{}`` and written back: object keys sorted, numbers as float64."""
    if isinstance(value, dict):
        return {key: _go_any(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_go_any(item) for item in value]
    return _number(value)


def _present(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``omitempty``: keep the pairs whose value is not ``None``, ``""``, ``False``, ``0``, ``[]`` or ``{}``."""
    return {key: value for key, value in pairs if value is not None and value != "" and value is not False and value != 0
            and value != [] and value != {}}  # fmt: skip


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping):
        return None
    kind = fmt.get("type") or ""
    if kind in ("", "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise _invalid(f"unsupported text.format.type {encoding.go_quote(str(kind))}")
    name = fmt.get("name") or ""
    if not name:
        raise _invalid("text.format.name is required when text.format.type is json_schema")
    if not _FORMAT_NAME.match(name):
        raise _invalid("text.format.name must contain only letters, numbers, underscores, and dashes, with a maximum length of 64")
    schema = fmt.get("schema")
    if "schema" not in fmt:
        raise _invalid("text.format.schema is required when text.format.type is json_schema")
    if not isinstance(schema, dict):
        raise _invalid("text.format.schema must be a JSON object")
    json_schema: dict[str, Any] = {"name": name}
    if fmt.get("description"):
        json_schema["description"] = fmt["description"]
    json_schema["schema"] = schema
    if fmt.get("strict") is not None:
        json_schema["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": json_schema}


def _chat_tools(tools: Any) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    converted = []
    for tool in tools:
        if tool.get("type") != "function":
            raise _invalid(f"tool type {encoding.go_quote(str(tool.get('type') or ''))} is not supported by {_LAYER}")
        source = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
        function = {"name": source.get("name") or ""} | _present([("description", source.get("description"))])
        if source.get("parameters") is not None:
            function["parameters"] = _go_any(source["parameters"])
        converted.append({"type": "function", "function": function})
    return converted


def _message(role: str, content: Any, *, tool_calls: list[dict[str, Any]] | None = None, tool_call_id: str = "") -> dict[str, Any]:
    """A ``ChatMessage`` as DMR marshals it: ``content`` always present (``null`` when unset)."""
    return {"role": role, "content": content} | _present([("tool_calls", tool_calls), ("tool_call_id", tool_call_id)])


_ITEM_FIELDS = {name: "string" for name in ("type", "role", "call_id", "output", "id", "name", "arguments")}
_PART_FIELDS = {name: "string" for name in ("type", "text", "image_url", "file_id", "file_data", "filename")}


def _content(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    problem = _list_problem(content, "responses.InputContentPart", _PART_FIELDS)
    if problem:
        raise ValueError(f"content must be string or array: {problem}")
    parts: list[dict[str, Any]] = []
    for part in content:
        part = part or {}
        if part.get("type") in ("input_text", "text"):
            parts.append(_present([("type", "text"), ("text", part.get("text"))]))
        elif part.get("type") in ("input_image", "image_url"):
            parts.append({"type": "image_url", "image_url": {"url": part.get("image_url") or ""}})
    return parts


def _json_kind(value: Any) -> str:
    return {str: "string", bool: "bool", dict: "object", list: "array"}.get(type(value), "number")


def _list_problem(value: Any, struct: str, fields: Mapping[str, str]) -> str | None:
    """Go's error decoding ``value`` into ``[]struct``: not an array, or the first element that does not fit."""
    if not isinstance(value, list):
        return f"json: cannot unmarshal {_json_kind(value)} into Go value of type []{struct}"
    for element in value:
        problem = decode_struct(json.dumps(element), struct, fields)[1]
        if problem:
            return problem
    return None


def input_messages(input: Any) -> list[dict[str, Any]]:
    """The request's ``input`` (a string, or message / ``function_call_output`` items) as chat messages.

    DMR's rules, quirks included: any item with a ``call_id`` (a ``function_call`` echoed back as
    well as a ``function_call_output``) becomes a ``tool`` message carrying its ``output``; an item
    with neither role nor call ID is a user message when it has content. Raises :class:`ValueError`
    with DMR's text."""
    if input is None:
        return [_message("user", "")]  # Go reads null into a string without complaint
    if isinstance(input, str):
        return [_message("user", input)]
    problem = _list_problem(input, "responses.InputItem", _ITEM_FIELDS)
    if problem:
        raise ValueError(f"input must be a string or array of items: {problem}")
    messages = []
    for item in input:
        item = item or {}
        if item.get("type") == "function_call_output" or item.get("call_id"):
            messages.append(_message("tool", item.get("output") or "", tool_call_id=item.get("call_id") or ""))
        elif item.get("role"):
            content = _content(item["content"]) if "content" in item else None
            messages.append(_message(item["role"], content))
        elif "content" in item:
            messages.append(_message("user", _content(item["content"])))
    return messages


def history_messages(chain: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The chat messages DMR rebuilds from stored responses, oldest first: only their *outputs*
    (assistant text, and each function call as an assistant ``tool_calls`` message); DMR keeps no inputs."""
    messages = []
    for response in chain:
        for item in response.get("output") or ():
            if item.get("type") == "message":
                text = "".join(part.get("text", "") for part in item.get("content") or () if part.get("type") == "output_text")
                messages.append(_message(item.get("role") or "", text))
            elif item.get("type") == "function_call":
                call = openai_api.tool_call(id=item.get("call_id", ""), name=item.get("name", ""), arguments=item.get("arguments", ""))
                messages.append(_message("assistant", None, tool_calls=[call]))
    return messages


def to_chat_request(request: Mapping[str, Any], *, history: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The ``/chat/completions`` body DMR sends for a validated request; ``history`` is the
    ``previous_response_id`` chain (:meth:`ResponseStore.history`). Raises :class:`ResponsesError` (400)."""
    response_format = _response_format(request.get("text"))
    tools = _chat_tools(request.get("tools"))
    messages = []
    if request.get("instructions"):
        messages.append(_message("system", request["instructions"]))
    messages.extend(history_messages(history))
    try:
        messages.extend(input_messages(request.get("input")) if "input" in request else [])
    except ValueError as exc:
        raise _invalid(f"failed to parse input: {exc}") from None
    body: dict[str, Any] = {"model": request["model"], "messages": messages or None}
    body |= _present([("tools", tools)])
    if request.get("tool_choice") is not None:
        body["tool_choice"] = _go_any(request["tool_choice"])
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens")):
        if request.get(source) is not None:
            body[target] = _number(request[source])
    body |= _present([("stream", request.get("stream")), ("user", request.get("user"))])
    if request.get("parallel_tool_calls") is not None:
        body["parallel_tool_calls"] = request["parallel_tool_calls"]
    if response_format is not None:
        body["response_format"] = response_format
    return body


# --------------------------------------------------------------------------------------------
# Response objects
# --------------------------------------------------------------------------------------------

_RESPONSE_ORDER = (
    "id", "object", "created_at", "model", "status", "output", "output_text", "error", "incomplete_details",
    "finish_reason", "instructions", "metadata", "parallel_tool_calls", "temperature", "tool_choice", "tools", "top_p",
    "max_output_tokens", "store", "text", "previous_response_id", "reasoning", "usage", "user", "reasoning_effort",
)  # fmt: skip
_OMIT_EMPTY = frozenset({"output_text", "finish_reason", "store", "text"})


def _render(response: Mapping[str, Any]) -> dict[str, Any]:
    """Go's field order; the ``omitempty`` fields left out when empty."""
    return {
        key: response.get(key)
        for key in _RESPONSE_ORDER
        if key not in _OMIT_EMPTY or response.get(key) not in (None, "")
    }


def _echo_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    echoed: dict[str, Any] = {"type": tool.get("type") or ""} | _present(
        [("name", tool.get("name")), ("description", tool.get("description"))]
    )
    if tool.get("parameters") is not None:
        echoed["parameters"] = _go_any(tool["parameters"])
    function = tool.get("function")
    if isinstance(function, Mapping):
        inner: dict[str, Any] = {"name": function.get("name") or ""} | _present([("description", function.get("description"))])
        if function.get("parameters") is not None:
            inner["parameters"] = _go_any(function["parameters"])
        echoed["function"] = inner
    return echoed


def _echo_text(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, Mapping):
        return None
    echoed: dict[str, Any] = {}
    fmt = text.get("format")
    if isinstance(fmt, Mapping):
        echoed["format"] = {"type": fmt.get("type") or ""} | _present(
            [("name", fmt.get("name")), ("description", fmt.get("description"))]
        )
        for key in ("schema", "strict"):
            if fmt.get(key) is not None:
                echoed["format"][key] = fmt[key]
    echoed |= _present([("verbosity", text.get("verbosity"))])
    return echoed


def new_response(request: Mapping[str, Any], *, id: str, created_at: int) -> dict[str, Any]:
    """The ``in_progress`` Response DMR starts from, echoing the request's parameters (``tools``
    and ``metadata`` are ``null`` when the request had none; ``store`` is always written)."""
    tools = request.get("tools")
    return _render(
        {
            "id": id, "object": "response", "created_at": created_at, "model": request["model"], "status": "in_progress",
            "output": [], "instructions": request.get("instructions") or None, "metadata": _go_any(request.get("metadata")),
            "parallel_tool_calls": request.get("parallel_tool_calls"), "temperature": _number(request.get("temperature")),
            "tool_choice": _go_any(request.get("tool_choice")), "tools": [_echo_tool(t) for t in tools] if tools is not None else None,
            "top_p": _number(request.get("top_p")), "max_output_tokens": request.get("max_output_tokens"),
            "store": request.get("store") is not False, "text": _echo_text(request.get("text")),
            "previous_response_id": request.get("previous_response_id") or None,
            "user": request.get("user") or None, "reasoning_effort": request.get("reasoning_effort") or None,
        }  # fmt: skip
    )


def _usage(input_tokens: int, output_tokens: int, total_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": total_tokens}


def _text_part(text: str) -> dict[str, Any]:
    return _present([("type", "output_text"), ("text", text)])


def _message_item(id: str, text: str, status: str) -> dict[str, Any]:
    content = [_text_part(text)]
    return {"id": id, "type": "message", "role": "assistant", "content": content, "status": status}


def _call_item(id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": id, "type": "function_call"} | _present(
        [("status", status), ("call_id", call_id), ("name", name), ("arguments", arguments)]
    )


def completed_response(base: Mapping[str, Any], chat: Any, make_id: MakeId = random_id) -> dict[str, Any]:
    """A 200 chat completion as DMR's ``completed`` Response: one ``function_call`` item per tool
    call, then the text as a ``message`` item (only a string ``content`` counts), and the usage.
    A body DMR could not decode gives :func:`parse_failure_response`'s body."""
    if not isinstance(chat, Mapping) or not isinstance(chat.get("choices") or [], list):
        return parse_failure_response(base)
    response = dict(base) | {"status": "completed", "output": []}
    choices = chat.get("choices") or []
    if choices:
        message = choices[0].get("message") or {}
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            response["output"].append(
                _call_item(make_id("item_"), call.get("id") or "", function.get("name") or "", function.get("arguments") or "", "completed")
            )
        content = message.get("content")
        if isinstance(content, str) and content:
            response["output"].append(_message_item(make_id("msg_"), content, "completed"))
            response["output_text"] = content
    usage = chat.get("usage")
    if isinstance(usage, Mapping):
        response["usage"] = _usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0, usage.get("total_tokens") or 0)
    return _render(response)


def failed_response(base: Mapping[str, Any], upstream_body: str) -> dict[str, Any]:
    """The ``failed`` Response DMR answers with the upstream's status for a non-200 chat completion.
    The error keeps the upstream JSON's ``error.message`` and string ``code``; any other body
    (DMR's plain text, or llama.cpp's error whose ``code`` is a number) becomes ``upstream_error``
    with the whole body as the message."""
    error = _upstream_error(upstream_body) or {"code": "upstream_error", "message": upstream_body}
    return _render(dict(base) | {"status": "failed", "error": error})


def _upstream_error(body: str) -> dict[str, str] | None:
    fields = {"message": "string", "type": "string", "code": "string"}
    envelope, problem = decode_struct(body, "struct", {"error": "any"})
    if problem is not None:
        return None
    inner = envelope.get("error")
    if inner is None:
        return None
    if not isinstance(inner, dict) or decode_struct(json.dumps(inner), "struct", fields)[1] is not None:
        return None
    if not inner.get("message"):
        return None
    return _present([("code", inner.get("code"))]) | {"message": inner["message"]}


def parse_failure_response(base: Mapping[str, Any]) -> dict[str, Any]:
    """A 200 answer DMR could not decode: this ``failed`` Response, sent with status 500."""
    return _render(dict(base) | {"status": "failed", "error": {"code": "parse_error", "message": "Failed to parse upstream response"}})


def deleted_body(id: str) -> dict[str, Any]:
    """``DELETE <prefix>/{id}`` (JSON keys sorted, as Go writes a map)."""
    return {"deleted": True, "id": id, "object": "response.deleted"}


def input_items_body() -> dict[str, Any]:
    """``GET <prefix>/{id}/input_items``: always empty, DMR keeps no inputs."""
    return {"data": [], "object": "list"}


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One Responses SSE event: ``event: <type>``, ``data: <json>``, a blank line."""
    return f"event: {event['type']}\ndata: {go_json(event)}\n\n".encode()


def _event(kind: str, seq: int, **fields: Any) -> dict[str, Any]:
    """A ``StreamEvent`` in Go's field order; ``omitempty`` drops 0 indexes and empty strings."""
    order = ("response", "item", "output_index", "content_index", "part", "delta", "item_id", "error")
    return {"type": kind, "sequence_number": seq} | _present((key, fields.get(key)) for key in order)


@dataclass
class _Call:
    id: str
    call_id: str
    name: str
    arguments: str = ""


@dataclass
class ResponseStream:
    """DMR's ``StreamingResponseWriter`` as a pure state machine: feed it the upstream's chat
    chunks, get the Responses events to write (each through :func:`encode_event`).

    ``start()`` when the upstream answers 200 (``response.created``, ``response.in_progress``);
    ``feed(chunk)`` per ``data:`` chunk; ``finish()`` at ``data: [DONE]`` (closing events and
    ``response.completed``); or ``upstream_failed(status)`` instead of ``start()`` when the
    upstream's status is not 200. :attr:`response` is then the Response to store. Sequence
    numbers start at 1. Behaviour kept from DMR: a tool-call delta without an ``id`` starts a new
    ``function_call`` item (llama.cpp sends the id only on a call's first delta), text output
    items and function-call items both count their ``output_index`` from 0, and a failure's
    ``response.failed`` carries no ``error`` (the ``error`` event before it does).
    """

    base: Mapping[str, Any]
    make_id: MakeId = random_id
    response: dict[str, Any] = field(init=False)
    _seq: int = field(default=0, init=False)
    _message_id: str = field(default="", init=False)
    _text: list[str] = field(default_factory=list, init=False)
    _calls: list[_Call] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.response = dict(self.base)

    def _next(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        return _event(kind, self._seq, **fields)

    def _snapshot(self) -> dict[str, Any]:
        return _render(self.response)

    def start(self) -> list[dict[str, Any]]:
        created = self._next("response.created", response=self._snapshot())
        self.response["status"] = "in_progress"
        return [created, self._next("response.in_progress", response=self._snapshot())]

    def upstream_failed(self, status: int) -> list[dict[str, Any]]:
        """The upstream answered ``status``: an ``error`` event and ``response.failed``. DMR writes
        them before the status, so the client sees 200 (with the upstream's error headers)."""
        self.response["status"] = "failed"
        error = {"code": "upstream_error", "message": f"Upstream service returned status code: {status}"}
        return [self._next("error", error=error), self._next("response.failed", response=self._snapshot())]

    def malformed(self, problem: str) -> list[dict[str, Any]]:
        """A ``data:`` line that is not JSON (``problem``: Go's error text)."""
        self.response["status"] = "failed"
        error = {"code": "parse_error", "message": f"Failed to parse SSE metadata chunk: {problem}"}
        return [self._next("error", error=error), self._next("response.failed", response=self._snapshot())]

    def feed(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._note_metadata(chunk)
        choices = chunk.get("choices") or []
        if not choices:
            return []
        delta = choices[0].get("delta") or {}
        if delta.get("tool_calls"):
            return self._tool_deltas(delta["tool_calls"])
        content = delta.get("content")
        return self._text_delta(content) if isinstance(content, str) and content else []

    def _note_metadata(self, chunk: Mapping[str, Any]) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and self.response.get("usage") is None:
            # DMR decodes the chat usage into its own type: only a key named alike survives.
            self.response["usage"] = _usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0, usage.get("total_tokens") or 0)
        for choice in chunk.get("choices") or ():
            reason = choice.get("finish_reason")
            if not reason:
                continue
            self.response["finish_reason"] = reason
            if reason in ("stop", "tool_calls", "length"):
                self.response["status"] = "completed"
            if reason == "length" and self.response.get("incomplete_details") is None:
                self.response["incomplete_details"] = {"reason": "max_tokens"}
            if reason == "content_filter":
                self.response["status"] = "failed"
                if self.response.get("error") is None:
                    self.response["error"] = {"code": "content_filter", "message": "Content filtered"}

    def _text_delta(self, content: str) -> list[dict[str, Any]]:
        events = []
        if not self._message_id:
            self._message_id = self.make_id("msg_")
            item = _message_item(self._message_id, "", "in_progress")
            events.append(self._next("response.output_item.added", item=item))
            events.append(self._next("response.content_part.added", part=_text_part(""), item_id=self._message_id))
        self._text.append(content)
        events.append(self._next("response.output_text.delta", delta=content, item_id=self._message_id))
        return events

    def _tool_deltas(self, deltas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        events = []
        for delta in deltas:
            function = delta.get("function") or {}
            call_id = delta.get("id") or ""
            index, call = next(((i, c) for i, c in enumerate(self._calls) if c.call_id == call_id), (-1, None))
            if call is None:
                call = _Call(self.make_id("item_"), call_id or self.make_id("call_"), function.get("name") or "")
                self._calls.append(call)
                index = len(self._calls) - 1
                item = _call_item(call.id, call.call_id, call.name, "", "in_progress")
                events.append(self._next("response.output_item.added", item=item, output_index=index))
            arguments = function.get("arguments") or ""
            if arguments:
                call.arguments += arguments
                events.append(
                    self._next("response.function_call_arguments.delta", output_index=index, delta=arguments, item_id=call.id)
                )
        return events

    def finish(self) -> list[dict[str, Any]]:
        events = []
        output: list[dict[str, Any]] = []
        if self._message_id:
            text = "".join(self._text)
            part = _text_part(text)
            events.append(self._next("response.output_text.done", part=part, item_id=self._message_id))
            events.append(self._next("response.content_part.done", part=part, item_id=self._message_id))
            item = _message_item(self._message_id, text, "completed")
            events.append(self._next("response.output_item.done", item=item))
            output.append(item)
            self.response["output_text"] = text
        for index, call in enumerate(self._calls):
            events.append(
                self._next("response.function_call_arguments.done", output_index=index, delta=call.arguments, item_id=call.id)
            )
            item = _call_item(call.id, call.call_id, call.name, call.arguments, "completed")
            events.append(self._next("response.output_item.done", item=item, output_index=index))
            output.append(item)
        self.response["output"] = list(self.response.get("output") or []) + output
        self.response["status"] = "completed"
        events.append(self._next("response.completed", response=self._snapshot()))
        return events

    def final(self) -> dict[str, Any]:
        """The Response as it stands (what DMR stores after ``finish`` or a failure)."""
        return self._snapshot()


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@dataclass
class ResponseStore:
    """DMR's in-memory store: each saved Response lives ``ttl`` seconds from its (last) save.
    ``clock`` returns seconds (inject a fake one in tests; the emulator passes ``time.monotonic``)."""

    clock: Callable[[], float]
    ttl: float = DEFAULT_TTL_SECONDS
    _items: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict, init=False)

    def save(self, response: Mapping[str, Any]) -> None:
        self._items[str(response["id"])] = (dict(response), self.clock() + self.ttl)

    def get(self, id: str) -> dict[str, Any] | None:
        stored = self._items.get(id)
        if stored is None or self.clock() > stored[1]:
            return None
        return stored[0]

    def delete(self, id: str) -> bool:
        """Whether ``id`` was there (an expired entry not yet swept still counts, as in DMR)."""
        return self._items.pop(id, None) is not None

    def sweep(self) -> None:
        """Drop expired entries (DMR does it every five minutes)."""
        now = self.clock()
        self._items = {key: value for key, value in self._items.items() if now <= value[1]}

    def history(self, previous_response_id: str) -> list[dict[str, Any]]:
        """The chain ending at ``previous_response_id``, oldest first (``[]`` for ``""``); a missing
        link earlier in the chain ends it quietly. Raises :class:`ResponsesError` when the ID itself is unknown."""
        if not previous_response_id:
            return []
        response = self.get(previous_response_id)
        if response is None:
            raise _invalid(f"previous_response_id {encoding.go_quote(previous_response_id)} was not found")
        chain = [response]
        while (earlier := chain[-1].get("previous_response_id")) and (found := self.get(earlier)) is not None:
            chain.append(found)
        return chain[::-1]

    def get_body(self, id: str) -> tuple[int, dict[str, Any]]:
        """``GET <prefix>/{id}``: 200 and the Response, or 404 ``Response not found``."""
        response = self.get(id)
        return (200, response) if response is not None else (404, error_body("not_found", RESPONSE_NOT_FOUND))

    def delete_body(self, id: str) -> tuple[int, dict[str, Any]]:
        """``DELETE <prefix>/{id}``."""
        return (200, deleted_body(id)) if self.delete(id) else (404, error_body("not_found", RESPONSE_NOT_FOUND))

    def input_items(self, id: str) -> tuple[int, dict[str, Any]]:
        """``GET <prefix>/{id}/input_items``."""
        return (200, input_items_body()) if self.get(id) is not None else (404, error_body("not_found", RESPONSE_NOT_FOUND))


def json_body(value: Any) -> bytes:
    """A Responses JSON body as DMR writes it (``json.Encoder``: HTML-safe escapes, trailing newline)."""
    return go_json_line(value)
