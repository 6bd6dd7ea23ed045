"""The Responses translator pins DMR's pkg/responses shapes, and the OpenAI SDK reads what it writes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx2
import openai
import pytest

from pytest_dmr.protocol import openai_api
from pytest_dmr.protocol import responses_api as r

MODEL = "ai/smollm2"


def ids() -> r.MakeId:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}{next(counter):024d}"


def chat(content: str | None = "Hello <there>", tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return openai_api.chat_completion(
        id="chatcmpl-1", created=1, model=MODEL, content=content, finish_reason="tool_calls" if tool_calls else "stop",
        prompt_tokens=7, completion_tokens=3, tool_calls=tool_calls,
    )  # fmt: skip


def create(**fields: Any) -> dict[str, Any]:
    return r.parse_create_request(json.dumps({"model": MODEL, "input": "hi"} | fields).encode())


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"include": ["file_search_call.results"]}, "include is not supported by Docker Model Runner Responses compatibility layer"),
        ({"stream_options": {"include_obfuscation": False}}, "stream_options is not supported by Docker Model Runner Responses compatibility layer"),
        ({"top_logprobs": 2}, "top_logprobs is not supported by Docker Model Runner Responses compatibility layer"),
        ({"truncation": "auto"}, 'truncation value "auto" is not supported by Docker Model Runner Responses compatibility layer'),
        ({"background": True}, "background responses are not supported by Docker Model Runner Responses compatibility layer"),
        ({"conversation": "conv_1"}, "conversation is not supported by Docker Model Runner Responses compatibility layer; use previous_response_id instead"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt is not supported by Docker Model Runner Responses compatibility layer"),
        ({"service_tier": "flex"}, "service_tier is not supported by Docker Model Runner Responses compatibility layer"),
        ({"safety_identifier": "u1"}, "safety_identifier is not supported by Docker Model Runner Responses compatibility layer"),
    ],
)
def test_each_unsupported_field_is_a_400(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(r.ResponsesError) as caught:
        create(**fields)
    assert (caught.value.status, caught.value.body()) == (400, {"error": {"code": "invalid_request", "message": message}})


@pytest.mark.parametrize("fields", [{"stream_options": None}, {"truncation": "disabled"}, {"background": False}, {"conversation": None}])
def test_accepted_forms_of_those_fields(fields: dict[str, Any]) -> None:
    assert create(**fields)["model"] == MODEL


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"", 400, "Invalid JSON: unexpected end of JSON input"),
        (b"{nope", 400, "Invalid JSON: invalid character 'n' looking for beginning of object key string"),
        (b'{"model": 5}', 400, "Invalid JSON: json: cannot unmarshal number into Go struct field CreateRequest.model of type string"),
        (b'{"model": "m", "stream": "yes"}', 400, "Invalid JSON: json: cannot unmarshal string into Go struct field CreateRequest.stream of type bool"),
        (b"[]", 400, "Invalid JSON: json: cannot unmarshal array into Go value of type responses.CreateRequest"),
        (b'{"input": "x"}', 400, "model is required"),
        (b"null", 400, "model is required"),
    ],
)
def test_request_errors_in_dmr_order(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(r.ResponsesError) as caught:
        r.parse_create_request(raw)
    assert (caught.value.status, caught.value.message) == (status, message)


def test_body_over_the_limit_is_413() -> None:
    with pytest.raises(r.ResponsesError) as caught:
        r.parse_create_request(b'{"model":"m"}  ', max_bytes=14)
    assert caught.value.status == 413
    assert caught.value.body() == {"error": {"code": "request_too_large", "message": "Request body too large (max 14 bytes)"}}


# ---------------------------------------------------------------------------- request -> chat


def test_string_input_with_instructions_and_sampling() -> None:
    request = create(instructions="Be brief", temperature=1.0, top_p=0.5, max_output_tokens=9, stream=True, user="u")
    assert r.to_chat_request(request) == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 1, "top_p": 0.5, "max_tokens": 9, "stream": True, "user": "u",
    }  # fmt: skip


def test_items_tools_and_tool_choice() -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    request = create(
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_image", "image_url": "data:x"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"content": "bare"},
        ],
        tools=[tool],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    body = r.to_chat_request(request)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
        {"role": "tool", "content": "", "tool_call_id": "call_1"},  # DMR: any item with a call_id is a tool message
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "user", "content": "bare"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": {"properties": {"city": {"type": "string"}}, "type": "object"}}}]
    assert list(body["tool_choice"]) == ["name", "type"]  # re-marshalled from a Go map: sorted keys


def test_request_translation_errors() -> None:
    with pytest.raises(r.ResponsesError, match='tool type "web_search" is not supported'):
        r.to_chat_request(create(tools=[{"type": "web_search"}]))
    with pytest.raises(r.ResponsesError, match="text.format.name is required"):
        r.to_chat_request(create(text={"format": {"type": "json_schema", "schema": {}}}))
    with pytest.raises(r.ResponsesError, match="^failed to parse input: input must be a string or array of items: json: cannot unmarshal object"):
        r.to_chat_request(create(input={"role": "user"}))


def test_json_schema_text_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = r.to_chat_request(create(text={"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}))
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}


def test_previous_response_history_is_outputs_only() -> None:
    store = r.ResponseStore(clock=lambda: 0.0)
    first = r.completed_response(r.new_response(create(), id="resp_1", created_at=5), chat("one"), ids())
    second_base = r.new_response(create(previous_response_id="resp_1"), id="resp_2", created_at=6)
    call = openai_api.tool_call(id="call_9", name="f", arguments='{"x":1}')
    second = r.completed_response(second_base, chat(None, [call]), ids())
    store.save(first)
    store.save(second)
    body = r.to_chat_request(create(input="next", instructions="sys"), history=store.history("resp_2"))
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "assistant", "content": "one"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "next"},
    ]
    with pytest.raises(r.ResponsesError, match='^previous_response_id "resp_x" was not found$'):
        store.history("resp_x")


# ---------------------------------------------------------------------------- chat -> Response


def parse_response(body: dict[str, Any]) -> Any:
    """Through the OpenAI SDK's own client, as an app would read DMR's answer."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=r.json_body(body), headers={"content-type": "application/json"})

    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        client = openai.OpenAI(base_url="http://127.0.0.1:12434/engines/v1", api_key="x", http_client=http)
        return client.responses.create(model=MODEL, input="hi")


