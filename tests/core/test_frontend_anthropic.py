"""The Anthropic translator: DMR's /anthropic checks, llama.cpp's shapes, read back by the anthropic SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from pytest_dmr.protocol import encoding, openai_api
from pytest_dmr.protocol import anthropic_api as a

MODEL = "ai/smollm2"


@pytest.mark.parametrize(
    ("raw", "status", "type", "message"),
    [
        (b"{", 400, "invalid_request_error", "Invalid JSON in request body"),
        (b'{"model": 3}', 400, "invalid_request_error", "Invalid JSON in request body"),
        (b'{"messages": []}', 400, "invalid_request_error", "Missing required field: model"),
        (b'{"model": "ai/nope"}', 404, "not_found_error", "Model not found: ai/nope"),
        (b'{"model": "ai/smollm2"}' + b" " * 40, 413, "request_too_large", "Request body too large"),
    ],
)
def test_dmr_checks(raw: bytes, status: int, type: str, message: str) -> None:
    with pytest.raises(a.AnthropicError) as caught:
        a.check_request(raw, model_exists=lambda name: name == MODEL, max_bytes=50)
    assert caught.value.status == status
    assert caught.value.body() == {"type": "error", "error": {"type": type, "message": message}}


def test_check_returns_the_model() -> None:
    assert a.check_request(b'{"model":"ai/smollm2","messages":[]}', model_exists=lambda name: True) == MODEL


def test_messages_request_to_chat() -> None:
    body = {
        "model": MODEL, "system": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief"}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking"},
                                              {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]},
        ],
        "tools": [{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "get_weather"}, "stop_sequences": ["."], "temperature": 0, "stream": True,
    }  # fmt: skip
    assert a.to_chat_request(body) == {
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking"}],
             "tool_calls": [openai_api.tool_call(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}')]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "stop": ["."], "max_tokens": 4096, "temperature": 0, "stream": True, "model": MODEL,
    }  # fmt: skip
    with pytest.raises(ValueError, match="'messages' is required"):
        a.to_chat_request({"model": MODEL})


def chat(content: str | None, finish: str, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return openai_api.chat_completion(
        id="chatcmpl-1", created=1, model=MODEL, content=content, finish_reason=finish, prompt_tokens=12, completion_tokens=4,
        tool_calls=tool_calls,
    )  # fmt: skip


def sdk_client(body: bytes, content_type: str) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return anthropic.Anthropic(base_url="http://127.0.0.1:12434", api_key="x", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


@pytest.mark.parametrize(
    ("finish", "calls", "reason"),
    [("stop", False, "end_turn"), ("length", False, "max_tokens"), ("stop", True, "tool_use"), ("tool_calls", True, "tool_use")],
)
def test_stop_reasons(finish: str, calls: bool, reason: str) -> None:
    assert a.stop_reason(finish, tool_calls=calls) == reason


def test_message_response_validates_and_reads_through_the_sdk() -> None:
    call = openai_api.tool_call(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    body = a.message_response(chat("Sure", "tool_calls", [call]))
    assert body == {
        "id": "chatcmpl-1", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": "Sure"}, {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
        "model": MODEL, "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"cache_read_input_tokens": 0, "input_tokens": 12, "output_tokens": 4},
    }  # fmt: skip
    assert anthropic.types.Message.model_validate(body).content[1].input == {"city": "Paris"}
    with sdk_client(encoding.dumps(body).encode(), openai_api.LLAMACPP_JSON_CONTENT_TYPE) as client:
        message = client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert (message.stop_reason, message.content[0].text, message.usage.output_tokens) == ("tool_use", "Sure", 4)


def test_stop_sequence_and_count_tokens() -> None:
    assert a.message_response(chat("Paris", "stop"), stop_sequence=".")["stop_sequence"] == "."
    assert a.count_tokens_body(32) == {"input_tokens": 32}


def stream_events() -> list[a.Event]:
    stream = a.MessageStream(id="chatcmpl-1", model=MODEL, input_tokens=12)
    events = stream.start()
    for delta in ({"role": "assistant", "content": None}, {"content": "I"}, {"content": "'m"},
                  {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}]},
                  {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}):  # fmt: skip
        events += stream.feed(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta=delta))
    events += stream.feed(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={}, finish_reason="tool_calls"))
    return events + stream.finish(5)


def test_stream_event_sequence() -> None:
    events = stream_events()
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_start",
        "content_block_delta", "content_block_delta", "content_block_stop", "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert events[0][1]["message"]["usage"] == {"cache_read_input_tokens": 0, "input_tokens": 12, "output_tokens": 0}
    assert events[4][1] == {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "f"}}
    assert events[6][1]["delta"] == {"type": "input_json_delta", "partial_json": ":1}"}
    assert events[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 5}}
    assert a.encode_event(events[-1]) == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def test_stream_through_the_sdk_accumulates_the_message() -> None:
    body = b"".join(a.encode_event(event) for event in stream_events())
    with sdk_client(body, "text/event-stream") as client:
        with client.messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == "I'm"
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert json.loads(json.dumps(final.content[1].input)) == {"a": 1}
    assert (final.stop_reason, final.usage.output_tokens) == ("tool_use", 5)
