"""The mock's OpenAI-compatible endpoints: shapes, streaming, lengths, JSON schemas, tools, embeddings."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from typing import Any

import httpx
import jsonschema
import pytest

from pytest_dmr.protocol import openai_api
from pytest_dmr.mock import MockModelRunner
from pytest_dmr.mock.tokens import count_prompt_tokens, count_tokens, split_into_pieces

CHAT = "/engines/v1/chat/completions"
USER = [{"role": "user", "content": "Tell me about testing."}]
"""An answer that runs on (as about one in five of SmolLM2's do): ``max_tokens`` or the context cuts it."""
ENDS = [{"role": "user", "content": "Tell me about code linters."}]
"""An answer that ends by itself (as most of SmolLM2's do), after a few paragraphs."""


def chat(client: httpx.Client, messages: list[dict[str, str]] = USER, **body: Any) -> dict[str, Any]:
    response = client.post(CHAT, json={"model": "ai/smollm2", "messages": messages, **body})
    assert response.status_code == 200, response.text
    return response.json()


def natural_length(client: httpx.Client) -> int:
    """Completion tokens of ENDS's answer left to end by itself (its end-of-turn token included)."""
    body = chat(client, ENDS)
    assert body["choices"][0]["finish_reason"] == "stop", "ENDS must be a prompt whose answer ends by itself"
    return int(body["usage"]["completion_tokens"])


def stream_events(client: httpx.Client, path: str = CHAT, **body: Any) -> list[str]:
    payload = {"model": "ai/smollm2", "messages": USER, "stream": True, **body}
    with client.stream("POST", path, json=payload) as response:
        assert response.headers["content-type"] == "text/event-stream"
        chunks = [chunk.decode() for chunk in response.iter_raw()]
    assert all(chunk.startswith("data: ") and chunk.endswith("\n\n") for chunk in chunks)
    return [chunk[len("data: ") : -2] for chunk in chunks]


# -- chat, not streamed ---------------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(client: httpx.Client) -> None:
    response = client.post(CHAT, json={"model": "ai/smollm2", "messages": ENDS})
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{32}", body["id"])
    assert 1_700_000_000 <= body["created"] < 1_800_000_000
    assert body["model"] == "ai/smollm2"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert text.endswith(".") and text[0].isupper()
    usage = body["usage"]
    assert usage["completion_tokens"] == len(split_into_pieces(text)) + 1  # and the end-of-turn token
    assert usage["completion_tokens"] > 50 and "\n\n" in text  # a few paragraphs
    # the template and SmolLM2's default system prompt are 30 tokens around the content (measured: "Hi" alone is 31)
    assert usage["prompt_tokens"] == count_prompt_tokens(ENDS, "ai/smollm2") == 30 + count_tokens(ENDS[0]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_default_length_follows_default_max_tokens() -> None:
    unset = MockModelRunner()
    with httpx.Client(transport=unset, base_url=unset.base_url) as client:
        natural = natural_length(client)
    for default in (20, natural + 100):
        mock = MockModelRunner(default_max_tokens=default)
        with httpx.Client(transport=mock, base_url=mock.base_url) as client:
            body = chat(client)
            ends = chat(client, ENDS)
        assert body["usage"]["completion_tokens"] == default
        assert body["choices"][0]["finish_reason"] == "length"
        assert ends["usage"]["completion_tokens"] == min(default, natural)
        assert ends["choices"][0]["finish_reason"] == ("length" if default < natural else "stop")
    unset = MockModelRunner()
    with httpx.Client(transport=unset, base_url=unset.base_url) as client:
        usage = chat(client)["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == 2048  # runs on until the context is full


@pytest.mark.parametrize("max_tokens", [1, 3, 7, 12])
def test_small_max_tokens_cuts_the_answer_with_finish_length(client: httpx.Client, max_tokens: int) -> None:
    body = chat(client, max_tokens=max_tokens)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == max_tokens
    assert len(split_into_pieces(body["choices"][0]["message"]["content"])) == max_tokens


@pytest.mark.parametrize("below", [-400, -1, 0, 40])
def test_the_natural_length_ends_the_answer_unless_max_tokens_comes_first(client: httpx.Client, below: int) -> None:
    natural = natural_length(client)
    max_tokens = max(10, natural + below)  # 10 (well below), one token below, exactly, or above the natural length
    body = chat(client, ENDS, max_tokens=max_tokens)
    text = body["choices"][0]["message"]["content"]
    finish = "length" if max_tokens < natural else "stop"
    assert body["choices"][0]["finish_reason"] == finish
    assert body["usage"]["completion_tokens"] == min(max_tokens, natural)
    assert text.endswith(".") or finish == "length"


def test_smaller_max_tokens_gives_a_prefix_of_the_same_answer(client: httpx.Client) -> None:
    full = chat(client, max_tokens=200)["choices"][0]["message"]["content"]
    short = chat(client, max_tokens=9)["choices"][0]["message"]["content"]
    assert full.startswith(short)


def test_long_answers_have_paragraphs(client: httpx.Client) -> None:
    text = chat(client, max_tokens=400)["choices"][0]["message"]["content"]
    assert "\n\n" in text


def test_different_prompts_seeds_and_models_give_different_answers(client: httpx.Client) -> None:
    base = chat(client)["choices"][0]["message"]["content"]
    assert chat(client, seed=7)["choices"][0]["message"]["content"] != base
    assert chat(client, temperature=0.1)["choices"][0]["message"]["content"] != base
    other = client.post(CHAT, json={"model": "ai/qwen3", "messages": USER}).json()
    assert other["choices"][0]["message"]["content"] != base


@pytest.mark.parametrize(
    ("stop", "forbidden"),
    [([","], ","), (".", "."), (["\n"], "\n"), (["the", "a"], " the ")],
)
def test_stop_sequences_cut_before_the_stop(client: httpx.Client, stop: Any, forbidden: str) -> None:
    full = chat(client, max_tokens=400)["choices"][0]["message"]["content"]
    stops = [stop] if isinstance(stop, str) else stop
    assert any(item in full for item in stops), "the test needs an answer that contains a stop"
    body = chat(client, max_tokens=400, stop=stop)
    text = body["choices"][0]["message"]["content"]
    cut = min(full.find(item) for item in stops if item in full)
    assert text == full[:cut]
    assert forbidden not in text
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(split_into_pieces(text)) + 1


def test_stop_sequence_absent_from_the_answer_changes_nothing(client: httpx.Client) -> None:
    assert chat(client, stop=["@@@"])["choices"][0]["message"] == chat(client)["choices"][0]["message"]


# -- chat, streamed ---------------------------------------------------------------------------------------


def test_stream_framing_follows_llamacpp(client: httpx.Client) -> None:
    events = stream_events(client, max_tokens=400, messages=ENDS)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    content = chunks[1:-1]
    assert all(set(chunk["choices"][0]["delta"]) == {"content"} for chunk in content)
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"][0] == {"finish_reason": "stop", "index": 0, "delta": {}}
    assert not any("usage" in chunk for chunk in chunks)
    pieces = [chunk["choices"][0]["delta"]["content"] for chunk in content]
    assert pieces == split_into_pieces("".join(pieces))  # as a tokenizer cuts the text
    assert pieces[0][0] != " " and "\n" in pieces


def test_stream_has_the_same_text_as_the_plain_answer(client: httpx.Client) -> None:
    events = stream_events(client, max_tokens=30)
    text = "".join(openai_api.chunk_text(json.loads(event)) for event in events[:-1])
    assert text == chat(client, max_tokens=30)["choices"][0]["message"]["content"]


def test_usage_chunk_only_with_include_usage(client: httpx.Client) -> None:
    events = stream_events(client, max_tokens=10, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 10
    content_chunks = [json.loads(event) for event in events[1:-3]]
    assert len(content_chunks) == 10
    assert json.loads(events[-3])["choices"][0]["finish_reason"] == "length"
    assert "usage" not in json.loads(stream_events(client, max_tokens=10, stream_options={"include_usage": False})[-2])


TIMINGS = ["cache_n", "prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second",
           "predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second"]  # fmt: skip


def test_llamacpps_timings_and_cached_tokens(client: httpx.Client) -> None:
    """llama.cpp's extras: ``usage.prompt_tokens_details`` and ``timings`` on the whole answer, on a
    stream's last chunk (the usage chunk when there is one), on completions' too."""
    body = chat(client, max_tokens=5)
    assert list(body) == ["choices", "created", "model", "system_fingerprint", "object", "usage", "id", "timings"]
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0} and list(body["timings"]) == TIMINGS
    assert (body["timings"]["prompt_n"], body["timings"]["predicted_n"]) == (body["usage"]["prompt_tokens"], 5)
    for options, last in (({}, -2), ({"stream_options": {"include_usage": True}}, -2)):
        chunks = [json.loads(event) for event in stream_events(client, max_tokens=5, **options)[:-1]]
        assert ["timings" in chunk for chunk in chunks] == [False] * (len(chunks) - 1) + [True], options
        assert chunks[-1]["timings"] == body["timings"]
    text = client.post("/v1/completions", json={"model": "ai/smollm2", "prompt": "Hi", "max_tokens": 3}).json()
    assert list(text) == ["choices", "created", "model", "system_fingerprint", "object", "usage", "id", "timings"]
    streamed = [json.loads(event) for event in stream_events(client, "/v1/completions", prompt="Hi", max_tokens=3)[:-1]]
    assert list(streamed[-1]) == list(text) and not any("usage" in chunk or "timings" in chunk for chunk in streamed[:-1])


@pytest.mark.parametrize("prefix", ["/engines/v1", "/engines/llama.cpp/v1", "/v1"])
def test_every_inference_prefix_answers(client: httpx.Client, prefix: str) -> None:
    response = client.post(f"{prefix}/chat/completions", json={"model": "smollm2", "messages": USER})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]


# -- completions ------------------------------------------------------------------------------------------


def test_text_completion_continues_the_prompt(client: httpx.Client) -> None:
    response = client.post("/v1/completions", json={"model": "ai/smollm2", "prompt": "Once upon a time", "max_tokens": 8})
    body = response.json()
    assert body["object"] == "text_completion"
    assert re.fullmatch(r"cmpl-[0-9a-f]{32}", body["id"])
    choice = body["choices"][0]
    assert choice["text"].startswith(" ")
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"completion_tokens": 8, "prompt_tokens": count_tokens("Once upon a time"), "total_tokens": 12,
                             "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip


def test_text_completion_stream(client: httpx.Client) -> None:
    payload = {"prompt": "Hello", "max_tokens": 5, "stream_options": {"include_usage": True}}
    events = stream_events(client, "/v1/completions", **payload)
    chunks = [json.loads(event) for event in events[:-1]]
    assert events[-1] == "[DONE]"
    assert len(chunks) == 6
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    plain = client.post("/v1/completions", json={"model": "ai/smollm2", "prompt": "Hello", "max_tokens": 5, "messages": USER})
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == plain.json()["choices"][0]["text"]


# -- errors ------------------------------------------------------------------------------------------------


def assert_plain(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == text + "\n"


def test_missing_model_is_400_model_is_required(client: httpx.Client) -> None:
    assert_plain(client.post(CHAT, json={"messages": USER}), 400, "model is required")
    assert_plain(client.post(CHAT, json={"model": "", "messages": USER}), 400, "model is required")


@pytest.mark.parametrize("content", [b"{not json", b'{"model": 3}', b"[1, 2]"])
def test_bad_body_is_400_invalid_request(client: httpx.Client, content: bytes) -> None:
    assert_plain(client.post(CHAT, content=content), 400, "invalid request")


def test_unknown_model_is_404_when_the_mock_serves_only_its_models() -> None:
    mock = MockModelRunner(serve_any_model=False)
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        response = client.post(CHAT, json={"model": "nonexistent/model", "messages": USER})
        assert_plain(response, 404, "error while getting model: get model '\"nonexistent/model\"': model not found")
        assert client.post(CHAT, json={"model": "SmolLM2:latest", "messages": USER}).status_code == 200
        assert client.post("/v1/embeddings", json={"model": "ai/other", "input": "x"}).status_code == 404


def test_unknown_and_uninstalled_backends(client: httpx.Client) -> None:
    body = {"model": "ai/smollm2", "messages": USER}
    assert_plain(client.post("/engines/nope/v1/chat/completions", json=body), 404, "backend not found")
    assert_plain(client.post("/engines/vllm/v1/chat/completions", json=body), 412, "vLLM binary not found")
    assert_plain(client.post("/engines/mlx/v1/chat/completions", json=body), 503, "backend installation failed: platform not supported")


def test_backend_install_is_checked_after_the_body_and_the_model() -> None:
    mock = MockModelRunner(serve_any_model=False)
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        vllm = "/engines/vllm/v1/chat/completions"
        assert_plain(client.post("/engines/nope/v1/chat/completions", content=b"{"), 404, "backend not found")
        assert_plain(client.post(vllm, content=b"{"), 400, "invalid request")
        assert_plain(client.post(vllm, json={"messages": USER}), 400, "model is required")
        absent = client.post(vllm, json={"model": "ai/absent", "messages": USER})
        assert_plain(absent, 404, "error while getting model: get model '\"ai/absent\"': model not found")
        assert_plain(client.post(vllm, json={"model": "ai/smollm2", "messages": USER}), 412, "vLLM binary not found")
    assert mock.loaded_runners == []


def test_null_model_is_model_is_required(client: httpx.Client) -> None:
    assert_plain(client.post(CHAT, json={"model": None, "messages": USER}), 400, "model is required")


def test_trailing_slash_is_not_a_route_unless_the_path_has_double_slashes(client: httpx.Client) -> None:
    body = {"model": "ai/smollm2", "messages": USER}
    assert_plain(client.post(CHAT + "/", json=body), 404, "not found")
    assert client.post("/engines//v1/chat/completions/", json=body).status_code == 200


def test_preload_only_answers_200_with_an_empty_body(client: httpx.Client, mock: MockModelRunner) -> None:
    response = client.post(CHAT, json={"model": "ai/smollm2", "messages": []}, headers={"X-Preload-Only": "true"})
    assert (response.status_code, response.content) == (200, b"")
    assert mock.last_request.headers["x-preload-only"] == "true"
    assert_plain(client.post(CHAT, json={"messages": []}, headers={"X-Preload-Only": "true"}), 400, "model is required")


def test_backend_validation_errors_are_llamacpp_json(client: httpx.Client) -> None:
    response = client.post(CHAT, json={"model": "ai/smollm2"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert client.post("/v1/embeddings", json={"model": "ai/smollm2"}).json()["error"]["code"] == 400


MALFORMED_CHATS = [
    # (what the body has instead of USER and nothing else, status, llama.cpp's message): measured on llama.cpp
    ({"messages": None}, 400, "Expected 'messages' to be an array"),
    ({"messages": "hi"}, 400, "Expected 'messages' to be an array"),
    ({"messages": [{"role": "user"}]}, 400, "All non-assistant messages must contain 'content'"),
    ({"messages": ["hi"]}, 400, "All non-assistant messages must contain 'content'"),
    ({"messages": [*USER, {"role": "assistant"}, *USER]}, 400, "Assistant message must contain either 'content' or 'tool_calls'!"),
    ({"messages": [{"role": "user", "content": 5}]}, 400, "Expected 'content' to be a string or an array"),
    ({"messages": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]}, 400, "unsupported content[].type"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, 500, "Failed to parse messages: [json.exception.out_of_range.403] key 'text' not found"),
    ({"messages": [{"content": "x", "b": 1}]}, 500, 'Failed to parse messages: Missing \'role\' in message: {"content":"x","b":1}'),
    ({"messages": [{"role": 5, "content": "x"}]}, 500, "Failed to parse messages: [json.exception.type_error.302] type must be string, but is number"),
    ({"messages": [*USER, {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     400, "Cannot continue an assistant message that contains tool calls."),
    ({"tools": "x"}, 500, 'Failed to parse tools: Expected \'tools\' to be an array, got "x"; tools = "x"'),
    ({"tools": [{"type": "function"}]}, 500, 'Failed to parse tools: Missing tool function: {"type":"function"}; tools = [\n  {\n    "type": "function"\n  }\n]'),
    ({"tool_choice": "bogus"}, 400, "Invalid tool_choice: bogus"),
    ({"response_format": {"type": "bogus"}}, 400, 'response_format type must be one of "text" or "json_object", but got: bogus'),
    ({"n": 2}, 400, "Field 'n': Value must be between 1 <= value <= 1, but got 2"),
    ({"top_logprobs": 2}, 400, "top_logprobs requires logprobs to be set to true"),
    ({"max_tokens": "4"}, 400, "Field 'max_tokens': [json.exception.type_error.302] type must be number, but is string"),
    ({"temperature": [1]}, 400, "Field 'temperature': [json.exception.type_error.302] type must be number, but is array"),
    ({"stream": 1}, 400, "Field 'stream': [json.exception.type_error.302] type must be boolean, but is number"),
    ({"stop": [5]}, 400, "Field 'stop': [json.exception.type_error.302] type must be string, but is number"),
    ({"max_tokens": "x", "top_logprobs": 1}, 400, "top_logprobs requires logprobs to be set to true"),
    ({"messages": [{"role": "user"}], "response_format": {"type": "x"}}, 400, 'response_format type must be one of "text" or "json_object", but got: x'),
    ({"n": 1e300}, 400, "Field 'n': Value must be between 1 <= value <= 1, but got -2147483648"),
    ({"n": 18446744073709551615}, 400, "Field 'n': Value must be between 1 <= value <= 1, but got -1"),
    ({"messages": [*USER, {"role": "assistant", "content": "x", "tool_calls": 5}]}, 500, "Failed to parse messages: Missing tool call type: 5"),
    ({"messages": [*USER, {"role": "assistant", "content": "x", "tool_calls": {"a": 1}}]}, 500, "Failed to parse messages: Missing tool call type: 1"),
    ({"messages": [{"role": "user", "content": "x", "tool_calls": [{"x": 1}]}]}, 500, 'Failed to parse messages: Missing tool call type: {"x":1}'),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}, *USER]},
     500, 'Failed to parse messages: Missing tool call type: {"id":"c","function":{"name":"f","arguments":"{}"}}'),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"type": "x", "function": {}}]}, *USER]},
     500, 'Failed to parse messages: Unsupported tool call type: {"type":"x","function":{}}'),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": "f"}]}, *USER]},
     500, 'Failed to parse messages: Missing tool call name: {"type":"function","function":"f"}'),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": None, "arguments": ""}}]}, *USER]},
     500, "Failed to parse messages: [json.exception.type_error.302] type must be string, but is null"),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f"}}]}, *USER]},
     500, "Failed to parse messages: [json.exception.out_of_range.403] key 'arguments' not found"),
    ({"messages": [*USER, {"role": "assistant", "content": None, "tool_calls": [{"id": None, "type": "function", "function": {"name": "f", "arguments": ""}}]}, *USER]},
     500, "Failed to parse messages: [json.exception.type_error.302] type must be string, but is null"),
    ({"messages": [*USER, {"role": "tool", "tool_call_id": 5, "content": "r"}]}, 500, "Failed to parse messages: [json.exception.type_error.302] type must be string, but is number"),
    ({"messages": [{"role": "user", "content": "x", "name": None}]}, 500, "Failed to parse messages: [json.exception.type_error.302] type must be string, but is null"),
    ({"max_tokens": -5}, 400, "Field 'max_tokens': Value must be between -1 <= value <= 2147483647, but got -5"),
    ({"max_tokens": 3000000000}, 400, "Field 'max_tokens': Value must be between -1 <= value <= 2147483647, but got -1294967296"),
    ({"max_completion_tokens": 1e300}, 400, "Field 'max_completion_tokens': Value must be between -1 <= value <= 2147483647, but got -2147483648"),
    ({"n_keep": -5, "temperature": "x"}, 400, "Field 'n_keep': Value must be between -1 <= value <= 2147483647, but got -5"),
    ({"repeat_last_n": -1}, 400, "Field 'repeat_last_n': Value must be between 0 <= value <= 2147483647, but got -1"),
    ({"t_max_predict_ms": 1e300}, 400, "Field 't_max_predict_ms': Value must be between -1 <= value <= 9223372036854775807, but got -9223372036854775808"),
    ({"n_cmpl": 2}, 400, "Field 'n_cmpl': Value must be between 1 <= value <= 1, but got 2"),
    ({"repeat_penalty": 0}, 400, "Failed to initialize samplers: penalty_repeat must be finite and greater than 0"),
    ({"logprobs": True, "stream": True, "tools": [{"type": "function", "function": {"name": "f"}}], "n": 2}, 400, "logprobs is not supported with tools + stream"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "status", "message"), MALFORMED_CHATS, ids=[f"{i}" for i in range(len(MALFORMED_CHATS))])
