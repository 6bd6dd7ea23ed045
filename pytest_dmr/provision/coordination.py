"""Who provisions, and who removes: one runner and one pull per model per run, whatever ``-n``.

* A run owns a **run directory** (created by the controller, or by the single process of a run
  without xdist) holding ``state.json``, ``state.lock`` and ``owner.json``. The controller hands
  its path and the run's id to every xdist worker through ``workerinput`` (xdist's documented
  channel). The owner removes it at its end; a later run removes it when the owner was killed.
* The first worker that needs a runner takes the lock, starts the container, writes the state
  (URL, container id) and pulls the models; the others wait on the lock, then read the state. A
  failure is written down too, so every worker reports the same reason without retrying.
* Every container a run starts carries the label ``io.pytest-dmr.run=<run id>``. The controller
  removes them all at ``pytest_unconfigure``, which pytest reaches after a passing run, a failing
  run and Ctrl-C alike, and after the workers are gone. Removal by label also catches a container
  whose worker died before writing the state.
* ``--dmr-reuse`` runners carry ``io.pytest-dmr.reuse=<key>`` instead and are never removed; a
  per-user lock (in the temp directory) lets two runs started together find the same one.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_dmr.errors import ProvisioningError
from pytest_dmr.provision.owner import Owner

RUN_DIRECTORY_PREFIX = "pytest-dmr-run-"
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
OWNER_FILE = "owner.json"
LOCK_TIMEOUT = 1800.0
"""Waiting for another worker or run to start a runner and pull its models: generous, since a
first pull of DMR's image and a model can take minutes."""


@dataclass
class RunnerRecord:
    """The runner a run uses, as every worker needs to know it."""

    url: str
    container_id: str
    image: str
    kind: str = "runner"
    """``runner`` (an image started here) or ``desktop-proxy`` (Docker Desktop's own runner)."""
    reused: bool = False
    """Found already running (``--dmr-reuse``) rather than started by this run."""
    keep: bool = False
    """Kept after the run (``--dmr-reuse``)."""
    startup_seconds: float = 0.0
    started_by: str = ""


@dataclass
class RunState:
    """``state.json`` in the run directory."""

    run_id: str
    runner: RunnerRecord | None = None
    failure: str | None = None
    pulled: dict[str, str] = field(default_factory=dict)
    """Model -> what happened (``pulled 98.04 MiB in 1.2 s``, ``already on the runner``)."""
    pull_failures: dict[str, str] = field(default_factory=dict)
    attempted: bool = False
    """Someone tried to start a container: the controller must look for it at the end."""
    released: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        runner = data.get("runner")
        return cls(
            run_id=str(data["run_id"]),
            runner=RunnerRecord(**runner) if runner else None,
            failure=data.get("failure"),
            pulled=dict(data.get("pulled") or {}),
            pull_failures=dict(data.get("pull_failures") or {}),
            attempted=bool(data.get("attempted")),
            released=bool(data.get("released")),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RunDirectory:
    """The run's shared directory: the state file, and the lock that guards it."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    @classmethod
    def create(cls, run_id: str) -> RunDirectory:
        """A new run directory owned by this process (after removing those of runs killed before their end)."""
        remove_dead_run_directories()
        path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIRECTORY_PREFIX}{run_id}-"))
        owner = Owner.current()
        if owner is not None:
            (path / OWNER_FILE).write_text(json.dumps(owner.to_labels()))
        return cls(path, run_id)

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def read(self) -> RunState:
        try:
            return RunState.from_json(json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return RunState(run_id=self.run_id)

    def write(self, state: RunState) -> None:
        partial = self.state_path.with_suffix(".partial")
        partial.write_text(json.dumps(state.to_json(), indent=2))
        os.replace(partial, self.state_path)

    @contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT) -> Iterator[RunState]:
        """Hold the run's lock; yields the state, written back on the way out (even on errors)."""
        with file_lock(self.path / LOCK_FILE, timeout, "another pytest-dmr worker of this run"):
            state = self.read()
            try:
                yield state
            finally:
                self.write(state)


def remove_dead_run_directories() -> list[Path]:
    """Remove the run directories whose owner has certainly ended (a killed run never removes its own).

    Judged as containers are (``owner.py``): a directory without an owner file, or whose owner
    this process cannot see, is left alone.
    """
    observer = Owner.current()
    if observer is None:
        return []
    removed = []
    for path in Path(tempfile.gettempdir()).glob(RUN_DIRECTORY_PREFIX + "*"):
        try:
            recorded = json.loads((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        owner = Owner.from_labels(recorded) if isinstance(recorded, dict) else None
        if owner is not None and owner.is_gone(observer):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def file_lock(path: Path, timeout: float, holder: str) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise ProvisioningError(
            f"waited {timeout:g} s for {holder} to finish provisioning (lock {path})",
            hint="If no other pytest run is active, delete the lock file and retry",
        ) from None
    try:
        yield
    finally:
        lock.release()


def user_directory() -> Path:
    """A per-user directory for the ``--dmr-reuse`` locks (shared by concurrent runs)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    path = Path(tempfile.gettempdir()) / f"pytest-dmr-{user}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def reuse_key(image: str, docker_host: str) -> str:
    """One reusable runner per image and engine."""
    return hashlib.sha256(f"{image}\n{docker_host}".encode()).hexdigest()[:12]


@contextmanager
def reuse_lock(key: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    with file_lock(user_directory() / f"reuse-{key}.lock", timeout, "another pytest run (--dmr-reuse)"):
        yield
