"""Answers to the OpenAI-compatible endpoints, in llama.cpp's wire format (as DMR passes it through).

Determinism: the text is drawn from SHA-256 of the request's canonical JSON without the fields that
only shape delivery (``stream``, ``stream_options``, ``max_tokens``, ``stop``...), so a streamed
answer has the same text as a non-streamed one and a smaller ``max_tokens`` gives a prefix of the
same answer. ``id`` and ``created`` come from SHA-256 of the whole request.

Length and tokens (:mod:`pytest_dmr.mock.tokens`, fitted to SmolLM2 on llama.cpp): each answer has a
natural length drawn from its content seed; ``max_tokens`` (else the runner's ``default_max_tokens``,
else nothing) and the context left after the prompt (``context_size`` minus ``prompt_tokens``) cut
it, and ``finish_reason`` says which happened. A streamed piece is one token as a tokenizer cuts it.

* ``completion_tokens``: the pieces sent (of the arguments string for a tool call), plus the
  end-of-turn token when the answer ends by itself (``stop``, ``tool_calls``);
* ``prompt_tokens``: chat, the chat template's tokens around each message, the family's default
  system prompt when there is no system message, and the content; completions and embeddings,
  the tokens of each text.

``seed`` changes the answer only when sampling: a ``temperature`` of 0 (or below) is greedy
decoding on llama.cpp, where the seed changes nothing; unset, llama.cpp samples at 0.8.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_dmr.protocol import encoding, openai_api, routes, sse
from pytest_dmr.mock import responses
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.embeddings import embedding_vector
from pytest_dmr.mock import logprobs, request_checks, tokens
from pytest_dmr.mock.prompt_values import PromptValues, schema_in_text
from pytest_dmr.mock.prose import answer_pieces, cut_at_stop, read_request
from pytest_dmr.mock.tokens import count_prompt_tokens, count_tokens, split_into_pieces
from pytest_dmr.mock.rules import RecordedRequest, Rule
from pytest_dmr.mock.schema import SchemaError, value_for_schema
from pytest_dmr.mock.seeded import SeededDraws, canonical_json
from pytest_dmr.mock.state import MockState
from pytest_dmr.mock.streams import Delivery
from pytest_dmr.mock.conversation import Conversation
from pytest_dmr.mock.tools import generated_calls, plan_calls, result_answer, scripted_calls


_LENGTH_AND_FRAMING_FIELDS = frozenset(("stream", "stream_options", "max_tokens", "max_completion_tokens", "n_predict", "stop"))
"""Request fields that cut or frame the answer but do not choose it: left out of the text's seed, so
a streamed answer has the plain answer's text and a smaller ``max_tokens`` gives a prefix of it."""
DEFAULT_EMBEDDING_WIDTH = 768
"""Embedding width for a model whose family the mock does not know (``nomic-embed-text``'s)."""
_CREATED_BASE = 1_700_000_000
_CREATED_SPAN = 100_000_000


@dataclass
class Exchange:
    """One inference request on its way through the mock."""

    recorded: RecordedRequest
    body: dict[str, Any]
    endpoint: str
    rule: Rule | None
    delivery: Delivery


@dataclass
class _Answer:
    pieces: list[str]
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None

    @classmethod
    def calling(cls, calls: list[dict[str, Any]]) -> _Answer:
        """Tool calls: their arguments are the pieces (one call's after another's)."""
        return cls([piece for call in calls for piece in split_into_pieces(call["function"]["arguments"])], "tool_calls", calls)

    @property
    def tokens(self) -> int:
        """``completion_tokens``: the pieces, and the end-of-turn token unless the answer was cut."""
        return len(self.pieces) + (self.finish_reason != "length")