def test_malformed_chat_requests_get_llamacpps_refusal(client: httpx.Client, fields: dict[str, Any], status: int, message: str) -> None:
    """What llama.cpp refuses, the mock refuses with its status and message (DMR passes them through)."""
    response = client.post(CHAT, json={"model": "ai/smollm2", "messages": USER, **fields})
    kind = "invalid_request_error" if status == 400 else "server_error"
    assert (response.status_code, response.json()) == (status, {"error": {"code": status, "message": message, "type": kind}})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [("/v1/chat/completions", {}, "'messages' is required"),
     ("/v1/completions", {}, "[json.exception.out_of_range.403] key 'prompt' not found"),
     ("/v1/completions", {"prompt": []}, '"prompt" must not be empty'),
     ("/v1/completions", {"prompt": 5}, '"prompt" elements must be a string, a list of tokens, a JSON object containing a prompt string, '
                                        "or a list of mixed strings & tokens."),
     ("/v1/completions", {"prompt": "Hi", "n": 3}, "Field 'n': Value must be between 1 <= value <= 1, but got 3"),
     ("/v1/completions", {"prompt": {"prompt": "Hi"}}, '"prompt" elements must be a string, a list of tokens, a JSON object containing a '
                                                     "prompt string, or a list of mixed strings & tokens."),
     ("/v1/completions", {"prompt": ["Hi", {"prompt_string": 5}]}, "[json.exception.type_error.302] type must be string, but is number"),
     ("/v1/embeddings", {}, '"input" or "content" must be provided'),
     ("/v1/embeddings", {"input": []}, '"input" must not be empty')],
)  # fmt: skip
def test_malformed_requests_get_llamacpps_messages(client: httpx.Client, path: str, body: dict[str, Any], message: str) -> None:
    response = client.post(path, json={"model": "ai/smollm2", **body})
    assert (response.status_code, response.json()["error"]["message"]) == (400, message)


