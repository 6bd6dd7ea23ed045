"""A llama.cpp runner that crashes: DMR's answers, and the reload (DMR-PROTOCOL.md §3.3 item 9, §5).

The child process of a loaded model is killed with SIGKILL, as the kernel's OOM killer would. A
request already on it gets DMR's crash answer (or a cut stream); the runner is evicted straight
away, and the next request loads the model again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from pytest_dmr.protocol import engines_api
from pytest_dmr.emulator import EmulatorServer

from .conftest import DETERMINISTIC, MODEL

pytestmark = pytest.mark.tier_live

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 8, **DETERMINISTIC}
KILLED = "llama.cpp terminated unexpectedly: signal: killed"
LONG = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": True, **DETERMINISTIC}
"""A completion that takes seconds: long enough to kill its runner while it is generating."""


def loaded_process(emulator: EmulatorServer, http: httpx.Client) -> subprocess.Popen[str]:
    """Preload the model and return its llama.cpp child process, from the scheduler's runner table."""
    response = http.post("/engines/v1/completions", json={"model": MODEL}, headers={"X-Preload-Only": "true"})
    assert response.status_code == 200, response.text
    (runner,) = emulator.scheduler.runners()
    process: subprocess.Popen[str] = runner.handle.process  # type: ignore[union-attr]
    assert process.poll() is None
    return process


def assert_reloaded(emulator: EmulatorServer, http: httpx.Client, killed: subprocess.Popen[str]) -> None:
    """The next request succeeds on a new llama.cpp process, and ps shows that one runner."""
    response = http.post("/engines/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    (entry,) = http.get("/engines/ps").json()
    assert (entry["model_name"], entry["mode"]) == (MODEL, engines_api.COMPLETION_MODE)
    (runner,) = emulator.scheduler.runners()
    assert runner.handle.process.pid != killed.pid  # type: ignore[union-attr]


def test_a_runner_killed_between_requests_is_reloaded_by_the_next(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(MODEL)
    with httpx.Client(base_url=fresh_emulator.url, timeout=120) as http:
        process = loaded_process(fresh_emulator, http)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert_reloaded(fresh_emulator, http, process)


def test_a_request_whose_runner_dies_gets_dmr_crash_answer(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(MODEL)
    with httpx.Client(base_url=fresh_emulator.url, timeout=120) as http:
        process = loaded_process(fresh_emulator, http)
        answers: list[httpx.Response] = []
        request = threading.Thread(target=lambda: answers.append(http.post("/engines/v1/completions", json=LONG)))
        request.start()
        time.sleep(1.0)  # llama.cpp is generating: it answers only when all 1500 tokens are made
        assert request.is_alive(), "the long completion ended before its runner could be killed"
        os.kill(process.pid, signal.SIGKILL)
        request.join(30)
        (answer,) = answers
        assert answer.status_code == 500
        assert answer.json() == {"type": "error", "code": None, "message": KILLED, "param": None, "sequence_number": 1}
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"  # Go sniffs it: DMR sets JSON too late
        assert_reloaded(fresh_emulator, http, process)


def test_a_stream_whose_runner_dies_is_cut_then_the_model_reloads(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(MODEL)
    with httpx.Client(base_url=fresh_emulator.url, timeout=120) as http:
        process = loaded_process(fresh_emulator, http)
        with http.stream("POST", "/engines/v1/completions", json={**LONG, "stream": True}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            os.kill(process.pid, signal.SIGKILL)
            with pytest.raises(httpx.RemoteProtocolError):  # the chunked body ends without its last chunk
                for _ in lines:
                    pass
        assert_reloaded(fresh_emulator, http, process)
