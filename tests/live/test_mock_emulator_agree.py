"""The mock and the emulator answer DMR's CORS and ``_configure`` requests the same way.

Both are stand-ins for one server, written separately; the same requests go to the mock (an httpx
transport) and to an emulator on the mock engine (HTTP on 127.0.0.1, a tiny fake GGUF: no real part
needed), and their answers are compared: status, body, and the headers CORS and errors set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_dmr.emulator import EmulatorServer
from pytest_dmr.mock import MockModelRunner

from .conftest import fake_gguf

COMPARED_HEADERS = ("content-type", "x-content-type-options", "vary", "access-control-allow-origin",
                    "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers")  # fmt: skip
ORIGINS = [None, "http://localhost", "https://127.0.0.1:*", "http://evil.example", "null", ""]
PATHS = [
    ("OPTIONS", "/"), ("OPTIONS", "/metrics"), ("OPTIONS", "/nowhere"), ("OPTIONS", "/models"),
    ("OPTIONS", "/engines/ps"), ("OPTIONS", "/v1/models"), ("OPTIONS", "/rerank"), ("OPTIONS", "/api/tags"),
    ("GET", "/engines/_configure?model=ai/other"), ("GET", "/models/ai/nothing"), ("GET", "/engines/ps"), ("GET", "/engines/nowhere"),
    ("GET", "/rerank/x"), ("GET", "/modelsx"), ("POST", "/engines/tensorrt/_configure"), ("DELETE", "/engines/_configure"),
]  # fmt: skip
CONFIGURE_BODIES = [
    b"{", b"[]", b"null", b'{"model":"ai/smollm2","keep_alive":"10"}', b'{"model":"ai/smollm2","keep_alive":600}',
    b'{"model":"ai/smollm2","mode":"chat"}', b'{"model":"ai/smollm2","raw-runtime-flags":"--seed (1)"}',
    b'{"model":"ai/smollm2","speculative":{"num_tokens":"2"}}', b'{"model":"ai/nothing","keep_alive":"1m"}',
    b'{"model":"smollm2","keep_alive":"1.9999999999999999999s","context-size":1024,"raw-runtime-flags":"--threads 2; x"}',
    b'{"model":"ai/smollm2","keep_alive":"-5m","mode":"embedding"}',
]  # fmt: skip


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    catalog = tmp_path_factory.mktemp("catalog")
    fake_gguf(catalog / "smollm2" / "latest.gguf")
    mock = MockModelRunner(models=("ai/smollm2",), serve_any_model=False)
    with EmulatorServer(catalog, engine="mock", origins=mock.origins) as server:
        server.pull("ai/smollm2")
        with httpx.Client(transport=mock, base_url=mock.base_url) as to_mock, httpx.Client(base_url=server.url) as to_emulator:
            yield to_mock, to_emulator


def answer(client: httpx.Client, method: str, path: str, origin: str | None, body: bytes | None = None) -> tuple[Any, ...]:
    response = client.request(method, path, content=body, headers={} if origin is None else {"Origin": origin})
    return response.status_code, response.content, {name: response.headers.get(name) for name in COMPARED_HEADERS}


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize(("method", "path"), PATHS)
def test_cors_answers_agree(both: tuple[httpx.Client, httpx.Client], method: str, path: str, origin: str | None) -> None:
    to_mock, to_emulator = both
    assert answer(to_mock, method, path, origin) == answer(to_emulator, method, path, origin)


def test_configure_answers_and_stored_settings_agree(both: tuple[httpx.Client, httpx.Client]) -> None:
    to_mock, to_emulator = both
    for body in CONFIGURE_BODIES:
        for origin in (None, "http://0.0.0.0"):
            assert answer(to_mock, "POST", "/engines/_configure", origin, body) == answer(
                to_emulator, "POST", "/engines/_configure", origin, body), body  # fmt: skip

    def settings(client: httpx.Client) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [(entry["Backend"], entry["Model"], entry["Mode"], entry["Config"]) for entry in client.get("/engines/_configure").json()]

    assert settings(to_mock) == settings(to_emulator) == [
        ("llama.cpp", "docker.io/ai/smollm2:latest", "completion",
         {"context-size": 1024, "runtime-flags": ["--threads", "2"], "keep_alive": "2s"}),
        ("llama.cpp", "docker.io/ai/smollm2:latest", "embedding", {"keep_alive": "-1"}),
    ]  # fmt: skip
