"""Faults as an httpx client sees them, on sync and async clients."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from pytest_dmr.protocol import error_bodies, openai_api
from pytest_dmr.mock import Fault, MockModelRunner

CHAT = "/engines/v1/chat/completions"
BODY = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12}
STREAM_BODY = {**BODY, "stream": True}


# -- HTTP statuses with DMR's bodies -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "content_type", "body"),
    [
        (Fault.http(400), 400, "text/plain; charset=utf-8", "model is required\n"),
        (Fault.model_not_found(), 404, "text/plain; charset=utf-8", "error while getting model: get model '\"ai/smollm2\"': model not found\n"),
        (Fault.http(500), 500, "text/plain; charset=utf-8", "unable to load runner: error waiting for runner to be ready: inference backend took too long to initialize\n"),
        (Fault.load_failure("unable to start runner: boom"), 500, "text/plain; charset=utf-8", "unable to load runner: unable to start runner: boom\n"),
        (Fault.http(502), 502, "text/plain; charset=utf-8", ""),
        (Fault.http(503), 503, "application/json; charset=utf-8", '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'),
        (Fault.http(504), 504, "text/plain; charset=utf-8", "Gateway Timeout\n"),
        (Fault.http(429, "slow down"), 429, "text/plain; charset=utf-8", "slow down\n"),
        (Fault.http(400, {"error": {"code": 400, "message": "bad"}}), 400, "application/json; charset=utf-8", '{"error":{"code":400,"message":"bad"}}'),
    ],
)
def test_http_faults_send_dmr_bodies(client: httpx.Client, mock: MockModelRunner, fault: Fault, status: int, content_type: str, body: str) -> None:
    mock.fail(fault)
    response = client.post(CHAT, json=BODY)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.text == body


def test_default_503_body_is_recognised_as_loading(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.http(503))
    response = client.post(CHAT, json=BODY)
    assert error_bodies.is_loading_response(response.status_code, response.text)


def test_loading_fault_answers_503_n_times_then_normally(client: httpx.Client, mock: MockModelRunner) -> None:
    rule = mock.fail(Fault.loading(times=2))
    statuses = [client.post(CHAT, json=BODY).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert rule.times == 2 and rule.calls == 2


def test_explicit_times_overrides_the_fault_default(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.loading(times=1), times=3)
    assert [client.post(CHAT, json=BODY).status_code for _ in range(4)] == [503, 503, 503, 200]


# -- transport failures ------------------------------------------------------------------------------


def test_timeout_raises_read_timeout_with_the_request(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.timeout())
    with pytest.raises(httpx.ReadTimeout) as caught:
        client.post(CHAT, json=BODY)
    assert caught.value.request.url.path == CHAT


def test_disconnect_raises_remote_protocol_error(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.disconnect())
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected without sending a response"):
        client.post(CHAT, json=BODY)
    assert len(mock.requests) == 1  # recorded all the same


def read_events(client: httpx.Client, body: dict[str, Any]) -> tuple[list[str], BaseException | None]:
    events: list[str] = []
    try:
        with client.stream("POST", CHAT, json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[len("data: ") :])
    except httpx.HTTPError as exc:
        return events, exc
    return events, None


@pytest.mark.parametrize("after", [0, 3])
def test_cut_stream_sends_n_pieces_then_raises(client: httpx.Client, mock: MockModelRunner, after: int) -> None:
    mock.fail(Fault.cut_stream(after=after))
    events, error = read_events(client, STREAM_BODY)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert "incomplete chunked read" in str(error)
    assert "[DONE]" not in events
    chunks = [json.loads(event) for event in events]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(chunks) == 1 + after
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)


@pytest.mark.parametrize("path", [CHAT, "/engines/v1/completions"])
def test_cut_stream_beyond_the_answer_still_loses_the_end(client: httpx.Client, mock: MockModelRunner, path: str) -> None:
    mock.fail(Fault.cut_stream(after=1000), times=1)
    body = {**STREAM_BODY, "prompt": "hi", "stream_options": {"include_usage": True}}
    events: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", path, json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[len("data: ") :])
    chunks = [json.loads(event) for event in events]  # no [DONE]
    pieces = client.post(path, json={**body, "stream": False}).json()["usage"]["completion_tokens"]
    assert len(chunks) == pieces + (1 if path == CHAT else 0)  # the role chunk, then every content piece
    assert all(chunk["choices"][0]["finish_reason"] is None and "usage" not in chunk for chunk in chunks)


def test_cut_stream_keeps_a_scripted_reply(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_rule(reply="one two three four", fault=Fault.cut_stream(after=2))
    events, error = read_events(client, STREAM_BODY)
    assert error is not None
    assert "".join(openai_api.chunk_text(json.loads(event)) for event in events) == "one two"


def test_cut_stream_on_a_plain_request_breaks_the_body(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.cut_stream(after=1))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(CHAT, json=BODY)


def test_slow_first_token_delays_the_first_byte(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.slow_first_token(0.2))
    started = time.perf_counter()
    with client.stream("POST", CHAT, json=STREAM_BODY) as response:
        opened = time.perf_counter() - started
        events = list(response.iter_lines())
    total = time.perf_counter() - started
    assert opened < 0.1 <= 0.2 <= total
    assert events[-2] == "data: [DONE]"


def test_slow_first_token_past_the_read_timeout_times_out() -> None:
    mock = MockModelRunner()
    mock.fail(Fault.slow_first_token(120))
    with httpx.Client(transport=mock, base_url=mock.base_url, timeout=httpx.Timeout(1.0, read=0.05)) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            client.post(CHAT, json=BODY)
        assert time.perf_counter() - started < 60, "the read timeout, not the 120 s first-token delay, must end it"


# -- async clients -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_client_gets_the_same_bytes_as_sync(mock: MockModelRunner) -> None:
    with httpx.Client(transport=mock, base_url=mock.base_url) as sync_client:
        expected = sync_client.post(CHAT, json=STREAM_BODY).content
    async with httpx.AsyncClient(transport=mock, base_url=mock.base_url) as client:
        async with client.stream("POST", CHAT, json=STREAM_BODY) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(chunks) == expected
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)


@pytest.mark.asyncio
async def test_async_slow_first_token_does_not_block_the_loop(mock: MockModelRunner) -> None:
    import asyncio

    mock.fail(Fault.slow_first_token(0.2))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    async with httpx.AsyncClient(transport=mock, base_url=mock.base_url) as client:
        response = await client.post(CHAT, json=BODY)
    task.cancel()
    assert response.status_code == 200
    assert ticks >= 5  # the loop kept running during the 0.2 s wait


@pytest.mark.asyncio
async def test_async_faults_raise_httpx_errors(mock: MockModelRunner) -> None:
    mock.fail(Fault.timeout(), times=1)
    mock.fail(Fault.cut_stream(after=2), contains="cut")
    async with httpx.AsyncClient(transport=mock, base_url=mock.base_url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(CHAT, json=BODY)
        cut_body = {**STREAM_BODY, "messages": [{"role": "user", "content": "cut please"}]}
        received = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", CHAT, json=cut_body) as response:
                async for line in response.aiter_lines():
                    received.append(line)
        assert len([line for line in received if line.startswith("data: ")]) == 3
        assert (await client.post(CHAT, json=BODY)).status_code == 200