class _Seeds:
    """The content seed, and the id and ``created`` of one request."""

    __slots__ = ("content", "id_hex", "created")

    def __init__(self, body: Mapping[str, Any], endpoint: str) -> None:
        content = {key: value for key, value in body.items() if key not in _LENGTH_AND_FRAMING_FIELDS}
        temperature = content.get("temperature")
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            content["temperature"] = float(temperature)  # 0 and 0.0 are the same request
            if temperature <= 0:  # greedy decoding: the seed changes nothing
                content.pop("seed", None)
        self.content = hashlib.sha256(f"{endpoint}\x00{canonical_json(content)}".encode()).digest()
        framing = {key: value for key, value in body.items() if key in _LENGTH_AND_FRAMING_FIELDS}  # key-sorted below
        whole = hashlib.sha256(self.content + canonical_json(framing).encode()).digest()
        self.id_hex = whole.hex()
        self.created = _CREATED_BASE + int.from_bytes(whole[:4], "big") % _CREATED_SPAN


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "n_predict"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _stops(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list):
        return [item for item in stop if isinstance(item, str) and item]
    return []


def _response_schema(body: Mapping[str, Any], conversation: str) -> tuple[Any, str]:
    """The JSON schema the answer must follow (``None`` for free text), and the conversation's text
    without it. With ``json_object`` and no schema in ``response_format``, one written in the
    messages (instructor's JSON mode, pydantic-ai's ``PromptedOutput``) is followed; so is one in the
    messages of a request without ``response_format`` or tools that asks for JSON."""
    response_format = body.get("response_format")
    if not isinstance(response_format, (dict, Mapping)):
        if "json" in conversation.lower() and not body.get("tools"):
            return schema_in_text(conversation)
        return None, conversation
    kind = response_format.get("type")
    if kind == "json_schema":
        wrapper = response_format.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, (dict, Mapping)) else None
        return (schema if schema is not None else response_format.get("schema", {"type": "object"})), conversation
    if kind == "json_object":
        if response_format.get("schema"):
            return response_format["schema"], conversation
        found, rest = schema_in_text(conversation)
        return (found or {"type": "object"}), rest
    return None, conversation


def _limit(runner: MockState, body: Mapping[str, Any], prompt: int) -> int:
    """How many tokens the answer may have: ``max_tokens`` (else the runner's default) within the
    context left after the prompt."""
    room = runner.context_size - prompt
    max_tokens = _max_tokens(body) or runner.default_max_tokens
    return max(1, min(room, max_tokens) if max_tokens is not None else room)


def _sized(pieces: list[str], limit: int) -> tuple[list[str], str]:
    """An answer that ends by itself after ``pieces`` (then its end-of-turn token), cut at ``limit`` tokens."""
    if len(pieces) + 1 <= limit:
        return pieces, "stop"
    return pieces[:limit], "length"


def _conversation_text(body: Mapping[str, Any]) -> str:
    """Every message's text (a completion's prompt), for values and schemas written in the prompt:
    the system messages last, so that the values the user gives come first."""
    messages = body.get("messages")
    if isinstance(messages, list):
        if len(messages) == 1 and isinstance(messages[0], (dict, Mapping)):  # most requests
            return openai_api.message_text(messages[0].get("content"))
        entries = [message for message in messages if isinstance(message, (dict, Mapping))]
        ordered = sorted(entries, key=lambda message: message.get("role") in ("system", "developer"))
        return "\n".join(openai_api.message_text(message.get("content")) for message in ordered)
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _uses_tools(body: Mapping[str, Any]) -> bool:
    """Whether a chat request offers tools or carries a tool's result (else it is answered in text)."""
    messages = body.get("messages")
    return bool(body.get("tools")) or (
        isinstance(messages, list) and any(isinstance(message, (dict, Mapping)) and message.get("role") == "tool" for message in messages)
    )


