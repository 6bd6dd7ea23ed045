"""The emulator's "registry": a local directory of GGUF files that pulls copy from.

Naming scheme (one directory per model name, one file per tag)::

    CATALOG/
      smollm2/
        135M-Q4_1.gguf        -> ai/smollm2:135M-Q4_1
        latest.gguf           -> ai/smollm2:latest   (may be a symlink to another tag's file)
      qwen3/
        0.6B-Q4_0.gguf        -> ai/qwen3:0.6B-Q4_0  (and ai/qwen3:latest, being the only tag)

* Every model is in the ``ai/`` namespace, as DMR's Hub models are. Directory names are the
  model names in lower case (DMR lowercases names); file stems are tags, case kept.
* ``latest`` is ``<name>/latest.gguf`` when that file exists, else the only ``.gguf`` file of a
  directory that holds exactly one.
* Files and directories may be symlinks. Two tags whose files have the same bytes are one model
  (one ID, two tags), as on a real registry.

A model's description is built the way DMR's packager builds it: the GGUF header gives the
``gguf`` map, architecture, quantization, parameter count and context size; the ID is the
SHA-256 of a manifest naming the config blob and the layer's content digest.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dmr.protocol import encoding, model_info, model_names, pull_stream
from pytest_dmr.emulator.gguf import GGUFError, format_parameters, read_header

NAMESPACE = "ai"
GGUF_SUFFIX = ".gguf"
GGUF_LAYER_MEDIA_TYPE = "application/vnd.docker.ai.gguf.v3"
CONFIG_MEDIA_TYPE = "application/vnd.docker.ai.model.config.v0.1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
_HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class CatalogEntry:
    """One pullable reference and the file behind it."""

    reference: str
    """Canonical reference, e.g. ``docker.io/ai/smollm2:135M-Q4_1``."""
    path: Path


@dataclass(frozen=True)
class ModelDescription:
    """What a pull stores: the model's ID, its config, and the single GGUF layer."""

    id: str
    created: int
    config: dict[str, Any]
    layer_digest: str
    size: int
    path: Path

    def info(self, tags: tuple[str, ...]) -> model_info.ModelInfo:
        return model_info.ModelInfo(id=self.id, tags=tags, created=self.created, config=self.config)


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def model_config(path: Path, size: int) -> dict[str, Any]:
    """DMR's ``config`` object for a GGUF file, keys in DMR's order, empty values left out."""
    try:
        header = read_header(path)
    except (GGUFError, OSError):
        return {"format": "gguf", "size": pull_stream.format_size(size)}
    config: dict[str, Any] = {
        "format": "gguf",
        "quantization": header.quantization,
        "parameters": format_parameters(header.parameters) if header.parameters else None,
        "architecture": header.architecture,
        "size": pull_stream.format_size(size),
        "gguf": header.metadata,
        "context_size": header.context_length,
    }
    return {key: value for key, value in config.items() if value}


class Catalog:
    """Resolves references to files under ``root`` and describes them (descriptions are cached)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotADirectoryError(
                f"the model catalogue {self.root} is not a directory: create it with one folder per "
                "model name holding <tag>.gguf files (e.g. smollm2/135M-Q4_1.gguf)"
            )
        self._descriptions: dict[tuple[str, int, int], ModelDescription] = {}
        self._lock = threading.Lock()

    def resolve(self, reference: str) -> CatalogEntry | None:
        """The file a reference names, or ``None`` when the catalogue has no such model."""
        canonical = model_names.canonical_model_name(reference)
        prefix = f"docker.io/{NAMESPACE}/"
        if not canonical.startswith(prefix):
            return None
        name, _, tag = canonical[len(prefix) :].rpartition(":")
        if not name or "/" in name or not tag:
            return None
        folder = self.root / name
        candidate = folder / (tag + GGUF_SUFFIX)
        if candidate.is_file():
            return CatalogEntry(canonical, candidate)
        if tag == "latest" and folder.is_dir():
            files = sorted(path for path in folder.glob("*" + GGUF_SUFFIX) if path.is_file())
            if len(files) == 1:
                return CatalogEntry(canonical, files[0])
        return None

    def entries(self) -> list[CatalogEntry]:
        """Every reference the catalogue serves, ``latest`` aliases included."""
        found: list[CatalogEntry] = []
        for folder in sorted(path for path in self.root.iterdir() if path.is_dir()):
            references = [f"{folder.name}:{path.name[: -len(GGUF_SUFFIX)]}" for path in sorted(folder.glob("*" + GGUF_SUFFIX))]
            if f"{folder.name}:latest" not in references:
                references.append(f"{folder.name}:latest")
            for reference in references:
                entry = self.resolve(reference)
                if entry is not None:
                    found.append(entry)
        return found

    def describe(self, entry: CatalogEntry) -> ModelDescription:
        """The stored form of an entry: reads the header and hashes the file once per file version."""
        real = entry.path.resolve()
        stat = real.stat()
        key = (str(real), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._descriptions.get(key)
        if cached is not None:
            return cached
        layer_digest = file_digest(real)
        config = model_config(real, stat.st_size)
        created = int(stat.st_mtime)
        config_blob = encoding.dumps({"config": config, "descriptor": {"created": created}}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": "sha256:" + hashlib.sha256(config_blob).hexdigest(),
                "size": len(config_blob),
            },
            "layers": [{"mediaType": GGUF_LAYER_MEDIA_TYPE, "digest": layer_digest, "size": stat.st_size}],
        }
        model_id = "sha256:" + hashlib.sha256(encoding.dumps(manifest).encode()).hexdigest()
        description = ModelDescription(
            id=model_id, created=created, config=config, layer_digest=layer_digest, size=stat.st_size, path=real
        )
        with self._lock:
            self._descriptions[key] = description
        return description
