"""The emulator's scheduler and the requests that wait for a load (no real part needed).

A runner just loaded belongs to the requests that waited for it, as in DMR (its loader hands the
runner to the loading request with the lock held): an unload or new settings must not take it from
them in between (they would load it again). And ``_configure`` starts a background preload, so
``stop()`` right after it used to return while llama.cpp was still starting: the process outlived
the emulator, and a request waiting for that load started a new one on the closed scheduler.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pytest_dmr.protocol import encoding, engines_api
from pytest_dmr.emulator.engines import LoadError, Runner, RunnerAlreadyActive, Scheduler

from .fake_engine import FakeHandle, acquire


class HeldEngine:
    """An engine whose loads last until the test lets them finish."""

    name = engines_api.LLAMACPP_BACKEND

    def __init__(self) -> None:
        self.loading = threading.Event()
        self.finish = threading.Event()
        self.handles: list[FakeHandle] = []

    def status(self) -> str:
        return "Running: held"

    def start(self, *, model_path: Path, alias: str, mode: str) -> FakeHandle:
        self.loading.set()
        assert self.finish.wait(10), "the test never let the load finish"
        handle = FakeHandle()
        self.handles.append(handle)
        return handle


def test_close_waits_for_a_load_in_progress_and_stops_its_runner() -> None:
    engine = HeldEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    outcome: list[object] = []

    def waiting_request() -> None:
        try:
            outcome.append(acquire(scheduler, "a"))
        except LoadError as exc:
            outcome.append(exc)

    request = threading.Thread(target=waiting_request)
    request.start()
    assert engine.loading.wait(10)
    closing = threading.Thread(target=scheduler.close)
    closing.start()
    closing.join(0.5)
    assert closing.is_alive(), "close() returned while a runner was still starting"
    engine.finish.set()
    closing.join(10)
    request.join(10)
    assert not closing.is_alive() and not request.is_alive()
    assert len(engine.handles) == 1 and engine.handles[0].closed  # stopped before close() returned
    (error,) = outcome
    assert isinstance(error, LoadError) and str(error) == "backend loading disabled"  # DMR's loader's words


def test_nothing_loads_once_closed() -> None:
    engine = HeldEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    scheduler.close()
    with pytest.raises(LoadError, match="^backend loading disabled$"):
        acquire(scheduler, "a")
    assert not engine.loading.is_set()


def test_a_loaded_runner_that_requests_wait_for_is_in_use() -> None:
    """The state between the end of a load and the waiting request's wake-up, set up directly (it
    lasts microseconds in a real run, which is what made the live unload test flaky)."""
    engine = HeldEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    try:
        handle = FakeHandle()
        runner = Runner(model_id="a", model_name="a", mode=engines_api.COMPLETION_MODE, loading=False, handle=handle, waiting=1)
        scheduler._runners[("a", engines_api.COMPLETION_MODE)] = runner
        (entry,) = scheduler.ps()
        assert (entry.get("in_use"), entry["last_used"]) == (True, encoding.GO_ZERO_TIME)
        assert scheduler.unload({"a"}) == 0 and scheduler.unload(None) == 0
        with pytest.raises(RunnerAlreadyActive):
            scheduler.configure((engines_api.LLAMACPP_BACKEND, "a", engines_api.COMPLETION_MODE), engines_api.RunnerConfig(keep_alive=0))
        assert scheduler.runners() == [runner] and not handle.closed
        runner.waiting = 0  # handed over and released
        assert scheduler.unload({"a"}) == 1 and handle.closed
    finally:
        scheduler.close()
