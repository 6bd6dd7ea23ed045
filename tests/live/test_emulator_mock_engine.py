"""The emulator without llama.cpp: the mock answers inference, and ``/engines/status`` says so.

These tests need no real part (the catalogue holds a tiny fake GGUF), so they carry no tier marker
and run everywhere: they are what a machine without xllamacpp gets from the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_dmr.protocol import pull_stream, sse
from pytest_dmr.emulator import EmulatorServer, engines

from .conftest import fake_gguf


@pytest.fixture
def mock_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    fake_gguf(tmp_path / "catalog" / "tiny" / "1B.gguf")
    monkeypatch.setattr(engines, "xllamacpp_version", lambda: None)  # as if xllamacpp were not installed
    with EmulatorServer(tmp_path / "catalog", engine="auto") as server:
        yield server


def test_status_says_the_mock_answers(mock_emulator: EmulatorServer) -> None:
    status = httpx.get(mock_emulator.url + "/engines/status").json()
    assert status["llama.cpp"] == "Running: pytest-dmr mock engine (xllamacpp not installed)"


def test_llama_engine_without_xllamacpp_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "xllamacpp_version", lambda: None)
    with pytest.raises(RuntimeError, match=r"needs xllamacpp: pip install 'pytest-dmr\[llama\]' \(or use --engine mock\)"):
        EmulatorServer(tmp_path, engine="llama")


def test_mock_engine_serves_pulled_models_only(mock_emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=mock_emulator.url) as http:
        chat = {"model": "ai/tiny:1B", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
        response = http.post("/engines/v1/chat/completions", json=chat)
        assert response.status_code == 404
        assert response.text == """error while getting model: get model '"ai/tiny:1B"': model not found\n"""
        pulled = http.post("/models/create", json={"from": "tiny"}, headers={"Accept": "application/json"})
        assert pulled.text.splitlines()[-1].startswith('{"type":"success","message":"Model pulled successfully"')
        config = http.get("/models/tiny").json()["config"]
        assert (config["architecture"], config["context_size"], config["quantization"]) == ("llama", 4096, "Q4_K_M")
        first = http.post("/engines/v1/chat/completions", json={**chat, "model": "tiny"})
        second = http.post("/v1/chat/completions", json={**chat, "model": "tiny"})
        assert first.status_code == 200
        assert first.json()["choices"][0]["message"]["content"] == second.json()["choices"][0]["message"]["content"]
        with http.stream("POST", "/engines/v1/chat/completions", json={**chat, "model": "tiny", "stream": True}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = list(sse.iter_sse_data(stream.iter_lines()))
        assert events[-1] == "[DONE]" and len(events) > 2
        assert [entry["mode"] for entry in http.get("/engines/ps").json()] == ["completion"]


def test_a_third_pull_sends_nothing_until_a_pull_slot_frees(mock_emulator: EmulatorServer) -> None:
    """DMR runs two pulls at once; a third waits without sending anything (not even its status)."""
    slots = mock_emulator.store._pull_slots
    slots.acquire()
    slots.acquire()  # as if two pulls were running
    try:
        with httpx.Client(base_url=mock_emulator.url, timeout=httpx.Timeout(10, read=0.5)) as http:
            with pytest.raises(httpx.ReadTimeout):
                with http.stream("POST", "/models/create", json={"from": "tiny"}):
                    pass
    finally:
        slots.release()
        slots.release()
    pulled = httpx.post(mock_emulator.url + "/models/create", json={"from": "tiny"}, headers={"Accept": "application/json"})
    assert pulled.status_code == 200
    assert pull_stream.parse_pull_line(pulled.text.splitlines()[-1], escaped=False).type == "success"  # type: ignore[union-attr]
