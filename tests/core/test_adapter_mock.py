"""DockerModelRunnerAdapter on the real MockModelRunner: answers, streams, and every fault as a user sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, model_names, routes
from pytest_dmr.adapter import DockerModelRunnerAdapter, create_modelrunner_adapter
from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
WHERE = f"(runner {addresses.MOCK_BASE_URL}, model {MODEL})"
TIMEOUT_HINT = "Raise the timeout (--dmr-timeout, or LOCAL_MODEL_TIMEOUT in milliseconds), or use a smaller model"
STREAM_HINT = "The runner may have crashed or restarted: check `docker model logs`, then retry"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def on(mock: MockModelRunner, sleeps: Sleeps, **kwargs: Any) -> DockerModelRunnerAdapter:
    kwargs.setdefault("model", MODEL)
    return DockerModelRunnerAdapter(transport=mock, sleep=sleeps, **kwargs)


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


def chat_requests(mock: MockModelRunner) -> int:
    return sum(1 for request in mock.requests if request.endpoint == routes.CHAT_COMPLETIONS)


# ------------------------------------------------------------------------------------------
# Answers
# ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_adapter_on_the_mock_is_the_mock_backend(mock: MockModelRunner, sleeps: Sleeps) -> None:
    adapter = on(mock, sleeps)
    assert adapter.backend == "mock"
    assert adapter.address.root == addresses.MOCK_BASE_URL
    assert adapter.get_capabilities()["backend"] == "mock"
    assert await adapter.check_availability() is True
    assert any(model_names.same_model(name, MODEL) for name in await adapter.get_available_models())


@pytest.mark.asyncio
async def test_generate_is_deterministic_and_recorded(mock: MockModelRunner, sleeps: Sleeps) -> None:
    adapter = on(mock, sleeps)
    first = await adapter.generate("Tell me about whales.", system="Be brief.", temperature=0, max_tokens=24)
    second = await adapter.generate("Tell me about whales.", system="Be brief.", temperature=0, max_tokens=24)
    assert first == second and first.strip()
    recorded = mock.requests[-1]
    assert (recorded.method, recorded.endpoint, recorded.model, recorded.stream) == ("POST", "/chat/completions", MODEL, False)
    assert recorded.last_user_message == "Tell me about whales."
    assert recorded.json is not None and recorded.json["max_tokens"] == 24 and recorded.json["temperature"] == 0


@pytest.mark.asyncio
async def test_a_rule_reply_comes_back_through_generate_and_stream(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.reply("The answer is 42.", contains="meaning of life")
    adapter = on(mock, sleeps)
    assert await adapter.generate("What is the meaning of life?") == "The answer is 42."
    assert "".join(await collect(adapter.stream_generate("What is the meaning of life?"))) == "The answer is 42."


@pytest.mark.asyncio
async def test_stream_pieces_join_to_what_generate_returns(mock: MockModelRunner, sleeps: Sleeps) -> None:
    adapter = on(mock, sleeps)
    pieces = await collect(adapter.stream_generate("Describe a lighthouse.", max_tokens=30, seed=3))
    assert len(pieces) > 1
    assert "".join(pieces) == await adapter.generate("Describe a lighthouse.", max_tokens=30, seed=3)
    assert mock.requests[0].stream is True


@pytest.mark.asyncio
async def test_chat_usage_and_tool_calls(mock: MockModelRunner, sleeps: Sleeps) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    adapter = on(mock, sleeps)
    result = await adapter.chat([{"role": "user", "content": "Weather in Paris?"}], tools=[tool], tool_choice="required")
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0]["function"]["name"] == "get_weather"
    plain = await adapter.chat([{"role": "user", "content": "Hi"}], max_tokens=10)
    assert plain.usage["total_tokens"] == plain.usage["prompt_tokens"] + plain.usage["completion_tokens"]
    assert plain.usage["completion_tokens"] <= 10


@pytest.mark.asyncio
async def test_complete_and_embed(mock: MockModelRunner, sleeps: Sleeps) -> None:
    adapter = on(mock, sleeps)
    assert (await adapter.complete("Once upon a time", max_tokens=8)).strip()
    vectors = await adapter.embed(["a cat", "a dog", "a cat"])
    assert len(vectors) == 3 and len(vectors[0]) == 576  # SmolLM2-135M's width
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert abs(sum(value * value for value in vectors[0]) - 1.0) < 1e-6


@pytest.mark.asyncio
async def test_use_mock_builds_an_adapter_on_a_mock_runner() -> None:
    adapter = create_modelrunner_adapter(environ={"USE_MOCK": "yes", "DEFAULT_LOCAL_MODEL": "ai/qwen3"})
    assert adapter.backend == "mock" and adapter.model == "ai/qwen3"
    assert (await adapter.generate("hi")).strip()
    assert any(model_names.same_model(name, "ai/qwen3") for name in await adapter.get_available_models())


# ------------------------------------------------------------------------------------------
# Every fault, as a user reads it
# ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unknown_model_is_model_not_found(sleeps: Sleeps) -> None:
    adapter = on(MockModelRunner(serve_any_model=False), sleeps, model="ai/nothing")
    with pytest.raises(errors.ModelNotFoundError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        "the runner does not have this model (404: error while getting model: get model '\"ai/nothing\"': "
        f"model not found) (runner {addresses.MOCK_BASE_URL}, model ai/nothing). "
        "Pull it first: `docker model pull ai/nothing`, or run pytest with --dmr-pull"
    )
    assert sleeps.waits == []


@pytest.mark.asyncio
async def test_no_model_is_model_required(mock: MockModelRunner, sleeps: Sleeps) -> None:
    adapter = on(mock, sleeps, model="")
    with pytest.raises(errors.BadRequestError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        f"the runner rejected the request (400: model is required) (runner {addresses.MOCK_BASE_URL}). "
        "Pass a model name (model=... or --dmr-model)"
    )
    assert sleeps.waits == []


@pytest.mark.asyncio
async def test_loading_is_retried_until_the_model_is_ready(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.loading(times=2))
    adapter = on(mock, sleeps)
    assert (await adapter.generate("hi")).strip()
    assert sleeps.waits == [0.25, 0.5]
    assert chat_requests(mock) == 3


@pytest.mark.asyncio
async def test_loading_past_the_retries_is_model_loading_error(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.loading(times=50))
    adapter = on(mock, sleeps, max_retries=2)
    with pytest.raises(errors.ModelLoadingError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        f"the model was still loading when the retries ran out (503: Loading model) {WHERE}. "
        "Raise the timeout (--dmr-timeout) or preload the model before the tests"
    )
    assert chat_requests(mock) == 3 and sleeps.waits == [0.25, 0.5]


@pytest.mark.asyncio
async def test_a_load_failure_is_model_load_error(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.load_failure("inference backend quit unexpectedly"))
    adapter = on(mock, sleeps)
    with pytest.raises(errors.ModelLoadError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        f"the runner could not load the model (500: unable to load runner: inference backend quit unexpectedly) {WHERE}. "
        "Check the runner's logs (`docker model logs`) and that the model fits in memory"
    )
    assert chat_requests(mock) == 1


@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.asyncio
async def test_gateway_errors_are_retried(mock: MockModelRunner, sleeps: Sleeps, status: int) -> None:
    mock.fail(Fault.http(status, times=1))
    adapter = on(mock, sleeps)
    assert (await adapter.generate("hi")).strip()
    assert chat_requests(mock) == 2 and sleeps.waits == [0.25]


@pytest.mark.asyncio
async def test_a_persistent_502(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.http(502))
    adapter = on(mock, sleeps, max_retries=1)
    with pytest.raises(errors.RunnerHTTPError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        f"the runner answered 502: (empty body) {WHERE}. Retry; if it persists, check the runner's logs (`docker model logs`)"
    )
    assert caught.value.status_code == 502


@pytest.mark.asyncio
async def test_a_timeout_is_runner_timeout_error(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.timeout())
    adapter = on(mock, sleeps, timeout=3)
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == f"the runner did not answer within 3 s {WHERE}. {TIMEOUT_HINT}"
    assert chat_requests(mock) == 1


@pytest.mark.asyncio
async def test_a_disconnect_is_runner_unavailable(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.disconnect())
    adapter = on(mock, sleeps)
    with pytest.raises(errors.RunnerUnavailableError) as caught:
        await adapter.generate("hi")
    message = str(caught.value)
    assert message.startswith("the runner closed the connection before a complete answer (")
    assert message.endswith(
        f") {WHERE}. Check that the URL points at Docker Model Runner and that it is healthy (`docker model status`)"
    )


@pytest.mark.asyncio
async def test_a_disconnected_stream_is_runner_unavailable_and_not_retried(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.disconnect())
    adapter = on(mock, sleeps)
    with pytest.raises(errors.RunnerUnavailableError):
        await collect(adapter.stream_generate("hi"))
    assert chat_requests(mock) == 1


@pytest.mark.asyncio
async def test_a_cut_stream_names_the_runner_the_model_and_what_was_received(
    mock: MockModelRunner, sleeps: Sleeps
) -> None:
    adapter = on(mock, sleeps)
    whole = await collect(adapter.stream_generate("Describe the sea.", max_tokens=40))
    assert len(whole) > 3
    mock.fail(Fault.cut_stream(after=3))
    received: list[str] = []
    with pytest.raises(errors.StreamInterruptedError) as caught:
        async for piece in adapter.stream_generate("Describe the sea.", max_tokens=40):
            received.append(piece)
    assert received == whole[:3]
    text = "".join(received)
    preview = text if len(text) <= 60 else text[:57] + "..."
    assert str(caught.value) == (
        "the streamed answer stopped before its end: the connection was lost (RemoteProtocolError), "
        f"after 3 pieces ({len(text)} characters: {preview!r}) {WHERE}. {STREAM_HINT}"
    )
    assert caught.value.received == text
    assert chat_requests(mock) == 2 and sleeps.waits == []


@pytest.mark.asyncio
async def test_a_slow_first_token_under_a_short_timeout(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.slow_first_token(0.5))
    adapter = on(mock, sleeps, timeout=0.05)
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        await collect(adapter.stream_generate("hi"))
    assert str(caught.value) == f"the runner sent no part of the streamed answer within 0.05 s {WHERE}. {TIMEOUT_HINT}"
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == f"the runner did not answer within 0.05 s {WHERE}. {TIMEOUT_HINT}"


@pytest.mark.asyncio
async def test_a_slow_first_token_within_the_timeout_arrives(mock: MockModelRunner, sleeps: Sleeps) -> None:
    mock.fail(Fault.slow_first_token(0.02))
    adapter = on(mock, sleeps, timeout=5)
    assert "".join(await collect(adapter.stream_generate("hi"))).strip()
