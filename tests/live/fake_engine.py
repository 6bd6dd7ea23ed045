"""Fake engines for the emulator's scheduler tests: no llama.cpp, loads as long as a test wants."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from pytest_dmr.protocol import engines_api
from pytest_dmr.emulator.engines import Runner, Scheduler

CRASH = "llama.cpp terminated unexpectedly: signal: killed"


class FakeHandle:
    def __init__(self) -> None:
        self.client = httpx.Client()
        self.closed = False
        self.dead = False
        """Set by a test: the runner's process has exited."""

    def exit_error(self, wait: float = 0.0) -> str | None:
        return CRASH if self.dead else None

    def close(self) -> None:
        self.closed = True
        self.client.close()


class FakeEngine:
    name = engines_api.LLAMACPP_BACKEND

    def __init__(self, load_seconds: float = 0.0) -> None:
        self.load_seconds = load_seconds
        self.started: list[str] = []
        self.handles: list[FakeHandle] = []
        self.running_at_start: list[int] = []

    def status(self) -> str:
        return "Running: fake"

    def start(self, *, model_path: Path, alias: str, mode: str) -> FakeHandle:
        self.running_at_start.append(sum(not handle.closed for handle in self.handles))
        time.sleep(self.load_seconds)
        self.started.append(alias)
        handle = FakeHandle()
        self.handles.append(handle)
        return handle


def acquire(scheduler: Scheduler, model: str) -> Runner:
    return scheduler.acquire(
        model_id=model, model_name=model, mode=engines_api.COMPLETION_MODE, model_path=lambda: Path(model), alias=model
    )