def _compose(runner: MockState, exchange: Exchange, seeds: _Seeds, prompt: int, *, chat: bool) -> _Answer:
    """What the model says: a rule's reply or tool call, a generated tool call, JSON, code, a list or prose."""
    body = exchange.body
    rule = exchange.rule
    call_id = "call_" + seeds.id_hex[:24]
    if rule is not None and rule.tool_call is not None and chat:
        return _Answer.calling(scripted_calls(rule.tool_call, call_id))
    if rule is not None and rule.reply_text is not None:
        return _Answer(list(rule.stream) if rule.stream is not None else split_into_pieces(rule.reply_text), "stop")
    draws = SeededDraws(seeds.content)
    schema, prompt_text = _response_schema(body, _conversation_text(body))
    limit = _limit(runner, body, prompt)
    if chat and _uses_tools(body):  # (pytest_dmr.mock.tools): calls the request asks for, else a text that uses their results
        conversation = Conversation.of(body)
        planned = plan_calls(body, conversation)
        if planned:
            return _Answer.calling(generated_calls(planned, draws, call_id, PromptValues(prompt_text)))
        told = result_answer(conversation, draws) if schema is None else None
        if told is not None:
            pieces, finish = _sized(split_into_pieces(told), limit)
            pieces, stopped = cut_at_stop(pieces, _stops(body))
            return _Answer(pieces, "stop" if stopped else finish)
    if schema is not None:
        value = value_for_schema(schema, draws.fork("json"), PromptValues(prompt_text))
        pieces, finish = _sized(split_into_pieces(encoding.dumps(value)), limit)
    else:
        request = read_request(exchange.recorded.last_user_message)
        natural = tokens.natural_length(draws.fork("length"), request.kind)
        wanted = natural - 1 if natural is not None else limit  # the end-of-turn token is not text
        text = answer_pieces(request, draws, wanted, natural=natural is not None, leading_space=not chat, enough=limit)
        pieces, finish = _sized(text, limit) if natural is not None else (text[:limit], "length")
    pieces, stopped = cut_at_stop(pieces, _stops(body))
    return _Answer(pieces, "stop" if stopped else finish)


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, (dict, Mapping)) and options.get("include_usage") is True


def _bad_request(message: str) -> Answer:
    return responses.backend_json(openai_api.backend_error_body(400, message), 400)


def _refused(refusal: request_checks.Refusal) -> Answer:
    """llama.cpp's answer to a malformed request: a 400 ``invalid_request_error`` or a 500 ``server_error``."""
    status, message = refusal
    kind = "invalid_request_error" if status == 400 else "server_error"
    return responses.backend_json(openai_api.backend_error_body(status, message, kind), status)


@dataclass
class ChatOutcome:
    """The core's answer to a chat request, before any front-end encodes it: the ``chat.completion``
    (``completion``) of a plain request, or the ``chat.completion.chunk`` list (``chunks``, the usage
    chunk included) of a streamed one, where ``chunks[content_start:content_start + pieces]`` carry the
    content (what ``Fault.cut_stream(after)`` counts). ``error`` is llama.cpp's refusal instead
    (an OpenAI-encoded answer), ``delivery`` the fault's pacing."""

    delivery: Delivery
    reply: dict[str, Any] | None = None
    """A plain request's answer: :func:`~pytest_dmr.protocol.openai_api.chat_completion`'s arguments."""
    chunks: list[dict[str, Any]] | None = None
    content_start: int = 0
    pieces: int = 0
    prompt_tokens: int = 0
    error: Answer | None = None
    content_chunks: int | None = None
    """How many chunks from ``content_start`` carry the content, when not ``pieces`` (several tool calls)."""
    completion_tokens: int = 0

    @functools.cached_property
    def completion(self) -> dict[str, Any] | None:
        """The ``chat.completion`` of a plain request (``None`` for a stream or an error)."""
        return openai_api.chat_completion(**self.reply) if self.reply is not None else None

    def cut_index(self, offsets: list[int]) -> Delivery:
        """The delivery for an encoding of ``chunks`` in which chunk ``i`` starts at event ``offsets[i]``
        (``offsets[len(chunks)]``: past the last chunk's events): a cut after ``after`` content pieces
        stops where the chunk after them would start."""
        if self.delivery.cut_after is None:
            return self.delivery
        content_chunks = self.pieces if self.content_chunks is None else self.content_chunks
        return self.delivery.cut_at(offsets[self.content_start + min(self.delivery.cut_after, content_chunks)])


def prompt_tokens(messages: Any, model: str) -> int:
    """``prompt_tokens`` of a chat request (see :func:`pytest_dmr.mock.tokens.count_prompt_tokens`)."""
    return count_prompt_tokens(messages if isinstance(messages, list) else [], model)