def test_completed_response_shape_and_sdk_view() -> None:
    base = r.new_response(create(temperature=0.7, metadata={"b": "2", "a": "1"}), id="resp_1", created_at=1700000000)
    body = r.completed_response(base, chat(), ids())
    assert list(body) == [
        "id", "object", "created_at", "model", "status", "output", "output_text", "error", "incomplete_details",
        "instructions", "metadata", "parallel_tool_calls", "temperature", "tool_choice", "tools", "top_p",
        "max_output_tokens", "store", "previous_response_id", "reasoning", "usage", "user", "reasoning_effort",
    ]  # fmt: skip
    assert body["output"] == [
        {"id": "msg_000000000000000000000001", "type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello <there>"}], "status": "completed"},
    ]  # fmt: skip
    assert (body["status"], body["store"], body["tools"], list(body["metadata"])) == ("completed", True, None, ["a", "b"])
    assert body["usage"] == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert b"Hello \\u003cthere\\u003e" in r.json_body(body)
    parsed = parse_response(body)
    assert (parsed.id, parsed.output_text, parsed.usage.input_tokens) == ("resp_1", "Hello <there>", 7)


def test_tool_calls_come_before_text_as_function_call_items() -> None:
    call = openai_api.tool_call(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    body = r.completed_response(r.new_response(create(), id="resp_1", created_at=1), chat("Sure", [call]), ids())
    assert [item["type"] for item in body["output"]] == ["function_call", "message"]
    assert body["output"][0] == {
        "id": "item_000000000000000000000001", "type": "function_call", "status": "completed",
        "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}',
    }  # fmt: skip
    parsed = parse_response(body)
    assert (parsed.output[0].type, parsed.output[0].name, parsed.output[0].call_id) == ("function_call", "get_weather", "call_1")


@pytest.mark.parametrize(
    ("upstream", "error"),
    [
        ('{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}',  # llama.cpp: numeric code
         {"code": "upstream_error", "message": '{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}'}),
        ('{"error":{"code":"model_busy","message":"busy"}}', {"code": "model_busy", "message": "busy"}),
        ('{"error":{"message":"no code"}}', {"message": "no code"}),
        ("model not found\n", {"code": "upstream_error", "message": "model not found\n"}),
    ],
)  # fmt: skip
def test_failed_response_from_an_upstream_error(upstream: str, error: dict[str, str]) -> None:
    body = r.failed_response(r.new_response(create(), id="resp_1", created_at=1), upstream)
    assert (body["status"], body["error"], body["output"], body["usage"]) == ("failed", error, [], None)


def test_undecodable_answer_is_a_parse_error() -> None:
    body = r.completed_response(r.new_response(create(), id="resp_1", created_at=1), ["not", "an", "object"], ids())
    assert body["error"] == {"code": "parse_error", "message": "Failed to parse upstream response"}


# ---------------------------------------------------------------------------- streaming


def chunks(*deltas: dict[str, Any], finish: str = "stop") -> list[dict[str, Any]]:
    out = [openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={"role": "assistant", "content": None})]
    out += [openai_api.chat_chunk(id="c", created=1, model=MODEL, delta=delta) for delta in deltas]
    return out + [openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={}, finish_reason=finish)]


