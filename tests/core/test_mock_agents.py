"""Agent loops on the mock: tool calls the request asks for (fitting tools, several at once, streamed as
indexed deltas), then a text answer that uses the tools' results, through the real SDKs of every
format; and rules that follow the conversation (turn, last role, tool results, tools called) and
answer with a sequence of replies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import jsonschema
import ollama
import openai
import pydantic
import pytest
import pytest_asyncio
from pydantic_ai import Agent, UsageLimits
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
CHAT = "/engines/v1/chat/completions"


def function(name: str, description: str, **properties: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


WEATHER = function("get_weather", "The weather forecast for a city", city={"type": "string"}, unit={"enum": ["celsius", "fahrenheit"]})
EMAIL = function("send_email", "Send an e-mail message", to={"type": "string"}, subject={"type": "string"}, body={"type": "string"})
TOOLS = [WEATHER, EMAIL]


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx2.Client]:
    with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
        yield client


@pytest.fixture
def sdk(mock: MockModelRunner) -> Iterator[openai.OpenAI]:
    with httpx2.Client(transport=mock) as client:
        yield openai.OpenAI(base_url=mock.openai_base_url, api_key="unused", http_client=client, max_retries=0)


def ask(http: httpx2.Client, messages: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    response = http.post(CHAT, json={"model": MODEL, "messages": messages, "tools": TOOLS, **body})
    assert response.status_code == 200, response.text
    return dict(response.json()["choices"][0])


def calls_of(choice: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(call["function"]["name"], json.loads(call["function"]["arguments"])) for call in choice["message"].get("tool_calls") or []]


def with_results(messages: list[dict[str, Any]], choice: dict[str, Any], result: str) -> list[dict[str, Any]]:
    """The conversation after the assistant's calls, each answered with ``result`` (``{}`` filled from its arguments)."""
    calls = choice["message"]["tool_calls"]
    answers = [{"role": "tool", "tool_call_id": call["id"], "content": result.format(**json.loads(call["function"]["arguments"]))} for call in calls]
    return [*messages, {"role": "assistant", "content": None, "tool_calls": calls}, *answers]


# -- the OpenAI format -----------------------------------------------------------------------------------


