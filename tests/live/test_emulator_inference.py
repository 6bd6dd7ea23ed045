"""Real llama.cpp generation through the emulator, read with plain httpx."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from pytest_dmr.protocol import engines_api, openai_api, sse
from pytest_dmr.emulator import EmulatorServer

from .conftest import DETERMINISTIC, MODEL

pytestmark = pytest.mark.tier_live

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 24, **DETERMINISTIC}


def stream_events(http: httpx.Client, path: str, body: dict) -> tuple[httpx.Response, list[str], list[float]]:
    """Every SSE data payload of a streamed answer, with the time each arrived."""
    started = time.perf_counter()
    payloads, arrivals = [], []
    with http.stream("POST", path, json={**body, "stream": True}) as response:
        decoder = sse.SSEDecoder()
        for line in response.iter_lines():
            data = decoder.feed(line)
            if data is not None:
                payloads.append(data)
                arrivals.append(time.perf_counter() - started)
    return response, payloads, arrivals


def test_chat_is_deterministic_with_temperature_0_and_a_seed(http: httpx.Client) -> None:
    first = http.post("/engines/v1/chat/completions", json=CHAT)
    second = http.post("/engines/llama.cpp/v1/chat/completions", json=CHAT)
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "application/json; charset=utf-8"  # llama.cpp's own, passed through
    text = first.json()["choices"][0]["message"]["content"]
    assert text.strip()
    assert second.json()["choices"][0]["message"]["content"] == text
    usage = first.json()["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 24


def test_streamed_pieces_join_to_the_non_streamed_text(http: httpx.Client) -> None:
    whole = http.post("/v1/chat/completions", json=CHAT).json()
    response, payloads, _ = stream_events(
        http, "/engines/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": True}}
    )
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(data) for data in payloads[:-1]]
    assert "".join(openai_api.chunk_text(chunk) for chunk in chunks) == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]


def test_stream_is_not_buffered(http: httpx.Client) -> None:
    """Tokens arrive as llama.cpp makes them: spread over the time it spent generating them.

    llama.cpp's last chunk says how long generation took (``timings.predicted_ms``), measured
    under the same load as our arrivals, so a busy machine slows both sides alike. A buffering
    proxy would deliver every token within a few milliseconds of the last.
    """
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 64, "ignore_eos": True, **DETERMINISTIC}
    _, payloads, arrivals = stream_events(http, "/engines/v1/completions", body)
    assert len(payloads) >= 60
    generating_s = json.loads(payloads[-2])["timings"]["predicted_ms"] / 1000
    first_to_last_token_s = arrivals[-2] - arrivals[0]
    assert first_to_last_token_s > generating_s / 2, (first_to_last_token_s, generating_s, arrivals)


def test_completions_endpoint_and_its_usage(http: httpx.Client) -> None:
    body = {"model": "smollm2", "prompt": "The capital of France is", "max_tokens": 8, "ignore_eos": True, **DETERMINISTIC}
    answer = http.post("/engines/v1/completions", json=body).json()
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"]
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 8


def test_embeddings_use_their_own_runner(http: httpx.Client, emulator: EmulatorServer) -> None:
    response = http.post("/v1/embeddings", json={"model": MODEL, "input": ["red", "green", "red"]})
    assert response.status_code == 200, response.text
    vectors = [item["embedding"] for item in response.json()["data"]]
    assert len(vectors) == 3 and len(vectors[0]) == 576  # SmolLM2-135M's embedding length
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    modes = {entry["mode"] for entry in http.get("/engines/ps").json()}
    assert engines_api.EMBEDDING_MODE in modes


def test_llama_cpp_errors_pass_through_in_its_own_json(http: httpx.Client) -> None:
    response = http.post("/engines/v1/chat/completions", json={"model": MODEL})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_concurrent_first_requests_share_one_load(fresh_emulator: EmulatorServer) -> None:
    import concurrent.futures

    fresh_emulator.pull(MODEL)
    body = {**CHAT, "max_tokens": 4}
    with httpx.Client(base_url=fresh_emulator.url, timeout=120) as http:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: http.post("/engines/v1/chat/completions", json=body), range(3)))
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert len({answer.json()["choices"][0]["message"]["content"] for answer in answers}) == 1
        assert len(http.get("/engines/ps").json()) == 1