def test_requests_llamacpp_takes_are_answered(client: httpx.Client) -> None:
    """What llama.cpp lets through: ``null`` content, a boolean for a number, ``n: 1``, a stop that is no list..."""
    for fields in ({"messages": [{"role": "user", "content": None}]}, {"temperature": True, "n": 1, "stop": 5}, {"tool_choice": 5},
                   {"response_format": {"type": 5}}, {"messages": [{"role": "bogus", "content": "x"}]}, {"messages": []}, {"id_slot": "x"}):  # fmt: skip
        assert client.post(CHAT, json={"model": "ai/smollm2", "messages": USER, **fields}).status_code == 200, fields


def entry_shape(entry: dict[str, Any]) -> list[tuple[str, type]]:
    return [(key, type(value)) for key, value in entry.items()]


TOKEN = [("id", int), ("token", str), ("bytes", list), ("logprob", float)]


@pytest.mark.parametrize(("fields", "top"), [({"logprobs": True}, 20), ({"logprobs": True, "top_logprobs": 3}, 3), ({"logprobs": 2}, 2),
                                             ({"logprobs": True, "top_logprobs": 30}, 30), ({"logprobs": True, "top_logprobs": "3"}, 20)])  # fmt: skip
def test_logprobs_have_llamacpps_shape(client: httpx.Client, fields: dict[str, Any], top: int) -> None:
    """One entry per generated token, its text the answer's, each with ``top`` distinct alternatives, itself first, as many as
    asked (llama.cpp lists 30 for 30); a ``top_logprobs`` that is no number is llama.cpp's default, 20 (measured)."""
    choice = chat(client, max_tokens=6, **fields)["choices"][0]
    assert list(choice) == ["finish_reason", "index", "message", "logprobs"]
    content = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == choice["message"]["content"] and len(content) == 6
    for entry in content:
        assert entry_shape(entry) == [*TOKEN, ("top_logprobs", list)] and bytes(entry["bytes"]) == entry["token"].encode()
        assert len({other["token"] for other in entry["top_logprobs"]}) == top and entry["top_logprobs"][0] == {key: entry[key] for key, _ in TOKEN}
        assert all(entry_shape(other) == TOKEN and other["logprob"] < entry["logprob"] < 0 for other in entry["top_logprobs"][1:])
    assert chat(client, max_tokens=6, **fields) == chat(client, max_tokens=6, **fields)