def test_openai_sdk_round_trip_ends_in_text_that_uses_the_result(sdk: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    first = sdk.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert arguments["city"] == "Lisbon"
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22C"}]
    second = sdk.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    choice = second.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert "Sunny, 22C" in (choice.message.content or "") and "get_weather" in (choice.message.content or "")


def test_json_result_is_summarised(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = ask(http, messages)
    answer = ask(http, with_results(messages, first, '{{"sky": "grey", "temperature": 4}}'))["message"]["content"]
    assert "sky: grey" in answer and "temperature: 4" in answer and "Oslo" in answer


def test_required_choice_picks_the_tool_that_fits(http: httpx2.Client) -> None:
    choice = ask(http, [{"role": "user", "content": "Email bob@example.com"}], tool_choice="required")
    ((name, arguments),) = calls_of(choice)
    assert name == "send_email" and arguments["to"] == "bob@example.com"
    (( name, _),) = calls_of(ask(http, [{"role": "user", "content": "Is it cold in Oslo? Check the forecast."}], tool_choice="required"))
    assert name == "get_weather"  # by its description


def test_required_choice_after_a_result_calls_a_tool_not_yet_called(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "Email bob@example.com"}]
    first = ask(http, messages, tool_choice="required")
    second = ask(http, with_results(messages, first, "sent"), tool_choice="required")
    assert [name for name, _ in calls_of(second)] == ["get_weather"]
    assert ask(http, with_results(messages, first, "sent"))["finish_reason"] == "stop"  # auto: text


def test_named_and_none_choices(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    named = ask(http, messages, tool_choice={"type": "function", "function": {"name": "send_email"}})
    assert [name for name, _ in calls_of(named)] == ["send_email"]
    none = ask(http, messages, tool_choice="none")
    assert none["finish_reason"] == "stop" and none["message"]["content"]


def test_auto_answers_in_text_when_no_tool_fits(http: httpx2.Client) -> None:
    choice = ask(http, [{"role": "user", "content": "Tell me about testing."}])
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


def test_parallel_calls_for_several_things_with_arguments_from_the_prompt(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris and in Rome, in celsius?"}]
    first = ask(http, messages)
    calls = calls_of(first)
    assert [(name, arguments["city"], arguments["unit"]) for name, arguments in calls] == [
        ("get_weather", "Paris", "celsius"), ("get_weather", "Rome", "celsius"),
    ]  # fmt: skip
    ids = [call["id"] for call in first["message"]["tool_calls"]]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"call_[0-9a-f]{24}", ident) for ident in ids)
    answer = ask(http, with_results(messages, first, "mild in {city}"))
    assert answer["finish_reason"] == "stop"
    assert "mild in Paris" in answer["message"]["content"] and "mild in Rome" in answer["message"]["content"]
    emails = calls_of(ask(http, [{"role": "user", "content": "email bob and alice"}]))
    assert [(name, arguments["to"]) for name, arguments in emails] == [("send_email", "bob"), ("send_email", "alice")]


def test_without_parallel_calls_one_call_per_turn(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    first = ask(http, messages, parallel_tool_calls=False)
    assert [arguments["city"] for _, arguments in calls_of(first)] == ["Paris"]
    messages = with_results(messages, first, "mild")
    second = ask(http, messages, parallel_tool_calls=False)
    assert [arguments["city"] for _, arguments in calls_of(second)] == ["Rome"]
    assert ask(http, with_results(messages, second, "wet"), parallel_tool_calls=False)["finish_reason"] == "stop"


def test_several_calls_stream_as_indexed_deltas(http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    plain = ask(http, messages)
    with http.stream("POST", CHAT, json={"model": MODEL, "messages": messages, "tools": TOOLS, "stream": True}) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    deltas = [delta for line in lines[:-1] for delta in json.loads(line)["choices"][0]["delta"].get("tool_calls") or []]
    heads = [delta for delta in deltas if "id" in delta]
    assert [(head["index"], head["function"]["name"], head["type"]) for head in heads] == [(0, "get_weather", "function"), (1, "get_weather", "function")]
    assert [deltas.index(head) for head in heads][0] == 0 and [delta["index"] for delta in deltas] == sorted(delta["index"] for delta in deltas)
    streamed = ["".join(delta["function"]["arguments"] for delta in deltas if delta["index"] == index) for index in (0, 1)]
    assert all(sum(1 for delta in deltas if delta["index"] == index) > 3 for index in (0, 1))  # in pieces
    assert streamed == [call["function"]["arguments"] for call in plain["message"]["tool_calls"]]
    assert json.loads(lines[-2])["choices"][0]["finish_reason"] == "tool_calls"


def test_a_cut_stream_counts_every_call_s_chunks(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.fail(Fault.cut_stream(after=1000))
    messages = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    with pytest.raises(httpx2.RemoteProtocolError):
        with http.stream("POST", CHAT, json={"model": MODEL, "messages": messages, "tools": TOOLS, "stream": True}) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines if line.startswith("data: ")]
    streamed = "".join(call["function"]["arguments"] for delta in deltas for call in delta.get("tool_calls") or [] if call["index"] == 1)
    assert json.loads(streamed)["city"] == "Rome"  # every argument piece came before the cut


# -- pydantic-ai ---------------------------------------------------------------------------------------------


class Forecast(pydantic.BaseModel):
    city: str
    summary: str


@pytest_asyncio.fixture
async def model(mock: MockModelRunner) -> AsyncIterator[OpenAIChatModel]:
    async with httpx2.AsyncClient(transport=mock) as client:
        yield OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=mock.openai_base_url, api_key="unused", http_client=client))


def forecast(city: str) -> str:
    """The weather forecast for a city."""
    return f"sunny in {city}, 22C"


@pytest.mark.asyncio
async def test_pydantic_ai_agent_with_a_tool_and_an_output_type_completes(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    result = await Agent(model, output_type=Forecast, tools=[forecast]).run("What is the forecast in Lisbon?")
    assert result.output == Forecast(city="Lisbon", summary="sunny in Lisbon, 22C")
    called = [[call["function"]["name"] for call in message.get("tool_calls") or []] for message in mock.last_request.json["messages"]]
    assert [names for names in called if names] == [["forecast"]] and len(mock.requests) == 2


@pytest.mark.asyncio
async def test_pydantic_ai_agent_with_text_output_answers_from_the_tool(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    result = await Agent(model, tools=[forecast]).run("What is the forecast in Lisbon?")
    assert "sunny in Lisbon, 22C" in result.output and len(mock.requests) == 2


@pytest.mark.asyncio
async def test_pydantic_ai_agent_loop_ends_through_anthropic_messages(mock: MockModelRunner) -> None:
    async with httpx2.AsyncClient(transport=mock) as client:
        sdk = anthropic.AsyncAnthropic(base_url=mock.anthropic_base_url, api_key="unused", http_client=client, max_retries=0)
        model = AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=sdk))
        result = await Agent(model, tools=[forecast]).run("What is the forecast in Lisbon?", usage_limits=UsageLimits(request_limit=4))
    assert "sunny in Lisbon, 22C" in result.output and len(mock.requests) == 2


# -- the other formats ------------------------------------------------------------------------------------------

ANTHROPIC_WEATHER = {"name": "get_weather", "description": "The weather forecast for a city", "input_schema": WEATHER["function"]["parameters"]}


def test_anthropic_tool_use_loop_ends_in_text(mock: MockModelRunner) -> None:
    with httpx2.Client(transport=mock) as client:
        sdk = anthropic.Anthropic(base_url=mock.anthropic_base_url, api_key="unused", http_client=client, max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
        first = sdk.messages.create(model=MODEL, max_tokens=256, tools=[ANTHROPIC_WEATHER], messages=messages)  # type: ignore[list-item]
        uses = [block for block in first.content if block.type == "tool_use"]
        assert first.stop_reason == "tool_use" and [block.input["city"] for block in uses] == ["Paris", "Rome"]  # type: ignore[index]
        results = [{"type": "tool_result", "tool_use_id": block.id, "content": f"windy in {block.input['city']}"} for block in uses]  # type: ignore[index]
        messages += [{"role": "assistant", "content": first.content}, {"role": "user", "content": results}]
        second = sdk.messages.create(model=MODEL, max_tokens=256, tools=[ANTHROPIC_WEATHER], messages=messages)  # type: ignore[list-item]
    assert second.stop_reason == "end_turn" and [block.type for block in second.content] == ["text"]
    assert "windy in Paris" in second.content[0].text and "windy in Rome" in second.content[0].text  # type: ignore[union-attr]


def test_anthropic_stream_has_a_tool_use_block_per_call(mock: MockModelRunner) -> None:
    with httpx2.Client(transport=mock) as client:
        sdk = anthropic.Anthropic(base_url=mock.anthropic_base_url, api_key="unused", http_client=client, max_retries=0)
        messages: Any = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
        with sdk.messages.stream(model=MODEL, max_tokens=256, tools=[ANTHROPIC_WEATHER], messages=messages) as stream:  # type: ignore[list-item]
            final = stream.get_final_message()
    assert [(block.type, block.input["city"]) for block in final.content] == [("tool_use", "Paris"), ("tool_use", "Rome")]  # type: ignore[union-attr]


def test_responses_function_calls_then_text_from_their_outputs(sdk: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "description": "The weather forecast for a city", "parameters": WEATHER["function"]["parameters"]}]
    first = sdk.responses.create(model=MODEL, input="What is the weather in Paris and in Rome?", tools=tools)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [json.loads(call.arguments)["city"] for call in calls] == ["Paris", "Rome"]
    outputs: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": f"cloudy in {json.loads(call.arguments)['city']}"} for call in calls]
    second = sdk.responses.create(model=MODEL, input=outputs, previous_response_id=first.id, tools=tools)
    assert "cloudy in Paris" in second.output_text and "cloudy in Rome" in second.output_text
    assert [item.type for item in second.output] == ["message"]


def test_responses_function_calls_then_text_from_the_whole_conversation(sdk: openai.OpenAI) -> None:
    """Without ``previous_response_id``: the calls and their outputs sent back as input items."""
    tools: Any = [{"type": "function", "name": "get_weather", "description": "The weather forecast for a city", "parameters": WEATHER["function"]["parameters"]}]
    asked: Any = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    first = sdk.responses.create(model=MODEL, input=asked, tools=tools)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 2
    items = [{"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments} for call in calls]
    outputs = [{"type": "function_call_output", "call_id": call.call_id, "output": f"cloudy in {json.loads(call.arguments)['city']}"} for call in calls]
    second = sdk.responses.create(model=MODEL, input=[*asked, *items, *outputs], tools=tools)
    assert [item.type for item in second.output] == ["message"]
    assert "cloudy in Paris" in second.output_text and "cloudy in Rome" in second.output_text
    assert "nothing" not in second.output_text  # the empty tool message DMR makes of each call is no result


def test_ollama_tool_calls_then_text(mock: MockModelRunner) -> None:
    sdk = ollama.Client(host=mock.ollama_base_url, transport=mock)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    first = sdk.chat(model=MODEL, messages=messages, tools=[WEATHER], stream=False)
    calls = first.message.tool_calls or []
    assert [(call.function.name, call.function.arguments["city"]) for call in calls] == [("get_weather", "Paris"), ("get_weather", "Rome")]
    messages += [first.message, *({"role": "tool", "content": f"hot in {call.function.arguments['city']}", "tool_name": call.function.name} for call in calls)]
    second = sdk.chat(model=MODEL, messages=messages, tools=[WEATHER], stream=False)
    assert not second.message.tool_calls and "hot in Paris" in second.message.content and "hot in Rome" in second.message.content  # type: ignore[operator]


# -- rules on the conversation, and sequences of replies ------------------------------------------------------------


def test_rule_matchers_on_the_conversation(mock: MockModelRunner, http: httpx2.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first_turn = mock.reply("first", turn=0, last_role="user")
    after_sun = mock.reply("Take sunglasses.", tool_result="sun", tool_called="get_weather")
    after_rain = mock.reply("Take an umbrella.", tool_result=re.compile(r"\brain(y)?\b"), last_role="tool", turn=1)
    assert ask(http, messages)["message"]["content"] == "first"
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    asked = [*messages, {"role": "assistant", "content": None, "tool_calls": [call]}]
    assert ask(http, [*asked, {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 9C"}])["message"]["content"] == "Take an umbrella."
    assert ask(http, [*asked, {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 20C"}])["message"]["content"] == "Take sunglasses."
    assert (first_turn.calls, after_sun.calls, after_rain.calls) == (1, 1, 1)
    conversation = mock.last_request.conversation
    assert (conversation.turn, conversation.last_role, conversation.tools_called) == (1, "tool", ["get_weather"])
    assert [(result.name, result.content) for result in conversation.tool_results()] == [("get_weather", "sunny, 20C")]


def test_replies_are_used_in_order_then_the_rule_is_used_up(mock: MockModelRunner, http: httpx2.Client) -> None:
    rule = mock.add_rule(
        replies=[{"name": "get_weather", "arguments": {"city": "Oslo"}}, Fault.loading(times=2), "It is cold in Oslo."], contains="Oslo"
    )
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    assert calls_of(ask(http, messages)) == [("get_weather", {"city": "Oslo"})]
    statuses = [http.post(CHAT, json={"model": MODEL, "messages": messages}).status_code for _ in range(2)]
    assert statuses == [503, 503]
    assert ask(http, messages)["message"]["content"] == "It is cold in Oslo."
    assert rule.calls == rule.times == 4 and rule.used_as_expected
    assert ask(http, messages)["message"]["content"] != "It is cold in Oslo."  # used up: generated again
    mock.assert_all_rules_used()


def test_a_reply_in_a_sequence_can_call_several_tools(mock: MockModelRunner, http: httpx2.Client) -> None:
    mock.add_rule(replies=[[{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_weather", "arguments": {"city": "Bergen"}}], "Done."])
    first = ask(http, [{"role": "user", "content": "hi"}])
    assert [arguments["city"] for _, arguments in calls_of(first)] == ["Oslo", "Bergen"]
    assert len({call["id"] for call in first["message"]["tool_calls"]}) == 2


def test_unused_sequence_is_described_as_written(mock: MockModelRunner) -> None:
    mock.add_rule(replies=["a", Fault.timeout()], turn=2, tool_result="x")
    with pytest.raises(AssertionError, match=re.escape("add_rule(turn=2, tool_result='x', replies=['a', Fault.timeout()]): never used")):
        mock.assert_all_rules_used()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"replies": ["a"], "reply": "b"}, ValueError, "replies= gives every answer, one per request: drop reply="),
        ({"replies": ["a"], "times": 2}, ValueError, "drop times="),
        ({"replies": []}, ValueError, "replies= takes a non-empty list"),
        ({"replies": "abc"}, ValueError, "replies= takes a non-empty list"),
        ({"replies": [3]}, TypeError, "each of replies= is a text, a tool call"),
        ({"replies": [{"arguments": {}}]}, ValueError, "tool_call= needs a 'name'"),
        ({"reply": "a", "turn": -1}, ValueError, "turn= counts the assistant messages"),
    ],
)
def test_invalid_sequences_and_matchers(mock: MockModelRunner, arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        mock.add_rule(**arguments)


# -- determinism ----------------------------------------------------------------------------------------------------

AGENT_REQUESTS = [
    [{"role": "user", "content": "What is the weather in Paris and in Rome, in celsius?"}],
    [{"role": "user", "content": "email bob and alice"}],
    [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": '{"sky": "clear"}'},
    ],
]


def agent_answers() -> list[str]:
    """The plain and streamed answers to each agent request, as text."""
    mock = MockModelRunner()
    with httpx2.Client(transport=mock, base_url=mock.base_url) as client:
        return [
            client.post(CHAT, json={"model": MODEL, "messages": messages, "tools": TOOLS, "stream": stream}).text
            for messages in AGENT_REQUESTS
            for stream in (False, True)
        ]


def test_tool_answers_are_the_same_in_every_process() -> None:
    code = "import json, tests.core.test_mock_agents as t; print(json.dumps(t.agent_answers()))"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, cwd=root,
                                  capture_output=True, text=True, timeout=60, check=True).stdout)
        for seed in ("0", "12345")
    ]  # fmt: skip
    assert runs[0] == runs[1] == agent_answers()
    jsonschema.validate(json.loads(json.loads(runs[0][0])["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]), WEATHER["function"]["parameters"])
