"""The OpenAI SDK 2.x, built on httpx, on ``httpx.Client(transport=mock)`` and ``httpx.AsyncClient``.

openai 2.x and 3.x cannot share a venv: the main one has 3.x (``test_openai_sdk.py``), so these
skip there, saying so (the ``openai2`` fixture); ``.ci/run`` runs this file in a second venv
(``.venv-openai2``) with ``PYTEST_DMR_REQUIRE_TIERS=openai2``, where a missing openai 2.x fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_dmr.mock import MockModelRunner

MODEL = "ai/smollm2"
MESSAGES = [{"role": "user", "content": "Describe a harbour at dawn."}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest.fixture
def sdk(openai2: Any, mock: MockModelRunner) -> Iterator[Any]:
    client = openai2.OpenAI(base_url=mock.openai_base_url, api_key="unused", http_client=httpx.Client(transport=mock), max_retries=0)
    yield client
    client.close()


def test_chat_and_stream_agree(sdk: Any, mock: MockModelRunner) -> None:
    whole = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24)
    stream = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=24, stream=True)
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == whole.choices[0].message.content
    assert mock.requests[-1].stream is True and mock.requests[0].model == MODEL


def test_tool_call_and_structured_output(sdk: Any) -> None:
    completion = sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER], tool_choice="required")
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    completion = sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    assert isinstance(json.loads(completion.choices[0].message.content)["n"], int)


@pytest.mark.asyncio
async def test_async_client(openai2: Any, mock: MockModelRunner) -> None:
    async with openai2.AsyncOpenAI(base_url=mock.openai_base_url, api_key="unused",
                                  http_client=httpx.AsyncClient(transport=mock), max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8)
        assert completion.choices[0].message.content and completion.usage.completion_tokens > 0
