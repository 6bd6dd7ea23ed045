"""Live tier: the emulator on real llama.cpp and SmolLM2, and a plain llama.cpp server.

Every fixture here goes through ``llama_model_path`` (tests/conftest.py), so a machine without
xllamacpp or the model skips these tests, and CI (PYTEST_DMR_REQUIRE_TIERS=live) fails them.
The emulator and the llama.cpp servers start once per session: loading costs about a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_dmr.emulator import EmulatorServer

MODEL = "ai/smollm2"
"""The session emulator's pulled model: the catalogue's ``smollm2`` (SmolLM2-135M, Q4_1)."""
MODEL_TAG = "135M-Q4_1"
SEED = 1234
"""Sampling settings that make llama.cpp's answers repeatable."""
DETERMINISTIC: dict[str, Any] = {"temperature": 0, "seed": SEED}


def make_catalog(folder: Path, model_file: Path) -> Path:
    """A catalogue with ``ai/smollm2:135M-Q4_1`` and ``ai/smollm2:latest`` (a symlink to it)."""
    model_folder = folder / "smollm2"
    model_folder.mkdir(parents=True)
    (model_folder / f"{MODEL_TAG}.gguf").symlink_to(model_file)
    (model_folder / "latest.gguf").symlink_to(f"{MODEL_TAG}.gguf")
    return folder


def fake_gguf(path: Path) -> Path:
    """A valid GGUF header (version 3, no tensors) with an architecture and a context length."""
    import struct

    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    metadata = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", 4096),
        string("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", 15),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)) + b"".join(metadata) + b"\0" * 4096)
    return path


@pytest.fixture(scope="session")
def live_catalog(tmp_path_factory: pytest.TempPathFactory, llama_model_path: Path) -> Path:
    return make_catalog(tmp_path_factory.mktemp("catalog"), llama_model_path)


@pytest.fixture(scope="session")
def emulator(live_catalog: Path) -> Iterator[EmulatorServer]:
    """The session's emulator on real llama.cpp, with ``ai/smollm2`` pulled. Do not delete its model."""
    with EmulatorServer(live_catalog, engine="llama", threads=1, ctx_size=2048) as server:
        server.pull(MODEL)
        yield server


@pytest.fixture
def fresh_emulator(live_catalog: Path) -> Iterator[EmulatorServer]:
    """An emulator with an empty store (cheap: nothing loads until an inference request).

    The default idle timeout: a test that looks at ``/engines/ps`` after a request must not race
    the idle unloader on a busy machine.
    """
    with EmulatorServer(live_catalog, engine="llama", threads=1, ctx_size=2048) as server:
        yield server


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=300) as client:
        yield client


def start_llama_server(model_file: Path, *, api_prefix: str = "", embedding: bool = False) -> Any:
    """A bare llama.cpp server (xllamacpp in this process), as a user might run ``llama-server``."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_file)
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.verbosity = -1
    if api_prefix:
        params.api_prefix = api_prefix
    if embedding:
        params.embedding = True
    return xllamacpp.Server(params)


@pytest.fixture(scope="session")
def plain_llama(llama_model_path: Path) -> Iterator[str]:
    """URL of a bare llama.cpp server (no DMR management API, OpenAI API under ``/v1``)."""
    server = start_llama_server(llama_model_path)
    yield server.listening_address
    del server


@pytest.fixture(scope="session")
def plain_llama_with_prefix(llama_model_path: Path) -> Iterator[str]:
    """URL of a bare llama.cpp server started with ``api_prefix=/engines/llama.cpp``."""
    server = start_llama_server(llama_model_path, api_prefix="/engines/llama.cpp")
    yield server.listening_address
    del server
