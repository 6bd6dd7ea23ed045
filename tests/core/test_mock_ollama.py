"""The mock's Ollama front-end through the ollama SDK (on httpx) and raw HTTP: every /api route of
DMR-PROTOCOL 10.3, DMR's content types, stream true by default, rules and faults."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import ollama
import pytest

from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
HELLO = [{"role": "user", "content": "Describe a harbour at dawn."}]


@pytest.fixture
def sdk(mock: MockModelRunner) -> ollama.Client:
    return ollama.Client(host=mock.ollama_base_url, transport=mock)


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx.Client]:
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        yield client


def test_chat_plain_is_the_chat_answer(mock: MockModelRunner, sdk: ollama.Client, http: httpx.Client) -> None:
    answer = sdk.chat(model=MODEL, messages=HELLO, stream=False)
    chat = http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO}).json()
    assert answer.message.content == chat["choices"][0]["message"]["content"]
    assert answer.done is True and answer.created_at == "2026-01-01T00:00:00Z"
    recorded = mock.requests[0]
    assert (recorded.api, recorded.endpoint, recorded.model, recorded.stream) == ("ollama", "/chat/completions", MODEL, False)


def test_chat_streams_by_default(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.add_rule(stream=["Hel", "lo"])
    answer = http.post("/api/chat", json={"model": MODEL, "messages": HELLO})
    assert answer.headers["content-type"] == "application/json"
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert "".join(line["message"]["content"] for line in lines) == "Hello"
    assert [line["done"] for line in lines][-1] is True and lines[-1]["message"] == {"role": "", "content": ""}
    assert mock.last_request.stream is True


def test_sdk_stream_and_rule(mock: MockModelRunner, sdk: ollama.Client) -> None:
    rule = mock.reply("Paris.", contains="capital of France", api="ollama")
    parts = list(sdk.chat(model=MODEL, messages=[{"role": "user", "content": "The capital of France?"}], stream=True))
    assert "".join(part.message.content or "" for part in parts) == "Paris."
    assert parts[-1].done and rule.calls == 1


def test_tool_call_has_object_arguments(mock: MockModelRunner, sdk: ollama.Client) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}})
    tool = {"type": "function", "function": {"name": "get_weather", "description": "", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    answer = sdk.chat(model=MODEL, messages=HELLO, tools=[tool], stream=False)
    calls = answer.message.tool_calls or []
    assert [(call.function.name, dict(call.function.arguments)) for call in calls] == [("get_weather", {"city": "Lisbon"})]


def test_generate_and_options(mock: MockModelRunner, sdk: ollama.Client) -> None:
    answer = sdk.generate(model=MODEL, prompt="Describe a harbour at dawn.", stream=False, options={"num_predict": 3})
    assert len((answer.response or "").split()) <= 3 and answer.done
    assert mock.last_request.chat["max_tokens"] == 3
    streamed = "".join(part.response or "" for part in sdk.generate(model=MODEL, prompt="Describe a harbour at dawn.", options={"num_predict": 3}, stream=True))
    assert streamed == answer.response


def test_preload_and_unload_through_generate(mock: MockModelRunner, http: httpx.Client) -> None:
    preload = http.post("/api/generate", json={"model": MODEL, "keep_alive": "10m"})
    assert (preload.status_code, preload.content, preload.headers["content-type"]) == (200, b"{}", "application/json")
    assert mock.loaded_runners == [(MODEL, "completion")]
    assert http.get("/api/ps").json()["models"][0]["name"] == "docker.io/ai/smollm2:latest"
    unload = http.post("/api/generate", json={"model": MODEL})
    assert (unload.status_code, unload.content, unload.headers["content-type"]) == (200, b"{}", "text/plain; charset=utf-8")
    assert mock.loaded_runners == [] and http.get("/api/ps").json() == {"models": []}


def test_version_tags_show(mock: MockModelRunner, sdk: ollama.Client, http: httpx.Client) -> None:
    assert http.get("/api/version").text == '{"version":"0.1.0"}\n'
    mock.add_model("ai/qwen3", tags=["ai/qwen3:small"])
    names = [model.model for model in sdk.list().models]
    assert names == ["docker.io/ai/smollm2:latest", "docker.io/ai/qwen3:latest", "docker.io/ai/qwen3:small"]
    shown = http.post("/api/show", json={"model": MODEL})
    assert shown.json()["details"]["format"] == "gguf"
    missing = http.post("/api/show", json={"model": "ai/nope"})
    assert (missing.status_code, missing.headers["content-type"]) == (404, "text/plain; charset=utf-8")
    assert missing.text.startswith("Model not found: ")
    assert http.post("/api/show", content=b"").text == "Invalid request: EOF\n"


def test_pull_progress_then_delete(mock: MockModelRunner, sdk: ollama.Client, http: httpx.Client) -> None:
    progress = list(sdk.pull("ai/qwen3", stream=True))
    assert progress[-1].status == "success"
    assert any((p.status or "").startswith("pulling ") and p.total for p in progress)
    assert mock.store.find("ai/qwen3") is not None
    answer = http.request("DELETE", "/api/delete", json={"model": "ai/qwen3"})
    assert (answer.status_code, answer.content) == (200, b"{}")
    assert mock.store.find("ai/qwen3") is None
    again = http.request("DELETE", "/api/delete", json={"model": "ai/qwen3"})
    assert again.status_code == 500 and again.text.startswith("Failed to delete model: ")


def test_pull_error_fault(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.fail(Fault.pull_error("disk full"), endpoint="/api/pull")
    answer = http.post("/api/pull", json={"model": "ai/qwen3"})
    assert answer.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[-2:] == [{"error": "Error: disk full"}, {"error": "Failed to pull model: error while pulling model: disk full"}]


def test_http_fault_on_plain_chat(mock: MockModelRunner, sdk: ollama.Client, http: httpx.Client) -> None:
    mock.fail(Fault.http(503))
    with pytest.raises(ollama.ResponseError) as caught:
        sdk.chat(model=MODEL, messages=HELLO, stream=False)
    assert (caught.value.status_code, caught.value.error) == (503, "Loading model")
    mock.fail(Fault.http(500, "boom"))
    answer = http.post("/api/chat", json={"model": MODEL, "messages": HELLO, "stream": False})
    assert (answer.status_code, answer.text, answer.headers["content-type"]) == (500, "boom\n", "text/plain; charset=utf-8")


def test_http_fault_on_a_stream_has_no_body(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.fail(Fault.http(503))
    answer = http.post("/api/chat", json={"model": MODEL, "messages": HELLO})
    assert (answer.status_code, answer.content) == (503, b"")


def test_unknown_model_and_routes(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.serve_any_model = False
    answer = http.post("/api/chat", json={"model": "ai/nope", "messages": HELLO, "stream": False})
    assert answer.status_code == 404 and answer.text.startswith("error while getting model")
    assert http.get("/api/chat").status_code == 405
    assert http.get("/api/nothing").text == "404 page not found\n"
    assert http.post("/api/chat", content=b"{").text == "Invalid request: unexpected EOF\n"


def test_cut_stream(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.add_rule(stream=["a", "b", "c"], fault=Fault.cut_stream(after=1))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/api/chat", json={"model": MODEL, "messages": HELLO}) as answer:
            lines.extend(answer.iter_lines())
    assert [json.loads(line)["message"]["content"] for line in lines] == ["", "a"]


def test_clock_dates_answers(mock: MockModelRunner, sdk: ollama.Client) -> None:
    mock.clock.advance(90.5)
    assert sdk.chat(model=MODEL, messages=HELLO, stream=False).created_at == "2026-01-01T00:01:30.5Z"


def test_ps_dates_each_runners_last_use_on_the_mock_clock(mock: MockModelRunner, http: httpx.Client, sdk: ollama.Client) -> None:
    """``/engines/ps``'s ``last_used`` and ``/api/ps``'s ``expires_at`` (last use plus the keep-alive,
    5 minutes by default, as configured otherwise) follow the clock a test moves."""
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    mock.clock.advance(90)
    http.post("/engines/v1/embeddings", json={"model": "smollm2", "input": "x"})  # another spelling: the same model
    assert [(entry["mode"], entry["last_used"]) for entry in http.get("/engines/ps").json()] == [
        ("completion", "2026-01-01T00:00:00Z"), ("embedding", "2026-01-01T00:01:30Z")]  # fmt: skip
    assert [model.expires_at.isoformat() for model in sdk.ps().models if model.expires_at] == ["2026-01-01T00:05:00+00:00", "2026-01-01T00:06:30+00:00"]
    http.post("/engines/_configure", json={"model": MODEL, "keep_alive": "-1"})  # the completion runner, kept forever: no count-down
    assert sorted(model["expires_at"] for model in http.get("/api/ps").json()["models"]) == ["0001-01-01T00:00:00Z", "2026-01-01T00:06:30Z"]


def test_a_runner_idle_past_its_keep_alive_is_unloaded_when_the_clock_moves(mock: MockModelRunner, http: httpx.Client) -> None:
    """As DMR's loader does on its timer: 5 minutes by default, as configured otherwise (never for -1);
    the model's request records go with it, and the next request loads it again."""
    http.post("/engines/_configure", json={"model": "ai/smollm2", "keep_alive": "-1", "mode": "embedding"})
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    http.post("/engines/v1/embeddings", json={"model": MODEL, "input": "x"})
    mock.clock.advance(300)
    assert [entry["mode"] for entry in http.get("/engines/ps").json()] == ["completion", "embedding"]  # not past it yet
    mock.clock.advance(1)
    assert [entry["mode"] for entry in http.get("/engines/ps").json()] == ["embedding"]
    assert len(http.get("/api/ps").json()["models"]) == 1 and http.get("/engines/requests").json() == []
    mock.clock.advance(86_400)
    http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert [entry["mode"] for entry in http.get("/engines/ps").json()] == ["embedding", "completion"]
