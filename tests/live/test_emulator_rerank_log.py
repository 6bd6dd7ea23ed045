"""Reranking on a reranking-mode llama.cpp runner, the request log ``/engines/requests`` (JSON and
event stream), and CORS on the new front-ends' prefixes, on the emulator over real llama.cpp."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from pytest_dmr.emulator import EmulatorServer

from .conftest import MODEL

pytestmark = pytest.mark.tier_live

DOCS = ["The giant panda is a bear that eats bamboo.", "Paris is the capital of France.", "hello"]


def test_rerank_starts_a_reranking_runner_and_answers_jina_shapes(emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "query": "What do pandas eat?", "documents": DOCS, "top_n": 2}
    answers = [httpx.post(emulator.url + path, json=body, timeout=300) for path in ("/rerank", "/engines/rerank", "/engines/llama.cpp/rerank")]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    result = answers[0].json()
    assert list(result) == ["model", "object", "usage", "results"] and result["object"] == "list"
    assert len(result["results"]) == 2 and all(list(r) == ["index", "relevance_score"] for r in result["results"])
    scores = [r["relevance_score"] for r in result["results"]]
    assert scores == sorted(scores, reverse=True)  # logits, best first (any real number)
    assert answers[1].json()["results"] == result["results"]  # deterministic
    modes = {entry["mode"] for entry in httpx.get(emulator.url + "/engines/ps").json()}
    assert "reranking" in modes


def test_rerank_checks(emulator: EmulatorServer) -> None:
    url = emulator.url
    assert httpx.post(url + "/rerank", json={"model": MODEL, "documents": DOCS}, timeout=300).json()["error"]["message"] == '"query" must be provided'
    assert (httpx.post(url + "/rerank", json={"query": "x"}).text, httpx.post(url + "/engines/nothing/rerank", json={}).text) == (
        "model is required\n", "backend not found\n",
    )  # fmt: skip
    assert (httpx.get(url + "/rerank").status_code, httpx.get(url + "/rerank").text) == (404, "not found\n")
    score = httpx.post(url + "/score", json={"model": MODEL, "query": "x", "documents": DOCS}, timeout=300)
    assert (score.status_code, score.json()) == (404, {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}})


def test_request_log_records_what_dmr_records(fresh_emulator: EmulatorServer) -> None:
    url = fresh_emulator.url
    fresh_emulator.pull(MODEL)
    assert httpx.get(url + "/engines/requests").json() == []
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    httpx.post(url + "/v1/chat/completions", json=chat, headers={"User-Agent": "probe/1"}, timeout=300)
    httpx.post(url + "/v1/chat/completions", json={"messages": []})  # refused before the load: not recorded
    httpx.post(url + "/anthropic/v1/messages", json={"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}, timeout=300)
    httpx.post(url + "/v1/responses", json={"model": MODEL, "input": "hi", "max_output_tokens": 3}, timeout=300)
    response = httpx.get(url + "/engines/requests", params={"model": MODEL})
    assert response.headers["content-type"] == "application/json" and response.text.endswith("]\n")
    [entry] = response.json()
    model_id = httpx.get(url + f"/models/{MODEL}").json()["id"]
    assert entry["model"] == model_id and entry["count"] == 3 and entry["config"] == {"context-size": 8192}
    first, second, third = entry["records"]
    assert first["url"] == "/engines/v1/chat/completions" and first["user_agent"] == "probe/1" and first["status_code"] == 200
    assert json.loads(first["response"])["object"] == "chat.completion"  # the stream, reassembled
    assert second["url"] == "/engines/v1/messages" and second["origin"] == "anthropic/messages"
    assert third["url"] == "/engines/v1/chat/completions" and "user_agent" not in third and "origin" not in third
    assert json.loads(third["request"])["max_tokens"] == 3  # the translated chat body
    assert httpx.get(url + "/engines/requests", params={"model": "ai/other"}).json() == []
    httpx.post(url + "/engines/unload", json={"all": True})
    assert httpx.get(url + "/engines/requests").json() == []  # a runner's end drops its model's records


def test_request_log_keeps_ten(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(MODEL)
    for index in range(12):
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"n{index}"}], "max_tokens": 1}
        httpx.post(fresh_emulator.url + "/engines/v1/chat/completions", json=body, timeout=300)
    [entry] = httpx.get(fresh_emulator.url + "/engines/requests").json()
    assert entry["count"] == 10
    assert json.loads(entry["records"][0]["request"])["messages"][0]["content"] == "n2"


def test_request_log_event_stream(emulator: EmulatorServer) -> None:
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    httpx.post(emulator.url + "/v1/chat/completions", json=chat, timeout=300)
    received: list[str] = []
    connected = threading.Event()
    got_new = threading.Event()

    def listen() -> None:
        headers = {"Accept": "text/event-stream"}
        params = {"include_existing": "true", "model": MODEL}
        with httpx.stream("GET", emulator.url + "/engines/requests", headers=headers, params=params, timeout=300) as response:
            assert response.headers["content-type"] == "text/event-stream"
            for line in response.iter_lines():
                received.append(line)
                if line == "event: connected":
                    connected.set()
                if line == "event: new_request":
                    got_new.set()
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(60)
    httpx.post(emulator.url + "/v1/chat/completions", json=chat, timeout=300)
    assert got_new.wait(60)
    listener.join(60)
    events = [line for line in received if line.startswith("event: ")]
    assert events[0] == "event: existing_request" and "event: connected" in events and events[-1] == "event: new_request"
    assert 'data: {"status": "connected"}' in received


@pytest.mark.parametrize("path", ["/v1/responses", "/responses", "/api/chat", "/anthropic/v1/messages", "/rerank", "/engines/requests"])
def test_cors_preflight_on_the_new_prefixes(emulator: EmulatorServer, path: str) -> None:
    allowed = httpx.options(emulator.url + path, headers={"Origin": "http://127.0.0.1"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1"
    assert allowed.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    refused = httpx.get(emulator.url + path, headers={"Origin": "http://elsewhere.test"})
    assert (refused.status_code, refused.text) == (403, "Origin not allowed\n")


def test_cors_header_on_an_answer(emulator: EmulatorServer) -> None:
    response = httpx.get(emulator.url + "/api/tags", headers={"Origin": "http://localhost"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "http://localhost"
