"""The mock's reranking routes and its request log (``GET /engines/requests``), over raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
HELLO = [{"role": "user", "content": "Describe a harbour at dawn."}]
DOCS = ["a recipe for bread", "the harbour at dawn, boats and gulls", "dawn"]


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx2.Client]:
    with httpx2.Client(transport=mock, base_url=mock.base_url, headers={"user-agent": "tests"}) as client:
        yield client


@pytest.mark.parametrize("path", ["/rerank", "/engines/rerank", "/engines/llama.cpp/rerank"])
def test_rerank_orders_by_relevance(mock: MockModelRunner, http: httpx2.Client, path: str) -> None:
    answer = http.post(path, json={"model": MODEL, "query": "harbour at dawn", "documents": DOCS, "top_n": 2})
    assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json; charset=utf-8")
    body = answer.json()
    assert [result["index"] for result in body["results"]] == [1, 2]
    assert body["model"] == MODEL and body["object"] == "list"
    assert (MODEL, "reranking") in mock.loaded_runners
    assert mock.last_request.api == "rerank" and mock.last_request.endpoint == "/rerank"


def test_rerank_is_the_same_in_every_mock() -> None:
    bodies = set()
    for _ in range(2):
        mock = MockModelRunner()
        with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
            bodies.add(client.post("/rerank", json={"model": MODEL, "query": "dawn", "documents": DOCS}).content)
    assert len(bodies) == 1


def test_rerank_errors(mock: MockModelRunner, http: httpx2.Client) -> None:
    assert http.post("/score", json={"model": MODEL, "query": "q", "documents": DOCS}).status_code == 404
    missing = http.post("/rerank", json={"model": MODEL, "documents": DOCS})
    assert (missing.status_code, missing.json()["error"]["message"]) == (400, '"query" must be provided')
    assert http.post("/rerank", json={"query": "q"}).text == "model is required\n"
    assert http.get("/rerank").status_code == 404
    mock.fail(Fault.http(503), endpoint="/rerank")
    assert http.post("/rerank", json={"model": MODEL, "query": "q", "documents": DOCS}).status_code == 503


def log(http: httpx2.Client, **params: str) -> list[dict[str, Any]]:
    answer = http.get("/engines/requests", params=params)
    assert answer.headers["content-type"] == "application/json" and answer.text.endswith("\n")
    return answer.json()  # type: ignore[no-any-return]


def test_log_records_chat_with_dmr_fields(mock: MockModelRunner, http: httpx2.Client) -> None:
    assert log(http) == []
    chat = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    entries = log(http)
    assert [(entry["model"], entry["count"], entry["config"]) for entry in entries] == [(mock.store.find(MODEL).id, 1, {})]  # type: ignore[union-attr]
    record = entries[0]["records"][0]
    assert record["id"] == f"{mock.store.find(MODEL).id}_1767225600000000001"  # type: ignore[union-attr]
    assert (record["model"], record["method"], record["url"], record["status_code"]) == (MODEL, "POST", "/engines/v1/chat/completions", 200)
    assert (record["timestamp"], record["user_agent"]) == (1767225600, "tests")
    assert json.loads(record["response"])["choices"][0]["message"]["content"] == chat.json()["choices"][0]["message"]["content"]
    assert log(http, model="ai/other") == [] and len(log(http, model=MODEL)) == 1


def test_log_keeps_ten_per_model_and_forgets_unloaded(http: httpx2.Client) -> None:
    for n in range(12):
        http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": f"q{n}"}]})
    records = log(http)[0]["records"]
    assert len(records) == 10 and '"q2"' in records[0]["request"]
    http.post("/engines/unload", json={"models": [MODEL]})
    assert log(http) == []


def test_log_reassembles_streams_and_keeps_translated_bodies(http: httpx2.Client) -> None:
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "stream": True})
    http.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    http.post("/api/chat", json={"model": MODEL, "messages": HELLO})
    http.post("/anthropic/v1/messages", json={"model": MODEL, "messages": HELLO, "max_tokens": 5, "stream": True})
    stream, responses, ollama, anthropic = log(http)[0]["records"]
    assert json.loads(stream["response"])["object"] == "chat.completion"
    assert (responses["url"], "user_agent" in responses, "origin" in responses) == ("/engines/v1/chat/completions", False, False)
    assert json.loads(responses["request"])["messages"] == [{"content": "hi", "role": "user"}]
    assert (ollama["origin"], json.loads(ollama["request"])["stream"]) == ("ollama/completion", True)
    assert (anthropic["url"], anthropic["origin"]) == ("/engines/v1/messages", "anthropic/messages")
    assert json.loads(anthropic["response"])["content"][0]["type"] == "text"


def test_log_skips_refusals_and_preloads(mock: MockModelRunner, http: httpx2.Client) -> None:
    http.post("/engines/v1/chat/completions", json={"messages": HELLO})
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, headers={"X-Preload-Only": "true"})
    assert log(http)[0]["count"] == 0  # the preload started the runner: an entry, no record


def test_log_event_stream_snapshot(http: httpx2.Client) -> None:
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    plain = http.get("/engines/requests", headers={"Accept": "text/event-stream"})
    assert plain.headers["content-type"] == "text/event-stream"
    assert plain.text == 'event: connected\ndata: {"status": "connected"}\n\n'
    replay = http.get("/engines/requests?include_existing=true", headers={"Accept": "text/event-stream"})
    assert replay.text.startswith("event: existing_request\ndata: [{")
    assert replay.text.endswith('event: connected\ndata: {"status": "connected"}\n\n')
