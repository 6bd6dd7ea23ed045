"""The OpenAI formats DMR serves through llama.cpp: chat, completions, embeddings, their stream chunks and errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any



def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "choices": [{"finish_reason": finish_reason, "index": 0, "message": message}],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion",
        "usage": usage(prompt_tokens, completion_tokens),
        "id": id,
    }


def chat_chunk(
    *, id: str, created: int, model: str, delta: Mapping[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream."""
    return {
        "choices": [{"finish_reason": finish_reason, "index": 0, "delta": dict(delta)}],
        "created": created,
        "id": id,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion.chunk",
    }


def usage_chunk(*, id: str, created: int, model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The final chunk sent when ``stream_options.include_usage`` is set: no choices, only usage."""
    return {
        "choices": [],
        "created": created,
        "id": id,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion.chunk",
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_completion(
    *,
    id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str | None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> dict[str, Any]:
    """A ``text_completion`` body (``/completions``); a stream chunk when the counts are ``None``."""
    body: dict[str, Any] = {
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "text_completion",
        "id": id,
    }
    if prompt_tokens is not None and completion_tokens is not None:
        body["usage"] = usage(prompt_tokens, completion_tokens)
    return body


def embeddings_response(*, model: str, vectors: list[list[float]], prompt_tokens: int) -> dict[str, Any]:
    """An ``/embeddings`` body: one ``embedding`` object per input, in input order."""
    return {
        "model": model,
        "object": "list",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "data": [{"embedding": vector, "index": index, "object": "embedding"} for index, vector in enumerate(vectors)],
    }


def tool_call(*, id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of a message's ``tool_calls``; ``arguments`` is a JSON *string*."""
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def last_user_message(body: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message of a chat body, or the ``prompt`` of a completion."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return message_text(message.get("content"))
        return ""
    prompt = body.get("prompt", body.get("input", ""))
    if isinstance(prompt, list):
        return " ".join(str(part) for part in prompt)
    return str(prompt)


def message_text(content: Any) -> str:
    """A message's text: a plain string, or the ``text`` parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


def chunk_text(chunk: Mapping[str, Any]) -> str:
    """The text a stream chunk carries: ``delta.content`` (chat) or ``text`` (completions)."""
    choices = chunk.get("choices") or ()
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, Mapping):
        return delta.get("content") or ""
    return choice.get("text") or ""


LOADING_MODEL_BODY: dict[str, Any] = {
    "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
}


def backend_error_body(code: int, message: str, type: str = "invalid_request_error") -> dict[str, Any]:
    """llama.cpp's own JSON error (passed through by DMR unchanged), e.g. a 400 for a bad field."""
    return {"error": {"code": code, "message": message, "type": type}}


LLAMACPP_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
"""What llama.cpp's server labels its JSON with (its ``503 Loading model`` included)."""
