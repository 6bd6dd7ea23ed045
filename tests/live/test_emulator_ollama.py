"""Ollama's ``/api/*`` on the emulator over real llama.cpp, through the official ``ollama`` SDK where
DMR's answers allow it, and direct HTTP for DMR's exact statuses, content types and streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import ollama
import pydantic
import pytest

from pytest_dmr.emulator import EmulatorServer

from .conftest import MODEL, SEED

pytestmark = pytest.mark.tier_live

OPTIONS = {"temperature": 0, "seed": SEED, "num_predict": 8}
HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def sdk(emulator: EmulatorServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=emulator.url, timeout=300) as client:
        yield client


def test_version(emulator: EmulatorServer) -> None:
    response = httpx.get(emulator.url + "/api/version")
    assert (response.status_code, response.text) == (200, '{"version":"0.1.0"}\n')


def test_chat_plain_and_streamed_agree(sdk: ollama.Client) -> None:
    plain = sdk.chat(model=MODEL, messages=HI, options=OPTIONS, stream=False)
    assert plain.done and plain.message.role == "assistant" and plain.message.content
    parts = list(sdk.chat(model=MODEL, messages=HI, options=OPTIONS, stream=True))
    assert parts[-1].done and not any(part.done for part in parts[:-1])
    assert "".join(part.message.content or "" for part in parts) == plain.message.content


def test_generate_plain_and_streamed_agree(sdk: ollama.Client) -> None:
    plain = sdk.generate(model=MODEL, prompt="Say hello.", options=OPTIONS, stream=False)
    assert plain.done and plain.response
    parts = list(sdk.generate(model=MODEL, prompt="Say hello.", options=OPTIONS, stream=True))
    assert "".join(part.response or "" for part in parts) == plain.response


def test_chat_stream_is_ndjson_as_dmr_writes_it(emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "messages": HI, "options": OPTIONS}
    with httpx.stream("POST", emulator.url + "/api/chat", json=body, timeout=300) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1] == {"model": MODEL, "created_at": lines[-1]["created_at"], "message": {"role": "", "content": ""}, "done": True}
    assert all(list(line) == ["model", "created_at", "message", "done"] for line in lines)


def test_errors(emulator: EmulatorServer) -> None:
    bad = httpx.post(emulator.url + "/api/chat", content=b"")
    assert (bad.status_code, bad.text) == (400, "Invalid request: EOF\n")
    absent = httpx.post(emulator.url + "/api/chat", json={"model": "ai/absent", "messages": HI, "stream": False})
    assert absent.status_code == 404
    assert absent.text == "error while getting model: get model '\"ai/absent\"': model not found\n"
    assert absent.headers["content-type"] == "text/plain; charset=utf-8"
    streamed = httpx.post(emulator.url + "/api/chat", json={"model": "ai/absent", "messages": HI})
    assert (streamed.status_code, streamed.text) == (404, "")  # DMR's streaming writer drops the error body
    with ollama.Client(host=emulator.url) as client, pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="ai/absent", messages=HI, stream=False)
    assert raised.value.status_code == 404
    assert (httpx.get(emulator.url + "/api/chat").status_code, httpx.get(emulator.url + "/api/nothing").text) == (405, "404 page not found\n")


def test_tags_lists_every_tag(sdk: ollama.Client, emulator: EmulatorServer) -> None:
    listed = sdk.list()
    names = sorted(model.model for model in listed.models)  # type: ignore[type-var]
    stored = httpx.get(emulator.url + "/models").json()
    assert names == sorted(tag for model in stored for tag in model["tags"])
    assert {model.digest for model in listed.models} == {model["id"] for model in stored}
    assert all(model.size == 0 and model.details.format == "gguf" for model in listed.models)  # type: ignore[union-attr]


def test_show_has_only_details_which_the_sdk_rejects(sdk: ollama.Client, emulator: EmulatorServer) -> None:
    response = httpx.post(emulator.url + "/api/show", json={"model": MODEL})
    assert response.status_code == 200 and list(response.json()) == ["details"]
    assert response.json()["details"]["family"] == "llama"
    with pytest.raises(pydantic.ValidationError, match="model_info"):  # DMR's answer lacks ollama's required model_info
        sdk.show(MODEL)
    missing = httpx.post(emulator.url + "/api/show", json={"model": "ai/absent"})
    assert (missing.status_code, missing.text) == (404, "Model not found: error while getting model: get model '\"ai/absent\"': model not found\n")


def test_ps_after_a_chat_counts_down(sdk: ollama.Client) -> None:
    sdk.chat(model=MODEL, messages=HI, options=OPTIONS, stream=False)
    running = sdk.ps()
    assert [model.digest for model in running.models]
    assert all(model.expires_at is not None and model.expires_at.year > 2000 for model in running.models)


def test_generate_preload_unload_pull_and_delete(fresh_emulator: EmulatorServer) -> None:
    url = fresh_emulator.url
    with ollama.Client(host=url, timeout=300) as client:
        pull_preload_unload_delete(url, client)


def pull_preload_unload_delete(url: str, client: ollama.Client) -> None:
    progress = list(client.pull(MODEL, stream=True))
    assert progress[-1].status == "success"
    assert any(step.status and step.status.startswith("pulling ") and step.completed for step in progress)
    assert client.pull(MODEL).status == "success"  # cached
    missing = httpx.post(url + "/api/pull", json={"model": "ai/absent"})
    assert missing.status_code == 500
    assert missing.json() == {"error": 'Failed to pull model: error while pulling model: failed to pull model "ai/absent:latest": MANIFEST_UNKNOWN - Model not found'}
    preload = httpx.post(url + "/api/generate", json={"model": MODEL, "keep_alive": "10m"})
    assert (preload.status_code, preload.content, preload.headers["content-type"]) == (200, b"{}", "application/json")
    assert httpx.get(url + "/engines/_configure").json()[0]["Config"] == {"keep_alive": "10m0s"}  # stored, not loaded
    client.generate(model=MODEL, prompt="hi", options=OPTIONS)
    assert [entry["mode"] for entry in httpx.get(url + "/engines/ps").json()] == ["completion"]
    unload = httpx.post(url + "/api/generate", json={"model": MODEL, "keep_alive": 0})
    assert (unload.status_code, unload.content) == (200, b"{}")
    assert httpx.get(url + "/engines/ps").json() == []
    client.delete(MODEL)
    assert client.list().models == []
    with pytest.raises(ollama.ResponseError) as raised:
        client.delete(MODEL)
    assert raised.value.status_code == 500 and "Failed to delete model: " in raised.value.error


def test_num_ctx_configures_the_runner(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(MODEL)
    with ollama.Client(host=fresh_emulator.url, timeout=300) as client:
        client.chat(model=MODEL, messages=HI, options={**OPTIONS, "num_ctx": 1024}, stream=False)
    configs = httpx.get(fresh_emulator.url + "/engines/_configure").json()
    assert [entry["Config"] for entry in configs] == [{"context-size": 1024}]
    log = httpx.get(fresh_emulator.url + "/engines/requests").json()
    assert log[0]["config"] == {"context-size": 1024}
    assert log[0]["records"][0]["origin"] == "ollama/completion"
    assert log[0]["records"][0]["url"] == "/engines/v1/chat/completions"
