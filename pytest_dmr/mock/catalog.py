"""The mock's model store: what ``/models`` lists, inspect, delete, and pulls of fake layers.

Models are described as DMR describes them (``ModelInfo``), with tags in the ``docker.io/ai/...``
form of current runners. A few well-known small models carry plausible configs; any other name
gets one derived from SHA-256 of its canonical name, so it is the same in every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

from pytest_dmr.protocol import error_bodies, model_info, model_names, pull_stream
from pytest_dmr.protocol.model_info import ModelInfo
from pytest_dmr.protocol.pull_stream import PullProgress

_MIB = 1024 * 1024
_LICENSE_LAYER_SIZE_RANGE = (8_000, 16_000)
_PROGRESS_STEPS = 4


class _Known(NamedTuple):
    parameters: str
    quantization: str
    architecture: str
    size: int
    context_size: int
    created: int


# Illustrative figures for the small models the project's docs name (sizes in bytes).
_KNOWN: dict[str, _Known] = {
    "docker.io/ai/smollm2:latest": _Known("361.82 M", "IQ2_XXS/Q4_K_M", "llama", 268_803_264, 8192, 1742816981),
    "docker.io/ai/smollm2:360M-Q4_K_M": _Known("361.82 M", "IQ2_XXS/Q4_K_M", "llama", 268_803_264, 8192, 1742816981),
    "docker.io/ai/smollm2:135M-Q4_0": _Known("134.52 M", "Q4_0", "llama", 89_931_776, 8192, 1742816981),
    "docker.io/ai/qwen3:0.6B-Q4_0": _Known("751.63 M", "Q4_0", "qwen3", 462_110_208, 40960, 1746028800),
    "docker.io/ai/llama3.2:1B-Q4_0": _Known("1.24 B", "Q4_0", "llama", 770_928_384, 131072, 1737590400),
    "docker.io/ai/nomic-embed-text-v1.5:latest": _Known("136.73 M", "F16", "nomic-bert", 273_530_880, 2048, 1739836800),
}


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stored_tag(name: str) -> str:
    """How a runner stores a pulled name: normalised and fully qualified (``docker.io/ai/x:latest``)."""
    return model_names.canonical_model_name(name)


def describe_model(name: str, *, size: int | None = None, extra_tags: Iterable[str] = ()) -> ModelInfo:
    """A ``ModelInfo`` for ``name``: its ID is SHA-256 of the stored tag, so it is stable."""
    tag = stored_tag(name)
    known = _KNOWN.get(tag)
    seed = _digest_int(tag)
    if known is None:
        gguf_size = size if size is not None else (40 + seed % 900) * _MIB + seed % _MIB
        parameters = f"{gguf_size / _MIB * 1.4:.2f} M"
        known = _Known(parameters, "Q4_K_M", "llama", gguf_size, 4096, 1735689600 + seed % 31_536_000)
    elif size is not None:
        known = known._replace(size=size)
    config: dict[str, Any] = {
        "format": "gguf",
        "quantization": known.quantization,
        "parameters": known.parameters,
        "architecture": known.architecture,
        "size": pull_stream.format_size(known.size),
        "context_size": known.context_size,
    }
    tags = [tag, *(stored_tag(extra) for extra in extra_tags)]
    return ModelInfo(
        id="sha256:" + hashlib.sha256(f"manifest:{tag}".encode()).hexdigest(),
        tags=tuple(dict.fromkeys(tags)),
        created=known.created,
        config=config,
    )


def model_size_bytes(info: ModelInfo) -> int:
    """The weights' size in bytes (as this mock made them), for the pull's fake layers."""
    known = _KNOWN.get(info.tags[0]) if info.tags else None
    text = info.size or ""
    if known is not None and pull_stream.format_size(known.size) == text:
        return known.size
    number, _, unit = text.partition(" ")
    scale = {"B": 1, "KiB": 1024, "MiB": _MIB, "GiB": 1024 * _MIB}.get(unit, _MIB)
    try:
        return int(float(number) * scale)
    except ValueError:
        return 100 * _MIB


def pull_lines(info: ModelInfo) -> list[PullProgress]:
    """A fresh pull's lines: per-layer progress (weights in four steps, the license in one,
    interleaved as parallel downloads are), then ``Model pulled successfully``."""
    tag = info.tags[0] if info.tags else info.id
    weights = ("sha256:" + hashlib.sha256(f"layer:weights:{tag}".encode()).hexdigest(), model_size_bytes(info))
    low, high = _LICENSE_LAYER_SIZE_RANGE
    license_layer = ("sha256:" + hashlib.sha256(f"layer:license:{tag}".encode()).hexdigest(), low + _digest_int(tag) % (high - low))
    total = weights[1] + license_layer[1]

    def progress(layer: tuple[str, int], current: int) -> PullProgress:
        return PullProgress(
            type="progress",
            message=pull_stream.downloaded_message(current),
            total=total,
            layer_id=layer[0],
            layer_size=layer[1],
            layer_current=current,
        )

    lines = []
    for step in range(1, _PROGRESS_STEPS + 1):
        lines.append(progress(weights, weights[1] * step // _PROGRESS_STEPS))
        if step == 1:
            lines.append(progress(license_layer, license_layer[1]))
    lines.append(PullProgress(type="success", message=pull_stream.PULL_SUCCESS_MESSAGE))
    return lines


class ModelStore:
    """The models a mock runner holds, in insertion order (the order ``/models`` lists them)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.models: list[ModelInfo] = []
        for name in names:
            self.add(describe_model(name))

    def add(self, info: ModelInfo) -> ModelInfo:
        """Store ``info``; a model already there with the same ID gets the new tags attached."""
        for index, existing in enumerate(self.models):
            if existing.id == info.id:
                merged = dataclasses.replace(existing, tags=tuple(dict.fromkeys([*existing.tags, *info.tags])))
                self.models[index] = merged
                return merged
        self.models.append(info)
        return info

    def attach_tag(self, info: ModelInfo, tag: str) -> ModelInfo:
        return self.add(dataclasses.replace(info, tags=(tag,)))

    def find(self, ref: str) -> ModelInfo | None:
        """Lookup with DMR's normalisation: a tag in any form, the ID, its 12-hex short form, or a digest ref."""
        return next((model for model in self.models if model.matches(ref)), None)

    def find_partial(self, ref: str) -> ModelInfo | None:
        """``GET /models/{ref}``'s fallback: a tag whose bare name equals ``ref``."""
        for model in self.models:
            if any(model_names.partial_name_matches(ref, tag) for tag in model.tags):
                return model
        return None

    def remove(self, info: ModelInfo) -> None:
        self.models = [model for model in self.models if model.id != info.id]

    def delete(self, given: str, *, force: bool) -> tuple[int, Any]:
        """``DELETE /models/{ref}``: ``(200, actions)``, or ``(404|409, message)``."""
        ref = model_names.normalize_model_name(given)
        model = self.find(ref)
        if model is None:
            return 404, error_bodies.DELETE_MODEL_NOT_FOUND
        if "@" in ref or model_names.looks_like_model_id(ref):  # an ID or digest: the whole model
            if len(model.tags) > 1 and not force:
                return 409, error_bodies.delete_conflict_message(given)
            self.remove(model)
            return 200, [*(model_info.untagged_action(tag) for tag in model.tags), model_info.deleted_action(model.id)]
        wanted = model_names.canonical_model_name(ref)
        tag = next(tag for tag in model.tags if model_names.canonical_model_name(tag) == wanted)
        actions = [model_info.untagged_action(tag)]
        if len(model.tags) > 1:
            self.models = [dataclasses.replace(m, tags=tuple(t for t in m.tags if t != tag)) if m.id == model.id else m for m in self.models]
            return 200, actions
        self.remove(model)
        return 200, [*actions, model_info.deleted_action(model.id)]

