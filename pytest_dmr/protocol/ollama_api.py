"""Ollama's ``/api/*`` as DMR serves it (``pkg/ollama``): request plans and the exact bodies.

Every JSON body DMR writes here goes through Go's ``json.Marshal`` (HTML-safe escapes): write them
with :func:`json_bytes` (NDJSON lines) or :func:`pytest_dmr.protocol.encoding.go_json_line` (bodies
from ``json.Encoder``, which :func:`json_body` wraps). Times are Go ``time.Time`` in UTC
(:func:`pytest_dmr.protocol.go_time`); DMR writes them in the server's local zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_dmr.protocol import durations, encoding, engines_api, error_bodies, model_info, pull_stream
from pytest_dmr.protocol.encoding import decode_struct, go_json, go_json_line, syntax_error

__all__ = [
    "CHAT_STREAM_CONTENT_TYPE",
    "EMPTY_OBJECT",
    "PULL_CONTENT_TYPE",
    "ROUTES",
    "VERSION_BODY",
    "ChatPlan",
    "OllamaRequestError",
    "PsModel",
    "chat_chunk",
    "chat_plan",
    "chat_response",
    "configure_body",
    "classify_generate",
    "delete_failure_message",
    "done_chunk",
    "expires_at",
    "generate_chunk",
    "generate_done",
    "generate_plan",
    "generate_response",
    "json_body",
    "json_bytes",
    "map_options",
    "model_name",
    "parse_request",
    "ps_body",
    "pull_failure_line",
    "pull_line",
    "pull_reference_failure",
    "show_body",
    "show_not_found_message",
    "tags_body",
    "upstream_error",
]

ROUTES = (
    ("GET", "/api/version"), ("GET", "/api/tags"), ("GET", "/api/ps"), ("POST", "/api/show"), ("POST", "/api/chat"),
    ("POST", "/api/generate"), ("POST", "/api/pull"), ("DELETE", "/api/delete"),
)  # fmt: skip
"""DMR's routes; another method on one of these paths gets Go's 405, another path 404."""
VERSION_BODY = {"version": "0.1.0"}
EMPTY_OBJECT = b"{}"
"""Preload, unload and delete success: ``{}`` with no newline."""
CHAT_STREAM_CONTENT_TYPE = "application/json"
"""The Content-Type of ``/api/chat`` and ``/api/generate`` streams (not ``x-ndjson``)."""
PULL_CONTENT_TYPE = "application/x-ndjson"
KEEP_ALIVE_DEFAULT_SECONDS = engines_api.DEFAULT_KEEP_ALIVE_SECONDS


def json_bytes(value: Any) -> bytes:
    """One NDJSON line as DMR writes it (``json.Marshal`` and ``\\n``)."""
    return (go_json(value) + "\n").encode()


def json_body(value: Any) -> bytes:
    """A body from Go's ``json.Encoder`` (same bytes as :func:`json_bytes`)."""
    return go_json_line(value)


class OllamaRequestError(Exception):
    """A body ``json.Decoder`` rejects: DMR's 400 ``Invalid request: <err>`` (plain text)."""

    status = 400

    def __init__(self, problem: str) -> None:
        super().__init__(f"Invalid request: {problem}")
        self.message = f"Invalid request: {problem}"


