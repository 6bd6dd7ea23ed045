"""The mock's state: its settings, model store, rules, recorded requests, loaded runners and their
settings, clock, stored responses and request log, behind one lock.

:class:`~pytest_dmr.mock.MockModelRunner` makes one :class:`MockState` and hands it to every handler
(``inference``, ``management``, ``frontends``), which read and change the mock through it alone: no
handler imports the transport, so the mock's modules import one another in one direction.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pytest_dmr.protocol import engines_api, error_bodies, model_names, proxying, request_log
from pytest_dmr.protocol.model_info import ModelInfo
from pytest_dmr.protocol.responses_api import ResponseStore
from pytest_dmr.mock import responses
from pytest_dmr.mock.catalog import ModelStore
from pytest_dmr.mock.clock import MockClock
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.rules import RecordedRequest, Rule
from pytest_dmr.mock.streams import Pace

_LOG_BACKLOG = 500
"""Queued request-log changes made at once past this many (the log keeps 10 records per model)."""
LogChange = tuple[str, str, Callable[[], object]]
"""A queued change to the request log: its kind (``record``, ``config``, ``remove``), the model name, the change."""


_ORIGIN = request_log.REQUEST_ORIGIN_HEADER.lower()  # recorded headers have lowercase names


class MockState:
    """Everything a mock runner knows, and DMR's scheduler's bookkeeping over it (see the module)."""

    def __init__(
        self,
        *,
        models: Iterable[str],
        serve_any_model: bool,
        embedding_dimensions: int | None,
        default_max_tokens: int | None,
        context_size: int,
        pace: Pace | None,
        origins: Sequence[str],
    ) -> None:
        self.initial_models = tuple(models)
        self.serve_any_model = serve_any_model
        self.embedding_dimensions = embedding_dimensions
        self.default_max_tokens = default_max_tokens
        self.context_size = context_size
        self.pace = pace
        self.origins = tuple(origins)
        self.lock = threading.RLock()  # a rule's `when` callable may call back into the mock
        self.store = ModelStore(self.initial_models)
        self.rules: list[Rule] = []
        self.requests: list[RecordedRequest] = []
        self.loaded_runners: list[tuple[str, str]] = []
        self.last_used: dict[tuple[str, str], float] = {}  # each loaded runner's last request, on the mock's clock
        self._idle_checked_at: float | None = None  # the clock's time when idle runners were last looked for
        self.runner_configs: dict[tuple[str, str, str], engines_api.RunnerConfig] = {}
        self.clock = MockClock()
        self.response_store = ResponseStore(clock=self.clock.now)
        self.request_log = request_log.RequestLog(self.resolve_id)
        self.sequence = 0  # counts requests that need a fresh ID or time (Responses, request log)
        self.log_changes: list[LogChange] = []

    def reset(self) -> None:
        """Forget rules, recorded requests, loaded runners and their settings, stored responses and the
        request log; restore the initial models; set the clock back."""
        with self.lock:
            self.rules.clear()
            self.requests.clear()
            self.loaded_runners.clear()
            self.last_used.clear()
            self._idle_checked_at = None
            self.runner_configs.clear()
            self.store = ModelStore(self.initial_models)
            self.clock.reset()
            self.response_store = ResponseStore(clock=self.clock.now)
            self.request_log = request_log.RequestLog(self.resolve_id)
            self.sequence = 0
            self.log_changes.clear()

    @property
    def models(self) -> list[ModelInfo]:
        """The models the management API lists, in order."""
        return list(self.store.models)

    def knows_model(self, model: str) -> bool:
        """Whether inference may use ``model``: stored, or any model under ``serve_any_model``."""
        return self.serve_any_model or self.store.find(model) is not None

    def resolve_id(self, name: str) -> str:
        """DMR's ``ResolveID``: the stored model's ID; a model only ``serve_any_model`` knows is
        identified by its canonical name (so ``qwen3`` and ``ai/qwen3`` are one model)."""
        model = self.store.find(name)
        return model.id if model is not None else model_names.canonical_model_name(name)

    def config_key(self, backend: str, name: str, mode: str) -> tuple[str, str, str]:
        return (backend, self.resolve_id(name), mode)

    def next_sequence(self) -> int:
        """A number no earlier request got: seeds IDs that must differ between identical requests."""
        with self.lock:
            self.sequence += 1
            return self.sequence

    # -- the scheduler ------------------------------------------------------------------------------

    def checks(self, backend: str | None, body: Any, size: int, *, invalid_json: bool = False) -> Answer | None:
        """DMR's order (DMR-PROTOCOL.md 3.3): backend name, body, model, lookup, backend install."""
        backend = backend or engines_api.LLAMACPP_BACKEND
        if backend != engines_api.LLAMACPP_BACKEND and backend not in engines_api.OTHER_BACKENDS_STATUS:
            return responses.plain_error(404, error_bodies.BACKEND_NOT_FOUND)
        if size > proxying.MAX_INFERENCE_BODY:
            return responses.plain_error(400, error_bodies.REQUEST_TOO_LARGE)
        model = body.get("model") if isinstance(body, dict) else None
        if invalid_json or not isinstance(body, dict) or (model is not None and not isinstance(model, str)):
            return responses.plain_error(400, error_bodies.INVALID_REQUEST)
        if not model:  # missing, empty or null (Go decodes null into "")
            return responses.plain_error(400, error_bodies.MODEL_REQUIRED)
        if not self.knows_model(model):
            return responses.plain_error(404, error_bodies.model_not_found_message(model))
        if backend != engines_api.LLAMACPP_BACKEND:
            status, message = engines_api.unavailable_backend(backend)
            return responses.plain_error(status, message)
        return None

    def mark_loaded(self, model: str, mode: str) -> None:
        """One runner per model and mode (DMR keys runners by model ID), named as the request that
        loaded it named the model (``/engines/ps``'s ``model_name``), and dated by the mock's clock as
        used now (a mock request is instant: DMR dates the end of a request). None stays for a model
        configured with a keep-alive of ``0``: DMR unloads it as soon as it is idle."""
        with self.lock:
            if self.runner_configs:  # resolving the model's ID costs a store lookup: only when there are settings
                config = self.runner_configs.get(self.config_key(engines_api.LLAMACPP_BACKEND, model, mode))
                if config is not None and config.keep_alive == 0:
                    return
            now = self.clock.now()
            if now != self._idle_checked_at:  # the clock moved: a runner may have been unloaded since
                self.unload_idle_runners()
            if (model, mode) in self.loaded_runners:  # the usual case: the same name again
                self.last_used[model, mode] = now
                return
            loaded = next(((name, mode) for name, loaded in self.loaded_runners if mode == loaded and model_names.same_model(model, name)), None)
            if loaded is None:
                loaded = (model, mode)
                self.loaded_runners.append(loaded)
                config = self.runner_configs.get(self.config_key(engines_api.LLAMACPP_BACKEND, model, mode)) if self.runner_configs else None
                self.to_log("config", model, functools.partial(self.request_log.set_config, model, config.to_json() if config else {}))
            self.last_used[loaded] = now

    def unload_idle_runners(self) -> None:
        """Unload the runners idle past their keep-alive (5 minutes, or as configured) on the mock's
        clock: DMR's loader does it on a timer, the mock whenever it looks at its runners, once per
        tick of its clock."""
        now = self.clock.now()
        if now == self._idle_checked_at or not self.loaded_runners:
            return
        with self.lock:
            self._idle_checked_at = now

            def idle_too_long(name: str, mode: str) -> bool:
                config = self.runner_configs.get(self.config_key(engines_api.LLAMACPP_BACKEND, name, mode)) if self.runner_configs else None
                limit = engines_api.DEFAULT_KEEP_ALIVE_SECONDS if config is None else config.idle_timeout(engines_api.DEFAULT_KEEP_ALIVE_SECONDS)
                used = self.last_used.get((name, mode))
                return limit is not None and used is not None and now - used > limit

            self.unload_runners(idle_too_long)

    def unload_runners(self, unload: Callable[[str, str], bool]) -> int:
        """Stop the runners ``(name, mode)`` for which ``unload`` is true (DMR then forgets their
        models' request records); returns how many stopped."""
        with self.lock:
            kept = [(name, mode) for name, mode in self.loaded_runners if not unload(name, mode)]
            for name, mode in self.loaded_runners:
                if (name, mode) not in kept:
                    self.to_log("remove", name, functools.partial(self.request_log.remove_model, name))
                    self.last_used.pop((name, mode), None)
            count = len(self.loaded_runners) - len(kept)
            self.loaded_runners[:] = kept
            return count

    # -- the request log ----------------------------------------------------------------------------

    def log_exchange(
        self, recorded: RecordedRequest, *, url: str, model: str, body: bytes | str, answer: Answer, origin: str | None = None,
        user_agent: str | None = None,
    ) -> None:  # fmt: skip
        """Keep one request in the request log (``GET /engines/requests``), as DMR's recorder does once
        the runner is loaded: ``url`` the scheduler's path, ``answer`` as the backend sent it. Its ID and
        timestamp come from :attr:`clock`, a nanosecond later per record so that IDs stay unique."""
        chunks = answer.chunks
        response = answer.body if chunks is None else chunks
        with self.lock:
            self.sequence += 1
            now_ns = int(self.clock.now()) * 1_000_000_000 + self.sequence
            self.to_log("record", model, functools.partial(
                self._record, model, recorded, url, body, now_ns, answer.status, response, origin, user_agent,
            ))  # fmt: skip

    def _record(
        self, model: str, recorded: RecordedRequest, url: str, body: bytes | str, now_ns: int, status: int,
        response: bytes | Sequence[bytes], origin: str | None, user_agent: str | None,
    ) -> None:  # fmt: skip
        """Make a record queued by :meth:`log_exchange`: what it reads of the request is read only now."""
        if origin is None:
            origin = request_log.request_origin(url, recorded.headers.get(_ORIGIN))
        self.request_log.record(
            model, url=url, body=body, now_ns=now_ns, status_code=status,
            response=response if isinstance(response, bytes) else b"".join(response),
            user_agent=recorded.headers.get("user-agent", "") if user_agent is None else user_agent, origin=origin,
        )  # fmt: skip

    def to_log(self, kind: str, model: str, change: Callable[[], object]) -> None:
        """Queue a change to the request log: it is made (JSON decoded and encoded again, streams
        reassembled) only when the log is read, so requests no test looks at cost nothing."""
        with self.lock:
            self.log_changes.append((kind, model, change))
            if len(self.log_changes) > _LOG_BACKLOG:
                self.flush_request_log()

    def flush_request_log(self) -> request_log.RequestLog:
        """The request log, every queued change that leaves a trace made (see :func:`lasting_changes`)."""
        with self.lock:
            changes, self.log_changes = self.log_changes, []
            for change in lasting_changes(changes, self.resolve_id):
                change()
            return self.request_log


def lasting_changes(changes: Sequence[LogChange], resolve_id: Callable[[str], str]) -> list[Callable[[], object]]:
    """The changes whose effect outlasts the queue, in order: a record followed by
    :data:`~pytest_dmr.protocol.request_log.MAX_RECORDS_PER_MODEL` newer records of its model, or by
    the model's removal, would be gone from the log by the end, so it is not made (the mock's log has
    no subscribers to tell)."""
    ids: dict[str, str] = {}
    newer: dict[str, int] = {}
    removed: set[str] = set()
    kept = []
    for kind, model, change in reversed(changes):
        model_id = ids.get(model)
        if model_id is None:
            model_id = ids[model] = resolve_id(model)
        if kind == "record":
            if model_id in removed or newer.get(model_id, 0) >= request_log.MAX_RECORDS_PER_MODEL:
                continue
            newer[model_id] = newer.get(model_id, 0) + 1
        elif kind == "remove":
            removed.add(model_id)
        kept.append(change)
    kept.reverse()
    return kept
