"""The library (adapter, client) against real llama.cpp: behind the emulator, and bare."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import error_bodies, pull_stream
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.client import ModelRunnerClient
from pytest_dmr.emulator import EmulatorServer

from .conftest import DETERMINISTIC, MODEL, MODEL_TAG

pytestmark = pytest.mark.tier_live


def run(coroutine):  # noqa: ANN001, ANN201 - a tiny helper, no pytest-asyncio loop juggling needed
    return asyncio.run(coroutine)


async def generate_twice_and_stream(adapter: DockerModelRunnerAdapter, prompt: str) -> tuple[str, str, list[str]]:
    async with adapter:
        first = await adapter.generate(prompt, max_tokens=16, **DETERMINISTIC)
        second = await adapter.generate(prompt, max_tokens=16, **DETERMINISTIC)
        pieces = [piece async for piece in adapter.stream_generate(prompt, max_tokens=16, **DETERMINISTIC)]
    return first, second, pieces


# ---------------------------------------------------------------------------------- through the emulator


def test_adapter_generates_deterministically_and_streams_the_same_text(emulator: EmulatorServer) -> None:
    adapter = DockerModelRunnerAdapter(emulator.url, model=MODEL)
    first, second, pieces = run(generate_twice_and_stream(adapter, "Write one word."))
    assert first.strip()
    assert second == first
    assert len(pieces) > 1 and "".join(pieces) == first


def test_adapter_embeds_and_lists_models(emulator: EmulatorServer) -> None:
    async def scenario() -> tuple[list[list[float]], list[str], bool]:
        async with DockerModelRunnerAdapter(emulator.url + "/engines/llama.cpp/v1", model=MODEL) as adapter:
            return await adapter.embed(["a", "b"]), await adapter.get_available_models(), await adapter.check_availability()

    vectors, models, available = run(scenario())
    assert len(vectors) == 2 and len(vectors[0]) == 576 and vectors[0] != vectors[1]
    assert models == ["docker.io/ai/smollm2:latest"]
    assert available is True


def test_adapter_raises_model_not_found_for_a_model_not_pulled(emulator: EmulatorServer) -> None:
    adapter = DockerModelRunnerAdapter(emulator.url, model="ai/qwen3")
    with pytest.raises(errors.ModelNotFoundError) as caught:
        run(adapter.generate("hi"))
    assert caught.value.status_code == 404
    assert "the runner does not have this model" in str(caught.value)
    assert "docker model pull ai/qwen3" in str(caught.value)


def test_client_pulls_inspects_and_deletes(fresh_emulator: EmulatorServer, llama_model_path: Path) -> None:
    seen: list[pull_stream.PullProgress] = []
    with ModelRunnerClient(fresh_emulator.url) as client:
        assert client.is_model_runner()
        assert client.list_models() == []
        result = client.pull(f"SmolLM2:{MODEL_TAG}", progress=seen.append)
        assert result.cached is False
        assert result.total == llama_model_path.stat().st_size
        assert seen[-1].type == "success" and seen[-2].layer_current == llama_model_path.stat().st_size
        assert client.pull(f"smollm2:{MODEL_TAG}").cached is True
        info = client.inspect(f"ai/smollm2:{MODEL_TAG}")
        assert info.tags == (f"docker.io/ai/smollm2:{MODEL_TAG}",)
        assert client.has_model(f"docker.io/ai/smollm2:{MODEL_TAG}")
        assert client.delete(f"smollm2:{MODEL_TAG}")[-1] == {"Deleted": info.id}
        with pytest.raises(errors.ModelNotFoundError):
            client.inspect(f"smollm2:{MODEL_TAG}")
        with pytest.raises(errors.PullError) as refused:
            client.pull("ai/not-in-catalogue")
        assert "Model not found" in str(refused.value)


# ---------------------------------------------------------------------------------- 503 while loading


@pytest.fixture
def loading_503_emulator(live_catalog: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(live_catalog, engine="llama", loading_503=True) as server:
        server.pull(MODEL)
        yield server


def test_loading_503_is_llama_cpp_json_until_loaded(loading_503_emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with httpx.Client(base_url=loading_503_emulator.url, timeout=60) as http:
        first = http.post("/engines/v1/chat/completions", json=body)
        assert first.status_code == 503
        assert first.headers["content-type"] == "application/json; charset=utf-8"
        assert first.json() == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
        assert error_bodies.is_loading_response(first.status_code, first.text)
        assert http.get("/engines/ps").json()[0]["loading"] is True
        # A preload waits for the load even in this mode; afterwards inference answers.
        assert http.post("/engines/v1/chat/completions", json=body, headers={"X-Preload-Only": "true"}).status_code == 200
        assert http.post("/engines/v1/chat/completions", json=body).status_code == 200


def test_adapter_retries_through_loading_503(loading_503_emulator: EmulatorServer) -> None:
    adapter = DockerModelRunnerAdapter(loading_503_emulator.url, model=MODEL, max_retries=30, backoff=0.05)
    text = run(adapter.generate("Say yes.", max_tokens=4, **DETERMINISTIC))
    assert text.strip()


def test_adapter_without_retries_reports_the_model_still_loading(loading_503_emulator: EmulatorServer) -> None:
    adapter = DockerModelRunnerAdapter(loading_503_emulator.url, model=MODEL, max_retries=0)
    with pytest.raises(errors.ModelLoadingError) as caught:
        run(adapter.generate("Say yes.", max_tokens=4))
    assert caught.value.status_code == 503
    assert "still loading" in str(caught.value)


# ---------------------------------------------------------------------------------- a bare llama.cpp server


@pytest.mark.parametrize("which", ["plain", "prefixed"])
def test_adapter_works_on_a_bare_llama_cpp_server(which: str, request: pytest.FixtureRequest) -> None:
    root = request.getfixturevalue("plain_llama" if which == "plain" else "plain_llama_with_prefix")
    openai_url = root + ("/v1" if which == "plain" else "/engines/llama.cpp/v1")
    adapter = DockerModelRunnerAdapter(openai_url, model="anything")
    first, second, pieces = run(generate_twice_and_stream(adapter, "Write one word."))
    assert first.strip() and second == first and "".join(pieces) == first


@pytest.mark.parametrize("which", ["plain", "prefixed"])
def test_management_calls_on_a_bare_llama_cpp_server_say_it_is_not_a_runner(
    which: str, request: pytest.FixtureRequest
) -> None:
    root = request.getfixturevalue("plain_llama" if which == "plain" else "plain_llama_with_prefix")
    with ModelRunnerClient(root) as client:
        assert client.is_model_runner() is False
        with pytest.raises(errors.NotAModelRunnerError) as caught:
            client.list_models()
    assert "not a Docker Model Runner" in str(caught.value)
