"""One test's cassette under a record mode: what to do, which transports to use, what to write.

``--dmr-record`` modes (DESIGN.md "Record and replay"), as :func:`plan` decides them:

=========  ====================  ======================================================
mode       cassette file exists  no cassette file
=========  ====================  ======================================================
``none``   ``replay``            ``off`` (the test runs as without cassettes)
``once``   ``replay``            ``record``
``new``    ``append``            ``record``
``all``    ``rerecord``          ``rerecord``
``verify`` ``verify``            ``off``
=========  ====================  ======================================================

- ``replay``: answers from the file; what it lacks goes to the fallback (the mock) or fails;
- ``record``/``rerecord``: every request goes to the live runner and is recorded; the file is
  (re)written when the test passed;
- ``append``: recorded answers replayed, the requests the file lacks sent live and added;
- ``verify``: every request goes live; at the end each answer is compared with the recorded one,
  and :meth:`SessionResult.raise_for_drift` shows both answers of each that drifted. Nothing is
  written.

Writing actions hold the cassette's :class:`~pytest_dmr.cassettes.storage.RecordingLock` from
:meth:`CassetteSession.start` to :meth:`CassetteSession.finish`, and decide again once they have
it (another process may have written the file meanwhile). Under ``all``, tests sharing one
cassette in one run would each replace it; given a ``run_id`` (and a ``lock_dir`` shared by the
run's processes), the first of the run replaces it and the later ones add to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_dmr.cassettes import storage
from pytest_dmr.cassettes.format import Cassette, RecordedResponse, render
from pytest_dmr.cassettes.matching import Index, normalize
from pytest_dmr.cassettes.recording import RecordingTransport
from pytest_dmr.cassettes.replay import ReplayTransport
from pytest_dmr.errors import CassetteDriftError, CassetteError, CassetteMismatchError, ConfigurationError
from pytest_dmr.protocol import sse

MODES = ("none", "once", "new", "all", "verify")
REPLAY, RECORD, APPEND, RERECORD, VERIFY, OFF = "replay", "record", "append", "rerecord", "verify", "off"
WRITING = frozenset({RECORD, APPEND, RERECORD})
LIVE = frozenset({RECORD, APPEND, RERECORD, VERIFY})
"""Actions that need the live runner."""

_PLAN = {
    ("none", True): REPLAY, ("none", False): OFF,
    ("once", True): REPLAY, ("once", False): RECORD,
    ("new", True): APPEND, ("new", False): RECORD,
    ("all", True): RERECORD, ("all", False): RERECORD,
    ("verify", True): VERIFY, ("verify", False): OFF,
}


def plan(mode: str, exists: bool) -> str:
    """What a test does with its cassette under ``mode``, as the table in this module's docstring says."""
    if mode not in MODES:
        raise ConfigurationError(f"--dmr-record={mode!r} is not a record mode; use one of {', '.join(MODES)}")
    return _PLAN[(mode, exists)]


# -- drift ---------------------------------------------------------------------------------------

VOLATILE_ANSWER_KEYS = frozenset({
    "created", "created_at", "timings", "system_fingerprint",
    "total_duration", "load_duration", "prompt_eval_duration", "eval_duration",
    "cached_tokens", "cache_read_input_tokens",
})
"""Answer fields that differ between two runs of one request by design (times, build fingerprints,
how much of the prompt the runner's KV cache held from earlier requests); ``verify`` leaves them out,
with the ``id`` of generated objects (those with an ``object`` or ``type`` other than ``model``:
completions, chunks, responses, messages, tool calls). Anthropic's ``input_tokens`` leaves the cached
tokens out, so it is compared with them added back."""


