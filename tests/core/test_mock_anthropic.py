"""The mock's Anthropic Messages front-end through the anthropic SDK (on httpx2) and raw HTTP:
plain, streamed, tools, count_tokens, DMR's errors on /anthropic and on the scheduler routes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx2
import pytest

from pytest_dmr.mock import Fault, MockModelRunner
from pytest_dmr.mock.tokens import count_prompt_tokens

MODEL = "ai/smollm2"
HELLO = [{"role": "user", "content": "Describe a harbour at dawn."}]
WEATHER = {"name": "get_weather", "description": "The weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def sdk(mock: MockModelRunner) -> Iterator[anthropic.Anthropic]:
    with httpx2.Client(transport=mock) as http:
        yield anthropic.Anthropic(base_url=mock.anthropic_base_url, api_key="unused", http_client=http, max_retries=0)


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx2.Client]:
    with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
        yield client


def test_plain_text_block_is_the_chat_answer(mock: MockModelRunner, sdk: anthropic.Anthropic, http: httpx2.Client) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)  # type: ignore[arg-type]
    chat = http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "max_tokens": 64}).json()
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == chat["choices"][0]["message"]["content"]  # type: ignore[union-attr]
    assert chat["choices"][0]["finish_reason"] == "length"  # this answer runs past 64 tokens
    assert (message.role, message.model, message.stop_reason) == ("assistant", MODEL, "max_tokens")
    assert message.usage.output_tokens == chat["usage"]["completion_tokens"]
    recorded = mock.requests[0]
    assert (recorded.api, recorded.endpoint, recorded.path) == ("anthropic", "/messages", "/v1/messages")


def test_rule_reply_with_system_prompt(mock: MockModelRunner, sdk: anthropic.Anthropic) -> None:
    rule = mock.reply("Paris.", contains="capital of France")
    message = sdk.messages.create(
        model=MODEL, max_tokens=20, system="Be brief.", messages=[{"role": "user", "content": "The capital of France?"}]
    )
    assert message.content[0].text == "Paris."  # type: ignore[union-attr]
    assert rule.calls == 1 and mock.last_request.chat["messages"][0] == {"role": "system", "content": "Be brief."}


def test_max_tokens_cuts_the_answer(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=3, messages=HELLO)  # type: ignore[arg-type]
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 3)


def test_stream_events_and_text(mock: MockModelRunner, sdk: anthropic.Anthropic) -> None:
    mock.add_rule(stream=["Hel", "lo"])
    with sdk.messages.stream(model=MODEL, max_tokens=20, messages=HELLO) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_start") == 1 and "message_delta" in kinds
    assert final.content[0].text == "Hello"  # type: ignore[union-attr]
    assert final.usage.output_tokens == 3  # the two pieces and the end-of-turn token


def test_tool_use_and_tool_result(mock: MockModelRunner, sdk: anthropic.Anthropic) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}}, contains="Lisbon")
    message = sdk.messages.create(
        model=MODEL, max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Weather in Lisbon?"}]  # type: ignore[list-item]
    )
    block = message.content[0]
    assert block.type == "tool_use" and (block.name, block.input) == ("get_weather", {"city": "Lisbon"})
    assert message.stop_reason == "tool_use"
    mock.reply("It is sunny.", contains="sunny, 22C")
    follow = sdk.messages.create(
        model=MODEL, max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Weather in Lisbon?"},
            {"role": "assistant", "content": [block.model_dump()]},  # type: ignore[misc, list-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny, 22C"},
                                         {"type": "text", "text": "sunny, 22C: say it"}]},
        ],
    )  # fmt: skip
    assert follow.content[0].text == "It is sunny."  # type: ignore[union-attr]
    roles = [message["role"] for message in mock.last_request.chat["messages"]]
    assert roles == ["user", "assistant", "user", "tool"]


def test_streamed_tool_use(mock: MockModelRunner, sdk: anthropic.Anthropic) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}})
    with sdk.messages.stream(model=MODEL, max_tokens=64, tools=[WEATHER], messages=HELLO) as stream:  # type: ignore[arg-type, list-item]
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Oslo"}


def test_count_tokens(sdk: anthropic.Anthropic, http: httpx2.Client) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    expected = count_prompt_tokens(HELLO, MODEL)  # the chat template, SmolLM2's default system prompt, the text
    assert counted.input_tokens == expected
    answer = http.post("/anthropic/v1/messages/count_tokens", json={"model": MODEL, "messages": HELLO})
    assert answer.json() == {"input_tokens": expected}


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (b"{", 400, "invalid_request_error", "Invalid JSON in request body"),
        (b'{"messages": []}', 400, "invalid_request_error", "Missing required field: model"),
        (b'{"model": "ai/nope", "messages": []}', 404, "not_found_error", "Model not found: ai/nope"),
    ],
)
def test_anthropic_route_errors(mock: MockModelRunner, http: httpx2.Client, body: bytes, status: int, kind: str, message: str) -> None:
    mock.serve_any_model = False
    answer = http.post("/anthropic/v1/messages", content=body)
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json")
    assert answer.text == json.dumps({"type": "error", "error": {"type": kind, "message": message}}, separators=(",", ":")) + "\n"


def test_sdk_raises_on_unknown_model(mock: MockModelRunner) -> None:
    mock.serve_any_model = False
    with httpx2.Client(transport=mock) as http:
        client = anthropic.Anthropic(base_url=mock.base_url + "/anthropic", api_key="unused", http_client=http, max_retries=0)
        with pytest.raises(anthropic.NotFoundError, match="Model not found: ai/nope"):
            client.messages.create(model="ai/nope", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]


def test_scheduler_routes_answer_dmr_plain_text(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.serve_any_model = False
    answer = http.post("/engines/v1/messages", json={"model": "ai/nope", "messages": HELLO, "max_tokens": 5})
    assert answer.status_code == 404 and answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text.startswith("error while getting model")
    assert http.post("/engines/llama.cpp/v1/messages", json={"messages": HELLO}).text == "model is required\n"
    assert http.get("/v1/messages").status_code == 404
    assert http.get("/anthropic/v1/messages").status_code == 405


def test_fault_passes_through(mock: MockModelRunner, sdk: anthropic.Anthropic) -> None:
    mock.fail(Fault.http(503), api="anthropic")
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 503


def test_cut_stream(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.add_rule(stream=["a", "b", "c"], fault=Fault.cut_stream(after=2))
    seen: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        with http.stream("POST", "/v1/messages", json={"model": MODEL, "messages": HELLO, "max_tokens": 9, "stream": True}) as answer:
            seen.extend(answer.iter_lines())
    assert seen.count("event: content_block_delta") == 2 and "event: message_stop" not in seen


def test_cors_on_anthropic_routes(http: httpx2.Client) -> None:
    preflight = http.options("/anthropic/v1/messages", headers={"Origin": "http://localhost"})
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (204, "http://localhost")
    assert http.post("/anthropic/v1/messages", json={"model": MODEL}, headers={"Origin": "http://evil.example"}).status_code == 403