def parse_request(raw: bytes, struct: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Decode an ``/api/*`` body as Go's ``json.NewDecoder(r.Body).Decode`` does: only the first
    value counts, an empty body is ``EOF``, a cut one ``unexpected EOF``. ``fields`` (JSON name ->
    Go type) are type-checked as in :func:`pytest_dmr.protocol.encoding.decode_struct`."""
    text = raw.decode(errors="replace")
    stripped = text.strip()
    if not stripped:
        raise OllamaRequestError("EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except ValueError:
        found = syntax_error(stripped) or "unexpected EOF"
        raise OllamaRequestError("unexpected EOF" if found == "unexpected end of JSON input" else found) from None
    decoded, problem = decode_struct(json.dumps(value), struct, fields or {})
    if problem is not None:
        raise OllamaRequestError(problem)
    return decoded


def model_name(request: Mapping[str, Any]) -> str:
    """``name``, or ``model`` when ``name`` is empty."""
    return str(request.get("name") or request.get("model") or "")


# --------------------------------------------------------------------------------------------
# Listing: tags, ps, show
# --------------------------------------------------------------------------------------------


def _details(info: model_info.ModelInfo) -> dict[str, Any]:
    architecture = str(info.config.get("architecture") or "")
    return {
        "format": "gguf",
        "family": architecture,
        "families": [architecture],
        "parameter_size": str(info.config.get("parameters") or ""),
        "quantization_level": str(info.config.get("quantization") or ""),
    }


def tags_body(models: Iterable[model_info.ModelInfo]) -> dict[str, Any]:
    """``GET /api/tags``: one entry per tag (the ID for an untagged model), ``size`` always 0."""
    entries = []
    for info in models:
        for tag in info.tags or (info.id,):
            entries.append(
                {"name": tag, "model": tag, "modified_at": encoding.go_time(info.created), "size": 0, "digest": info.id, "details": _details(info)}
            )
    return {"models": entries}


def expires_at(*, last_used: float | None, in_use: bool, keep_alive_seconds: float | None) -> float | None:
    """When an idle model unloads, as ``/api/ps`` reports it: last use plus its keep-alive (5
    minutes by default); ``None`` (Go's zero time) while in use, never used, or kept forever."""
    keep = KEEP_ALIVE_DEFAULT_SECONDS if keep_alive_seconds is None else keep_alive_seconds
    if in_use or last_used is None or keep < 0:
        return None
    return last_used + keep


@dataclass(frozen=True)
class PsModel:
    """One running model for ``/api/ps``: ``name`` its first tag (or the scheduler's name when the
    model is no longer stored, then ``digest`` is that name too)."""

    name: str
    digest: str
    expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        expires = encoding.go_time(self.expires_at) if self.expires_at is not None else encoding.GO_ZERO_TIME
        return {"name": self.name, "model": self.name, "size": 0, "digest": self.digest, "expires_at": expires}


def ps_body(models: Iterable[PsModel]) -> dict[str, Any]:
    """``GET /api/ps``: ``size`` always 0, ``expires_at`` Go's zero time when not counting down."""
    return {"models": [model.to_json() for model in models]}


def show_body(info: model_info.ModelInfo) -> dict[str, Any]:
    """``POST /api/show``: only ``details`` (no ``model_info``, which ollama's Python SDK requires)."""
    return {"details": _details(info)}


def show_not_found_message(name: str) -> str:
    """The 404 text of ``/api/show`` for a model that is not stored."""
    return f"Model not found: {error_bodies.model_not_found_message(name)}"


# --------------------------------------------------------------------------------------------
# Chat and generate: the plan (chat body, stream flag, _configure) and the answers
# --------------------------------------------------------------------------------------------

_OPTION_TARGETS = (
    ("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"), ("num_predict", "max_tokens"),
    ("stop", "stop"), ("seed", "seed"), ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty"),
)  # fmt: skip


def map_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Ollama ``options`` as chat-completion fields (others, ``num_ctx`` included, are not sent)."""
    return {target: options[source] for source, target in _OPTION_TARGETS if source in options}


def _sorted(value: Any) -> Any:
    """A Go ``map[string]interface{}`` written back: keys sorted all the way down."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _image_url(data: str) -> str:
    data = data.strip()
    if data.startswith(("data:", "http://", "https://")):
        return data
    mime = "image/png" if data.startswith("iVBOR") else "image/gif" if data.startswith("R0lG") else "image/jpeg"
    return f"data:{mime};base64,{data}"


def _chat_message(message: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"role": message.get("role") or ""}
    content = message.get("content") or ""
    if message.get("images"):
        parts: list[dict[str, Any]] = [{"text": content, "type": "text"}] if content else []
        parts += [{"image_url": {"url": _image_url(image)}, "type": "image_url"} for image in message["images"]]
        converted["content"] = parts
    else:
        converted["content"] = content
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = go_json(_sorted(arguments))
        inner = ({"index": function["index"]} if function.get("index") is not None else {}) | {"name": function.get("name") or "", "arguments": arguments}
        calls.append({"id": call.get("id") or "", "type": call.get("type") or "function", "function": inner})
    if calls:
        converted["tool_calls"] = calls
    if message.get("tool_call_id"):
        converted["tool_call_id"] = message["tool_call_id"]
    ordered: dict[str, Any] = _sorted(converted)
    return ordered | ({"tool_calls": calls} if calls else {})


def _chat_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        function = tool.get("function") or {}
        converted.append(
            {
                "type": tool.get("type") or "",
                "function": {
                    "name": function.get("name") or "",
                    "description": function.get("description") or "",
                    "parameters": _sorted(function.get("parameters")),
                },
            }
        )
    return converted


def _keep_alive(value: Any) -> str:
    """``keep_alive`` as DMR normalises it: a string as is; a number of seconds as a Go duration."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            return "-1"
        return "0" if value == 0 else durations.format_go_duration(int(value * 1_000_000_000))
    return ""


def _int32(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        digits = value.strip()
        sign, digits = (-1, digits[1:]) if digits.startswith("-") else (1, digits.removeprefix("+"))
        head = digits[: len(digits) - len(digits.lstrip("0123456789"))]
        return sign * int(head) if head else 0
    return 0


def configure_body(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``_configure`` DMR runs before a chat or generate, or ``None`` when it runs none:
    ``options.num_ctx`` -> ``context-size``, ``keep_alive`` (or ``options.keep_alive``), and a
    boolean ``think`` -> ``llamacpp.reasoning-budget`` (-1 or 0). DMR ignores its failure, and
    drops a ``keep_alive`` it cannot parse (:func:`pytest_dmr.protocol.parse_keep_alive`)."""
    options = request.get("options") or {}
    keep_alive = _keep_alive(request.get("keep_alive"))
    if not keep_alive and isinstance(options.get("keep_alive"), str):
        keep_alive = options["keep_alive"]
    body: dict[str, Any] = {"model": model_name(request)}
    if options.get("num_ctx") is not None:
        body["context-size"] = _int32(options["num_ctx"])
    if keep_alive:
        body["keep_alive"] = keep_alive
    think = request.get("think")
    if isinstance(think, bool):
        body["llamacpp"] = {"reasoning-budget": -1 if think else 0}
    return body if len(body) > 1 else None


@dataclass(frozen=True)
class ChatPlan:
    """What DMR does with an ``/api/chat`` or ``/api/generate`` body: ``configure`` first (if any),
    then ``chat_body`` to ``/engines/v1/chat/completions``, streamed when ``stream``."""

    model: str
    chat_body: dict[str, Any]
    stream: bool
    configure: dict[str, Any] | None


_CHAT_FIELDS = {"name": "string", "model": "string", "messages": "[]Message", "tools": "[]Tool", "stream": "bool", "options": "map[string]any"}
_GENERATE_FIELDS = {"name": "string", "model": "string", "prompt": "string", "stream": "bool", "options": "map[string]any"}


def chat_plan(request: Mapping[str, Any]) -> ChatPlan:
    """``POST /api/chat``: ``stream`` defaults to true; Ollama's ``format`` is dropped."""
    model = model_name(request)
    stream = request.get("stream") is not False
    body: dict[str, Any] = {"model": model, "messages": [_chat_message(m) for m in request.get("messages") or ()], "stream": stream}
    if request.get("tools"):
        body["tools"] = _chat_tools(request["tools"])
    if request.get("options") is not None:
        body |= map_options(request["options"])
    return ChatPlan(model, dict(sorted(body.items())), stream, configure_body(request))


GenerateKind = Literal["unload", "preload", "generate"]


def classify_generate(request: Mapping[str, Any]) -> GenerateKind:
    """``/api/generate`` without a prompt unloads the model (keep-alive ``""``, ``"0"``, ``"0s"``,
    ``"0m"``, or a 0 number) or else preloads it; with one it generates."""
    if request.get("prompt"):
        return "generate"
    return "unload" if _keep_alive(request.get("keep_alive")) in ("", "0", "0s", "0m") else "preload"


def generate_plan(request: Mapping[str, Any]) -> ChatPlan:
    """``POST /api/generate`` with a prompt: one user message (no ``tools``)."""
    model = model_name(request)
    stream = request.get("stream") is not False
    body: dict[str, Any] = {"model": model, "messages": [_chat_message({"role": "user", "content": request.get("prompt") or ""})], "stream": stream}
    if request.get("options") is not None:
        body |= map_options(request["options"])
    return ChatPlan(model, dict(sorted(body.items())), stream, configure_body(request))


def _ollama_tool_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool calls as DMR hands them to Ollama clients: no ``type``, ``index`` = position,
    ``arguments`` parsed to an object when the string is a JSON object (kept a string otherwise)."""
    converted = []
    for position, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            try:
                parsed = json.loads(arguments)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                arguments = _sorted(parsed)
        converted.append({"id": call.get("id") or "", "function": {"index": position, "name": function.get("name") or "", "arguments": arguments}})
    return converted


def _ollama_message(role: str, content: str, calls: Sequence[Mapping[str, Any]], thinking: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": content}
    if calls:
        message["tool_calls"] = _ollama_tool_calls(calls)
    if thinking:
        message["thinking"] = thinking
    return message


def chat_chunk(chunk: Mapping[str, Any], *, model: str, created_at: str) -> dict[str, Any]:
    """One NDJSON line per upstream ``data:`` chunk (every one, empty ones included)."""
    choices = chunk.get("choices") or []
    delta = (choices[0].get("delta") or {}) if choices else {}
    message = _ollama_message("assistant", delta.get("content") or "", delta.get("tool_calls") or (), delta.get("reasoning_content") or "")
    return {"model": model, "created_at": created_at, "message": message, "done": False}


def done_chunk(*, model: str, created_at: str) -> dict[str, Any]:
    """The last line of a chat stream, at ``[DONE]``: an empty message, ``done: true``, no counts."""
    return {"model": model, "created_at": created_at, "message": {"role": "", "content": ""}, "done": True}


def chat_response(chat: Mapping[str, Any], *, model: str, created_at: str) -> dict[str, Any]:
    """``/api/chat`` with ``stream: false``: the answer with ``done: true`` (no ``done_reason``, no counts)."""
    choices = chat.get("choices") or []
    if not choices:
        message = {"role": "", "content": ""}
    else:
        source = choices[0].get("message") or {}
        message = _ollama_message("assistant", source.get("content") or "", source.get("tool_calls") or (), source.get("reasoning_content") or "")
    return {"model": model, "created_at": created_at, "message": message, "done": True}


def _generate_line(model: str, created_at: str, response: str, thinking: str, done: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"model": model, "created_at": created_at}
    if response:
        line["response"] = response
    if thinking:
        line["thinking"] = thinking
    return line | {"done": done}


def generate_chunk(chunk: Mapping[str, Any], *, model: str, created_at: str) -> dict[str, Any]:
    """One ``/api/generate`` stream line (``response`` absent when the chunk had no text)."""
    choices = chunk.get("choices") or []
    delta = (choices[0].get("delta") or {}) if choices else {}
    return _generate_line(model, created_at, delta.get("content") or "", delta.get("reasoning_content") or "", False)


def generate_done(*, model: str, created_at: str) -> dict[str, Any]:
    return _generate_line(model, created_at, "", "", True)


def generate_response(chat: Mapping[str, Any], *, model: str, created_at: str) -> dict[str, Any]:
    choices = chat.get("choices") or []
    message = (choices[0].get("message") or {}) if choices else {}
    return _generate_line(model, created_at, message.get("content") or "", message.get("reasoning_content") or "", True)


def upstream_error(body: str, *, stream: bool) -> bytes:
    """The body DMR sends (with the upstream's status) when the chat completion failed. Streamed:
    nothing (the upstream's headers stay). Not streamed: ``{"error": message}`` when the upstream
    sent an OpenAI-style JSON error, else the upstream body; either way Go sniffs the Content-Type
    (``text/plain; charset=utf-8``) because DMR sets it too late."""
    if stream:
        return b""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    if isinstance(message, str) and message and (kind is None or isinstance(kind, str)):
        return json_body({"error": message})
    return body.encode()


# --------------------------------------------------------------------------------------------
# Pull and delete
# --------------------------------------------------------------------------------------------


def _omit_empty(line: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if value}


def pull_line(progress: pull_stream.PullProgress) -> dict[str, Any] | None:
    """One DMR pull progress line in Ollama's form, or ``None`` when DMR passes the original
    line through (a type it does not know)."""
    if progress.type == "progress":
        layer = progress.layer_id or ""
        short = layer[7:19] if layer.startswith("sha256:") and len(layer) >= 19 else layer
        status = f"pulling {short}" if layer else "pulling manifest"
        return _omit_empty({"status": status, "digest": layer, "total": progress.layer_size, "completed": progress.layer_current})
    if progress.type == "success":
        return {"status": "success"}
    if progress.type == "error":
        return _omit_empty({"error": progress.message})
    if progress.type == "warning":
        return _omit_empty({"status": progress.message})
    return None


def pull_failure_line(error: str) -> dict[str, str]:
    """What DMR adds when the pull fails (``error``: the distribution error's text): the whole
    body (500, ``application/json``, trailing newline) before any progress, else one more line."""
    return {"error": f"Failed to pull model: error while pulling model: {error}"}


def pull_reference_failure(normalized: str) -> dict[str, str]:
    """``/api/pull`` of a name the registry client cannot parse (``registry.Client.Model``: a
    ``ReferenceError`` around ``reference.ParseReference``'s error), the whole 500 body."""
    quoted = encoding.go_quote(normalized)
    return pull_failure_line(f"reading model from registry: invalid model reference {quoted}: invalid reference {quoted}: invalid reference format")


def delete_failure_message(*, unload_status: int | None = None, error: str | None = None) -> str:
    """``DELETE /api/delete``'s plain-text errors: the unload's status (sent with that status) or
    the store's error (500)."""
    if unload_status is not None:
        return f"Failed to unload model: scheduler returned status {unload_status}"
    return f"Failed to delete model: {error}"