def _stable(value: Any) -> Any:
    if isinstance(value, list):
        return [_stable(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("object", value.get("type"))
    generated = isinstance(kind, str) and kind != "model"
    cached = value.get("cache_read_input_tokens")
    if isinstance(cached, int) and isinstance(value.get("input_tokens"), int):
        value = {**value, "input_tokens": value["input_tokens"] + cached}
    return {
        key: _stable(item) for key, item in value.items()
        if key not in VOLATILE_ANSWER_KEYS and not (key == "id" and generated)
    }


def _value(text: str) -> Any:
    try:
        return _stable(json.loads(text))
    except ValueError:
        return text


def answer_view(response: RecordedResponse) -> dict[str, Any]:
    """What ``verify`` compares: the status and the body's values (each event or line of a
    stream), volatile fields left out. Chunk boundaries and timing are not compared."""
    text = response.content.decode("utf-8", "replace")
    content_type = next((value for name, value in response.headers if name == "content-type"), "")
    body: Any
    if content_type.startswith("text/event-stream"):
        body = [_value(data) for data in sse.iter_sse_data(text.split("\n"))]
    elif response.chunks is not None:
        body = [_value(line) for line in text.splitlines() if line.strip()]
    else:
        body = _value(text) if text else ""
    return {"status": response.status, "body": body}


def _shown(view: dict[str, Any] | None, limit: int = 40) -> str:
    if view is None:
        return "    (nothing recorded for this request)"
    lines = render(view).splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join("    " + line for line in lines)


@dataclass
class Drift:
    """One live answer that differs from the recorded one (``recorded`` is ``None`` when the
    cassette has no exchange for the request)."""

    request: str
    recorded: dict[str, Any] | None
    live: dict[str, Any]

    def describe(self) -> str:
        return f"{self.request}\n  recorded:\n{_shown(self.recorded)}\n  live:\n{_shown(self.live)}"


def find_drift(recorded: Cassette, live: Cassette, ignore: Iterable[str] = ()) -> list[Drift]:
    """Each live exchange compared with the recorded exchange its request matches."""
    index = Index(recorded.exchanges, ignore)
    drifts = []
    for exchange in live.exchanges:
        match = index.answer(normalize(exchange.request, index.ignore))
        then = answer_view(match.response) if match is not None else None
        now = answer_view(exchange.response)
        if then != now:
            drifts.append(Drift(exchange.request.describe(), then, now))
    return drifts


# -- the session ---------------------------------------------------------------------------------


@dataclass
class SessionResult:
    """What a session did: ``written`` when the file was (re)written; replay counts; drift."""

    action: str
    path: Path
    written: bool = False
    replayed: int = 0
    passed_on: int = 0
    mismatches: list[CassetteMismatchError] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)

    @property
    def replayed_any(self) -> bool:
        """Whether any answer came from the cassette (the test's backend is then ``replay``)."""
        return self.replayed > 0

    def raise_for_drift(self) -> None:
        """``verify``: :class:`CassetteDriftError` showing both answers of every drifted exchange."""
        if self.drift:
            shown = "\n\n".join(drift.describe() for drift in self.drift)
            count = len(self.drift)
            raise CassetteDriftError(
                f"{count} answer{'s' if count != 1 else ''} from the live runner differ from cassette {self.path}:\n\n{shown}\n",
                path=str(self.path),
                hint="If the new answers are right, record the cassette again with --dmr-record=all",
            )


class CassetteSession:
    """One test's cassette: ``start()``, then ``transport(...)`` for each client, then ``finish()``
    (or use it as a context manager: ``finish(passed=...)`` from whether the block raised).

    ``pace``: replay streams with their recorded gaps. ``ignore``: dotted body fields left out of
    matching. ``run_id``/``lock_dir``: see the module docstring; ``lock_timeout``: seconds to wait
    for another process recording the same cassette.
    """

    def __init__(self, path: str | Path, mode: str = "none", *, pace: bool = False, ignore: Iterable[str] = (),
                 run_id: str | None = None, lock_dir: str | Path | None = None,
                 lock_timeout: float = storage.DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.mode = mode
        self.action = plan(mode, self.path.exists())
        self.pace = pace
        self.ignore = tuple(ignore)
        self.run_id = run_id
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.lock_timeout = lock_timeout
        self.cassette = Cassette(path=self.path)
        self.recorded = Cassette(path=self.path)
        self._lock: storage.RecordingLock | None = None
        self._index = Index(())
        self._replays: list[ReplayTransport] = []
        self._recorded_before = 0
        self._started = False

    @property
    def needs_live(self) -> bool:
        """Whether this session's requests go to the live runner (record, append, rerecord, verify)."""
        return self.action in LIVE

    def _run_marker(self) -> Path:
        return storage.lock_path(self.path, self.lock_dir).with_suffix(".run")

    def start(self) -> str:
        """Take the lock if this session writes, decide again, load the cassette; returns the action."""
        if self._started:
            return self.action
        self._started = True
        if self.action in WRITING:
            self._lock = storage.RecordingLock(self.path, lock_dir=self.lock_dir, timeout=self.lock_timeout)
            self._lock.acquire()
            self.action = plan(self.mode, self.path.exists())
            if self.action == RERECORD and self.run_id is not None:
                marker = self._run_marker()
                if marker.exists() and marker.read_text(encoding="utf-8") == self.run_id:
                    self.action = APPEND
                else:
                    marker.write_text(self.run_id, encoding="utf-8")
        if self.path.exists() and self.action != RERECORD:
            self.cassette = Cassette.load(self.path)
        if self.action == APPEND:
            self.recorded = self.cassette
        self._index = Index(self.cassette.exchanges, self.ignore)
        self._recorded_before = len(self.recorded.exchanges)
        return self.action

    def transport(self, live: Any = None, fallback: Any = None) -> Any:
        """The transport a client gets in this session: ``live`` is a real transport of the client's
        stack (sync or async) on the live runner, ``fallback`` what answers requests a replayed
        cassette lacks (the mock; ``None``: they fail). ``None`` when the session is ``off``."""
        self.start()
        if self.action == OFF:
            return None
        if self.action in LIVE and live is None:
            raise CassetteError(
                f"cassette {self.path} is to be recorded or verified ({self.mode!r} mode), which needs a live runner",
                path=str(self.path),
                hint="Start a runner (or the emulator), or run with --dmr-record=none to replay",
            )
        if self.action in (RECORD, RERECORD, VERIFY):  # verify records into memory, compared at finish
            return RecordingTransport(live, self.recorded)
        if self.action == APPEND:
            fallback = RecordingTransport(live, self.recorded)
        replay = ReplayTransport(self.cassette, fallback, pace=self.pace, index=self._index)
        self._replays.append(replay)
        return replay

    def finish(self, *, passed: bool = True) -> SessionResult:
        """Write what was recorded (when the test ``passed`` and something new was recorded), release
        the lock, and say what happened."""
        self.start()
        result = SessionResult(self.action, self.path)
        for replay in self._replays:
            result.replayed += replay.replayed
            result.passed_on += replay.passed_on
            result.mismatches.extend(replay.mismatches)
        try:
            if self.action == VERIFY:
                result.drift = find_drift(self.cassette, self.recorded, self.ignore)
            elif self.action in WRITING and passed and len(self.recorded.exchanges) > self._recorded_before:
                storage.save(self.recorded)
                result.written = True
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        return result

    def __enter__(self) -> CassetteSession:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.finish(passed=error is None)
