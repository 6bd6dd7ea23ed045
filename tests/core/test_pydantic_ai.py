"""pydantic-ai's OpenAI model on an httpx2 client over MockModelRunner: text, streaming, structured
output and tools, with no warning (the suite turns every warning into an error; pydantic-ai warns
when handed a legacy httpx client)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pydantic
import pytest
import pytest_asyncio
from pydantic_ai import Agent, PromptedOutput
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner

MODEL = "ai/smollm2"
PROMPT = "Describe a harbour at dawn."


class City(pydantic.BaseModel):
    name: str
    population: int = pydantic.Field(ge=0)


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest_asyncio.fixture
async def model(mock: MockModelRunner) -> AsyncIterator[OpenAIChatModel]:
    async with httpx2.AsyncClient(transport=mock) as http:
        yield OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=mock.openai_base_url, api_key="unused", http_client=http))


@pytest.mark.asyncio
async def test_agent_text_is_the_adapters(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    result = await Agent(model).run(PROMPT)
    async with DockerModelRunnerAdapter(transport=mock, model=MODEL) as adapter:
        expected = await adapter.chat([{"role": "user", "content": PROMPT}])
    assert result.output == expected.text and result.output
    assert mock.last_request.endpoint == "/chat/completions" and mock.last_request.model == MODEL


@pytest.mark.asyncio
async def test_agent_streams_the_same_text(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    whole = (await Agent(model).run(PROMPT)).output
    async with Agent(model).run_stream(PROMPT) as run:
        pieces = [piece async for piece in run.stream_text(delta=True)]
    assert mock.last_request.stream is True
    assert "".join(pieces) == whole


@pytest.mark.asyncio
async def test_agent_structured_output(model: OpenAIChatModel) -> None:
    result = await Agent(model, output_type=City).run("Name a city.")
    assert isinstance(result.output, City) and result.output.name


@pytest.mark.asyncio
async def test_prompted_output_follows_the_schema_in_the_prompt_and_reuses_its_values(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    agent = Agent(model, output_type=PromptedOutput(City))
    result = await agent.run("Tell me about Lisbon, home to 545000 people.")
    assert result.output == City(name="Lisbon", population=545000)
    assert "json" in mock.last_request.json["messages"][0]["content"].lower()  # the schema went in the prompt


@pytest.mark.asyncio
async def test_agent_calls_a_tool_scripted_on_the_mock(model: OpenAIChatModel, mock: MockModelRunner) -> None:
    agent = Agent(model)
    seen: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return "sunny"

    mock.add_rule(tool_call={"name": "get_weather", "arguments": {"city": "Lisbon"}}, times=1)
    mock.reply("It is sunny in Lisbon.", when=lambda request: request.json["messages"][-1]["role"] == "tool")  # the tool's answer
    result = await agent.run("What is the weather in Lisbon?")
    assert seen == ["Lisbon"]
    assert result.output == "It is sunny in Lisbon."
