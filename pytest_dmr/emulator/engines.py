"""Inference engines behind the emulator, and the scheduler that loads and unloads their runners.

* :class:`LlamaEngine`: real llama.cpp. One ``xllamacpp`` server per (model, mode), each in its own
  process on its own 127.0.0.1 port (see :mod:`pytest_dmr.emulator.llama_process`).
* :class:`MockEngine`: :class:`~pytest_dmr.mock.MockModelRunner`, deterministic and instant, for
  machines without llama.cpp.

Both hand out an ``httpx2.Client`` per runner, so the server proxies to either the same way.
:class:`Scheduler` follows DMR's loader (DMR-PROTOCOL.md §3.3 step 7 and §5): one runner per
(model ID, mode), concurrent requests wait for a single load, at most ``slots`` runners (all unused
ones are evicted at once when full), idle runners unloaded after ``idle_timeout`` (or the model's
``_configure`` keep-alive: ``0`` as soon as idle, negative never), and runners whose process has
exited (crashed) evicted straight away: the next request for that model loads it again.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import httpx2

from pytest_dmr.protocol import addresses, durations, encoding, engines_api, proxying, rerank_api
from pytest_dmr.emulator.llama_process import READY_PREFIX

DEFAULT_IDLE_TIMEOUT = engines_api.DEFAULT_KEEP_ALIVE_SECONDS
DEFAULT_LOAD_TIMEOUT = 300.0
STOP_GRACE = 5.0
LOADS_DISABLED = "backend loading disabled"
"""DMR's loader error once it is shutting down: the emulator's after :meth:`Scheduler.close`."""


def xllamacpp_version() -> str | None:
    """xllamacpp's version, or ``None`` when it is not installed (read without importing it)."""
    if importlib.util.find_spec("xllamacpp") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xllamacpp")
    except PackageNotFoundError:
        return "unknown"


class LoadError(Exception):
    """A runner could not be started; the server answers ``500 unable to load runner: <cause>``."""


class StillLoading(Exception):
    """The runner is loading and the emulator was told to answer 503 instead of waiting."""


class RunnerAlreadyActive(Exception):
    """``_configure`` changed the settings of a runner that is handling a request: DMR's ``409``."""

    def __init__(self) -> None:
        super().__init__(engines_api.RUNNER_ALREADY_ACTIVE)


class RunnerHandle(Protocol):
    client: httpx2.Client

    def exit_error(self, wait: float = 0.0) -> str | None:
        """Why the runner's process ended (DMR's backend error), or ``None`` while it runs.

        ``wait`` gives a process whose connection just dropped that many seconds to finish exiting.
        """
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    """Starts runners. ``start`` gets ``context_size`` only when the model was configured with one."""

    name: str

    def status(self) -> str: ...

    def start(self, *, model_path: Path, alias: str, mode: str) -> RunnerHandle: ...


# ------------------------------------------------------------------------------------ llama.cpp