def test_logprobs_stream_one_entry_per_content_chunk(client: httpx.Client) -> None:
    plain = chat(client, max_tokens=5, logprobs=True, top_logprobs=1)["choices"][0]["logprobs"]["content"]
    chunks = [json.loads(event) for event in stream_events(client, max_tokens=5, logprobs=True, top_logprobs=1) if event != "[DONE]"]
    streamed = [chunk["choices"][0].get("logprobs") for chunk in chunks]
    assert streamed[0] is None and streamed[-1] is None and [item["content"] for item in streamed[1:-1]] == [[entry] for entry in plain]


@pytest.mark.parametrize(("asked", "top"), [(3, 3), (True, 1), (0, 0), (None, 0), (30, 30)])
def test_completion_logprobs(client: httpx.Client, asked: Any, top: int) -> None:
    """A completion's ``logprobs`` is the number of alternatives (``true``: 1); ``null`` when none."""
    body = {"model": "ai/smollm2", "prompt": "Once upon a time", "max_tokens": 4, "logprobs": asked}
    choice = client.post("/v1/completions", json=body).json()["choices"][0]
    if not top:
        assert choice["logprobs"] is None
        return
    content = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == choice["text"] and {len(entry["top_logprobs"]) for entry in content} == {top}
    streamed = [json.loads(event)["choices"][0] for event in stream_events(client, "/v1/completions", **body)[:-1]]
    assert streamed[-1]["logprobs"] is None and all([entry["token"] for entry in chunk["logprobs"]["content"]] == [chunk["text"]] for chunk in streamed[:-1])


