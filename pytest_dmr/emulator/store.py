"""The emulator's local model store: pulled models, their tags, and the pull itself.

Layout of the store directory (it survives restarts, so an image can ship pre-pulled models)::

    STORE/models.json                 the index: id, tags, created, config, blob of each model
    STORE/blobs/sha256/<hex>          the GGUF bytes, named by their content digest
    STORE/locks/                      file locks of emulators sharing the store

Tags are kept fully qualified (``docker.io/ai/smollm2:latest``), as DMR stores them since v1.0.11.

Several emulators may share one store (runner containers on one models volume): every change to the
index is a read-modify-write under a file lock (``models.json.lock``), lookups reload an index another
process changed, and each blob is copied once, under its own file lock, through a partial file whose
name is the writer's own, so concurrent pulls of one model neither clash nor copy it twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_dmr.protocol import error_bodies, model_info, model_names, pull_stream
from pytest_dmr.emulator.catalog import Catalog, ModelDescription

COPY_CHUNK = 1024 * 1024
PROGRESS_INTERVAL = 0.1
PROGRESS_BYTES = 1024 * 1024
MAX_CONCURRENT_PULLS = 2


class PullRefused(Exception):
    """A pull that fails before streaming starts: answered with ``status`` and a plain-text body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DeleteRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class StoredModel:
    id: str
    tags: list[str]
    created: int
    config: dict[str, Any]
    blob: str
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> model_info.ModelInfo:
        return model_info.ModelInfo(id=self.id, tags=tuple(self.tags), created=self.created, config=self.config)


