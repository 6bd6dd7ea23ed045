"""The emulator's CORS, ``_configure`` and keep-alive against DMR-PROTOCOL.md sections 0, 5 and 7.

The keep-alive tests run real llama.cpp processes and watch them come and go in ``/proc``; the
protocol-only tests use emulators on the mock engine (same server, instant loads). Expected
strings are written out as the document gives them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pytest_dmr import cli
from pytest_dmr.emulator import EmulatorServer
from pytest_dmr.emulator.__main__ import build_parser

from .conftest import DETERMINISTIC, MODEL

pytestmark = pytest.mark.tier_live

CHAT = "/engines/v1/chat/completions"
PROMPT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, **DETERMINISTIC}
DEADLINE = 60.0
"""Seconds to wait for a runner to go (or a load to end) on a busy two-core machine."""


def assert_plain_error(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == text + "\n"


def llama_processes(server: EmulatorServer) -> dict[int, list[str]]:
    """This test process's llama.cpp children serving ``server``'s store: pid -> command line."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            command = [part.decode() for part in (stat.parent / "cmdline").read_bytes().split(b"\0") if part]
        except (OSError, ValueError, IndexError):  # ended while we looked
            continue
        if parent == os.getpid() and "pytest_dmr.emulator.llama_process" in command and str(server.store_dir) in " ".join(command):
            found[int(stat.parent.name)] = command
    return found


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {DEADLINE:g} s for {what}"
        time.sleep(0.05)


def preloaded(api: httpx.Client) -> None:
    """Wait until the runner ``_configure`` preloads is loaded and idle: the preload has let it go."""

    def idle() -> bool:
        entries = api.get("/engines/ps").json()
        return len(entries) == 1 and not (entries[0].get("loading") or entries[0].get("in_use"))

    wait_for(idle, "the preload")


@pytest.fixture
def mock_engine(live_catalog: Path) -> Iterator[EmulatorServer]:
    """An emulator on the mock engine with ``ai/smollm2`` pulled (DMR's API, instant loads)."""
    with EmulatorServer(live_catalog, engine="mock") as server:
        server.pull(MODEL)
        yield server


@pytest.fixture
def api(mock_engine: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_engine.url, timeout=60) as client:
        yield client


# ------------------------------------------------------------------------------------------ CORS


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models"), ("GET", "/models/ai/smollm2"), ("DELETE", "/models/ai/smollm2"), ("GET", "/engines/ps"),
     ("POST", CHAT), ("GET", "/v1/models"), ("OPTIONS", CHAT), ("POST", "/engines/_configure"), ("GET", "/api/tags"),
     ("POST", "/engines/unload")],
)  # fmt: skip
def test_an_origin_not_allowed_gets_403(emulator: EmulatorServer, http: httpx.Client, method: str, path: str) -> None:
    body = b'{"model":"ai/smollm2","messages":[],"all":true}' if method == "POST" else None
    response = http.request(method, path, content=body, headers={"Origin": "http://evil.example"})
    assert_plain_error(response, 403, "Origin not allowed")
    assert "access-control-allow-origin" not in response.headers
    assert emulator.store.find(MODEL) is not None  # the DELETE never reached the store


