"""Models as the management API describes them (section 2.1) and the OpenAI model list (section 3.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_dmr.protocol import _shapes
from pytest_dmr.protocol.model_names import canonical_model_name, looks_like_model_id, normalize_model_name


@dataclass(frozen=True)
class ModelInfo:
    """One model from ``GET /models`` or ``GET /models/{ref}``."""

    id: str
    tags: tuple[str, ...] = ()
    created: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> ModelInfo:
        """One model as the management API sends it; ``null`` tags or config read as none.
        :class:`~pytest_dmr.errors.MalformedResponseError` for a field of the wrong type."""
        body = _shapes.json_object(data, "a model")
        return cls(
            id=_shapes.text(body.get("id"), "a model's id"),
            tags=_shapes.texts(body.get("tags"), "a model's tags"),
            created=_shapes.integer(body.get("created"), "a model's created time"),
            config=dict(_shapes.json_object(body.get("config") or {}, "a model's config")),
        )

    def to_json(self) -> dict[str, Any]:
        """The management API's shape: ``tags`` left out when empty, ``config`` always present."""
        body: dict[str, Any] = {"id": self.id}
        if self.tags:
            body["tags"] = list(self.tags)
        body["created"] = self.created
        body["config"] = dict(self.config) if self.config else None
        return body

    @property
    def name(self) -> str:
        """The first tag, or the ID for an untagged model (what ``/engines/v1/models`` lists)."""
        return self.tags[0] if self.tags else self.id

    @property
    def size(self) -> str | None:
        return _shapes.plain(self.config.get("size"))

    def matches(self, ref: str) -> bool:
        """Whether ``ref`` names this model as a runner's local lookup does (section 4): its ID
        (``sha256:<64 hex>``, 64 or 12 hex), a digest reference whose digest is the ID
        (``ai/x@sha256:...``), or any tag once both are in canonical form."""
        normalized = normalize_model_name(ref)
        if "@" in normalized:
            return normalized.rpartition("@")[2] == self.id
        if looks_like_model_id(normalized):
            wanted, own = normalized.removeprefix("sha256:"), self.id.removeprefix("sha256:")
            return own == wanted if len(wanted) == 64 else own.startswith(wanted)
        wanted = canonical_model_name(normalized)
        return bool(wanted) and any(canonical_model_name(tag) == wanted for tag in self.tags)

    def to_openai(self) -> dict[str, Any]:
        """The ``/engines/v1/models`` entry, with DMR's ``dmr`` extension when there is a config."""
        body: dict[str, Any] = {"id": self.name, "object": "model", "created": self.created, "owned_by": "docker"}
        if self.config:
            extension = {
                "context_window": self.config.get("context_size"),
                "architecture": self.config.get("architecture"),
                "parameters": self.config.get("parameters"),
                "quantization": self.config.get("quantization"),
                "size": self.config.get("size"),
            }
            body["dmr"] = {key: value for key, value in extension.items() if value}
        return body


def openai_model_list(models: Iterable[ModelInfo]) -> dict[str, Any]:
    """``GET /engines/v1/models``: ``data`` is ``[]``, never null, when nothing is stored."""
    return {"object": "list", "data": [model.to_openai() for model in models]}


def model_ids_from_openai_list(body: object) -> list[str]:
    """The ``id`` of each entry of an OpenAI ``/models`` list (DMR's, or a bare llama.cpp's); entries
    that are not objects with an ``id`` are skipped. :class:`~pytest_dmr.errors.MalformedResponseError`
    when ``data`` is not a list, or an ``id`` not a string."""
    data = _shapes.json_object(body, "the model list").get("data")
    if data is None:
        return []
    if not isinstance(data, (list, tuple)):
        raise _shapes.malformed(f"the model list's data is {_shapes.kind(data)}, not a list")
    return [_shapes.text(entry["id"], "a listed model's id") for entry in data if isinstance(entry, Mapping) and "id" in entry]


def untagged_action(tag: str) -> dict[str, str]:
    return {"Untagged": tag}


def deleted_action(model_id: str) -> dict[str, str]:
    return {"Deleted": model_id}
