"""The run's shared directory, and who provisions and who removes: one runner and one pull per model per run.

* A run has one **run directory** (``pytest-dmr-run-<run id>`` in the temporary directory), seen
  by every process of the run. Its id and path are decided once, by the controller (or the single
  process of a run without xdist), which hands them to every worker through ``workerinput``
  (xdist's documented channel); the directory itself is created by whichever process needs it
  first (a model's pull lock, the provisioned runner's state) and holds ``owner.json`` (the
  controller), ``state.json`` and ``state.lock`` (provisioning), ``pull-*.lock`` (``fixtures.py``).
  The controller removes it at its end; a later run removes it when the controller was killed.
  This module imports neither docker nor testcontainers (filelock only when a lock is taken): it
  serves runs without provisioning too.
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
import stat
import tempfile
import uuid
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
    """The run's shared directory: its id, its path, the process that owns it, and the state file.

    :meth:`new` decides a run's id and path without touching the disk; :meth:`ensure` creates the
    directory on first use, from any process of the run; :meth:`remove` (by the owner) ends it.
    """

    def __init__(self, path: Path, run_id: str, *, owner: Owner | None = None, owned: bool = False) -> None:
        self.path = path
        self.run_id = run_id
        self.owner = owner
        """The process that removes the run's directory and containers (the xdist controller, or the
        single process), recorded in ``owner.json``; ``None`` where ``/proc`` cannot say."""
        self.owned = owned
        """Whether this process is that owner (a worker's view of the directory is not owned)."""

    @classmethod
    def new(cls, tag: str = "") -> RunDirectory:
        """A new run's directory, owned by this process: a fresh id, not created yet."""
        run_id = uuid.uuid4().hex[:12]
        if tag:
            run_id = f"{tag}-{run_id}"
        path = Path(tempfile.gettempdir()) / f"{RUN_DIRECTORY_PREFIX}{run_id}"
        return cls(path, run_id, owner=Owner.current(), owned=True)

    @classmethod
    def create(cls, tag: str = "") -> RunDirectory:
        """A new run's directory, owned by this process, created now."""
        directory = cls.new(tag)
        directory.ensure()
        return directory

    def to_json(self) -> dict[str, Any]:
        """What a worker needs (``workerinput`` carries it): id, path, owner."""
        return {"run_id": self.run_id, "path": str(self.path), "owner": self.owner.to_labels() if self.owner else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunDirectory:
        """The directory :meth:`to_json` describes, as a worker of that run sees it (not owned)."""
        owner = Owner.from_labels(data["owner"]) if data.get("owner") else None
        return cls(Path(data["path"]), str(data["run_id"]), owner=owner)

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    def ensure(self) -> Path:
        """The directory, created by the first process of the run that needs it (any may be first).

        The one that creates it records the owner and removes the directories of runs killed
        before their end. Raises :class:`OSError` if the path is taken by something that is not
        this user's directory.
        """
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            _check_is_own_directory(self.path)
            return self.path
        if self.owner is not None:
            partial = self.path / f"{OWNER_FILE}.partial"
            partial.write_text(json.dumps(self.owner.to_labels()))
            os.replace(partial, self.path / OWNER_FILE)
        remove_dead_run_directories()
        return self.path

    def remove(self) -> None:
        """Remove the directory (and every lock and state file in it), if this process owns it."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)

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
        try:
            self.ensure()
        except OSError as exc:
            raise ProvisioningError(
                f"cannot create the run's directory {self.path}: {exc}",
                hint="Check the temporary directory (TMPDIR) is writable",
            ) from None
        with file_lock(self.path / LOCK_FILE, timeout, "another pytest-dmr worker of this run"):
            state = self.read()
            try:
                yield state
            finally:
                self.write(state)


def _check_is_own_directory(path: Path) -> None:
    """A run directory that exists already must be a real directory of this user (not a link)."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise OSError(f"{path} exists and is not a directory of this user")


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