def test_no_logprobs_unless_asked(client: httpx.Client) -> None:
    for fields in ({}, {"logprobs": False}, {"logprobs": True, "top_logprobs": 0}):
        assert "logprobs" not in chat(client, max_tokens=3, **fields)["choices"][0]


# -- structured output -----------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "email": {"type": "string", "format": "email"},
        "website": {"type": "string", "format": "uri"},
        "born": {"type": "string", "format": "date"},
        "seen": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "role": {"enum": ["admin", "user", "guest"]},
        "kind": {"const": "person"},
        "active": {"type": "boolean"},
        "nickname": {"type": ["string", "null"], "maxLength": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4, "uniqueItems": True},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string", "minLength": 5, "maxLength": 5}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
        "pet": {"anyOf": [{"type": "object", "properties": {"species": {"type": "string"}}, "required": ["species"]}, {"type": "null"}]},
        "level": {"oneOf": [{"type": "integer", "multipleOf": 5, "minimum": 10, "maximum": 50}, {"type": "string"}]},
    },
    "required": ["name", "age", "email", "role", "kind", "tags", "address"],
    "additionalProperties": False,
}

PYDANTIC_STYLE = {
    "$defs": {
        "Step": {
            "properties": {"title": {"type": "string"}, "minutes": {"type": "integer", "exclusiveMinimum": 0}},
            "required": ["title", "minutes"],
            "type": "object",
        }
    },
    "properties": {
        "recipe": {"type": "string"},
        "steps": {"items": {"$ref": "#/$defs/Step"}, "type": "array", "minItems": 1},
        "main": {"allOf": [{"$ref": "#/$defs/Step"}]},
        "notes": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["recipe", "steps", "main"],
    "type": "object",
}

SCHEMAS = {
    "person": PERSON,
    "pydantic": PYDANTIC_STYLE,
    "array": {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5}, "minItems": 3, "maxItems": 3},
    "numbers": {"type": "object", "properties": {"x": {"type": "number", "minimum": 2.5, "maximum": 2.75}, "n": {"type": "integer", "exclusiveMinimum": 7, "exclusiveMaximum": 9}}, "required": ["x", "n"]},
    "string": {"type": "string", "format": "date"},
    "nested_arrays": {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}, "minItems": 1}, "minItems": 2},
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_schema_answers_are_valid(client: httpx.Client, name: str) -> None:
    schema = SCHEMAS[name]
    for seed in range(5):
        body = chat(client, seed=seed, response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema}})
        value = json.loads(body["choices"][0]["message"]["content"])
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
        assert body["choices"][0]["finish_reason"] == "stop"