class LlamaProcess:
    """A running ``llama_process``: its client, the process to stop, and its log (removed with it)."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: IO[bytes], log_path: Path) -> None:
        self.process = process
        self.url = url
        self._log = log
        self._log_path = log_path
        # No Nagle delay between the request's header and body writes (httpcore sends them apart).
        transport = httpx2.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.client = httpx2.Client(base_url=url, timeout=httpx2.Timeout(None, connect=5.0), transport=transport)

    def exit_error(self, wait: float = 0.0) -> str | None:
        try:
            returncode = self.process.wait(wait) if wait > 0 else self.process.poll()
        except subprocess.TimeoutExpired:
            return None
        if returncode is None:
            return None
        return proxying.backend_terminated_message(engines_api.LLAMACPP_BACKEND, returncode)

    def close(self) -> None:
        self.client.close()
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        self._log_path.unlink(missing_ok=True)  # one per load: kept, they would fill the store


class LlamaEngine:
    """Real llama.cpp through xllamacpp, one process per runner."""

    name = engines_api.LLAMACPP_BACKEND

    def __init__(
        self,
        *,
        threads: int = 1,
        ctx_size: int = 2048,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        version = xllamacpp_version()
        if version is None:
            raise RuntimeError("the llama engine needs xllamacpp: pip install 'pytest-dmr[llama]' (or use --engine mock)")
        self.version = version
        self.threads = threads
        self.ctx_size = ctx_size
        self.load_timeout = load_timeout
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.gettempdir())

    def status(self) -> str:
        return engines_api.llamacpp_status(self.version)

    def start(self, *, model_path: Path, alias: str, mode: str, context_size: int | None = None) -> LlamaProcess:
        command = [
            sys.executable, "-m", "pytest_dmr.emulator.llama_process",
            "--model", str(model_path), "--alias", alias,
            "--threads", str(self.threads), "--ctx-size", str(context_size or self.ctx_size),
        ]  # fmt: skip
        if mode == engines_api.EMBEDDING_MODE:
            command.append("--embedding")
        elif mode == rerank_api.RERANKING_MODE:
            command.append("--reranking")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"llama-{model_path.name[:12]}-{mode}-{time.time_ns()}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
        )
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.load_timeout)
        line = ready[0] if ready else ""
        if not line.startswith(READY_PREFIX):
            # The reader ends at end of file only when the backend closed its stdout, i.e. quit; it is
            # still waiting when the load outlasted the timeout. (poll() can lag behind the exit.)
            timed_out = reader.is_alive()
            try:
                process.wait(0 if timed_out else STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(STOP_GRACE)  # at end of file now that the process is gone
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
            log.close()
            cause = "inference backend took too long to initialize" if timed_out else "inference backend quit unexpectedly"
            detail = _last_line(log_path)
            log_path.unlink(missing_ok=True)
            raise LoadError(f"error waiting for runner to be ready: {cause}" + (f" ({detail})" if detail else ""))
        return LlamaProcess(process, line[len(READY_PREFIX) :].strip(), log, log_path)


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-200:] if lines else ""


# ------------------------------------------------------------------------------------ mock


@dataclass
class MockHandle:
    client: httpx2.Client

    def exit_error(self, wait: float = 0.0) -> str | None:
        return None  # in-process: it cannot crash on its own

    def close(self) -> None:
        self.client.close()


class MockEngine:
    """:class:`~pytest_dmr.mock.MockModelRunner` answers; it serves any model the store lets through."""

    name = engines_api.LLAMACPP_BACKEND

    def __init__(self, *, reason: str) -> None:
        from pytest_dmr.mock import MockModelRunner

        self.reason = reason
        self.runner = MockModelRunner(models=(), serve_any_model=True)

    def status(self) -> str:
        return f"Running: pytest-dmr mock engine ({self.reason})"

    def start(self, *, model_path: Path, alias: str, mode: str, context_size: int | None = None) -> MockHandle:
        return MockHandle(httpx2.Client(transport=self.runner, base_url=addresses.MOCK_BASE_URL, timeout=None))


def make_engine(
    kind: str, *, threads: int = 1, ctx_size: int = 2048, load_timeout: float = DEFAULT_LOAD_TIMEOUT,
    log_dir: str | os.PathLike[str] | None = None,
) -> Engine:  # fmt: skip
    """``auto`` (llama.cpp when xllamacpp is installed, else the mock), ``llama`` or ``mock``."""
    if kind not in ("auto", "llama", "mock"):
        raise ValueError(f"unknown engine {kind!r}: use auto, llama or mock")
    if kind == "mock":
        return MockEngine(reason="--engine mock")
    if kind == "auto" and xllamacpp_version() is None:
        return MockEngine(reason="xllamacpp not installed")
    return LlamaEngine(threads=threads, ctx_size=ctx_size, load_timeout=load_timeout, log_dir=log_dir)


# ------------------------------------------------------------------------------------ scheduler


@dataclass(eq=False)
class Runner:
    """One loaded (or loading) model in one mode."""

    model_id: str
    model_name: str
    mode: str
    loading: bool = True
    error: str | None = None
    handle: RunnerHandle | None = None
    in_use: int = 0
    waiting: int = 0
    """Requests waiting for its load. Once it is loaded they hold it as if in use (DMR hands a runner
    to the request that loaded it at once): nothing unloads it before they get it (a keep-alive of 0
    or an unload would otherwise take it from the request that asked for it, which would load it again)."""
    last_used: float = field(default_factory=time.time)
    close_on_release: bool = False
    """Evicted while requests held it (its process died): the last of them closes it."""

    @property
    def client(self) -> httpx2.Client:
        assert self.handle is not None
        return self.handle.client

    @property
    def claimed(self) -> bool:
        """Requests hold it, or wait for it to be handed to them: it is in use, it cannot be unloaded."""
        return self.in_use > 0 or self.waiting > 0

    def exited(self) -> bool:
        """Its process has exited (crashed, or killed from outside): it can serve nothing more."""
        return self.handle is not None and self.handle.exit_error() is not None

    def ps(self, config: engines_api.RunnerConfig | None = None) -> dict[str, Any]:
        """Its ``/engines/ps`` entry; ``keep_alive`` from its model's settings (not while loading, as DMR)."""
        busy = self.loading or self.claimed
        keep_alive = config.keep_alive if config is not None and not self.loading else None
        return engines_api.ps_entry(
            backend=engines_api.LLAMACPP_BACKEND,
            model_name=self.model_name,
            mode=self.mode,
            last_used=encoding.GO_ZERO_TIME if busy else encoding.go_time(self.last_used),
            in_use=self.claimed and not self.loading,
            loading=self.loading,
            keep_alive=None if keep_alive is None else durations.format_keep_alive(keep_alive),
        )


