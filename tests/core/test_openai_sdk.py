"""The OpenAI Python SDK 3.x (on httpx2) pointed at MockModelRunner gets what DockerModelRunnerAdapter gets:
chat, streaming, tools and structured output, on sync and async clients. (The SDK 2.x on httpx:
``test_openai2_sdk.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import jsonschema
import openai
import pydantic
import pytest

from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner

MODEL = "ai/smollm2"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a harbour at dawn."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ASK_WEATHER = [{"role": "user", "content": "Use get_weather: how warm is Lisbon?"}]


class City(pydantic.BaseModel):
    name: str
    population: int = pydantic.Field(ge=0)
    coastal: bool


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest.fixture
def sdk(mock: MockModelRunner) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=mock.base_url + "/engines/v1", api_key="unused",
                           http_client=httpx2.Client(transport=mock), max_retries=0)
    yield client
    client.close()


@pytest.fixture
def adapter(mock: MockModelRunner) -> DockerModelRunnerAdapter:
    return DockerModelRunnerAdapter(transport=mock, model=MODEL)


@pytest.mark.asyncio
async def test_chat_completion_is_the_same(sdk: openai.OpenAI, adapter: DockerModelRunnerAdapter) -> None:
    completion = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24, temperature=0)  # type: ignore[arg-type]
    result = await adapter.chat(MESSAGES, max_tokens=24, temperature=0)
    assert completion.choices[0].message.content == result.text
    assert completion.choices[0].finish_reason == result.finish_reason
    assert completion.usage is not None  # the adapter keeps usage's whole numbers (not llama.cpp's prompt_tokens_details)
    assert {key: value for key, value in completion.usage.model_dump(exclude_none=True).items() if isinstance(value, int)} == result.usage
    assert completion.model_dump(exclude_unset=True) == result.raw


@pytest.mark.asyncio
async def test_streaming_is_the_same(sdk: openai.OpenAI, adapter: DockerModelRunnerAdapter) -> None:
    stream = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24, stream=True)  # type: ignore[arg-type]
    sdk_pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    adapter_pieces = [piece async for piece in adapter.stream_chat(MESSAGES, max_tokens=24)]
    assert len(adapter_pieces) > 1
    assert sdk_pieces == adapter_pieces


@pytest.mark.asyncio
async def test_streaming_usage_chunk(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=16, stream=True,  # type: ignore[arg-type]
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert chunks[-1].usage.completion_tokens > 0 and text


@pytest.mark.asyncio
async def test_embeddings_are_the_same(sdk: openai.OpenAI, adapter: DockerModelRunnerAdapter) -> None:
    texts = ["a quiet harbour", "a loud market"]
    response = sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [item.embedding for item in response.data] == await adapter.embed(texts)


@pytest.mark.asyncio
async def test_text_completion_is_the_same(sdk: openai.OpenAI, adapter: DockerModelRunnerAdapter) -> None:
    completion = sdk.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=12)
    assert completion.choices[0].text == await adapter.complete("Once upon a time", max_tokens=12)


@pytest.mark.asyncio
async def test_async_sdk_gets_the_same(mock: MockModelRunner, adapter: DockerModelRunnerAdapter) -> None:
    async with openai.AsyncOpenAI(base_url=mock.base_url + "/engines/v1", api_key="unused",
                                  http_client=httpx2.AsyncClient(transport=mock), max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == await adapter.generate(
            "Describe a harbour at dawn.", system="Be brief.", max_tokens=24)
        stream = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24, stream=True)  # type: ignore[arg-type]
        sdk_pieces = [chunk.choices[0].delta.content async for chunk in stream
                      if chunk.choices and chunk.choices[0].delta.content]
        assert sdk_pieces == [piece async for piece in adapter.stream_chat(MESSAGES, max_tokens=24)]
        # the SDK's default asks for base64 (float32) vectors: the same values, to float32 precision
        response = await sdk.embeddings.create(model=MODEL, input="a quiet harbour")
        expected = await adapter.embed("a quiet harbour")
        assert response.data[0].embedding == pytest.approx(expected[0], rel=1e-6, abs=1e-7)


def test_openai_sdk_is_on_httpx2(sdk: openai.OpenAI) -> None:
    """The SDK under test is 3.x, whose HTTP stack is httpx2 (a failure means the wrong SDK is installed)."""
    assert int(openai.__version__.split(".")[0]) >= 3
    assert isinstance(sdk._client, httpx2.Client)


def test_tool_call(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])  # type: ignore[index]


def test_streamed_tool_call_has_the_same_arguments(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    stream = sdk.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER], stream=True)  # type: ignore[arg-type, list-item]
    names, arguments, finish = [], [], None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or ():
            names += [delta_call.function.name] if delta_call.function and delta_call.function.name else []
            arguments.append(delta_call.function.arguments or "" if delta_call.function else "")
        finish = chunk.choices[0].finish_reason or finish
    assert whole.choices[0].message.tool_calls is not None
    assert names == ["get_weather"] and finish == "tool_calls"
    assert "".join(arguments) == whole.choices[0].message.tool_calls[0].function.arguments


def test_structured_output_parses(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "A city, please."}], response_format=City)
    city = completion.choices[0].message.parsed
    assert isinstance(city, City) and city.name and city.population >= 0


def test_structured_output_json_schema(sdk: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
              "required": ["tags"], "additionalProperties": False}
    completion = sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tag this."}],  # type: ignore[list-item]
        response_format={"type": "json_schema", "json_schema": {"name": "tags", "schema": schema, "strict": True}},
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


@pytest.mark.asyncio
async def test_async_sdk_tools_and_structured_output(mock: MockModelRunner) -> None:
    async with openai.AsyncOpenAI(base_url=mock.openai_base_url, api_key="unused",
                                  http_client=httpx2.AsyncClient(transport=mock), max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER])  # type: ignore[arg-type, list-item]
        calls = completion.choices[0].message.tool_calls
        assert calls is not None and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
        parsed = await sdk.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "A city."}], response_format=City)
        assert isinstance(parsed.choices[0].message.parsed, City)


def test_sdk_errors_from_the_mock_are_the_sdks_own(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.response.text == "model is required\n"  # DMR's plain-text body, not OpenAI JSON