def _context_exceeded(prompt: int, runner: MockState) -> Answer:
    """llama.cpp's refusal of a prompt that leaves no room in the context."""
    return _bad_request(
        f"the request exceeds the available context size ({prompt} prompt tokens, context {runner.context_size}), try increasing it"
    )


def chat_outcome(runner: MockState, exchange: Exchange) -> ChatOutcome:
    """The chat-completions core: what the model answers to ``exchange.body``, as structured data."""
    body = exchange.body
    refusal = request_checks.chat_refusal(body)
    if refusal is not None:
        return ChatOutcome(exchange.delivery, error=_refused(refusal))
    messages = body["messages"]
    seeds = _Seeds(body, exchange.endpoint)
    model = exchange.recorded.model or ""
    prompt = prompt_tokens(messages, model)
    if prompt >= runner.context_size:
        return ChatOutcome(exchange.delivery, error=_context_exceeded(prompt, runner))
    try:
        answer = _compose(runner, exchange, seeds, prompt, chat=True)
    except SchemaError as exc:
        return ChatOutcome(exchange.delivery, error=_bad_request(f"invalid JSON schema: {exc}"))
    ident = "chatcmpl-" + seeds.id_hex[:32]
    tool_calls = answer.tool_calls
    top = logprobs.top_count(body)
    entries = logprobs.token_logprobs(answer.pieces, top) if top and not tool_calls else None
    if body.get("stream") is not True:
        reply = {
            "id": ident,
            "created": seeds.created,
            "model": model,
            "content": None if tool_calls else "".join(answer.pieces),
            "finish_reason": answer.finish_reason,
            "prompt_tokens": prompt,
            "completion_tokens": answer.tokens,
            "tool_calls": tool_calls,
        }
        if entries is not None:
            reply["logprobs"] = entries
        return ChatOutcome(exchange.delivery, reply=reply, pieces=len(answer.pieces), prompt_tokens=prompt,
            completion_tokens=answer.tokens,
        )

    def chunk(delta: Mapping[str, Any], finish_reason: str | None = None, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        timed = (prompt, answer.tokens) if finish_reason is not None and not _include_usage(body) else None  # else on the usage chunk
        return openai_api.chat_chunk(
            id=ident, created=seeds.created, model=model, delta=delta, finish_reason=finish_reason, logprobs=logprobs, timed=timed
        )

    chunks = [chunk({"role": "assistant", "content": None})]
    if tool_calls:  # as llama.cpp streams calls: per call, its id and name, then its arguments in pieces
        for index, call in enumerate(tool_calls):
            head = {"index": index, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}
            chunks.append(chunk({"tool_calls": [head]}))
            chunks += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in split_into_pieces(call["function"]["arguments"])]
        content_start = 2  # the first call's head is always sent: a cut counts the chunks after it
    else:
        chunks += [chunk({"content": piece}, logprobs=None if entries is None else [entries[at]]) for at, piece in enumerate(answer.pieces)]
        content_start = len(chunks) - len(answer.pieces)
    content_chunks = len(chunks) - content_start
    chunks.append(chunk({}, answer.finish_reason))
    if _include_usage(body):
        chunks.append(
            openai_api.usage_chunk(id=ident, created=seeds.created, model=model, prompt_tokens=prompt, completion_tokens=answer.tokens)
        )
    return ChatOutcome(
        exchange.delivery, chunks=chunks, content_start=content_start, pieces=len(answer.pieces), prompt_tokens=prompt,
        content_chunks=content_chunks, completion_tokens=answer.tokens,
    )


def openai_chat_answer(outcome: ChatOutcome) -> Answer:
    """The OpenAI front-end: the outcome as llama.cpp writes it (JSON, or SSE ending in ``[DONE]``)."""
    if outcome.error is not None:
        return outcome.error
    chunks = outcome.chunks
    if chunks is None:
        answer = responses.backend_text(openai_api.chat_completion_json(**(outcome.reply or {})))
    else:
        events = [sse.encode_sse(chunk) for chunk in chunks] + [sse.SSE_DONE_EVENT]
        offsets = list(range(len(chunks) + 1))
        answer = responses.event_stream(events, delivery=outcome.cut_index(offsets))
    answer.tokens = outcome.completion_tokens
    return answer


