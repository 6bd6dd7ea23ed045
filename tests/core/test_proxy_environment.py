"""A proxy set in the environment never carries a request for a loopback runner.

The runner here is the emulator on its mock engine (no llama.cpp needed), on 127.0.0.1. Every
proxy variable points at a closed port, so a request that went through the proxy would fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_dmr import AsyncModelRunnerClient, DockerModelRunnerAdapter, ModelRunnerClient, _http
from pytest_dmr.protocol import addresses
from pytest_dmr.emulator import EmulatorServer

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, a proxied request is refused
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    catalog = tmp_path_factory.mktemp("catalog")
    (catalog / "smollm2").mkdir()
    (catalog / "smollm2" / "latest.gguf").write_bytes(b"GGUF")
    with EmulatorServer(catalog, engine="mock") as server:
        server.pull("ai/smollm2")
        yield server


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("dead_proxy")
def test_the_client_goes_straight_to_a_loopback_runner(runner: EmulatorServer) -> None:
    with ModelRunnerClient(runner.url) as client:
        assert client.is_model_runner()
        assert [model.tags for model in client.list_models()] == [("docker.io/ai/smollm2:latest",)]


@pytest.mark.asyncio
@pytest.mark.usefixtures("dead_proxy")
async def test_the_async_client_and_the_adapter_go_straight_to_a_loopback_runner(runner: EmulatorServer) -> None:
    async with AsyncModelRunnerClient(runner.url) as client:
        assert await client.is_model_runner()
    async with DockerModelRunnerAdapter(runner.url, model="ai/smollm2") as adapter:
        assert await adapter.check_availability()
        assert await adapter.generate("Say hello.", max_tokens=4)


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("http://127.0.0.1:12434", False),
        ("http://127.9.8.7:12434", False),
        ("http://localhost:12434/engines/v1", False),
        ("http://LOCALHOST.:12434", False),
        ("http://runner.localhost:12434", False),
        ("http://[::1]:12434", False),
        ("http://model-runner.docker.internal", True),  # inside a container: NO_PROXY decides
        ("http://runner.example:12434", True),
    ],
)
def test_only_non_loopback_runners_honour_proxy_variables(url: str, trusted: bool) -> None:
    assert _http.trusts_environment(addresses.parse_runner_url(url)) is trusted
