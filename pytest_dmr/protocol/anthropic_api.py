"""Anthropic Messages: DMR's checks on ``/anthropic/...`` and the shapes llama.cpp answers with.

DMR itself only reads ``model`` from a Messages body (``pkg/anthropic/handler.go``) and passes the
request to llama.cpp's own ``/v1/messages``. The emulator does that too; the mock uses these
translators to answer with what llama.cpp would: :func:`to_chat_request` is llama.cpp's
Messages -> chat conversion, :func:`message_response` and :class:`MessageStream` its answers
(bodies written with :func:`pytest_dmr.protocol.dumps`, streams with :func:`encode_event`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_dmr.protocol import encoding, openai_api
from pytest_dmr.protocol.encoding import decode_struct

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MAX_REQUEST_BYTES",
    "ROUTES",
    "AnthropicError",
    "MessageStream",
    "check_request",
    "count_tokens_body",
    "encode_event",
    "error_body",
    "message_response",
    "stop_reason",
    "to_chat_request",
]

ROUTES = ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens")
"""DMR's own Anthropic routes (POST only); the scheduler forms are ``/engines[/{backend}]/v1/messages`` and ``/v1/messages``."""
MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_TOKENS = 4096
"""llama.cpp's ``max_tokens`` when a Messages request has none."""


class AnthropicError(Exception):
    """A request DMR refuses on ``/anthropic/...``: ``status`` and an Anthropic error body."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type, message

    def body(self) -> dict[str, Any]:
        return error_body(self.type, self.message)


def error_body(type: str, message: str) -> dict[str, Any]:
    """``{"type":"error","error":{"type","message"}}`` (``application/json``, trailing newline)."""
    return {"type": "error", "error": {"type": type, "message": message}}


def check_request(raw: bytes, *, model_exists: Callable[[str], bool], max_bytes: int = MAX_REQUEST_BYTES) -> str:
    """DMR's checks before it forwards a ``/anthropic/...`` request, in order; returns the model.
    Raises :class:`AnthropicError`: 413 ``request_too_large``, 400 ``Invalid JSON in request body``,
    400 ``Missing required field: model``, 404 ``Model not found: <name>``."""
    if len(raw) > max_bytes:
        raise AnthropicError(413, "request_too_large", "Request body too large")
    body, problem = decode_struct(raw.decode(errors="replace"), "anthropic.MessagesRequest", {"model": "string"})
    if problem is not None:
        raise AnthropicError(400, "invalid_request_error", "Invalid JSON in request body")
    model = body.get("model") or ""
    if not model:
        raise AnthropicError(400, "invalid_request_error", "Missing required field: model")
    if not model_exists(model):
        raise AnthropicError(404, "not_found_error", "Model not found: " + model)
    return str(model)


# --------------------------------------------------------------------------------------------
# Messages request -> chat completion (what llama.cpp does with it)
# --------------------------------------------------------------------------------------------


def _text_of(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, list):
        return "".join(b.get("text") or "" for b in blocks if isinstance(b, Mapping) and b.get("type") == "text")
    return ""


def _image_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type') or 'image/jpeg'};base64,{source.get('data') or ''}"
    elif source.get("type") == "url":
        url = source.get("url") or ""
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _convert_message(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role") or ""
    content = message.get("content")
    if "content" not in message:
        return [] if role == "assistant" else [dict(message)]
    if not isinstance(content, list):
        return [dict(message)]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    reasoning = ""
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append(dict(block))
        elif kind == "thinking":
            reasoning += block.get("thinking") or ""
        elif kind == "image":
            image = _image_part(block)
            if image is not None:
                parts.append(image)
        elif kind == "tool_use":
            arguments = encoding.dumps(block.get("input") if block.get("input") is not None else {})
            calls.append(openai_api.tool_call(id=block.get("id") or "", name=block.get("name") or "", arguments=arguments))
        elif kind == "tool_result":
            text = _text_of(block.get("content"))
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id") or "", "content": text})
    converted: list[dict[str, Any]] = []
    if parts or calls or reasoning:
        new: dict[str, Any] = {"role": role, "content": parts or ""}
        if calls:
            new["tool_calls"] = calls
        if reasoning:
            new["reasoning_content"] = reasoning
        converted.append(new)
    return converted + results


def to_chat_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """llama.cpp's conversion of a Messages body to a chat completion: ``system`` (string or text
    blocks) first; text and image blocks as content parts, ``tool_use`` as ``tool_calls``,
    ``tool_result`` as ``tool`` messages after their message; ``tools`` (``input_schema`` ->
    ``parameters``); ``tool_choice`` ``auto`` -> ``"auto"``, ``any``/``tool`` -> ``"required"``;
    ``stop_sequences`` -> ``stop``; ``max_tokens`` (default 4096); ``temperature``, ``top_p``,
    ``top_k``, ``stream`` as they are. Raises :class:`ValueError` ``'messages' is required``
    (llama.cpp answers it as a 500 ``server_error``: :func:`pytest_dmr.protocol.backend_error_body`)."""
    messages: list[dict[str, Any]] = []
    if body.get("system") is not None:
        messages.append({"role": "system", "content": _text_of(body["system"])})
    if "messages" not in body:
        raise ValueError("'messages' is required")
    for message in body["messages"] if isinstance(body["messages"], list) else ():
        messages.extend(_convert_message(message))
    chat: dict[str, Any] = {"messages": messages}
    if isinstance(body.get("tools"), list):
        chat["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.get("name") or "",
                    "description": tool.get("description") or "",
                    "parameters": tool["input_schema"] if "input_schema" in tool else {},
                },
            }
            for tool in body["tools"]
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in ("auto", "any", "tool"):
        chat["tool_choice"] = "auto" if choice["type"] == "auto" else "required"
    if "stop_sequences" in body:
        chat["stop"] = body["stop_sequences"]
    chat["max_tokens"] = body["max_tokens"] if "max_tokens" in body else DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "top_k", "stream"):
        if key in body:
            chat[key] = body[key]
    if "model" in body:
        chat["model"] = body["model"]
    return chat


# --------------------------------------------------------------------------------------------
# Chat completion -> Messages answers
# --------------------------------------------------------------------------------------------


def stop_reason(finish_reason: str | None, *, tool_calls: bool) -> str:
    """llama.cpp's ``stop_reason``: ``max_tokens`` unless generation ended on EOS or a stop word,
    then ``tool_use`` when the answer calls tools, else ``end_turn``."""
    if finish_reason in ("stop", "tool_calls"):
        return "tool_use" if tool_calls else "end_turn"
    return "max_tokens"


def _usage(input_tokens: int, output_tokens: int, cached: int = 0) -> dict[str, int]:
    return {"cache_read_input_tokens": cached, "input_tokens": input_tokens - cached, "output_tokens": output_tokens}


def _tool_input(arguments: str) -> Any:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value


def message_response(chat: Mapping[str, Any], *, stop_sequence: str | None = None) -> dict[str, Any]:
    """A chat completion as llama.cpp's Messages answer: a ``text`` block (when there is text),
    then one ``tool_use`` block per call (``input`` parsed from the arguments, ``{}`` when they
    are not JSON); ``stop_sequence`` is the stop word that ended generation, if one did."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    blocks: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.get("content"):
        blocks.append({"type": "text", "text": message["content"]})
    calls = message.get("tool_calls") or []
    for call in calls:
        function = call.get("function") or {}
        blocks.append(
            {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "", "input": _tool_input(function.get("arguments") or "")}
        )
    usage = chat.get("usage") or {}
    return {
        "id": chat.get("id") or "",
        "type": "message",
        "role": "assistant",
        "content": blocks,
        "model": chat.get("model") or "",
        "stop_reason": stop_reason(choice.get("finish_reason"), tool_calls=bool(calls)),
        "stop_sequence": stop_sequence,
        "usage": _usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0),
    }