def test_json_schema_values_look_plausible(client: httpx.Client) -> None:
    format_ = {"type": "json_schema", "json_schema": {"schema": PERSON}}
    value = json.loads(chat(client, response_format=format_)["choices"][0]["message"]["content"])
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", value["name"])
    assert value["email"].endswith("@example.com")
    assert value["kind"] == "person"
    assert list(value)[:7] == PERSON["required"]  # required first, in order


def test_json_schema_is_deterministic_and_varies_with_the_request(client: httpx.Client) -> None:
    format_ = {"type": "json_schema", "json_schema": {"schema": PERSON}}
    first = chat(client, response_format=format_)["choices"][0]["message"]["content"]
    assert chat(client, response_format=format_)["choices"][0]["message"]["content"] == first
    assert chat(client, response_format=format_, seed=99)["choices"][0]["message"]["content"] != first


def test_json_object_gives_an_object(client: httpx.Client) -> None:
    value = json.loads(chat(client, response_format={"type": "json_object"})["choices"][0]["message"]["content"])
    assert isinstance(value, dict) and value


def test_json_schema_streams_in_pieces_that_join_to_valid_json(client: httpx.Client) -> None:
    events = stream_events(client, response_format={"type": "json_schema", "json_schema": {"schema": PERSON}})
    pieces = [openai_api.chunk_text(json.loads(event)) for event in events[1:-2]]
    assert len(pieces) > 10
    jsonschema.validate(json.loads("".join(pieces)), PERSON)