ConfigKey = tuple[str, str, str]
"""(backend, model ID, mode): what ``_configure`` settings are stored under, as in DMR's loader."""


class Scheduler:
    """Starts runners on first use, shares them, and unloads them when idle or asked to.

    It also keeps each model's ``_configure`` settings: their keep-alive decides when an idle runner
    is unloaded, their context size is given to the engine when the runner starts.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        slots: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        on_started: Callable[[Runner, engines_api.RunnerConfig | None], None] | None = None,
        on_stopped: Callable[[Runner], None] | None = None,
    ) -> None:
        self.on_started = on_started
        """Called when a runner has loaded, with the settings it was started with (DMR's recorder keeps them)."""
        self.on_stopped = on_stopped
        """Called when a loaded runner is stopped (unloaded, evicted, crashed, closed)."""
        self.engine = engine
        self.slots = slots or max(1, min(os.cpu_count() or 1, 8))
        self.idle_timeout = idle_timeout
        self.load_timeout = load_timeout
        self._runners: dict[tuple[str, str], Runner] = {}
        self._configs: dict[ConfigKey, engines_api.RunnerConfig] = {}
        self._loads: set[threading.Thread] = set()
        """Loads in progress: :meth:`close` waits for them, so no llama.cpp process outlives it."""
        self._changed = threading.Condition()
        self._closed = False
        self._reaper = threading.Thread(target=self._reap_idle, name="dmr-emulator-idle", daemon=True)
        self._reaper.start()

    def acquire(
        self, *, model_id: str, model_name: str, mode: str, model_path: Callable[[], Path], alias: str, wait: bool = True
    ) -> Runner:
        """The ready runner for (model, mode), loading it if needed; release it when done.

        Raises :class:`StillLoading` when ``wait`` is false and the runner is not ready yet, and
        :class:`LoadError` when it cannot be loaded (or the scheduler is closed).
        """
        to_close: list[Runner] = []
        key = (model_id, mode)
        deadline = time.monotonic() + self.load_timeout
        try:
            with self._changed:
                while True:
                    if self._closed:  # stopping: start nothing new (DMR's loader refuses loads then too)
                        raise LoadError(LOADS_DISABLED)
                    runner = self._runners.get(key)
                    if runner is None and len(self._runners) >= self.slots:
                        # Full: evict every unused runner at once (DMR does), or wait for one to free up.
                        # Looked up again after every wait: another request may have started this load.
                        unused = [
                            other for other in self._runners.values()
                            if not other.loading and not other.claimed
                        ]  # fmt: skip
                        for other in unused:
                            del self._runners[(other.model_id, other.mode)]
                        to_close.extend(unused)
                        if not unused:
                            self._changed.wait(1.0)
                        continue
                    if runner is None:
                        runner = Runner(model_id=model_id, model_name=model_name, mode=mode)
                        self._runners[key] = runner
                        evicted, to_close = to_close, []  # stopped before the load starts, not after it
                        load = threading.Thread(
                            target=self._load, args=(runner, model_path, alias, evicted), name="dmr-emulator-load", daemon=True
                        )
                        self._loads.add(load)
                        load.start()
                    if runner.loading and not wait:
                        raise StillLoading(model_name)
                    runner.waiting += 1
                    try:
                        while runner.loading and time.monotonic() < deadline:
                            self._changed.wait(0.5)
                    finally:
                        runner.waiting -= 1  # the lock is held from here to the hand-out below
                    if runner.error is not None:
                        raise LoadError(runner.error)
                    if runner.loading:
                        raise LoadError("error waiting for runner to be ready: inference backend took too long to initialize")
                    if self._runners.get(key) is runner:
                        if runner.exited():  # crashed since its last request: evict it, load it again
                            to_close.extend(self._evict_exited(runner))
                            continue
                        runner.in_use += 1
                        return runner
                    # Evicted (idle, or unloaded) between its load and this request: load it again.
        finally:
            self._close_runners(to_close)

    def release(self, runner: Runner) -> None:
        with self._changed:
            runner.in_use -= 1
            runner.last_used = time.time()
            close_now = runner.close_on_release and runner.in_use == 0
            self._changed.notify_all()
        if close_now:
            self._close_runners([runner])

    def crashed(self, runner: Runner, *, wait: float = 0.0) -> str | None:
        """The backend error when the runner's process has exited (given ``wait`` seconds to), else ``None``.

        A runner found dead is evicted: the next request for its model loads it again.
        """
        error = runner.handle.exit_error(wait) if runner.handle is not None else None
        if error is None:
            return None
        with self._changed:
            to_close = self._evict_exited(runner)
            self._changed.notify_all()
        self._close_runners(to_close)
        return error

    def _evict_exited(self, runner: Runner) -> list[Runner]:
        """With the lock held: drop a dead runner from the table; returns it if nobody holds it (close it)."""
        if self._runners.get((runner.model_id, runner.mode)) is runner:
            del self._runners[(runner.model_id, runner.mode)]
        if runner.in_use > 0:
            runner.close_on_release = True
            return []
        return [runner]

    def _load(self, runner: Runner, model_path: Callable[[], Path], alias: str, evicted: list[Runner]) -> None:
        try:
            self._start_runner(runner, model_path, alias, evicted)
        finally:
            with self._changed:
                self._loads.discard(threading.current_thread())

    def _start_runner(self, runner: Runner, model_path: Callable[[], Path], alias: str, evicted: list[Runner]) -> None:
        self._close_runners(evicted)
        with self._changed:
            config = self._config_for(runner)
            if config is None and runner.mode == rerank_api.RERANKING_MODE:  # DMR falls back to the completion settings
                config = self._configs.get((engines_api.LLAMACPP_BACKEND, runner.model_id, engines_api.COMPLETION_MODE))
        # Only when configured: an engine written before context sizes existed still works.
        options = {"context_size": config.context_size} if config is not None and config.context_size else {}
        try:
            handle = self.engine.start(model_path=model_path(), alias=alias, mode=runner.mode, **options)
        except Exception as exc:  # noqa: BLE001 - every failure becomes DMR's 500 answer
            cause = str(exc) if isinstance(exc, LoadError) else f"unable to start runner: {exc}"
            with self._changed:
                runner.error, runner.loading = cause, False
                if self._runners.get((runner.model_id, runner.mode)) is runner:
                    del self._runners[(runner.model_id, runner.mode)]
                self._changed.notify_all()
            return
        with self._changed:
            runner.handle, runner.loading = handle, False
            runner.last_used = time.time()
            closed = self._closed
            self._changed.notify_all()
        if closed:
            handle.close()
        elif self.on_started is not None:
            self.on_started(runner, config)

    def ps(self) -> list[dict[str, Any]]:
        with self._changed:
            return [runner.ps(self._config_for(runner)) for runner in self._runners.values()]

    def settings(self, runner: Runner) -> engines_api.RunnerConfig | None:
        """The ``_configure`` settings stored for this runner's model and mode, if any."""
        with self._changed:
            return self._config_for(runner)

    def _config_for(self, runner: Runner) -> engines_api.RunnerConfig | None:
        """With the lock held: the settings ``_configure`` stored for this runner's model and mode."""
        return self._configs.get((engines_api.LLAMACPP_BACKEND, runner.model_id, runner.mode))

    def _idle_timeout_for(self, runner: Runner) -> float | None:
        """With the lock held: seconds it may stay idle; ``None``: never unloaded when idle."""
        config = self._config_for(runner)
        return self.idle_timeout if config is None else config.idle_timeout(self.idle_timeout)

    def configure(self, key: ConfigKey, config: engines_api.RunnerConfig) -> None:
        """Store a model's settings, as DMR's ``_configure`` does: unchanged settings are a no-op; a
        loaded runner with other settings is unloaded when unused, and :class:`RunnerAlreadyActive`
        when it is handling a request. A runner still loading keeps loading (DMR does not see it)."""
        backend, model_id, mode = key
        with self._changed:
            if self._configs.get(key) == config:
                return
            runner = self._runners.get((model_id, mode)) if backend == engines_api.LLAMACPP_BACKEND else None
            to_close: list[Runner] = []
            if runner is not None and not runner.loading:
                if runner.claimed:
                    raise RunnerAlreadyActive()
                del self._runners[(model_id, mode)]
                to_close.append(runner)
            self._configs[key] = config
            self._changed.notify_all()
        self._close_runners(to_close)

    def configurations(self) -> list[tuple[ConfigKey, engines_api.RunnerConfig]]:
        """The stored settings, oldest first."""
        with self._changed:
            return list(self._configs.items())

    def runners(self) -> list[Runner]:
        """The runners loaded or loading now (a copy of the table, for inspection)."""
        with self._changed:
            return list(self._runners.values())

    def unload(self, model_ids: set[str] | None = None, *, backend: str = "") -> int:
        """Evict unused runners (of these models, or all); runners serving a request stay.

        As DMR's ``/engines/unload``: unloading all also forgets every stored ``_configure`` setting;
        unloading models forgets theirs only when ``backend`` names their backend exactly, and evicts
        runners only when ``backend`` is empty or names theirs (the emulator's are all llama.cpp).
        """
        with self._changed:
            if model_ids is None:
                self._configs.clear()
            else:
                for key in [key for key in self._configs if key[0] == backend and key[1] in model_ids]:
                    del self._configs[key]
            chosen = [
                runner
                for runner in self._runners.values()
                if not runner.loading
                and not runner.claimed
                and (model_ids is None or (runner.model_id in model_ids and backend in ("", engines_api.LLAMACPP_BACKEND)))
            ]
            for runner in chosen:
                del self._runners[(runner.model_id, runner.mode)]
            self._changed.notify_all()
        self._close_runners(chosen)
        return len(chosen)

    def close(self) -> None:
        """Unload every runner, and wait for loads in progress (each stops its runner once loaded)."""
        with self._changed:
            self._closed = True
            runners = [runner for runner in self._runners.values() if runner.handle is not None]
            self._runners.clear()
            loads = list(self._loads)
            self._changed.notify_all()
        self._close_runners(runners)
        for load in loads:
            load.join()

    def _close_runners(self, runners: list[Runner]) -> None:
        for runner in runners:
            if runner.handle is not None:
                runner.handle.close()
                if self.on_stopped is not None:
                    self.on_stopped(runner)

    def _next_idle_check(self) -> float:
        """With the lock held: seconds until the earliest idle deadline (plus 0.1 s, as DMR's timer),
        at most 1 s (crashed runners are looked for that often)."""
        now = time.time()
        wait = 1.0
        for runner in self._runners.values():
            timeout = self._idle_timeout_for(runner)
            if not runner.loading and not runner.claimed and timeout is not None:
                wait = min(wait, runner.last_used + timeout - now + 0.1)
        return max(0.01, wait)

    def _reap_idle(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                self._changed.wait(self._next_idle_check())  # a release or a new setting wakes it early
                now = time.time()
                idle = []
                for runner in self._runners.values():
                    timeout = self._idle_timeout_for(runner)
                    unused = not runner.loading and not runner.claimed
                    if unused and timeout is not None and now - runner.last_used > timeout:
                        idle.append(runner)
                for runner in idle:
                    del self._runners[(runner.model_id, runner.mode)]
                # Crashed runners go at once, busy or not (DMR-PROTOCOL.md §5).
                for runner in [runner for runner in self._runners.values() if runner.exited()]:
                    idle.extend(self._evict_exited(runner))
            self._close_runners(idle)
