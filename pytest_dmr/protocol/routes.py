"""DMR's paths (DMR-PROTOCOL.md sections 1-3, 5), and matching a request path to an inference route."""

from __future__ import annotations

import functools
from typing import NamedTuple

from pytest_dmr.protocol._regex import compiled


READ_METHODS = ("GET", "HEAD")
"""What a Go ``GET`` route answers: Go's router sends ``HEAD`` there too (its server drops the body)."""
GO_RESPONSE_BUFFER = 2048
"""How much of a body Go's server holds before it sends the headers."""


def head_content_length(body_length: int) -> str | None:
    """The ``Content-Length`` Go's server sends to a ``HEAD`` whose ``GET`` body has ``body_length``
    bytes: that length when the whole body fitted its buffer, none for an empty or a longer body."""
    return str(body_length) if 0 < body_length <= GO_RESPONSE_BUFFER else None

ENGINES_PREFIX = "/engines/v1"
ALIAS_PREFIX = "/v1"

CHAT_COMPLETIONS = "/chat/completions"
COMPLETIONS = "/completions"
EMBEDDINGS = "/embeddings"
MODELS = "/models"
INFERENCE_ENDPOINTS = (CHAT_COMPLETIONS, COMPLETIONS, EMBEDDINGS)

ROOT_PATH = "/"
VERSION_PATH = "/version"
ENGINES_STATUS_PATH = "/engines/status"
MANAGEMENT_MODELS_PATH = "/models"
MODELS_CREATE_PATH = "/models/create"

ENGINES_PS_PATH = "/engines/ps"
ENGINES_DF_PATH = "/engines/df"
ENGINES_UNLOAD_PATH = "/engines/unload"
METRICS_PATH = "/metrics"
MODELS_PURGE_PATH = "/models/purge"

PRELOAD_HEADER = "X-Preload-Only"


_ENGINE_PATH = r"^/engines(?:/(?P<backend>[^/]+))?/v1(?P<endpoint>/.*)$"


def management_model_path(ref: str) -> str:
    """``/models/{ref}`` for inspect and delete; the ref keeps its slashes (``/models/ai/smollm2``)."""
    return f"{MANAGEMENT_MODELS_PATH}/{ref}"


class InferenceRoute(NamedTuple):
    """Where an inference path points: the named backend (``None`` for the default) and endpoint."""

    backend: str | None
    endpoint: str


def clean_path(path: str) -> str:
    """DMR's path cleanup before routing: only a path containing ``//`` is cleaned, which also
    drops its trailing slash (``/engines//v1/models/`` -> ``/engines/v1/models``)."""
    if "//" not in path:
        return path
    return compiled(r"/{2,}").sub("/", path).rstrip("/") or "/"


@functools.lru_cache(maxsize=256)
def match_inference_path(path: str) -> InferenceRoute | None:
    """Parse ``/engines[/{backend}]/v1/...`` or the ``/v1/...`` alias (after :func:`clean_path`);
    ``None`` for other paths (kept for the last 256: a suite asks the same few again and again).

    ``/v1/chat/completions`` -> ``(None, "/chat/completions")``;
    ``/engines/llama.cpp/v1/models/ai/x`` -> ``("llama.cpp", "/models/ai/x")``.
    """
    path = clean_path(path)
    if path.startswith(ALIAS_PREFIX + "/"):
        return InferenceRoute(None, path[len(ALIAS_PREFIX) :])
    found = compiled(_ENGINE_PATH).match(path)
    if found is None:
        return None
    return InferenceRoute(found["backend"], found["endpoint"])


ENGINES_CONFIGURE_PATH = "/engines/_configure"


_CONFIGURE_PATH = r"^/engines(?:/(?P<backend>[^/]+))?/_configure$"


def engines_configure_path(backend: str | None = None) -> str:
    """``/engines/_configure`` (the default backend) or ``/engines/{backend}/_configure``."""
    return f"/engines/{backend}/_configure" if backend else ENGINES_CONFIGURE_PATH


def match_configure_path(path: str) -> tuple[bool, str | None]:
    """Whether ``path`` is a ``POST`` ``_configure`` route, and the backend it names (``None``: default)."""
    found = compiled(_CONFIGURE_PATH).match(path)
    return (found is not None, found["backend"] if found else None)
