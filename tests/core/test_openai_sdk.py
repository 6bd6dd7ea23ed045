"""The OpenAI Python SDK pointed at MockModelRunner gets what DockerModelRunnerAdapter gets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner

MODEL = "ai/smollm2"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a harbour at dawn."}]


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest.fixture
def sdk(mock: MockModelRunner) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=mock.base_url + "/engines/v1", api_key="unused",
                           http_client=httpx.Client(transport=mock), max_retries=0)
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
    assert completion.usage is not None and completion.usage.model_dump(exclude_none=True) == result.usage
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
                                  http_client=httpx.AsyncClient(transport=mock), max_retries=0) as sdk:
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


def test_sdk_errors_from_the_mock_are_the_sdks_own(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.response.text == "model is required\n"  # DMR's plain-text body, not OpenAI JSON