def count_tokens_body(input_tokens: int) -> dict[str, int]:
    """``/v1/messages/count_tokens``."""
    return {"input_tokens": input_tokens}


Event = tuple[str, dict[str, Any]]
"""One SSE event: its ``event:`` name and its data."""


def encode_event(event: Event) -> bytes:
    name, data = event
    return f"event: {name}\ndata: {encoding.dumps(data)}\n\n".encode()


def _event(data: dict[str, Any]) -> Event:
    return (str(data["type"]), data)


@dataclass
class MessageStream:
    """llama.cpp's Messages stream, fed chat-completion chunks.

    ``start()``: ``message_start``. ``feed(chunk)``: a ``content_block_start`` when a block opens
    (text at index 0, each tool call after it, ``tool_use`` blocks without ``input``), then its
    ``content_block_delta`` (``text_delta`` / ``input_json_delta``). ``finish(output_tokens)``:
    every ``content_block_stop`` in block order, ``message_delta`` (stop reason from the last
    ``finish_reason`` seen, output tokens) and ``message_stop``.
    """

    id: str
    model: str
    input_tokens: int
    _text_open: bool = field(default=False, init=False)
    _calls: dict[int, int] = field(default_factory=dict, init=False)  # chat tool-call index -> block index
    _finish_reason: str | None = field(default=None, init=False)

    def start(self) -> list[Event]:
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.model,
            "stop_reason": None, "stop_sequence": None, "usage": _usage(self.input_tokens, 0),
        }  # fmt: skip
        return [_event({"type": "message_start", "message": message})]

    def _block_index(self, call_index: int) -> int:
        return (1 if self._text_open else 0) + call_index

    def feed(self, chunk: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        for choice in (chunk.get("choices") or [])[:1]:
            self._finish_reason = choice.get("finish_reason") or self._finish_reason
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if not self._text_open:
                    self._text_open = True
                    events.append(_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
                events.append(_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or ():
                events.extend(self._tool_delta(call))
        return events

    def _tool_delta(self, call: Mapping[str, Any]) -> list[Event]:
        events = []
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        if position not in self._calls:
            self._calls[position] = self._block_index(position)
            block = {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or ""}
            events.append(_event({"type": "content_block_start", "index": self._calls[position], "content_block": block}))
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(_event({"type": "content_block_delta", "index": self._calls[position], "delta": delta}))
        return events

    def finish(self, output_tokens: int, *, stop_sequence: str | None = None) -> list[Event]:
        indexes: Sequence[int] = ([0] if self._text_open else []) + sorted(self._calls.values())
        events = [_event({"type": "content_block_stop", "index": index}) for index in indexes]
        reason = stop_reason(self._finish_reason, tool_calls=bool(self._calls))
        events.append(
            _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": output_tokens},
                }
            )
        )
        events.append(_event({"type": "message_stop"}))
        return events
