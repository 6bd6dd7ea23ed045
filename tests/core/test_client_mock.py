"""ModelRunnerClient and AsyncModelRunnerClient on the real MockModelRunner (sync and async transport)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, model_names, pull_stream, routes
from pytest_dmr.client import AsyncModelRunnerClient, ModelRunnerClient
from pytest_dmr.mock import Fault, MockModelRunner
from pytest_dmr.protocol.pull_stream import PullProgress
from async_facade import AsyncFacade

WHERE = f"runner {addresses.MOCK_BASE_URL}"


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner(models=("ai/smollm2",))


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, mock: MockModelRunner) -> Any:
    if request.param == "sync":
        return ModelRunnerClient(transport=mock)
    return AsyncFacade(AsyncModelRunnerClient(transport=mock))


def test_the_mock_is_a_running_model_runner(client: Any) -> None:
    assert client.base_url == addresses.MOCK_BASE_URL
    assert client.is_running() is True
    assert client.is_model_runner() is True
    assert "llama.cpp" in client.engines_status()


def test_lists_inspect_and_has_model(client: Any, mock: MockModelRunner) -> None:
    mock.add_model("ai/qwen3:0.6B-Q4_0")
    names = [model.name for model in client.list_models()]
    assert [model_names.canonical_model_name(name) for name in names] == [
        "docker.io/ai/smollm2:latest", "docker.io/ai/qwen3:0.6B-Q4_0"]
    assert client.list_openai_models() == names
    assert client.inspect("smollm2").name == names[0]
    assert client.has_model("smollm2") and client.has_model("docker.io/ai/qwen3:0.6B-Q4_0")
    assert not client.has_model("ai/qwen3")


def test_inspect_of_a_missing_model(client: Any) -> None:
    with pytest.raises(errors.ModelNotFoundError) as caught:
        client.inspect("ai/nothing")
    assert str(caught.value) == (
        f"the runner does not have this model (404: model not found) ({WHERE}, model ai/nothing). "
        "Pull it first: `docker model pull ai/nothing`, or run pytest with --dmr-pull"
    )


def test_pull_reports_progress_then_the_model_is_there(client: Any, mock: MockModelRunner) -> None:
    seen: list[PullProgress] = []
    result = client.pull("ai/llama3.2:1B-Q4_0", progress=seen.append)
    assert result.cached is False and result.model == "ai/llama3.2:1B-Q4_0"
    assert result.message == pull_stream.PULL_SUCCESS_MESSAGE
    assert seen[-1].type == "success" and len(seen) > 2
    layers = {line.layer_id: line.layer_current for line in seen if line.layer_id}
    assert len(layers) >= 1 and all(seen_current > 0 for seen_current in layers.values())
    assert result.total == max(line.total for line in seen) > 0
    assert mock.requests[-1].headers["accept"] == "application/json"
    assert client.has_model("llama3.2:1B-Q4_0")
    again = client.pull("ai/llama3.2:1B-Q4_0")
    assert again.cached is True and again.message.startswith("Using cached model: ")


def test_a_pull_error_line(client: Any, mock: MockModelRunner) -> None:
    mock.fail(Fault.pull_error("writing image to store: disk full"), endpoint=routes.MODELS_CREATE_PATH)
    seen: list[PullProgress] = []
    with pytest.raises(errors.PullError) as caught:
        client.pull("ai/qwen3", progress=seen.append)
    assert seen[-1].type == "error"
    message = str(caught.value)
    assert message.startswith("the runner reported an error while pulling: Error: writing image to store: disk full")
    assert message.endswith(f"({WHERE}, model ai/qwen3:latest). Check the runner's disk space and network access, then retry")


@pytest.mark.parametrize(
    ("status", "shown"),
    [(400, "Invalid model reference"), (401, "Unauthorized"), (404, "Model not found")],
)
def test_a_refused_pull(client: Any, mock: MockModelRunner, status: int, shown: str) -> None:
    mock.fail(Fault.http(status), endpoint=routes.MODELS_CREATE_PATH)
    with pytest.raises(errors.PullError, match=rf"^the runner refused to pull the model \({status}: {shown}\) \({WHERE}"):
        client.pull("ai/qwen3")


def test_delete(client: Any, mock: MockModelRunner) -> None:
    actions = client.delete("ai/smollm2")
    assert [list(action) for action in actions] == [["Untagged"], ["Deleted"]]
    assert not client.has_model("ai/smollm2")
    with pytest.raises(errors.ModelNotFoundError):
        client.delete("ai/smollm2")


def test_a_timeout_and_a_disconnect(client: Any, mock: MockModelRunner) -> None:
    mock.fail(Fault.timeout(), endpoint=routes.MANAGEMENT_MODELS_PATH, times=1)
    with pytest.raises(errors.RunnerTimeoutError, match=rf"^the runner did not answer within 30 s \({WHERE}\)\. Raise"):
        client.list_models()
    mock.fail(Fault.disconnect(), endpoint=routes.MANAGEMENT_MODELS_PATH, times=1)
    with pytest.raises(errors.RunnerUnavailableError, match=r"^the runner closed the connection before a complete answer"):
        client.list_models()
    assert client.list_models()  # the faults were used up

