"""Writing cassettes safely: whole or not at all, one writer at a time.

- A cassette is written to a temporary file beside it (``.NAME.PID.N.tmp``), flushed to disk, then
  moved over the old one with ``os.replace`` (atomic on POSIX and Windows): a reader sees the old
  file or the new one, never half of one. An exception (``KeyboardInterrupt`` included) removes the
  temporary file; a killed process may leave one behind, never a half cassette
  (:func:`pytest_dmr.cassettes.listing.list_cassettes` reports such leftovers).
- Recording takes a lock per cassette (a ``filelock`` in the temporary directory, named by the
  hash of the cassette's absolute path, so no lock file lands beside the tests). A second process
  that wants to record the same cassette (two xdist workers running tests that share one) *waits*
  for the first, then reads what it wrote: in ``once`` mode it replays it, in ``new`` mode it adds
  only what is still missing. After ``timeout`` seconds it gives up with a
  :class:`~pytest_dmr.errors.CassetteError` naming the cassette and the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
from pathlib import Path
from types import TracebackType

from pytest_dmr.errors import CassetteError
from pytest_dmr.cassettes.format import Cassette

DEFAULT_LOCK_TIMEOUT = 600.0
"""Seconds a recorder waits for another process recording the same cassette."""

_counter = itertools.count()


def save(cassette: Cassette, path: str | Path | None = None) -> Path:
    """Write ``cassette`` (to ``path``, else its own) atomically; returns the path written."""
    target = Path(path) if path is not None else cassette.path
    if target is None:
        raise CassetteError("this cassette has no path to be saved to", hint="Pass save(cassette, path)")
    write_atomically(target, cassette.dumps())
    return target


def write_atomically(path: Path, text: str) -> None:
    """``text`` to ``path``: whole, or (on any failure) not at all; the directory is made if needed.
    A file system that refuses (read-only, full, a file where a directory should be) is a
    :class:`CassetteError` naming the cassette."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise CassetteError(
                f"cannot write cassette {path}: {exc}", path=str(path),
                hint="Make its directory writable (or run without --dmr-record)",
            ) from exc
        raise


def is_leftover(path: Path) -> bool:
    """A temporary file of a write that never finished (its process was killed)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def lock_path(path: Path, lock_dir: Path | None = None) -> Path:
    """Where the lock for recording ``path`` lives."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    directory = lock_dir if lock_dir is not None else Path(tempfile.gettempdir()) / "pytest-dmr-cassette-locks"
    return directory / f"{digest}.lock"


class RecordingLock:
    """The lock one recorder holds on a cassette (a context manager)."""

    def __init__(self, path: Path, *, lock_dir: Path | None = None, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        import filelock

        self.path = path
        self.timeout = timeout
        self.file = lock_path(path, lock_dir)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(str(self.file))

    def acquire(self) -> None:
        import filelock

        try:
            self._lock.acquire(timeout=self.timeout)
        except filelock.Timeout:
            raise CassetteError(
                f"cassette {self.path} is being recorded by another process, which has held its lock "
                f"({self.file}) for more than {self.timeout:g} s",
                path=str(self.path),
                hint="Wait for that run to end; a lock left by a killed process is released by the system, "
                "so if this persists, check that no other pytest run is recording",
            ) from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> RecordingLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
