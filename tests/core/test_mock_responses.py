"""The mock's Responses front-end through the OpenAI SDK 3.x (plain, streamed, tools, errors,
continuation) and over raw HTTP (DMR's routes, statuses, bodies, store and clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import openai
import pytest

from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
WEATHER = {
    "type": "function", "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}  # fmt: skip


@pytest.fixture
def sdk(mock: MockModelRunner) -> Iterator[openai.OpenAI]:
    with httpx2.Client(transport=mock) as http:
        yield openai.OpenAI(base_url=mock.openai_base_url, api_key="unused", http_client=http, max_retries=0)


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx2.Client]:
    with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
        yield client


def test_plain_answer_is_the_chat_answer(mock: MockModelRunner, sdk: openai.OpenAI, http: httpx2.Client) -> None:
    response = sdk.responses.create(model=MODEL, input="Describe a harbour at dawn.")
    chat = http.post("/engines/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "Describe a harbour at dawn."}]}).json()
    assert response.status == "completed"
    assert response.output_text == chat["choices"][0]["message"]["content"]
    assert response.output[0].type == "message"
    assert response.id.startswith("resp_") and response.created_at == int(mock.clock.now())
    assert response.usage is not None and response.usage.output_tokens == chat["usage"]["completion_tokens"]
    recorded = mock.requests[0]
    assert (recorded.api, recorded.endpoint, recorded.model) == ("responses", "/chat/completions", MODEL)
    assert recorded.json["input"] == "Describe a harbour at dawn." and recorded.chat["messages"][-1]["role"] == "user"


def test_rule_reply_is_an_output_item(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    rule = mock.reply("Paris.", contains="capital of France", api="responses")
    response = sdk.responses.create(model=MODEL, input="What is the capital of France?", instructions="Be brief.")
    assert response.output_text == "Paris."
    assert response.instructions == "Be brief."
    assert rule.calls == 1


def test_streamed_events_in_dmr_order(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    """Read as events (``responses.create(stream=True)``): the SDK's ``responses.stream`` helper needs
    ``output_index`` on every event, which DMR leaves out when it is 0."""
    mock.add_rule(stream=["Hel", "lo"])
    events = list(sdk.responses.create(model=MODEL, input="hi", stream=True))
    assert [event.type for event in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(1, 11))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "Hello"
    assert sdk.responses.retrieve(final.id).output_text == "Hello"


def test_stream_headers(http: httpx2.Client) -> None:
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as answer:
        body = answer.read()
    assert answer.status_code == 200
    assert (answer.headers["content-type"], answer.headers["cache-control"], answer.headers["connection"]) == ("text/event-stream", "no-cache", "keep-alive")
    assert body.startswith(b"event: response.created\ndata: {")


def test_tool_call_is_a_function_call_item(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}})
    response = sdk.responses.create(model=MODEL, input="Weather in Lisbon?", tools=[WEATHER])  # type: ignore[list-item]
    call = response.output[0]
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Lisbon"})
    assert mock.last_request.chat["tools"][0]["function"]["name"] == "get_weather"


def test_streamed_tool_call(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    """DMR's quirk kept: each later arguments delta (llama.cpp sends the call's id only first) opens
    a new ``function_call`` item; the arguments, joined, are the call's."""
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}})
    events = list(sdk.responses.create(model=MODEL, input="Weather in Oslo?", tools=[WEATHER], stream=True))  # type: ignore[list-item]
    final = events[-1].response  # type: ignore[union-attr]
    assert {item.type for item in final.output} == {"function_call"}
    assert final.output[0].name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(getattr(item, "arguments", None) or "" for item in final.output)) == {"city": "Oslo"}


