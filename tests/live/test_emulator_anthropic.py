"""Anthropic Messages on the emulator over real llama.cpp, through the official ``anthropic`` SDK:
``/v1/messages`` (base URL the root, DMR's plain-text errors) and ``/anthropic/v1/messages`` (DMR's
Anthropic JSON errors), both answered by llama.cpp's own Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from pytest_dmr.emulator import EmulatorServer

from .conftest import MODEL

pytestmark = pytest.mark.tier_live

HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(params=["", "/anthropic"], ids=["root", "anthropic-prefix"])
def sdk(request: pytest.FixtureRequest, emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    base = emulator.url + request.param
    with anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0, timeout=300) as client:
        yield client


def test_message_plain(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=8, messages=HI, extra_body={"temperature": 0})  # type: ignore[arg-type]
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 8


def test_message_stream_events_and_text(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=8, messages=HI, extra_body={"temperature": 0}) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_delta" in kinds and "message_delta" in kinds
    assert final.content[0].text and final.stop_reason == "max_tokens"  # type: ignore[union-attr]
    plain = sdk.messages.create(model=MODEL, max_tokens=8, messages=HI, extra_body={"temperature": 0})  # type: ignore[arg-type]
    assert plain.content[0].text == final.content[0].text  # type: ignore[union-attr]


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    short = sdk.messages.count_tokens(model=MODEL, messages=HI)  # type: ignore[arg-type]
    longer = sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Say hello to everyone here."}])
    assert 0 < short.input_tokens < longer.input_tokens


def test_tools_shape(sdk: anthropic.Anthropic) -> None:
    """SmolLM2's template drops tools: the request is accepted and answered; only shapes are checked."""
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    message = sdk.messages.create(model=MODEL, max_tokens=8, messages=HI, tools=[tool])  # type: ignore[arg-type,list-item]
    assert {block.type for block in message.content} <= {"text", "tool_use"}


def test_unknown_model_on_the_root_is_dmr_plain_text(emulator: EmulatorServer) -> None:
    with anthropic.Anthropic(base_url=emulator.url, api_key="unused", max_retries=0) as client:
        with pytest.raises(anthropic.NotFoundError) as raised:
            client.messages.create(model="ai/absent", max_tokens=8, messages=HI)  # type: ignore[arg-type]
    assert raised.value.response.headers["content-type"] == "text/plain; charset=utf-8"
    assert raised.value.response.text == "error while getting model: get model '\"ai/absent\"': model not found\n"


def test_unknown_model_under_anthropic_is_an_anthropic_error(emulator: EmulatorServer) -> None:
    with anthropic.Anthropic(base_url=emulator.url + "/anthropic", api_key="unused", max_retries=0) as client:
        with pytest.raises(anthropic.NotFoundError) as raised:
            client.messages.create(model="ai/absent", max_tokens=8, messages=HI)  # type: ignore[arg-type]
    assert raised.value.body == {"type": "error", "error": {"type": "not_found_error", "message": "Model not found: ai/absent"}}


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [(b"{", 400, "invalid_request_error", "Invalid JSON in request body"),
     (b'{"messages": []}', 400, "invalid_request_error", "Missing required field: model"),
     (b'{"model": 5}', 400, "invalid_request_error", "Invalid JSON in request body")],
)  # fmt: skip
def test_anthropic_prefix_checks(emulator: EmulatorServer, body: bytes, status: int, kind: str, message: str) -> None:
    for path in ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"):
        response = httpx.post(emulator.url + path, content=body)
        assert response.status_code == status and response.headers["content-type"] == "application/json"
        assert response.text == '{"type":"error","error":{"type":"%s","message":"%s"}}\n' % (kind, message)


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [("GET", "/anthropic/v1/messages", 405, "Method Not Allowed\n"), ("POST", "/anthropic/v1/other", 404, "404 page not found\n"),
     ("GET", "/v1/messages", 404, "not found\n"), ("POST", "/engines/nothing/v1/messages", 404, "backend not found\n"),
     ("POST", "/engines/vllm/v1/messages", 412, "vLLM binary not found\n")],
)  # fmt: skip
def test_routes(emulator: EmulatorServer, method: str, path: str, status: int, body: str) -> None:
    response = httpx.request(method, emulator.url + path, json={"model": MODEL})
    assert (response.status_code, response.text) == (status, body)


def test_engines_form_is_passed_to_llama_cpp(emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": HI}
    response = httpx.post(emulator.url + "/engines/llama.cpp/v1/messages", json=body, timeout=300)
    assert response.status_code == 200 and response.json()["type"] == "message"
    missing = httpx.post(emulator.url + "/engines/v1/messages", json={"max_tokens": 4})
    assert (missing.status_code, missing.text) == (400, "model is required\n")


def test_cors_on_the_anthropic_prefix(emulator: EmulatorServer) -> None:
    allowed = httpx.options(emulator.url + "/anthropic/v1/messages", headers={"Origin": "http://localhost"})
    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == "http://localhost"
    refused = httpx.post(emulator.url + "/anthropic/v1/messages", headers={"Origin": "http://evil.example"}, json={})
    assert (refused.status_code, refused.text) == (403, "Origin not allowed\n")
