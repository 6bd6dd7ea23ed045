"""Rules (scripted replies, tool calls) and the recording of requests."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from pytest_dmr.mock import Fault, MockModelRunner, RecordedRequest, Rule

CHAT = "/engines/v1/chat/completions"


def ask(client: httpx.Client, text: str, model: str = "ai/smollm2", path: str = CHAT, **body: Any) -> httpx.Response:
    return client.post(path, json={"model": model, "messages": [{"role": "user", "content": text}], **body})


def answer(client: httpx.Client, text: str, **kwargs: Any) -> str:
    return ask(client, text, **kwargs).json()["choices"][0]["message"]["content"]


# -- matching ------------------------------------------------------------------------------------------


def test_reply_rule_answers_with_its_text_and_consistent_usage(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("Paris is the capital of France.")
    body = ask(client, "Capital of France?").json()
    assert body["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert body["choices"][0]["finish_reason"] == "stop"
    # Paris / is / the / capital / of / France / . and the end-of-turn token
    assert body["usage"]["completion_tokens"] == 8


def test_model_rule_compares_normalised_names(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("from qwen", model="qwen3")
    assert answer(client, "hi", model="ai/qwen3:latest") == "from qwen"
    assert answer(client, "hi", model="docker.io/ai/qwen3") == "from qwen"
    assert answer(client, "hi", model="ai/smollm2") != "from qwen"


def test_contains_and_matches_look_at_the_last_user_message(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("weather reply", contains="weather")
    mock.reply("number reply", matches=r"\b\d{3}\b")
    assert answer(client, "what is the weather?") == "weather reply"
    assert answer(client, "call 555 now") == "number reply"
    assert answer(client, "Weather") not in ("weather reply", "number reply")  # contains is case-sensitive
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "and tomorrow"},
    ]
    body = client.post(CHAT, json={"model": "m", "messages": history}).json()
    assert body["choices"][0]["message"]["content"] != "weather reply"


def test_compiled_pattern_and_when_callable(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("shout", matches=re.compile("hello", re.IGNORECASE))
    mock.reply("hot", when=lambda request: (request.json or {}).get("temperature", 0) > 1)
    assert answer(client, "HELLO there") == "shout"
    assert answer(client, "HELLO there", temperature=1.5) == "hot"


def test_newest_rule_wins_and_times_limits_uses(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("old")
    limited = mock.reply("new", times=2)
    assert [answer(client, "x") for _ in range(3)] == ["new", "new", "old"]
    assert limited.calls == 2 and limited.exhausted


def test_rules_without_endpoint_match_inference_only(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.http(500))
    assert client.get("/models").status_code == 200
    assert client.post("/models/create", json={"from": "ai/x"}).status_code == 200
    assert client.post("/v1/embeddings", json={"model": "m", "input": "x"}).status_code == 500


def test_endpoint_rule_targets_one_endpoint(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.http(500), endpoint="/embeddings")
    assert ask(client, "hi").status_code == 200
    assert client.post("/v1/embeddings", json={"model": "m", "input": "x"}).status_code == 500
    mock.fail(Fault.http(503), endpoint="/models")
    assert client.get("/engines/v1/models").status_code == 503


def test_reply_applies_to_text_completions(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply(" world", contains="hello")
    body = client.post("/v1/completions", json={"model": "m", "prompt": "hello"}).json()
    assert body["choices"][0]["text"] == " world"


# -- streaming scripted answers --------------------------------------------------------------------------


def streamed_pieces(client: httpx.Client, text: str, **body: Any) -> list[str]:
    payload = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": True, **body}
    with client.stream("POST", CHAT, json=payload) as response:
        events = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[1:-1]]
    return [chunk["choices"][0]["delta"].get("content") for chunk in chunks if chunk["choices"][0]["delta"].get("content")]


def test_reply_text_streams_in_token_like_pieces(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("Hello, world! It's fine.")
    assert streamed_pieces(client, "x") == ["Hello", ",", " world", "!", " It", "'s", " fine", "."]  # as a tokenizer cuts it


def test_stream_rule_sends_exactly_its_pieces(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_rule(stream=["Hel", "lo", " there"])
    assert streamed_pieces(client, "x") == ["Hel", "lo", " there"]
    body = ask(client, "x").json()
    assert body["choices"][0]["message"]["content"] == "Hello there"
    assert body["usage"]["completion_tokens"] == 4  # the pieces and the end-of-turn token


def test_tool_call_rule(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}}, contains="weather")
    body = ask(client, "weather in Oslo?").json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert call["id"].startswith("call_")


# -- rule validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "a rule needs something to do: reply=, stream=, tool_call=, fault= or replies="),
        ({"reply": "a", "stream": ["a"]}, ValueError, "pass only one of reply=, stream=, tool_call= (got reply, stream)"),
        ({"reply": "a", "fault": Fault.timeout()}, ValueError, "Fault.timeout replaces the answer: drop reply="),
        ({"stream": "abc"}, TypeError, "stream= takes a list of pieces"),
        ({"reply": "a", "times": 0}, ValueError, "times= must be a positive integer or None, got 0"),
        ({"fault": 503}, TypeError, "fault= takes a Fault (e.g. Fault.http(503)), got 503"),
        ({"tool_call": {"arguments": {}}}, ValueError, "tool_call= needs a 'name'"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(mock: MockModelRunner, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        mock.add_rule(**kwargs)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Fault.http(42), "Fault.http needs an HTTP status between 100 and 599, got 42"),
        (lambda: Fault.loading(times=0), "Fault.loading(times=...) must be at least 1, got 0"),
        (lambda: Fault.cut_stream(after=-1), "Fault.cut_stream(after=...) must be 0 or more, got -1"),
        (lambda: Fault.slow_first_token(-1), "Fault.slow_first_token(seconds) must be 0 or more, got -1"),
    ],
)
def test_bad_faults_are_refused(factory: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        factory()


def test_rule_repr_says_what_it_does(mock: MockModelRunner) -> None:
    rule = mock.reply("hi", model="smollm2", times=1)
    assert repr(rule) == "Rule(model='smollm2' -> reply='hi', times=1, calls=0)"
    assert isinstance(rule, Rule)


# -- recording ---------------------------------------------------------------------------------------------


def test_every_request_is_recorded(client: httpx.Client, mock: MockModelRunner) -> None:
    client.post(
        "/v1/chat/completions",
        json={"model": "SmolLM2", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first question"}], "stream": True},
        headers={"X-Trace": "abc"},
    )
    client.post("/v1/embeddings", json={"model": "e", "input": ["one", "two"]})
    client.get("/models/ai/smollm2")
    client.post("/models/create", json={"from": "ai/qwen3"})
    client.get("/")
    chat, embed, inspect, pull, root = mock.requests
    assert isinstance(chat, RecordedRequest)
    assert (chat.method, chat.path, chat.endpoint, chat.model, chat.stream) == ("POST", "/v1/chat/completions", "/chat/completions", "SmolLM2", True)
    assert chat.last_user_message == "first question"
    assert chat.headers["x-trace"] == "abc"
    assert chat.json["messages"][0]["content"] == "be brief"
    assert json.loads(chat.content) == chat.json
    assert (embed.endpoint, embed.last_user_message, embed.stream) == ("/embeddings", "one two", False)
    assert (inspect.endpoint, inspect.model) == ("/models/ai/smollm2", "ai/smollm2")
    assert (pull.endpoint, pull.model) == ("/models/create", "ai/qwen3")
    assert (root.path, root.json, root.model) == ("/", None, None)
    assert mock.last_request is root


def test_a_recorded_request_keeps_the_headers_it_was_sent_with(client: httpx.Client, mock: MockModelRunner) -> None:
    """Its headers are read lazily, but from a copy: a request object changed and sent again (as
    httpx's digest auth does) leaves the earlier record as it was."""
    request = client.build_request("POST", CHAT, json={"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}]},
                                   headers={"X-Trace": "first"})
    client.send(request)
    request.headers["X-Trace"] = "second"
    client.send(request)
    first, second = mock.requests
    assert (first.headers.get("x-trace"), second.headers.get("x-trace")) == ("first", "second")
    assert (first.headers["x-trace"], dict(second.headers)["x-trace"]) == ("first", "second")


def test_reset_forgets_rules_requests_and_store_changes(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("scripted")
    client.post("/models/create", json={"from": "ai/qwen3"})
    client.delete("/models/smollm2")
    mock.reset()
    assert mock.requests == [] and mock.rules == []
    assert [model.name for model in mock.models] == ["docker.io/ai/smollm2:latest"]
    assert answer(client, "x") != "scripted"
    with pytest.raises(LookupError, match="no request yet"):
        MockModelRunner().last_request


def test_preload_uses_faults_but_not_reply_rules(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("scripted", times=1)
    preload = {"model": "ai/smollm2", "messages": []}
    assert client.post(CHAT, json=preload, headers={"X-Preload-Only": "true"}).content == b""
    assert answer(client, "x") == "scripted"
    mock.fail(Fault.load_failure("out of memory"), times=1)
    failed = client.post(CHAT, json=preload, headers={"X-Preload-Only": "true"})
    assert (failed.status_code, failed.text) == (500, "unable to load runner: out of memory\n")


def test_when_callable_may_look_at_the_mock(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("second call", when=lambda request: len(mock.requests) >= 2)
    assert answer(client, "x") != "second call"
    assert answer(client, "x") == "second call"


@pytest.mark.parametrize(("method", "path"), [("GET", CHAT), ("HEAD", "/anthropic/v1/messages"), ("GET", "/api/chat")])
def test_a_request_the_route_refuses_uses_no_reply_rule(client: httpx.Client, mock: MockModelRunner, method: str, path: str) -> None:
    """A GET or HEAD on a route that only takes POST is refused (405 or 404) before any model runs: a
    reply rule with ``times=1`` is still there for the POST that follows."""
    rule = mock.reply("scripted", times=1)
    refused = client.request(method, path)
    assert refused.status_code in (404, 405)
    assert rule.calls == 0
    assert answer(client, "hello") == "scripted"
    assert rule.calls == 1


def test_a_fault_for_a_named_endpoint_still_hits_any_method(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.http(503, "down"), endpoint="/models")
    assert client.get("/engines/v1/models").status_code == 503


def test_a_fault_sequence_for_a_named_endpoint_hits_any_method(client: httpx.Client, mock: MockModelRunner) -> None:
    """The faults of ``replies=[...]`` are its steps': a sequence for ``endpoint=`` hits a GET as ``fail`` does."""
    mock.add_rule(replies=[Fault.http(503, "down"), "never used on a GET"], endpoint="/models")
    assert [client.get("/engines/v1/models").status_code for _ in range(2)] == [503, 200]
