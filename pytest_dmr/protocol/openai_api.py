"""The OpenAI formats DMR serves through llama.cpp: chat, completions, embeddings, their stream chunks and errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from pytest_dmr.protocol import _shapes, encoding

_json_string = json.encoder.encode_basestring  # a JSON string, UTF-8 kept: as encoding.dumps writes one


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """llama.cpp's ``usage``: the counts, and the prompt tokens its cache held (none: a fresh cache)."""
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


_PROMPT_MS_PER_TOKEN = 2.0
_PREDICTED_MS_PER_TOKEN = 25.0


def timings(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """llama.cpp's ``timings`` of an answer, at made-up steady speeds (500 prompt tokens and 40
    generated tokens a second): the same counts, the same numbers."""
    prompt_per_token = _PROMPT_MS_PER_TOKEN if prompt_tokens else 0.0
    predicted_per_token = _PREDICTED_MS_PER_TOKEN if completion_tokens else 0.0
    return {
        "cache_n": 0,
        "prompt_n": prompt_tokens,
        "prompt_ms": prompt_tokens * _PROMPT_MS_PER_TOKEN,
        "prompt_per_token_ms": prompt_per_token,
        "prompt_per_second": 1000 / prompt_per_token if prompt_per_token else 0.0,
        "predicted_n": completion_tokens,
        "predicted_ms": completion_tokens * _PREDICTED_MS_PER_TOKEN,
        "predicted_per_token_ms": predicted_per_token,
        "predicted_per_second": 1000 / predicted_per_token if predicted_per_token else 0.0,
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
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body (``logprobs``: the ``content`` of ``choices[].logprobs``)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    choice: dict[str, Any] = {"finish_reason": finish_reason, "index": 0, "message": message}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {
        "choices": [choice],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion",
        "usage": usage(prompt_tokens, completion_tokens),
        "id": id,
        "timings": timings(prompt_tokens, completion_tokens),
    }


@functools.lru_cache(maxsize=1024)
def _timings_json(prompt_tokens: int, completion_tokens: int) -> str:
    """:func:`timings` as JSON, kept: a dict dumped at every answer is a fifth of a plain answer's encoding."""
    return encoding.dumps(timings(prompt_tokens, completion_tokens))


def chat_completion_json(
    *,
    id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
) -> str:
    """``encoding.dumps(chat_completion(...))``, the same text, written at once: the body the mock
    sends most (its JSON encoder takes twice as long)."""
    if tool_calls or logprobs is not None:
        return encoding.dumps(chat_completion(
            id=id, created=created, model=model, content=content, finish_reason=finish_reason,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, tool_calls=tool_calls, logprobs=logprobs,
        ))  # fmt: skip
    text = "null" if content is None else _json_string(content)
    return (
        f'{{"choices":[{{"finish_reason":{_json_string(finish_reason)},"index":0,"message":{{"role":"assistant","content":{text}}}}}],'
        f'"created":{int(created)},"model":{_json_string(model)},"system_fingerprint":"pytest-dmr","object":"chat.completion",'
        f'"usage":{{"completion_tokens":{int(completion_tokens)},"prompt_tokens":{int(prompt_tokens)},'
        f'"total_tokens":{int(prompt_tokens + completion_tokens)},"prompt_tokens_details":{{"cached_tokens":0}}}},"id":{_json_string(id)},'
        f'"timings":{_timings_json(prompt_tokens, completion_tokens)}}}'
    )


def chat_chunk(
    *, id: str, created: int, model: str, delta: Mapping[str, Any], finish_reason: str | None = None,
    logprobs: list[dict[str, Any]] | None = None, timed: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream (``logprobs``: its tokens' entries; ``timed``: the
    prompt and completion tokens of the last chunk, which carries llama.cpp's ``timings``)."""
    choice: dict[str, Any] = {"finish_reason": finish_reason, "index": 0, "delta": dict(delta)}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    chunk = {
        "choices": [choice],
        "created": created,
        "id": id,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion.chunk",
    }
    if timed is not None:
        chunk["timings"] = timings(*timed)
    return chunk


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
        "timings": timings(prompt_tokens, completion_tokens),
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
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``text_completion`` body (``/completions``); a stream chunk when the counts are ``None``
    (the last one, and a whole body, carry ``usage`` and ``timings``)."""
    found = None if logprobs is None else {"content": logprobs}
    body: dict[str, Any] = {
        "choices": [{"text": text, "index": 0, "logprobs": found, "finish_reason": finish_reason}],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "text_completion",
    }
    if prompt_tokens is not None and completion_tokens is not None:
        body["usage"] = usage(prompt_tokens, completion_tokens)
    body["id"] = id
    if prompt_tokens is not None and completion_tokens is not None:
        body["timings"] = timings(prompt_tokens, completion_tokens)
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
    """The text of the last ``user`` message of a chat body, or the ``prompt`` of a completion
    (its scalar parts joined with spaces when it is a list). Never raises."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, (dict, Mapping)) and message.get("role") == "user":
                return message_text(message.get("content"))
        return ""
    prompt = body.get("prompt", body.get("input", ""))
    if isinstance(prompt, list):
        return " ".join(part for part in map(_shapes.plain, prompt) if part is not None)
    return _shapes.plain(prompt) or ""


def message_text(content: Any) -> str:
    """A message's text: a plain string, or the ``text`` parts of a list of content parts (parts
    without a string ``text`` are not text: skipped). Never raises: anything else has no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, (dict, Mapping)) and isinstance(part.get("text"), str)
        )
    return ""


def chunk_text(chunk: object) -> str:
    """The text a stream chunk carries: ``delta.content`` (chat) or ``text`` (completions); ``""``
    for a chunk with no choices or no text. :class:`~pytest_dmr.errors.MalformedResponseError` for
    a chunk of another shape (choices not a list, a delta not an object, content not a string)."""
    choices = _shapes.json_object(chunk, "a stream chunk").get("choices")
    if not choices:
        return ""
    if not isinstance(choices, (list, tuple)):
        raise _shapes.malformed(f"a stream chunk's choices are {_shapes.kind(choices)}, not a list")
    choice = _shapes.json_object(choices[0], "a stream chunk's first choice")
    delta = choice.get("delta")
    if delta is not None:
        return _shapes.text(_shapes.json_object(delta, "a stream chunk's delta").get("content"), "a delta's content")
    return _shapes.text(choice.get("text"), "a stream chunk's text")


def first_choice(body: object) -> Mapping[str, Any]:
    """The first of an answer's ``choices``; :class:`~pytest_dmr.errors.MalformedResponseError`
    when there is none, or it is not an object."""
    choices = _shapes.json_object(body, "the answer").get("choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        raise _shapes.malformed(f"the answer has no choices (choices is {_shapes.kind(choices)})")
    return _shapes.json_object(choices[0], "the answer's first choice")


class ChatAnswer(NamedTuple):
    """What a non-streamed chat completion says, each part of its declared type."""

    text: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    usage: dict[str, int]
    model: str | None


def read_chat_completion(body: object) -> ChatAnswer:
    """A ``chat.completion`` body read into typed parts (content parts joined as :func:`message_text`
    does, ``usage`` keeps its whole numbers); :class:`~pytest_dmr.errors.MalformedResponseError`
    for a body of another shape."""
    choice = first_choice(body)
    answer = _shapes.json_object(body, "the answer")
    message = _shapes.json_object(choice.get("message") or {}, "the answer's message")
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise _shapes.malformed(f"the message's content is {_shapes.kind(content)}, not text")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _shapes.malformed(f"the message's tool_calls are {_shapes.kind(calls)}, not a list")
    usage = _shapes.json_object(answer.get("usage") or {}, "the answer's usage")
    return ChatAnswer(
        text=message_text(content),
        tool_calls=[dict(_shapes.json_object(call, "a tool call")) for call in calls],
        finish_reason=_shapes.optional_text(choice.get("finish_reason"), "the choice's finish_reason"),
        usage={key: int(value) for key, value in usage.items() if _shapes.is_number(value) and float(value).is_integer()},
        model=_shapes.optional_text(answer.get("model"), "the answer's model"),
    )


def read_completion_text(body: object) -> str:
    """The ``text`` of a ``text_completion`` body's first choice (``""`` when null)."""
    return _shapes.text(first_choice(body).get("text"), "the choice's text")


def read_embeddings(body: object, count: int) -> list[list[float]]:
    """The vectors of an ``/embeddings`` body, in ``index`` order; exactly ``count`` of them, each a
    list of finite numbers, else :class:`~pytest_dmr.errors.MalformedResponseError`."""
    data = _shapes.json_object(body, "the answer").get("data")
    if not isinstance(data, list) or len(data) != count:
        raise _shapes.malformed(f"expected {count} embeddings, the answer's data is {_shapes.kind(data)}")
    entries = [_shapes.json_object(entry, "an embedding") for entry in data]
    indexes = [_shapes.integer(entry.get("index"), "an embedding's index") for entry in entries]
    vectors = []
    for entry in entries:
        vector = entry.get("embedding")
        if not isinstance(vector, list) or not all(_shapes.is_number(value) for value in vector):
            raise _shapes.malformed(f"an embedding is {_shapes.kind(vector)}, not a list of numbers")
        vectors.append([float(value) for value in vector])
    return [vector for _, vector in sorted(zip(indexes, vectors), key=lambda pair: pair[0])]


LOADING_MODEL_BODY: dict[str, Any] = {
    "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
}


def backend_error_body(code: int, message: str, type: str = "invalid_request_error") -> dict[str, Any]:
    """llama.cpp's own JSON error (passed through by DMR unchanged), e.g. a 400 for a bad field."""
    return {"error": {"code": code, "message": message, "type": type}}


LLAMACPP_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
"""What llama.cpp's server labels its JSON with (its ``503 Loading model`` included)."""