@pytest.mark.parametrize(
    ("path", "status", "start"),
    [("/", 200, "Docker Model Runner is running"), ("/version", 200, '{"version":"v1.2.6'), ("/metrics", 200, "# No active"),
     ("/nowhere", 404, "404 page not found\n")],
)  # fmt: skip
def test_root_version_and_metrics_are_not_wrapped(http: httpx.Client, path: str, status: int, start: str) -> None:
    response = http.get(path, headers={"Origin": "http://evil.example"})
    assert response.status_code == status and response.text.startswith(start)
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("origin", ["http://localhost", "https://127.0.0.1", "http://0.0.0.0:*"])
def test_an_allowed_origin_is_echoed_once_even_through_llama_cpp(http: httpx.Client, origin: str) -> None:
    listed = http.get("/models", headers={"Origin": origin})
    assert listed.status_code == 200 and listed.headers.get_list("access-control-allow-origin") == [origin]
    missing = http.get("/models/ai/nothing", headers={"Origin": origin})
    assert_plain_error(missing, 404, "model not found")
    assert missing.headers["access-control-allow-origin"] == origin
    answer = http.post(CHAT, json=PROMPT, headers={"Origin": origin})
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert answer.headers.get_list("access-control-allow-origin") == [origin]  # llama.cpp's own one is dropped


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://LOCALHOST", "null"])
def test_matching_is_exact(http: httpx.Client, origin: str) -> None:
    assert_plain_error(http.get("/engines/ps", headers={"Origin": origin}), 403, "Origin not allowed")


def test_a_preflight_gets_204_and_the_three_headers(http: httpx.Client) -> None:
    response = http.options(CHAT, headers={"Origin": "http://127.0.0.1"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    assert response.headers["access-control-allow-headers"] == "*"


def test_requests_without_origin_are_untouched(http: httpx.Client) -> None:
    assert_plain_error(http.options(CHAT), 404, "not found")
    assert_plain_error(http.options("/models"), 404, "not found")
    assert "access-control-allow-origin" not in http.get("/models").headers


def test_dmr_origins_adds_to_the_defaults_and_a_star_there_is_literal(live_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_ORIGINS", "http://app.test, *")
    with EmulatorServer(live_catalog, engine="mock") as server:
        for origin, status in [("http://app.test", 200), ("http://localhost", 200), ("*", 200), ("http://other.test", 403)]:
            assert httpx.get(server.url + "/models", headers={"Origin": origin}).status_code == status, origin


def test_origins_star_alone_allows_every_origin(live_catalog: Path) -> None:
    with EmulatorServer(live_catalog, engine="mock", origins=["*"]) as server:
        response = httpx.get(server.url + "/engines/ps", headers={"Origin": "http://anything.example:8080"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://anything.example:8080"


def test_the_command_line_takes_origins_from_the_option_or_dmr_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_ORIGINS", "http://from-env.test")
    assert build_parser().parse_args(["--catalog", "x"]).origins == "http://from-env.test"
    assert build_parser().parse_args(["--catalog", "x", "--origins", "http://a.test,http://b.test"]).origins == (
        "http://a.test,http://b.test")


# ------------------------------------------------------------------------------------ _configure


def test_configure_answers_202_and_lists_the_setting(mock_engine: EmulatorServer, api: httpx.Client) -> None:
    response = api.post("/engines/_configure", json={"model": "smollm2", "keep_alive": "10m", "context-size": 1024})
    assert (response.status_code, response.content) == (202, b"")
    model = api.get("/models/ai/smollm2").json()
    listed = api.get("/engines/_configure")
    assert listed.headers["content-type"] == "application/json" and listed.text.endswith("]\n")
    assert listed.json() == [{"Backend": "llama.cpp", "Model": model["tags"][0], "ModelID": model["id"], "Mode": "completion",
                              "Config": {"context-size": 1024, "keep_alive": "10m0s"}}]  # fmt: skip
    assert api.get("/engines/_configure", params={"model": "ai/smollm2:latest"}).json() == listed.json()
    assert api.get("/engines/_configure", params={"model": "ai/other"}).json() == []
    preloaded(api)
    (entry,) = api.get("/engines/ps").json()
    assert list(entry) == ["backend_name", "model_name", "mode", "last_used", "keep_alive"]
    assert (entry["model_name"], entry["mode"], entry["keep_alive"]) == ("smollm2", "completion", "10m0s")  # name as given


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [(b"{", 400, "invalid request"), (b"", 400, "invalid request"), (b"[]", 400, "invalid request"),
     (b'{"model":"ai/smollm2","keep_alive":600}', 400, "invalid request"),
     (b'{"model":"ai/smollm2","keep_alive":"ten minutes"}', 400, "invalid request"),
     (b'{"model":"ai/smollm2","keep_alive":"10"}', 400, "invalid request"),
     (b'{"model":"ai/smollm2","mode":"chat"}', 400, "invalid request"),
     (b'{"model":"ai/smollm2","context-size":"4096"}', 400, "invalid request"),
     (b'{"model":"ai/smollm2","raw-runtime-flags":"--alias \'x"}', 500, "invalid runtime flags: invalid command line string")],
)  # fmt: skip
def test_configure_errors(api: httpx.Client, body: bytes, status: int, text: str) -> None:
    assert_plain_error(api.post("/engines/_configure", content=body), status, text)
    assert api.get("/engines/_configure").json() == []


def test_configure_routes(api: httpx.Client) -> None:
    assert_plain_error(api.post("/engines/tensorrt/_configure", json={"model": MODEL}), 404, "backend not found")
    assert api.post("/engines/vllm/_configure", json={"model": MODEL, "keep_alive": "1m"}).status_code == 202
    assert [entry["Backend"] for entry in api.get("/engines/_configure").json()] == ["vllm"]
    assert_plain_error(api.get("/engines/llama.cpp/_configure"), 404, "not found")
    assert_plain_error(api.delete("/engines/_configure"), 404, "not found")
    assert api.post("/engines/_configure", json={"model": "ai/nothing", "keep_alive": "1m"}).status_code == 202
    assert [entry["Model"] for entry in api.get("/engines/_configure").json()] == ["docker.io/ai/smollm2:latest"]


def test_other_settings_for_a_runner_in_use_are_a_409(mock_engine: EmulatorServer, api: httpx.Client) -> None:
    model = mock_engine.store.find(MODEL)
    assert model is not None
    assert api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "5m"}).status_code == 202
    busy = mock_engine.acquire(model, MODEL, "completion")  # a request in flight
    try:
        assert api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "5m"}).status_code == 202  # unchanged
        response = api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "1h"})
        assert_plain_error(response, 409, "runner already active")
        assert api.get("/engines/_configure").json()[0]["Config"] == {"keep_alive": "5m0s"}
    finally:
        mock_engine.scheduler.release(busy)
    assert api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "1h"}).status_code == 202
    assert busy not in mock_engine.scheduler.runners()  # unused now: unloaded for the new settings