def run_stream(stream: r.ResponseStream, feed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events = stream.start()
    for chunk in feed:
        events += stream.feed(chunk)
    return events + stream.finish()


def test_text_stream_event_sequence() -> None:
    stream = r.ResponseStream(r.new_response(create(stream=True), id="resp_1", created_at=1), ids())
    events = run_stream(stream, chunks({"content": "Hel"}, {"content": "lo"}, finish="length"))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [e["sequence_number"] for e in events] == list(range(1, 11))
    assert events[4] == {"type": "response.output_text.delta", "sequence_number": 5, "delta": "Hel", "item_id": "msg_000000000000000000000001"}
    assert events[3]["part"] == {"type": "output_text"}
    assert events[6]["part"] == {"type": "output_text", "text": "Hello"}
    final = events[-1]["response"]
    assert (final["status"], final["finish_reason"], final["incomplete_details"], final["output_text"]) == (
        "completed", "length", {"reason": "max_tokens"}, "Hello",
    )  # fmt: skip
    assert stream.final() == final
    assert r.encode_event(events[4]).startswith(b"event: response.output_text.delta\ndata: {")


def test_stream_events_through_the_openai_sdk() -> None:
    stream = r.ResponseStream(r.new_response(create(stream=True), id="resp_1", created_at=1), ids())
    body = b"".join(r.encode_event(e) for e in run_stream(stream, chunks({"content": "Hi"}, {"content": "!"})))

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers=dict(r.STREAM_HEADERS))

    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        client = openai.OpenAI(base_url="http://127.0.0.1:12434/engines/v1", api_key="x", http_client=http)
        seen = list(client.responses.create(model=MODEL, input="hi", stream=True))
    assert "".join(e.delta for e in seen if e.type == "response.output_text.delta") == "Hi!"
    assert seen[-1].type == "response.completed" and seen[-1].response.output_text == "Hi!"


def test_tool_call_stream_keeps_dmr_item_per_idless_delta() -> None:
    first = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}]}
    rest = {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}  # llama.cpp sends the id only once
    stream = r.ResponseStream(r.new_response(create(stream=True), id="resp_1", created_at=1), ids())
    events = run_stream(stream, chunks(first, rest, finish="tool_calls"))
    assert [e["type"] for e in events[2:]] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert events[2]["item"] == {"id": "item_000000000000000000000001", "type": "function_call", "status": "in_progress", "call_id": "call_1", "name": "f"}
    assert "output_index" not in events[2] and events[4]["output_index"] == 1
    assert [(o["call_id"], o.get("arguments")) for o in events[-1]["response"]["output"]] == [
        ("call_1", '{"a"'), ("call_000000000000000000000003", ":1}"),
    ]  # fmt: skip


def test_upstream_failure_events() -> None:
    stream = r.ResponseStream(r.new_response(create(stream=True), id="resp_1", created_at=1), ids())
    events = stream.upstream_failed(404)
    assert events[0] == {"type": "error", "sequence_number": 1, "error": {"code": "upstream_error", "message": "Upstream service returned status code: 404"}}
    assert (events[1]["type"], events[1]["sequence_number"], events[1]["response"]["status"], events[1]["response"]["error"]) == (
        "response.failed", 2, "failed", None,
    )  # fmt: skip


# ---------------------------------------------------------------------------- the store


def test_store_expires_after_an_hour_and_answers_dmr_bodies() -> None:
    now = [1000.0]
    store = r.ResponseStore(clock=lambda: now[0])
    store.save(r.new_response(create(), id="resp_1", created_at=1))
    assert store.get_body("resp_1")[0] == 200
    assert store.input_items("resp_1") == (200, {"data": [], "object": "list"})
    now[0] += 3600
    assert store.get("resp_1") is not None
    now[0] += 0.001
    assert store.get_body("resp_1") == (404, {"error": {"code": "not_found", "message": "Response not found"}})
    assert store.input_items("resp_1")[0] == 404
    assert store.delete_body("resp_1") == (200, {"deleted": True, "id": "resp_1", "object": "response.deleted"})
    assert store.delete_body("resp_1")[0] == 404


def test_store_false_is_echoed() -> None:
    assert r.new_response(create(store=False), id="resp_1", created_at=1)["store"] is False