def test_unresolvable_schema_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        CHAT,
        json={"model": "m", "messages": USER, "response_format": {"type": "json_schema", "json_schema": {"schema": {"$ref": "#/$defs/Nope"}}}},
    )
    assert response.status_code == 400
    assert "$ref" in response.json()["error"]["message"]


# -- tools ---------------------------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "unit"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {"name": "search_docs", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
}


def test_required_tool_choice_gives_a_valid_tool_call(client: httpx.Client) -> None:
    body = chat(client, tools=[WEATHER, SEARCH], tool_choice="required")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert call["function"]["name"] == "get_weather"  # none mentioned: the first
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert body["usage"]["completion_tokens"] == len(split_into_pieces(call["function"]["arguments"])) + 1
    again = chat(client, tools=[WEATHER, SEARCH], tool_choice="required")
    assert again["choices"][0]["message"]["tool_calls"] == [call]


def test_named_tool_choice_calls_that_tool(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "search_docs"}}
    call = chat(client, tools=[WEATHER, SEARCH], tool_choice=choice)["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "search_docs"
    jsonschema.validate(json.loads(call["function"]["arguments"]), SEARCH["function"]["parameters"])


def test_auto_tool_choice_calls_a_tool_only_when_the_user_mentions_it(client: httpx.Client) -> None:
    plain = chat(client, tools=[WEATHER, SEARCH], max_tokens=20)
    assert plain["choices"][0]["finish_reason"] == "length"
    assert "tool_calls" not in plain["choices"][0]["message"]
    mentioned = client.post(
        CHAT,
        json={"model": "m", "messages": [{"role": "user", "content": "Please search docs for httpx"}], "tools": [WEATHER, SEARCH]},
    ).json()
    assert mentioned["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "search_docs"
    none = client.post(
        CHAT,
        json={"model": "m", "messages": [{"role": "user", "content": "get_weather please"}], "tools": [WEATHER], "tool_choice": "none"},
    ).json()
    assert none["choices"][0]["finish_reason"] == "stop"


def test_tool_call_streams_name_then_argument_pieces(client: httpx.Client) -> None:
    events = stream_events(client, tools=[WEATHER], tool_choice="required")
    chunks = [json.loads(event) for event in events[:-1]]
    head = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    assert head["id"].startswith("call_")
    arguments = "".join(chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for chunk in chunks[2:-1])
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# -- embeddings ----------------------------------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def test_embeddings_are_unit_vectors_one_per_input(client: httpx.Client) -> None:
    response = client.post("/engines/v1/embeddings", json={"model": "ai/nomic-embed-text-v1.5", "input": ["a cat", "a dog", "a cat"]})
    body = response.json()
    assert body["object"] == "list" and body["model"] == "ai/nomic-embed-text-v1.5"
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(len(vector) == 768 for vector in vectors)
    assert all(math.isclose(math.sqrt(cosine(vector, vector)), 1.0, rel_tol=1e-9) for vector in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert body["usage"] == {"prompt_tokens": sum(count_tokens(text) for text in ("a cat", "a dog", "a cat")), "total_tokens": 6}


def test_embeddings_of_texts_sharing_words_are_closer() -> None:
    mock = MockModelRunner(embedding_dimensions=256)
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        texts = ["the cat sat on the mat", "a cat sat on a mat today", "quarterly revenue grew in europe"]
        body = client.post("/v1/embeddings", json={"model": "e", "input": texts}).json()
    a, b, c = (item["embedding"] for item in body["data"])
    assert len(a) == 256
    assert cosine(a, b) > 0.5 > cosine(a, c)


def test_embeddings_dimensions_and_base64(client: httpx.Client) -> None:
    floats = client.post("/v1/embeddings", json={"model": "e", "input": "hello", "dimensions": 16}).json()["data"][0]["embedding"]
    assert len(floats) == 16
    encoded = client.post("/v1/embeddings", json={"model": "e", "input": "hello", "dimensions": 16, "encoding_format": "base64"}).json()
    decoded = struct.unpack("<16f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(decoded, floats))


@pytest.mark.parametrize(("path", "field"), [(CHAT, '"max_tokens": 1e400'), (CHAT, '"logprobs": -1e400'), (CHAT, '"n": 1E400'),
                                             ("/engines/v1/completions", '"temperature": 2e308')])  # fmt: skip
def test_a_number_too_large_for_a_double_gets_llamacpps_refusal(client: httpx.Client, path: str, field: str) -> None:
    """DMR's Go decoder reads past ``1e400``; llama.cpp's JSON parser refuses it (measured on llama.cpp).
    Python's json reads it as infinity, which the mock used to generate from or crash on."""
    body = '{"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}], "prompt": "hi", ' + field + "}"
    literal = field.split(": ")[1]
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    message = f"[json.exception.out_of_range.406] number overflow parsing '{literal}'"
    assert (response.status_code, response.json()) == (400, {"error": {"code": 400, "message": message, "type": "invalid_request_error"}})


@pytest.mark.parametrize("body", ['{"model": "ai/smollm2", "messages": [], "temperature": NaN}',
                                  '{"model": "ai/smollm2", "messages": [], "top_p": -Infinity}',
                                  '{"model": "ai/smollm2", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"])  # fmt: skip
def test_what_gos_decoder_refuses_is_dmrs_invalid_request(client: httpx.Client, body: str) -> None:
    """``NaN`` and ``Infinity`` are no JSON to Go (Python's json reads them); nesting too deep for
    Python's decoder is refused the same way, not raised as a RecursionError."""
    response = client.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.text) == (400, "invalid request\n")


@pytest.mark.parametrize("n", [1.5, 1.0, 4294967297, -4294967295, 9223372036854775809, True])
def test_an_n_that_llamacpp_reads_as_1_is_accepted(client: httpx.Client, n: Any) -> None:
    """llama.cpp reads ``n`` as a C int (a double truncated, a 64-bit integer wrapped): all of these
    are 1 to it, and it answers (measured on llama.cpp); the mock refused them with 'but got 1'."""
    for path, fields in ((CHAT, {"messages": USER}), ("/engines/v1/completions", {"prompt": "hi"})):
        assert client.post(path, json={"model": "ai/smollm2", "n": n, **fields}).status_code == 200


@pytest.mark.parametrize(("content", "message"), [
    ('"x\\ud800"', "line 1, column 74: syntax error while parsing value - invalid string: surrogate U+D800..U+DBFF must be followed by "
                    "U+DC00..U+DFFF; last read: '\"x\\ud800\"'"),
    ('\n  "\u00e9\\udc00"', "line 2, column 11: syntax error while parsing value - invalid string: surrogate U+DC00..U+DFFF must follow "
                            "U+D800..U+DBFF; last read: '\"\u00e9\\udc00'"),
])  # fmt: skip
def test_a_lone_surrogate_escape_gets_llamacpps_parse_error(client: httpx.Client, content: str, message: str) -> None:
    """Go reads ``\\ud800`` alone as U+FFFD and DMR passes the body on as sent; llama.cpp's parser refuses it
    (measured, columns in bytes). The mock raised UnicodeEncodeError."""
    body = '{"model": "ai/smollm2", "messages": [{"role": "user", "content": ' + content + "}]}"
    response = client.post(CHAT, content=body.encode(), headers={"content-type": "application/json"})
    expected = "[json.exception.parse_error.101] parse error at " + message
    assert (response.status_code, response.json()) == (400, {"error": {"code": 400, "message": expected, "type": "invalid_request_error"}})


@pytest.mark.parametrize("path", ["/anthropic/v1/messages", "/api/chat", "/engines/v1/responses"])
def test_a_lone_surrogate_reaches_a_front_end_as_gos_replacement_character(client: httpx.Client, path: str) -> None:
    """DMR's Go front-ends decode ``\\ud800`` as U+FFFD and send llama.cpp valid JSON: an answer, not a UnicodeEncodeError."""
    field = "input" if path.endswith("responses") else "messages"
    value = '"\\ud800 hi"' if field == "input" else '[{"role": "user", "content": "\\ud800 hi"}]'
    body = '{"model": "ai/smollm2", "max_tokens": 5, "stream": false, "' + field + '": ' + value + "}"
    assert client.post(path, content=body.encode(), headers={"content-type": "application/json"}).status_code == 200


def test_an_integer_too_large_for_a_double_gets_llamacpps_refusal(client: httpx.Client) -> None:
    """An integer literal past a double's range is llama.cpp's overflow too, not an OverflowError in the mock."""
    literal = "1" + "0" * 400
    body = '{"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}], "n": ' + literal + "}"
    response = client.post(CHAT, content=body, headers={"content-type": "application/json"})
    message = f"[json.exception.out_of_range.406] number overflow parsing '{literal}'"
    assert (response.status_code, response.json()) == (400, {"error": {"code": 400, "message": message, "type": "invalid_request_error"}})


def test_top_logprobs_that_are_no_finite_number_do_not_break_the_count() -> None:
    """A front-end's translated request may carry what JSON decoding made infinite: all alternatives, not an OverflowError."""
    from pytest_dmr.mock import logprobs

    assert logprobs.top_count({"logprobs": True, "top_logprobs": math.inf}) == logprobs.top_count({"logprobs": True, "top_logprobs": 10**9}) > 1
    assert logprobs.top_count({"logprobs": True, "top_logprobs": math.nan}) == 0