def chat_completions(runner: MockState, exchange: Exchange) -> Answer:
    return openai_chat_answer(chat_outcome(runner, exchange))


def completions(runner: MockState, exchange: Exchange) -> Answer:
    body = exchange.body
    refusal = request_checks.completion_refusal(body)
    if refusal is not None:
        return _refused(refusal)
    seeds = _Seeds(body, exchange.endpoint)
    prompt_tokens = count_tokens(exchange.recorded.last_user_message)
    if prompt_tokens >= runner.context_size:
        return _context_exceeded(prompt_tokens, runner)
    try:
        answer = _compose(runner, exchange, seeds, prompt_tokens, chat=False)
    except SchemaError as exc:
        return _bad_request(f"invalid JSON schema: {exc}")
    model = exchange.recorded.model or ""
    ident = "cmpl-" + seeds.id_hex[:32]
    top = logprobs.top_count(body, chat=False)
    entries = logprobs.token_logprobs(answer.pieces, top) if top else None
    if body.get("stream") is not True:
        whole = responses.backend_json(
            openai_api.text_completion(
                id=ident,
                created=seeds.created,
                model=model,
                text="".join(answer.pieces),
                finish_reason=answer.finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=answer.tokens,
                logprobs=entries,
            )
        )
        whole.tokens = answer.tokens
        return whole
    events = [
        sse.encode_sse(openai_api.text_completion(
            id=ident, created=seeds.created, model=model, text=piece, finish_reason=None, logprobs=None if entries is None else [entries[at]],
        ))  # fmt: skip
        for at, piece in enumerate(answer.pieces)
    ]
    events.append(
        sse.encode_sse(
            openai_api.text_completion(
                id=ident, created=seeds.created, model=model, text="", finish_reason=answer.finish_reason,
                prompt_tokens=prompt_tokens, completion_tokens=answer.tokens,
            )
        )
    )
    events.append(sse.SSE_DONE_EVENT)
    streamed = _streamed(exchange, events, 0, len(answer.pieces))
    streamed.tokens = answer.tokens
    return streamed


def _streamed(exchange: Exchange, events: list[bytes], content_start: int, pieces: int) -> Answer:
    """An SSE answer; under ``Fault.cut_stream(after)`` it stops after that many content events
    (at most all of them): the final chunk and ``[DONE]`` are never sent."""
    delivery = exchange.delivery
    if delivery.cut_after is not None:
        delivery = delivery.cut_at(content_start + min(delivery.cut_after, pieces))
    return responses.event_stream(events, delivery=delivery)


def _embedding_inputs(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, int) for item in value):
            return [encoding.dumps(value)]
        return [item if isinstance(item, str) else encoding.dumps(item) for item in value]
    return None


def embedding_width(requested: Any, configured: int | None, model: str) -> int:
    """The width of a model's embeddings: the request's ``dimensions``, else the runner's
    ``embedding_dimensions`` when set, else the model family's width, else 768."""
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return requested
    return configured or tokens.embedding_width(model) or DEFAULT_EMBEDDING_WIDTH


def embeddings(runner: MockState, exchange: Exchange) -> Answer:
    body = exchange.body
    refusal = request_checks.embedding_refusal(body)
    texts = _embedding_inputs(body.get("input", body.get("content")))
    if refusal is not None or texts is None:
        return _refused(refusal or (400, '"input" must not be empty'))
    model = exchange.recorded.model or ""
    dimensions = embedding_width(body.get("dimensions"), runner.embedding_dimensions, model)
    vectors: list[Any] = [embedding_vector(text, model=model, dimensions=dimensions) for text in texts]
    if body.get("encoding_format") == "base64":
        vectors = [base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() for vector in vectors]
    prompt_tokens = sum(count_tokens(text) for text in texts)
    return responses.backend_json(openai_api.embeddings_response(model=model, vectors=vectors, prompt_tokens=prompt_tokens))


HANDLERS = {
    routes.CHAT_COMPLETIONS: chat_completions,
    routes.COMPLETIONS: completions,
    routes.EMBEDDINGS: embeddings,
}
