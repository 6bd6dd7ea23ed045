"""The official SDKs against the mock served on 127.0.0.1, as ``dmr_environment`` serves it to app
code that builds its own clients: the OpenAI SDK's Responses calls, the ``anthropic`` SDK and the
``ollama`` SDK, each plain, streamed, with tools, on errors, and over a continued conversation.

The clients use their own HTTP stacks and real sockets (no transport handed in), so what reaches
them is what the mock's HTTP answer is, byte for byte: chunked streams, content types, statuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import ollama
import openai
import pydantic
import pytest

from pytest_dmr.mock import Fault, MockModelRunner
from pytest_dmr.served import LoopbackServer

MODEL = "ai/smollm2"
HI = [{"role": "user", "content": "Hi"}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city", "parameters": SCHEMA}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city", "parameters": SCHEMA}}
CLAUDE_TOOL = {"name": "get_weather", "description": "The weather in a city", "input_schema": SCHEMA}


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner(models=(MODEL,), serve_any_model=False)


@pytest.fixture
def served(mock: MockModelRunner) -> Iterator[str]:
    with LoopbackServer(mock) as server:
        yield server.url


@pytest.fixture
def oai(served: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served + "/engines/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture(params=["", "/anthropic"], ids=["root", "anthropic-prefix"])
def claude(request: pytest.FixtureRequest, served: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=served + request.param, api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture
def llama(served: str) -> Iterator[ollama.Client]:
    client = ollama.Client(host=served)
    yield client
    client._client.close()


# ------------------------------------------------------------------------------ OpenAI Responses


def test_responses_plain_and_streamed(mock: MockModelRunner, oai: openai.OpenAI) -> None:
    mock.reply("Bonjour from the served mock.", api="responses")
    plain = oai.responses.create(model=MODEL, input="Hi")
    assert (plain.status, plain.output_text, [item.type for item in plain.output]) == ("completed", "Bonjour from the served mock.", ["message"])
    with oai.responses.create(model=MODEL, input="Hi", stream=True) as stream:
        events = list(stream)
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Bonjour from the served mock."
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [event.sequence_number for event in events] == list(range(1, len(events) + 1))
    assert events[-1].response.output_text == "Bonjour from the served mock."  # type: ignore[union-attr]


def test_responses_tool_call_then_its_result_continues_the_conversation(mock: MockModelRunner, oai: openai.OpenAI) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}}, api="responses", times=1)
    mock.reply("Sunny in Lisbon.", tool_result="22", api="responses")
    first = oai.responses.create(model=MODEL, input="Weather in Lisbon?", tools=[RESPONSES_TOOL])  # type: ignore[list-item]
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {"city": "Lisbon"}
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}
    second = oai.responses.create(model=MODEL, previous_response_id=first.id, input=[result], tools=[RESPONSES_TOOL])  # type: ignore[list-item]
    assert second.output_text == "Sunny in Lisbon." and second.previous_response_id == first.id
    messages = mock.last_request.chat["messages"]  # DMR's history keeps the outputs, not the inputs
    assert [message["role"] for message in messages] == ["assistant", "tool"]
    assert messages[0]["tool_calls"][0]["function"]["name"] == "get_weather" and messages[1]["content"] == "22 degrees"


def test_responses_streamed_tool_call_keeps_dmrs_item_per_delta(mock: MockModelRunner, oai: openai.OpenAI) -> None:
    """DMR opens a ``function_call`` item for each later arguments delta (llama.cpp names the call
    only in its first chunk): the raw events carry the call, joined; the SDK's ``responses.stream``
    accumulator cannot follow it, as on DMR."""
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}}, api="responses")
    with oai.responses.create(model=MODEL, input="Weather in Oslo?", tools=[RESPONSES_TOOL], stream=True) as stream:  # type: ignore[list-item]
        events = list(stream)
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed" and final.output[0].name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(getattr(item, "arguments", None) or "" for item in final.output)) == {"city": "Oslo"}


def test_responses_store_read_back_list_and_delete(oai: openai.OpenAI) -> None:
    created = oai.responses.create(model=MODEL, input="Keep this.")
    assert oai.responses.retrieve(created.id).output_text == created.output_text
    assert oai.responses.input_items.list(created.id).data == []  # DMR keeps no inputs
    oai.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(created.id)
    unstored = oai.responses.create(model=MODEL, input="Forget this.", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(unstored.id)


def test_responses_errors(mock: MockModelRunner, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="background responses are not supported"):
        oai.responses.create(model=MODEL, input="Hi", background=True)
    with pytest.raises(openai.BadRequestError, match='previous_response_id "resp_nope" was not found'):
        oai.responses.create(model=MODEL, input="Hi", previous_response_id="resp_nope")
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="ai/absent", input="Hi")
    mock.fail(Fault.http(503, "overloaded"), api="responses")
    with pytest.raises(openai.APIStatusError) as raised:
        oai.responses.create(model=MODEL, input="Hi")
    assert raised.value.status_code == 503


# ------------------------------------------------------------------------------ Anthropic


def test_anthropic_plain_streamed_and_count_tokens(mock: MockModelRunner, claude: anthropic.Anthropic) -> None:
    mock.reply("Hello from the served mock.", api="anthropic")
    message = claude.messages.create(model=MODEL, max_tokens=64, messages=HI)  # type: ignore[arg-type]
    assert [block.type for block in message.content] == ["text"] and message.content[0].text == "Hello from the served mock."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text == "Hello from the served mock."  # type: ignore[union-attr]
    counted = claude.messages.count_tokens(model=MODEL, messages=HI)  # type: ignore[arg-type]
    assert counted.input_tokens > 0


def test_anthropic_tool_use_then_tool_result(mock: MockModelRunner, claude: anthropic.Anthropic) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}}, api="anthropic", times=1)
    mock.reply("Cold in Oslo.", tool_result="-3", api="anthropic")
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=question, tools=[CLAUDE_TOOL]) as stream:  # type: ignore[arg-type,list-item]
        asked = stream.get_final_message()
    [use] = asked.content
    assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "Oslo"}
    assert asked.stop_reason == "tool_use"
    follow = [*question, {"role": "assistant", "content": [use.model_dump()]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "-3 degrees"}]}]  # fmt: skip
    answered = claude.messages.create(model=MODEL, max_tokens=64, messages=follow, tools=[CLAUDE_TOOL])  # type: ignore[arg-type,list-item]
    assert answered.content[0].text == "Cold in Oslo."  # type: ignore[union-attr]


def test_anthropic_errors_are_json_under_its_prefix_and_plain_text_elsewhere(served: str) -> None:
    for prefix, kind in (("/anthropic", anthropic.NotFoundError), ("", anthropic.NotFoundError)):
        with anthropic.Anthropic(base_url=served + prefix, api_key="unused", max_retries=0) as client, pytest.raises(kind) as raised:
            client.messages.create(model="ai/absent", max_tokens=8, messages=HI)  # type: ignore[arg-type]
        if prefix:
            assert raised.value.body == {"type": "error", "error": {"type": "not_found_error", "message": "Model not found: ai/absent"}}
        else:
            assert raised.value.response.headers["content-type"] == "text/plain; charset=utf-8"


# ------------------------------------------------------------------------------ Ollama


def test_ollama_chat_generate_and_the_model_routes(mock: MockModelRunner, llama: ollama.Client) -> None:
    mock.reply("Hello from the served mock.", api="ollama")
    assert llama.chat(model=MODEL, messages=HI, stream=False).message.content == "Hello from the served mock."
    parts = list(llama.chat(model=MODEL, messages=HI, stream=True))
    assert len(parts) > 2 and parts[-1].done and "".join(part.message.content or "" for part in parts) == "Hello from the served mock."
    assert "".join(part.response or "" for part in llama.generate(model=MODEL, prompt="Hi", stream=True)) == "Hello from the served mock."
    stored = mock.store.find(MODEL)
    assert stored is not None and [model.model for model in llama.list().models] == list(stored.tags)  # one entry per tag
    [running] = llama.ps().models
    assert (running.model, running.digest) == (stored.tags[0], stored.id)
    progress = [line.status or "" for line in llama.pull("ai/other", stream=True)]
    assert progress[0].startswith("pulling ") and progress[-1] == "success"
    assert len(llama.list().models) == len(stored.tags) + 1
    assert llama.delete("ai/other").status == "success"
    assert [model.model for model in llama.list().models] == list(stored.tags)


def test_ollama_errors(llama: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        llama.chat(model="ai/absent", messages=HI, stream=False)
    assert raised.value.status_code == 404 and "model not found" in raised.value.error
    with pytest.raises(ollama.ResponseError) as raised:
        llama.show("ai/absent")
    assert raised.value.status_code == 404


def test_ollama_tool_call_plain_has_object_arguments(mock: MockModelRunner, llama: ollama.Client) -> None:
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}}, api="ollama")
    answer = llama.chat(model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[CHAT_TOOL], stream=False)
    [call] = answer.message.tool_calls or []
    assert (call.function.name, dict(call.function.arguments)) == ("get_weather", {"city": "Lisbon"})


def test_ollama_streamed_tool_call_is_dmrs_chunk_by_chunk_translation(mock: MockModelRunner, served: str, llama: ollama.Client) -> None:
    """DMR converts each upstream chunk on its own (``streamingChatResponseWriter`` calls
    ``convertToolCallsToOllamaFormat`` per ``data:`` line, no accumulation): the call's name comes
    in one line with ``arguments: ""``, the argument JSON in pieces after it, each a string, which
    the ollama SDK's models reject. The mock sends exactly that, so code that streams tool calls
    through Ollama's SDK fails here as it does on DMR."""
    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}}, api="ollama")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Weather?"}], "tools": [CHAT_TOOL]}
    with httpx.stream("POST", served + "/api/chat", json=body) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    calls = [call for line in lines for call in line["message"].get("tool_calls", ())]
    assert calls[0] == {"id": calls[0]["id"], "function": {"index": 0, "name": "get_weather", "arguments": ""}}
    assert all(call["function"]["name"] == "" and isinstance(call["function"]["arguments"], str) for call in calls[1:])
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Lisbon"}
    with pytest.raises(pydantic.ValidationError, match="arguments"):
        list(llama.chat(model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[CHAT_TOOL], stream=True))