def test_unload_and_stored_settings(mock_engine: EmulatorServer, api: httpx.Client) -> None:
    api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "-1"})
    preloaded(api)
    assert api.post("/engines/unload", json={"models": ["smollm2"], "backend": ""}).json() == {"unloaded_runners": 1}
    assert len(api.get("/engines/_configure").json()) == 1  # an empty backend keeps the settings
    assert api.post("/engines/unload", json={"models": ["smollm2"], "backend": "vllm"}).json() == {"unloaded_runners": 0}
    assert len(api.get("/engines/_configure").json()) == 1
    assert api.post("/engines/unload", json={"models": ["smollm2"], "backend": "llama.cpp"}).json() == {"unloaded_runners": 0}
    assert api.get("/engines/_configure").json() == []
    api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "-1"})
    preloaded(api)
    response = api.post("/engines/unload", json={"all": True})
    assert response.text == '{"unloaded_runners":1}\n'
    assert api.get("/engines/_configure").json() == [] and api.get("/engines/ps").json() == []
    assert_plain_error(api.post("/engines/unload", content=b'{"all":"yes"}'), 400, "invalid request")


def test_models_running_on_the_command_line(mock_engine: EmulatorServer, api: httpx.Client, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("DMR_DISCOVERY", "url,compose,host,desktop")
    assert cli.main(["--url", mock_engine.url, "models", "--running"]) == 0
    assert capsys.readouterr().out == f"no models loaded on {mock_engine.url}\n"
    api.post("/engines/_configure", json={"model": MODEL, "keep_alive": "90s"})
    preloaded(api)
    api.post("/engines/v1/embeddings", json={"model": "smollm2", "input": "x"})
    assert cli.main(["--url", mock_engine.url, "models", "--running"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "MODE", "STATE", "KEEP", "ALIVE", "LAST", "USED"]
    assert re.fullmatch(r"smollm2  completion  idle   1m30s       \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[1]), lines[1]
    assert re.fullmatch(r"smollm2  embedding   idle   default     \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[2]), lines[2]


# ---------------------------------------------------------------------------- keep-alive, llama.cpp


def test_keep_alive_zero_stops_llama_cpp_as_soon_as_the_request_is_done(fresh_emulator: EmulatorServer) -> None:
    """The default idle timeout is 5 minutes here: only the keep-alive can make the process go."""
    fresh_emulator.pull(MODEL)
    with httpx.Client(base_url=fresh_emulator.url, timeout=120) as http:
        assert http.post("/engines/_configure", json={"model": MODEL, "keep_alive": "0"}).status_code == 202
        seen: dict[int, list[str]] = {}
        with http.stream("POST", CHAT, json={**PROMPT, "stream": True}) as stream:
            assert stream.status_code == 200
            for _ in stream.iter_lines():
                seen.update(llama_processes(fresh_emulator))  # in use while it streams: it cannot go yet
        assert seen, "no llama.cpp process served the request"
        wait_for(lambda: http.get("/engines/ps").json() == [], "the runner to leave /engines/ps")
        # Gone from /proc once the emulator has reaped it (an exited, unreaped one is a zombie there).
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in seen), "the llama.cpp process to exit")
        assert not llama_processes(fresh_emulator)


def test_keep_alive_forever_outlives_the_idle_timeout(live_catalog: Path) -> None:
    with EmulatorServer(live_catalog, engine="llama", threads=1, ctx_size=2048, idle_timeout=0.5) as server:
        server.pull(MODEL)
        with httpx.Client(base_url=server.url, timeout=120) as http:
            configured = http.post("/engines/_configure", json={"model": MODEL, "keep_alive": "-1", "context-size": 1024})
            assert configured.status_code == 202
            assert http.post(CHAT, json=PROMPT).status_code == 200
            assert http.post("/engines/v1/embeddings", json={"model": MODEL, "input": "x"}).status_code == 200
            # The embedding runner has no keep-alive: once the idle timeout has taken it, the
            # completion runner has been idle past that timeout too.
            wait_for(lambda: [entry["mode"] for entry in http.get("/engines/ps").json()] == ["completion"],
                     "the embedding runner to be unloaded")  # fmt: skip
            (entry,) = http.get("/engines/ps").json()
            assert entry["keep_alive"] == "-1" and entry["model_name"] == MODEL
            wait_for(lambda: len(llama_processes(server)) == 1, "the embedding process to exit")
            (command,) = llama_processes(server).values()
            assert "--embedding" not in command
            assert command[command.index("--ctx-size") + 1] == "1024"  # the configured context size


def test_stop_right_after_configure_leaves_no_llama_cpp_process(live_catalog: Path) -> None:
    """``_configure``'s background preload may still be starting llama.cpp: ``stop()`` waits for it and stops it."""
    server = EmulatorServer(live_catalog, engine="llama", threads=1, ctx_size=1024).start()
    try:
        server.pull(MODEL)
        assert httpx.post(server.url + "/engines/_configure", json={"model": MODEL, "keep_alive": "1m"}).status_code == 202
        wait_for(lambda: bool(llama_processes(server)), "the preload to start llama.cpp")
        loading = [entry.get("loading", False) for entry in httpx.get(server.url + "/engines/ps").json()]
    finally:
        server.stop()
    assert llama_processes(server) == {}, f"llama.cpp outlived stop() (its runner was loading: {loading})"