def test_continuation_sends_the_stored_outputs(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    mock.reply("Lisbon is sunny.", contains="weather")
    first = sdk.responses.create(model=MODEL, input="What is the weather?")
    second = sdk.responses.create(model=MODEL, input="And tomorrow?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.id != first.id
    messages = mock.last_request.chat["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("assistant", "Lisbon is sunny."), ("user", "And tomorrow?")]


def test_identical_requests_get_distinct_ids(sdk: openai.OpenAI) -> None:
    first, second = (sdk.responses.create(model=MODEL, input="same") for _ in range(2))
    assert first.id != second.id and first.output_text == second.output_text


def test_unsupported_field_is_a_400(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model=MODEL, input="hi", truncation="auto")
    assert caught.value.status_code == 400
    assert caught.value.body == {"code": "invalid_request", "message": 'truncation value "auto" is not supported by Docker Model Runner Responses compatibility layer'}


def test_unknown_previous_response(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match='previous_response_id "resp_nope" was not found'):
        sdk.responses.create(model=MODEL, input="hi", previous_response_id="resp_nope")


def test_fault_is_a_failed_response_with_its_status(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.fail(Fault.http(503))
    answer = http.post("/responses", json={"model": MODEL, "input": "hi"})
    assert answer.status_code == 503 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["status"] == "failed"
    # llama.cpp's error has a numeric code: DMR keeps the whole body as the message
    assert body["error"] == {"code": "upstream_error", "message": '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'}
    assert http.get(f"/responses/{body['id']}").json()["status"] == "failed"


def test_plain_text_upstream_error(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.serve_any_model = False
    answer = http.post("/v1/responses", json={"model": "ai/nope", "input": "hi"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "upstream_error"
    assert answer.json()["error"]["message"].startswith("error while getting model")


def test_fault_on_a_stream_is_error_events_with_status_200(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.fail(Fault.http(500, "boom"))
    answer = http.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": True})
    assert answer.status_code == 200
    assert answer.text.startswith("event: error\ndata: ")
    assert '"message":"Upstream service returned status code: 500"' in answer.text
    assert "event: response.failed" in answer.text


def test_sdk_sees_a_failed_stream(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    mock.fail(Fault.http(500))
    with pytest.raises(openai.APIError, match="Upstream service returned status code: 500"):
        list(sdk.responses.create(model=MODEL, input="hi", stream=True))


def test_cut_stream_stops_after_the_pieces(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.add_rule(stream=["a", "b", "c"], fault=Fault.cut_stream(after=1))
    seen: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        with http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as answer:
            for line in answer.iter_lines():
                seen.append(line)
    deltas = [line for line in seen if line == "event: response.output_text.delta"]
    assert len(deltas) == 1 and "event: response.completed" not in seen


def test_timeout_fault_raises(mock: MockModelRunner, sdk: openai.OpenAI) -> None:
    mock.fail(Fault.timeout())
    with pytest.raises(openai.APITimeoutError):
        sdk.responses.create(model=MODEL, input="hi")


def test_get_delete_input_items_and_the_hour(mock: MockModelRunner, sdk: openai.OpenAI, http: httpx2.Client) -> None:
    response = sdk.responses.create(model=MODEL, input="hi")
    assert http.get(f"/engines/v1/responses/{response.id}/input_items").json() == {"data": [], "object": "list"}
    assert http.get(f"/engines/llama.cpp/v1/responses/{response.id}").json()["id"] == response.id
    mock.clock.advance(3600)
    assert http.get(f"/engines/responses/{response.id}").status_code == 200
    mock.clock.advance(1)
    gone = http.get(f"/engines/responses/{response.id}")
    assert (gone.status_code, gone.text) == (404, '{"error":{"code":"not_found","message":"Response not found"}}\n')
    kept = sdk.responses.create(model=MODEL, input="again")
    deleted = http.delete(f"/v1/responses/{kept.id}")
    assert deleted.json() == {"deleted": True, "id": kept.id, "object": "response.deleted"}
    assert http.delete(f"/v1/responses/{kept.id}").status_code == 404


def test_store_false_keeps_nothing(sdk: openai.OpenAI, http: httpx2.Client) -> None:
    response = sdk.responses.create(model=MODEL, input="hi", store=False)
    assert response.model_dump()["store"] is False
    assert http.get(f"/v1/responses/{response.id}").status_code == 404


def test_methods_dmr_does_not_route(http: httpx2.Client) -> None:
    assert http.get("/v1/responses").status_code == 405
    assert http.post("/v1/responses/resp_x").status_code == 405


def test_bodies_identical_across_mocks() -> None:
    bodies = []
    for _ in range(2):
        mock = MockModelRunner()
        with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
            bodies.append(client.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}).content)
    assert bodies[0] == bodies[1]