class ModelStore:
    """Pulled models. Thread-safe; the index is rewritten after every change."""

    def __init__(self, root: str | os.PathLike[str], catalog: Catalog) -> None:
        self.root = Path(root)
        self.catalog = catalog
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._index_path = self.root / "models.json"
        self._locks = self.root / "locks"
        self._locks.mkdir(exist_ok=True)
        self._index_lock = FileLock(str(self._locks / "models.json.lock"))
        self._lock = threading.RLock()
        self._pull_slots = threading.BoundedSemaphore(MAX_CONCURRENT_PULLS)
        self._model_locks: dict[str, threading.Lock] = {}
        self._index_stamp: tuple[int, int] | None = None
        self._models: list[StoredModel] = []
        self._refresh()

    # ---------------------------------------------------------------- index

    def _refresh(self) -> None:
        """Reload the index when another process (or a restart) changed it since we last read it."""
        try:
            stat = self._index_path.stat()
        except FileNotFoundError:
            self._index_stamp, self._models = None, []
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._index_stamp:
            entries = json.loads(self._index_path.read_text())
            self._models = [StoredModel(**entry) for entry in entries]
            self._index_stamp = stamp

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """A change to the index: under both locks, on the newest index, written back at the end."""
        with self._lock, self._index_lock:
            self._refresh()
            yield
            temporary = self._index_path.with_name(f"models.json.{os.getpid()}-{threading.get_ident()}.tmp")
            temporary.write_text(json.dumps([vars(model) for model in self._models], indent=1))
            temporary.replace(self._index_path)
            stat = self._index_path.stat()
            self._index_stamp = (stat.st_mtime_ns, stat.st_size)

    # ---------------------------------------------------------------- lookups

    def models(self) -> list[model_info.ModelInfo]:
        with self._lock:
            self._refresh()
            return [model.info() for model in self._models]

    def find(self, reference: str) -> StoredModel | None:
        """Normal lookup (§4): normalisation, then the ID, a short ID, or a tag in canonical form."""
        normalized = model_names.normalize_model_name(reference)
        if not normalized:
            return None
        with self._lock:
            self._refresh()
            for model in self._models:
                if model.info().matches(normalized) or _digest_matches(normalized, model.id):
                    return model
        return None

    def find_partial(self, reference: str) -> StoredModel | None:
        """Partial-name matching (§2.2): a tag's bare name (no registry, org or tag) equals ``reference``."""
        with self._lock:
            self._refresh()
            for model in self._models:
                for tag in model.tags:
                    bare = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
                    if bare.rsplit("/", 1)[-1] == reference:
                        return model
        return None

    def blob_path(self, model: StoredModel) -> Path:
        return self.blobs / model.blob

    def disk_usage(self) -> int:
        total = 0
        for path in self.blobs.iterdir():
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # a pull's partial file, just renamed or removed
                continue
        return total

    # ---------------------------------------------------------------- delete

    def delete(self, reference: str, *, force: bool) -> list[dict[str, str]]:
        """DMR's delete (§2.3): untag a tag reference; an ID reference deletes the model."""
        with self._changing():
            model = self.find(reference)
            if model is None:
                raise DeleteRefused(404, error_bodies.DELETE_MODEL_NOT_FOUND)
            normalized = model_names.normalize_model_name(reference)
            by_id = "@" in normalized or model_names.looks_like_model_id(normalized)
            actions: list[dict[str, str]] = []
            if by_id:
                if len(model.tags) > 1 and not force:
                    raise DeleteRefused(409, error_bodies.delete_conflict_message(reference))
                actions.extend(model_info.untagged_action(tag) for tag in model.tags)
                model.tags = []
            else:
                wanted = model_names.canonical_model_name(normalized)
                tag = next(tag for tag in model.tags if model_names.canonical_model_name(tag) == wanted)
                model.tags.remove(tag)
                actions.append(model_info.untagged_action(tag))
                if model.tags:
                    return actions
            self._models.remove(model)
            if not any(other.blob == model.blob for other in self._models):
                self.blob_path(model).unlink(missing_ok=True)
            actions.append(model_info.deleted_action(model.id))
            return actions

    def purge(self) -> None:
        with self._changing():
            for model in self._models:
                self.blob_path(model).unlink(missing_ok=True)
            self._models = []

    # ---------------------------------------------------------------- pull

    def check_pull(self, reference: str) -> tuple[str, ModelDescription]:
        """Validate a pull before any byte is sent; raises :class:`PullRefused` (400 or 404)."""
        normalized = model_names.normalize_model_name(reference)
        if not model_names.is_valid_reference(normalized):
            raise PullRefused(400, error_bodies.INVALID_MODEL_REFERENCE)
        entry = self.catalog.resolve(normalized)
        if entry is None:
            raise PullRefused(404, error_bodies.PULL_MODEL_NOT_FOUND)
        return entry.reference, self.catalog.describe(entry)

    def pull(self, tag: str, description: ModelDescription) -> Generator[pull_stream.PullProgress, None, None]:
        """Copy the model into the store, yielding DMR's progress lines, then its success line."""
        with self._pull_slots, self._model_lock(description.id):
            with self._lock:
                self._refresh()
                cached = any(model.id == description.id and tag in model.tags for model in self._models)
                present = any(model.id == description.id for model in self._models)
            if cached:
                yield pull_stream.PullProgress(
                    type="success", message=pull_stream.cached_model_message(description.config["size"])
                )
                return
            if not present:
                yield from self._copy(description)
            self._attach(tag, description)
            yield pull_stream.PullProgress(type="success", message=pull_stream.PULL_SUCCESS_MESSAGE)

    def _model_lock(self, model_id: str) -> threading.Lock:
        with self._lock:
            return self._model_locks.setdefault(model_id, threading.Lock())

    def _copy(self, description: ModelDescription) -> Iterator[pull_stream.PullProgress]:
        """Chunked copy with per-layer progress, throttled as DMR does (100 ms, 1 MiB, or done).

        One writer per blob across processes (a file lock); a blob another writer finished meanwhile
        is not copied again (one final 100% line for it)."""
        blob = self.blobs / description.layer_digest.split(":", 1)[1]
        with FileLock(str(self._locks / (blob.name + ".lock"))):
            yield from self._copy_locked(description, blob)

    def _copy_locked(self, description: ModelDescription, blob: Path) -> Iterator[pull_stream.PullProgress]:
        partial = blob.with_name(f"{blob.name}.{os.getpid()}-{threading.get_ident()}.incomplete")
        size = description.size
        copied = reported = 0
        last_line = time.monotonic()

        def line(current: int) -> pull_stream.PullProgress:
            return pull_stream.PullProgress(
                type="progress",
                message=pull_stream.downloaded_message(current),
                total=size,
                layer_id=description.layer_digest,
                layer_size=size,
                layer_current=current,
            )

        if blob.is_file() and blob.stat().st_size == size:
            yield line(size)
            return
        try:
            with open(description.path, "rb") as source, open(partial, "wb") as target:
                while chunk := source.read(COPY_CHUNK):
                    target.write(chunk)
                    copied += len(chunk)
                    now = time.monotonic()
                    if copied == size or copied - reported >= PROGRESS_BYTES or now - last_line >= PROGRESS_INTERVAL:
                        yield line(copied)
                        reported, last_line = copied, now
            if copied != size:
                raise OSError(f"the catalogue file changed while it was copied ({copied} of {size} bytes)")
            if size == 0:
                yield line(0)
            partial.replace(blob)
        finally:
            partial.unlink(missing_ok=True)

    def _attach(self, tag: str, description: ModelDescription) -> None:
        with self._changing():
            for model in self._models:
                if tag in model.tags and model.id != description.id:
                    model.tags.remove(tag)
            found = next((model for model in self._models if model.id == description.id), None)
            if found is None:
                found = StoredModel(
                    id=description.id,
                    tags=[],
                    created=description.created,
                    config=description.config,
                    blob=description.layer_digest.split(":", 1)[1],
                )
                self._models.append(found)
            if tag not in found.tags:
                found.tags.append(tag)


def _digest_matches(normalized: str, model_id: str) -> bool:
    """``name@sha256:...`` and a bare 64-hex ID name the model whose ID is that digest."""
    if "@" in normalized:
        return normalized.rsplit("@", 1)[1] == model_id
    return len(normalized) == 64 and "sha256:" + normalized == model_id
