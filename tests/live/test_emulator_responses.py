"""OpenAI Responses on the emulator over real llama.cpp: the OpenAI SDK's calls, and DMR's exact
statuses, headers and event sequence (DMR translates to a chat completion and back, ``pkg/responses``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from pytest_dmr.emulator import EmulatorServer

from .conftest import MODEL, SEED

pytestmark = pytest.mark.tier_live

SHORT = {"max_output_tokens": 8, "temperature": 0}


@pytest.fixture
def sdk(emulator: EmulatorServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.url + "/v1", api_key="unused", max_retries=0, timeout=300) as client:
        yield client


def sse_events(text: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            assert name.startswith("event: ") and data.startswith("data: ")
            events.append((name[len("event: ") :], json.loads(data[len("data: ") :])))
    return events


def test_create_plain_is_a_completed_response_with_one_message(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model=MODEL, input="Say hello.", **SHORT)  # type: ignore[arg-type]
    assert response.status == "completed" and response.id.startswith("resp_")
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text and response.output_text == response.output[0].content[0].text  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.output_tokens == 8
    assert response.max_output_tokens == 8 and response.temperature == 0


def test_same_settings_same_answer(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model=MODEL, input="Name a colour.", **SHORT)  # type: ignore[arg-type]
    second = sdk.responses.create(model=MODEL, input="Name a colour.", **SHORT)  # type: ignore[arg-type]
    assert first.output_text == second.output_text and first.id != second.id


def test_streamed_events_follow_dmr_sequence_and_match_the_stored_response(sdk: openai.OpenAI) -> None:
    with sdk.responses.create(model=MODEL, input="Say hello.", stream=True, **SHORT) as stream:  # type: ignore[call-overload]
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [event.sequence_number for event in events] == list(range(1, len(events) + 1))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    completed = events[-1].response
    assert completed.output_text == text and completed.status == "completed"
    assert sdk.responses.retrieve(completed.id).output_text == text


def test_stream_comes_as_the_upstream_writes_it(emulator: EmulatorServer) -> None:
    """Events arrive in several reads (flushed per llama.cpp chunk), not as one body at the end."""
    body = {"model": MODEL, "input": "Count to ten.", "stream": True, "max_output_tokens": 24, "temperature": 0}
    with httpx.stream("POST", emulator.url + "/v1/responses", json=body, timeout=300) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        pieces = [piece for piece in response.iter_raw() if piece]
    assert len(pieces) > 3
    events = sse_events(b"".join(pieces).decode())
    assert events[-1][0] == "response.completed"
    assert "output_index" not in events[2][1]  # Go's omitempty drops index 0


def test_tools_are_accepted_and_echoed(sdk: openai.OpenAI) -> None:
    """SmolLM2's template has no tools (llama.cpp drops them): only the shapes can be checked live."""
    tool = {"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip
    response = sdk.responses.create(model=MODEL, input="Weather in Paris?", tools=[tool], tool_choice="auto", **SHORT)  # type: ignore[arg-type,list-item]
    assert response.status == "completed"
    assert [t.name for t in response.tools] == ["get_weather"]  # type: ignore[union-attr]
    assert response.tool_choice == "auto"
    assert {item.type for item in response.output} <= {"message", "function_call"}


def test_continuation_sends_the_earlier_output_and_the_store_serves_it(sdk: openai.OpenAI, emulator: EmulatorServer) -> None:
    first = sdk.responses.create(model=MODEL, input="My name is Ada.", instructions="Be brief.", **SHORT)  # type: ignore[arg-type]
    second = sdk.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id, **SHORT)  # type: ignore[arg-type]
    assert second.previous_response_id == first.id and second.status == "completed"
    log = httpx.get(emulator.url + "/engines/requests", params={"model": MODEL}).json()
    requests = [json.loads(record["request"]) for record in log[0]["records"]]
    chats = [r for r in requests if r.get("messages")]  # the session emulator also logged other tests' requests
    continued = next(r for r in chats if r["messages"][-1].get("content") == "What is my name?")
    assert continued["messages"][0] == {"content": first.output_text, "role": "assistant"}  # DMR keeps outputs only
    assert sdk.responses.retrieve(first.id).output_text == first.output_text
    items = sdk.responses.input_items.list(first.id)
    assert items.data == []
    deleted = httpx.delete(emulator.url + f"/v1/responses/{first.id}")
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": True, "id": first.id, "object": "response.deleted"})
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        sdk.responses.create(model=MODEL, input="again", previous_response_id=first.id, **SHORT)  # type: ignore[arg-type]


def test_store_false_is_not_kept(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model=MODEL, input="hi", store=False, **SHORT)  # type: ignore[arg-type]
    assert response.store is False
    with pytest.raises(openai.NotFoundError, match="Response not found"):
        sdk.responses.retrieve(response.id)


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"include": ["reasoning.encrypted_content"]}, "include is not supported by Docker Model Runner Responses compatibility layer"),
     ({"truncation": "auto"}, 'truncation value "auto" is not supported by Docker Model Runner Responses compatibility layer'),
     ({"background": True}, "background responses are not supported by Docker Model Runner Responses compatibility layer"),
     ({"service_tier": "flex"}, "service_tier is not supported by Docker Model Runner Responses compatibility layer")],
)  # fmt: skip
def test_unsupported_fields_are_dmr_400s(sdk: openai.OpenAI, extra: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model=MODEL, input="hi", **extra)
    assert raised.value.status_code == 400 and message in str(raised.value)


def test_upstream_error_is_a_failed_response_with_the_upstream_status(emulator: EmulatorServer) -> None:
    response = httpx.post(emulator.url + "/v1/responses", json={"model": "ai/absent", "input": "hi"})
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "failed" and body["output"] == []
    assert body["error"] == {"code": "upstream_error", "message": "error while getting model: get model '\"ai/absent\"': model not found\n"}
    stored = httpx.get(emulator.url + f"/responses/{body['id']}")
    assert stored.json()["status"] == "failed"  # failed responses are stored too


def test_streamed_upstream_error_is_200_with_error_events(emulator: EmulatorServer) -> None:
    response = httpx.post(emulator.url + "/v1/responses", json={"model": "ai/absent", "input": "hi", "stream": True})
    assert response.status_code == 200  # DMR writes the events before the status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"  # the scheduler error's headers
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["error", "response.failed"]
    assert events[0][1]["error"] == {"code": "upstream_error", "message": "Upstream service returned status code: 404"}
    assert events[1][1]["response"]["status"] == "failed"


NOT_STORED = '{"error":{"code":"not_found","message":"Response not found"}}\n'


@pytest.mark.parametrize(
    ("method", "path", "status", "allow", "body"),
    [("GET", "/v1/responses", 405, "POST", "Method Not Allowed\n"),
     ("PUT", "/responses/resp_x", 405, "DELETE, GET, HEAD", "Method Not Allowed\n"),
     ("POST", "/responses/resp_x/input_items", 405, "GET, HEAD", "Method Not Allowed\n"),
     ("GET", "/v1/responses/a/b/c", 404, None, "404 page not found\n"),  # the handler's own mux
     ("GET", "/engines/responses/a/b/c", 404, None, "not found\n"),  # the scheduler's
     ("GET", "/engines/responses/resp_x", 404, None, NOT_STORED),
     ("DELETE", "/engines/llama.cpp/v1/responses/resp_x", 404, None, NOT_STORED)],
)  # fmt: skip
def test_routes_as_dmr_muxes_answer(
    emulator: EmulatorServer, method: str, path: str, status: int, allow: str | None, body: str
) -> None:
    response = httpx.request(method, emulator.url + path)
    assert (response.status_code, response.text) == (status, body)
    assert response.headers.get("allow") == allow


def test_backend_named_in_the_path(emulator: EmulatorServer) -> None:
    ok = httpx.post(emulator.url + "/engines/llama.cpp/v1/responses", json={"model": MODEL, "input": "hi", "max_output_tokens": 2}, timeout=300)
    assert ok.json()["status"] == "completed"
    other = httpx.post(emulator.url + "/engines/nothing/v1/responses", json={"model": MODEL, "input": "hi"})
    assert other.status_code == 404 and other.json()["error"]["message"] == "backend not found\n"
    absent = httpx.post(emulator.url + "/engines/vllm/v1/responses", json={"model": MODEL, "input": "hi"})  # registered, not installed
    assert absent.status_code == 412 and absent.json()["error"]["message"] == "vLLM binary not found\n"


def test_seed_is_not_a_responses_field_but_temperature_zero_is_enough(sdk: openai.OpenAI) -> None:
    """DMR's CreateRequest has no ``seed``: extra fields are dropped, the answer still comes."""
    response = sdk.responses.create(model=MODEL, input="hi", extra_body={"seed": SEED}, **SHORT)  # type: ignore[arg-type]
    assert response.status == "completed"
