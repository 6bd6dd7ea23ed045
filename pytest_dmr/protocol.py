"""Docker Model Runner's wire protocol, in one place, with no I/O.

Paths, payload shapes, SSE framing, pull progress lines, error bodies and their mapping to
:mod:`pytest_dmr.errors`, and model-name normalisation. The client, the adapter, the mock and the
emulator all speak through this module, so they cannot drift apart. The reference it follows is
``DMR-PROTOCOL.md`` (read from docker/model-runner's source, v1.2.6).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from pytest_dmr import errors

if TYPE_CHECKING:
    import datetime

# --------------------------------------------------------------------------------------------
# Addresses and defaults
# --------------------------------------------------------------------------------------------

DEFAULT_PORT = 12434
DEFAULT_HOST_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
"""The Docker Engine plugin, or Docker Desktop with host TCP on (``localhost:12434``)."""
CONTAINER_DESKTOP_URL = "http://model-runner.docker.internal"
"""Docker Desktop's runner as seen from inside a container (port 80). Only probed in a container."""
CONTAINER_GATEWAY_PORT = DEFAULT_PORT
"""Docker Engine's runner as seen from inside a container: the bridge gateway on this port."""
DESKTOP_SOCKET_PREFIX = "/exp/vDD4.40"
"""Docker Desktop's API socket prefixes every runner path with this."""
DEFAULT_MODEL = "ai/smollm2"
DEFAULT_IMAGE = "docker/model-runner:latest"
MOCK_BASE_URL = "http://dmr-mock.invalid"
"""Base URL of the mock runner: ``.invalid`` never resolves, so nothing can leave the process."""

ROOT_BANNER = "Docker Model Runner is running"

# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------

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

@functools.lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile on first use: this module is imported on every pytest run, most of which never need these."""
    return re.compile(pattern)


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
    return _regex(r"/{2,}").sub("/", path).rstrip("/") or "/"


def match_inference_path(path: str) -> InferenceRoute | None:
    """Parse ``/engines[/{backend}]/v1/...`` or the ``/v1/...`` alias (after :func:`clean_path`);
    ``None`` for other paths.

    ``/v1/chat/completions`` -> ``(None, "/chat/completions")``;
    ``/engines/llama.cpp/v1/models/ai/x`` -> ``("llama.cpp", "/models/ai/x")``.
    """
    path = clean_path(path)
    if path.startswith(ALIAS_PREFIX + "/"):
        return InferenceRoute(None, path[len(ALIAS_PREFIX) :])
    found = _regex(_ENGINE_PATH).match(path)
    if found is None:
        return None
    return InferenceRoute(found["backend"], found["endpoint"])


class RunnerAddress(NamedTuple):
    """A runner's root URL (management API) and the prefix of its OpenAI-compatible API."""

    root: str
    api_prefix: str

    @property
    def openai_url(self) -> str:
        """The base URL an OpenAI client takes, e.g. ``http://127.0.0.1:12434/engines/v1``."""
        return self.root + self.api_prefix

    @property
    def authority(self) -> str:
        """``host:port`` of the root, for short messages (``localhost:12434``)."""
        parts = urlsplit(self.root)
        return parts.netloc + (parts.path if parts.path not in ("", "/") else "")


def parse_runner_url(url: str) -> RunnerAddress:
    """Split any form users write a runner URL in into its root and its OpenAI prefix.

    Accepts a bare root (``http://localhost:12434``), an OpenAI base (``.../engines/v1``,
    ``.../engines/llama.cpp/v1``, ``.../v1``), Docker Desktop's socket prefix
    (``.../exp/vDD4.40``), ``host:port`` without a scheme, and ``tcp://`` (as ``MODEL_RUNNER_HOST``
    is sometimes written). Raises :class:`~pytest_dmr.errors.ConfigurationError` for anything else.
    """
    text = url.strip()
    if not text:
        raise errors.ConfigurationError(
            "the runner URL is empty", hint="Give a URL such as http://localhost:12434"
        )
    if text.startswith("tcp://"):
        text = "http://" + text[len("tcp://") :]
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigurationError(
            f"{url!r} is not a usable runner URL",
            hint="Give an http(s) URL such as http://localhost:12434 or http://localhost:12434/engines/v1",
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise errors.ConfigurationError(
            f"{url!r} has an invalid port", hint="Give a port between 1 and 65535"
        ) from exc
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    api_prefix = ENGINES_PREFIX
    found = re.search(r"/engines(?:/[^/]+)?/v1$|/v1$", path)
    if found:
        api_prefix, path = found.group(0), path[: found.start()]
    root = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return RunnerAddress(root, api_prefix)


# --------------------------------------------------------------------------------------------
# Model names (DMR-PROTOCOL.md section 4)
# --------------------------------------------------------------------------------------------

_HEX_ID = r"^(?:[0-9a-f]{12}|[0-9a-f]{64}|sha256:[0-9a-f]{64})$"


def looks_like_model_id(ref: str) -> bool:
    """True for a model ID or its short form: 12 or 64 lowercase hex, or ``sha256:<64 hex>``."""
    return bool(_regex(_HEX_ID).match(ref))


def normalize_model_name(name: str) -> str:
    """Normalise a model reference exactly as DMR does before every local lookup.

    ``smollm2`` -> ``ai/smollm2:latest``; ``SmolLM2:360M-Q4_K_M`` -> ``ai/smollm2:360M-Q4_K_M``
    (the name is lowercased, the tag keeps its case); ``hf.co/Org/M`` -> ``huggingface.co/org/m:latest``.
    IDs and digest references come back unchanged.
    """
    ref = name.strip()
    if not ref:
        return ""
    if ref.startswith("hf.co/"):
        ref = "huggingface.co/" + ref[len("hf.co/") :]
    if looks_like_model_id(ref) or "@" in ref:
        return ref
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        repo, tag = ref[:colon], ref[colon + 1 :]
    else:
        repo, tag = ref, ""
    if "/" not in repo:
        repo = "ai/" + repo
    return f"{repo.lower()}:{tag or 'latest'}"


def canonical_model_name(ref: str) -> str:
    """The fully qualified form used to compare references: ``docker.io/ai/smollm2:latest``.

    Runners since v1.0.11 store tags as ``docker.io/ai/...``, older ones as ``ai/...``; both, and
    ``index.docker.io/...`` and the implicit ``library/`` org, compare equal in this form.
    """
    normalized = normalize_model_name(ref)
    if not normalized or looks_like_model_id(normalized) or "@" in normalized:
        return normalized
    first, _, rest = normalized.partition("/")
    if "." in first or ":" in first or first == "localhost":
        registry, path = first, rest
    else:
        registry, path = "docker.io", normalized
    if registry == "index.docker.io":
        registry = "docker.io"
    if registry == "docker.io" and path.startswith("library/"):
        path = "ai/" + path[len("library/") :]
    return f"{registry}/{path}"


def same_model(a: str, b: str) -> bool:
    """Whether two references name the same model once both are canonical."""
    return canonical_model_name(a) == canonical_model_name(b)


def short_model_name(ref: str) -> str:
    """The CLI's display form: no ``docker.io/``, no ``ai/``, no ``:latest``."""
    name = ref
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("ai/"):
        name = name[len("ai/") :]
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return name


_DOCKER_REFERENCE = (
    r"^(?:(?P<domain>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:[0-9a-f]{64})?$"
)


def is_valid_reference(normalized: str) -> bool:
    """Whether a normalised name parses as a Docker reference (a pull answers 400 otherwise)."""
    return bool(normalized) and bool(_regex(_DOCKER_REFERENCE).match(normalized))


def partial_name_matches(ref: str, tag: str) -> bool:
    """``GET /models/{ref}``'s fallback: the tag without its ``:tag`` and its path equals ``ref``.

    ``smollm2`` matches ``docker.io/ai/smollm2:360M-Q4_K_M`` and ``myorg/smollm2:v1``; case-sensitive.
    """
    colon = tag.rfind(":")
    name = tag[:colon] if colon >= 0 else tag
    return name[name.rfind("/") + 1 :] == ref


# --------------------------------------------------------------------------------------------
# Models as the management API describes them (section 2.1) and the OpenAI list (section 3.2)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """One model from ``GET /models`` or ``GET /models/{ref}``."""

    id: str
    tags: tuple[str, ...] = ()
    created: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelInfo:
        return cls(
            id=str(data.get("id", "")),
            tags=tuple(data.get("tags") or ()),
            created=int(data.get("created") or 0),
            config=dict(data.get("config") or {}),
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
        value = self.config.get("size")
        return str(value) if value is not None else None

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


def model_ids_from_openai_list(body: Mapping[str, Any]) -> list[str]:
    """The ``id`` of each entry of an OpenAI ``/models`` list (DMR's, or a bare llama.cpp's)."""
    return [str(entry["id"]) for entry in body.get("data") or () if isinstance(entry, Mapping) and "id" in entry]


# --------------------------------------------------------------------------------------------
# JSON and OpenAI payloads
# --------------------------------------------------------------------------------------------

JSON_CONTENT_TYPE = "application/json"
TEXT_PLAIN = "text/plain; charset=utf-8"
EVENT_STREAM = "text/event-stream"


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # made once: json.dumps(**options) makes one a call


def dumps(value: Any) -> str:
    """Compact, key-order-preserving JSON, as llama.cpp writes it. Same input, same bytes."""
    return _COMPACT_JSON.encode(value)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "choices": [{"finish_reason": finish_reason, "index": 0, "message": message}],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion",
        "usage": usage(prompt_tokens, completion_tokens),
        "id": id,
    }


def chat_chunk(
    *, id: str, created: int, model: str, delta: Mapping[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream."""
    return {
        "choices": [{"finish_reason": finish_reason, "index": 0, "delta": dict(delta)}],
        "created": created,
        "id": id,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion.chunk",
    }


def usage_chunk(*, id: str, created: int, model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The final chunk sent when ``stream_options.include_usage`` is set: no choices, only usage."""
    return {
        "choices": [],
        "created": created,
        "id": id,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "chat.completion.chunk",
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_completion(
    *,
    id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str | None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> dict[str, Any]:
    """A ``text_completion`` body (``/completions``); a stream chunk when the counts are ``None``."""
    body: dict[str, Any] = {
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
        "created": created,
        "model": model,
        "system_fingerprint": "pytest-dmr",
        "object": "text_completion",
        "id": id,
    }
    if prompt_tokens is not None and completion_tokens is not None:
        body["usage"] = usage(prompt_tokens, completion_tokens)
    return body


def embeddings_response(*, model: str, vectors: list[list[float]], prompt_tokens: int) -> dict[str, Any]:
    """An ``/embeddings`` body: one ``embedding`` object per input, in input order."""
    return {
        "model": model,
        "object": "list",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "data": [{"embedding": vector, "index": index, "object": "embedding"} for index, vector in enumerate(vectors)],
    }


def tool_call(*, id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of a message's ``tool_calls``; ``arguments`` is a JSON *string*."""
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def last_user_message(body: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message of a chat body, or the ``prompt`` of a completion."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return message_text(message.get("content"))
        return ""
    prompt = body.get("prompt", body.get("input", ""))
    if isinstance(prompt, list):
        return " ".join(str(part) for part in prompt)
    return str(prompt)


def message_text(content: Any) -> str:
    """A message's text: a plain string, or the ``text`` parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


# --------------------------------------------------------------------------------------------
# Server-sent events
# --------------------------------------------------------------------------------------------

SSE_DONE = "[DONE]"


def encode_sse(payload: Mapping[str, Any] | str) -> bytes:
    """One SSE event: ``data: {json}`` and a blank line; a ``str`` is sent as is (``[DONE]``)."""
    data = payload if isinstance(payload, str) else dumps(payload)
    return f"data: {data}\n\n".encode()


SSE_DONE_EVENT = encode_sse(SSE_DONE)


class SSEDecoder:
    """Incremental SSE decoder: feed it lines (without their newline), get each event's data.

    ``feed`` returns the joined ``data:`` of an event when a blank line ends it, else ``None``;
    ``flush`` returns a last event left unterminated at the end of the stream. Comments (``:``)
    and ``event:``/``id:`` fields are ignored. llama.cpp reports a failure mid-stream as an
    ``error:`` field; its value is kept on :attr:`error`.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self.error: str | None = None

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\r")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "error":
            self.error = value
        return None

    def flush(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Every event's data from an iterable of lines, ``[DONE]`` included."""
    decoder = SSEDecoder()
    for line in lines:
        data = decoder.feed(line)
        if data is not None:
            yield data
    data = decoder.flush()
    if data is not None:
        yield data


def chunk_text(chunk: Mapping[str, Any]) -> str:
    """The text a stream chunk carries: ``delta.content`` (chat) or ``text`` (completions)."""
    choices = chunk.get("choices") or ()
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, Mapping):
        return delta.get("content") or ""
    return choice.get("text") or ""


# --------------------------------------------------------------------------------------------
# Pull progress lines (section 2.4)
# --------------------------------------------------------------------------------------------

PULL_SUCCESS_MESSAGE = "Model pulled successfully"
_HTML_ESCAPES = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;"}
_HTML_UNESCAPES = {escaped: raw for raw, escaped in _HTML_ESCAPES.items()} | {"&quot;": '"', "&#x27;": "'"}
_HTML_ENTITY = "|".join(re.escape(entity) for entity in _HTML_UNESCAPES)


def html_escape(text: str) -> str:
    """Go's ``html.EscapeString``: the five characters ``& ' < > "``, nothing else."""
    return "".join(_HTML_ESCAPES.get(char, char) for char in text)


def html_unescape(text: str) -> str:
    """Undo :func:`html_escape` (what DMR's CLI does to each line of a text/plain pull)."""
    return _regex(_HTML_ENTITY).sub(lambda found: _HTML_UNESCAPES[found.group(0)], text)


def pull_wants_raw_json(accept: str | None) -> bool:
    """DMR sends raw JSON lines only when ``Accept`` is exactly ``application/json``."""
    return accept == JSON_CONTENT_TYPE


def pull_content_type(accept: str | None) -> str:
    return JSON_CONTENT_TYPE if pull_wants_raw_json(accept) else "text/plain"


def downloaded_message(transferred: int) -> str:
    """The (deprecated, still sent) progress message: ``Downloaded: 12.50 MB`` (MB = bytes/1024/1024)."""
    return f"Downloaded: {transferred / 1024 / 1024:.2f} MB"


def format_size(size: int) -> str:
    """A size as DMR's configs write it: ``256.35 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    raise AssertionError("unreachable")


def cached_model_message(size: str) -> str:
    return f"Using cached model: {size}"


@dataclass(frozen=True)
class PullProgress:
    """One line of a pull stream. ``layer_id`` is ``None`` on lines about no particular layer."""

    type: str
    message: str = ""
    total: int = 0
    layer_id: str | None = None
    layer_size: int = 0
    layer_current: int = 0
    mode: str = "pull"

    @property
    def is_error(self) -> bool:
        return self.type == "error"

    def to_json(self) -> dict[str, Any]:
        layer: dict[str, Any] = {}
        if self.layer_id:
            layer["id"] = self.layer_id
        layer["size"] = self.layer_size
        layer["current"] = self.layer_current
        return {"type": self.type, "message": self.message, "total": self.total, "layer": layer, "mode": self.mode}


def encode_pull_line(progress: PullProgress, *, raw_json: bool) -> bytes:
    """One line of a pull stream, HTML-escaped unless the client asked for raw JSON."""
    line = dumps(progress.to_json())
    return ((line if raw_json else html_escape(line)) + "\n").encode()


def parse_pull_line(line: str, *, escaped: bool) -> PullProgress | None:
    """Parse one pull line; ``None`` for a blank or non-JSON line (DMR appends plain text after an error).

    Accepts both layer key casings: ``id/size/current`` (current) and ``ID/Size/Current`` (before
    v1.0.12).
    """
    text = line.strip()
    if escaped:
        text = html_unescape(text)
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, Mapping) or "type" not in data:
        return None
    layer = data.get("layer")
    if not isinstance(layer, Mapping):
        layer = {}

    def field_of(name: str) -> Any:
        return layer.get(name, layer.get(name.capitalize() if name != "id" else "ID"))

    try:
        return PullProgress(
            type=str(data["type"]),
            message=str(data.get("message") or ""),
            total=int(data.get("total") or 0),
            layer_id=str(field_of("id") or "") or None,
            layer_size=int(field_of("size") or 0),
            layer_current=int(field_of("current") or 0),
            mode=str(data.get("mode") or "pull"),
        )
    except (TypeError, ValueError):  # a number that is not one: not a line we can use
        return None


def pull_error_progress(error: str) -> PullProgress:
    """The ``type: error`` line of a pull that failed after streaming began."""
    return PullProgress(type="error", message=f"Error: {error}")


def pull_failure_text(error: str) -> str:
    """The plain-text line DMR appends after a pull's error line."""
    return f"error while pulling model: {error}"


# --------------------------------------------------------------------------------------------
# Error bodies (what a runner sends) and their mapping (what a client raises)
# --------------------------------------------------------------------------------------------

MODEL_REQUIRED = "model is required"
INVALID_REQUEST = "invalid request"
NOT_FOUND = "not found"
PAGE_NOT_FOUND = "404 page not found"
MODEL_NOT_FOUND = "model not found"
BACKEND_NOT_FOUND = "backend not found"
REQUEST_TOO_LARGE = "request too large"
INVALID_REQUEST_BODY = "invalid request body"
INVALID_MODEL_REFERENCE = "Invalid model reference"
PULL_MODEL_NOT_FOUND = "Model not found"
DELETE_MODEL_NOT_FOUND = "error while deleting model: model not found"
LOADING_MODEL_BODY: dict[str, Any] = {
    "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
}


def plain_error_body(message: str) -> bytes:
    """Go's ``http.Error``: the message and a newline, sent as ``text/plain; charset=utf-8``."""
    return (message + "\n").encode()


def go_quote(text: str) -> str:
    """Go's ``%q``: double quotes, backslash escapes for quotes, backslashes and control characters."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def model_not_found_message(requested: str) -> str:
    """The inference 404: ``error while getting model: get model '"X"': model not found``."""
    return f"error while getting model: get model '{go_quote(requested[:100])}': {MODEL_NOT_FOUND}"


def unable_to_load_message(cause: str) -> str:
    return f"unable to load runner: {cause}"


def delete_conflict_message(ref: str) -> str:
    """The 409 of ``DELETE /models/{id}`` when the model has several tags and ``force`` is unset."""
    return (
        f"error while deleting model: unable to delete {go_quote(ref)} (must be forced) "
        "due to multiple tag references: resource conflict"
    )


def backend_error_body(code: int, message: str, type: str = "invalid_request_error") -> dict[str, Any]:
    """llama.cpp's own JSON error (passed through by DMR unchanged), e.g. a 400 for a bad field."""
    return {"error": {"code": code, "message": message, "type": type}}


def _error_text(body: str) -> str:
    """The human part of an error body: plain text as is, or the message of a JSON error."""
    text = body.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, Mapping):
            error = data.get("error", data)
            if isinstance(error, Mapping):
                return str(error.get("message") or text)
            if isinstance(error, str):
                return error
            if "message" in data:
                return str(data["message"])
    return text


def is_loading_response(status: int, body: str) -> bool:
    """llama.cpp's ``503 Loading model`` (older runners, or a bare llama.cpp server)."""
    return status == 503 and "loading model" in _error_text(body).lower()


RETRYABLE_STATUSES = frozenset({502, 503, 504})


def is_retryable_status(status: int) -> bool:
    """502, 503 (loading, backend installing) and 504 are worth retrying with backoff."""
    return status in RETRYABLE_STATUSES


def error_from_response(
    status: int, body: str, *, runner_url: str | None, model: str | None
) -> errors.RunnerHTTPError:
    """Map an error status and body to the right :class:`~pytest_dmr.errors.RunnerHTTPError`."""
    text = _error_text(body)
    context: dict[str, Any] = {"status_code": status, "body": body, "runner_url": runner_url, "model": model}
    lowered = text.lower()
    if status == 404 and MODEL_NOT_FOUND in lowered:
        return errors.ModelNotFoundError(
            f"the runner does not have this model (404: {text})",
            hint=f"Pull it first: `docker model pull {model or 'NAME'}`, or run pytest with --dmr-pull",
            **context,
        )
    if status == 404 and BACKEND_NOT_FOUND in lowered:
        return errors.BackendUnavailableError(
            f"the runner has no such inference backend (404: {text})",
            hint="Use /engines/v1 or /engines/llama.cpp/v1 in the URL",
            **context,
        )
    if status == 404:
        return errors.RunnerHTTPError(
            f"the runner has no such endpoint (404: {text})",
            hint="Check that the URL points at a Docker Model Runner or an OpenAI-compatible server",
            **context,
        )
    if status == 400:
        hint = "Pass a model name (model=... or --dmr-model)" if MODEL_REQUIRED in lowered else "Check the request options"
        return errors.BadRequestError(f"the runner rejected the request (400: {text})", hint=hint, **context)
    if status == 412 or (status == 503 and not is_loading_response(status, body)):
        return errors.BackendUnavailableError(
            f"the runner's inference backend is not available ({status}: {text})",
            hint="Install or start the backend: `docker model install-runner`, then retry",
            **context,
        )
    if status == 503:
        return errors.ModelLoadingError(
            "the model was still loading when the retries ran out (503: Loading model)",
            hint="Raise the timeout (--dmr-timeout) or preload the model before the tests",
            **context,
        )
    if status == 500 and "unable to load runner" in lowered:
        return errors.ModelLoadError(
            f"the runner could not load the model (500: {text})",
            hint="Check the runner's logs (`docker model logs`) and that the model fits in memory",
            **context,
        )
    return errors.RunnerHTTPError(
        f"the runner answered {status}: {text or '(empty body)'}",
        hint="Retry; if it persists, check the runner's logs (`docker model logs`)",
        **context,
    )


# --------------------------------------------------------------------------------------------
# Runner-side details a stand-in server needs (sections 1, 2.3, 3.3, 5, 6)
# --------------------------------------------------------------------------------------------

LLAMACPP_BACKEND = "llama.cpp"
OTHER_BACKENDS_STATUS: dict[str, str] = {
    "diffusers": "Not Installed",
    "mlx": "Not Installed: only supported on Apple Silicon",
    "sglang": "Not Installed: package not installed",
    "vllm": "Not Installed: binary not found",
}
"""How a Linux runner without GPUs reports the backends other than llama.cpp on ``/engines/status``."""

COMPLETION_MODE = "completion"
EMBEDDING_MODE = "embedding"
MAX_INFERENCE_BODY = 10 * 1024 * 1024
"""Inference bodies above 10 MiB get ``400 request too large``."""

LLAMACPP_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
"""What llama.cpp's server labels its JSON with (its ``503 Loading model`` included)."""
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_ACTIVE_RUNNERS_BODY = b"# No active runners\n"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
HOP_BY_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
     "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Headers a reverse proxy drops in both directions (Go's ``httputil.ReverseProxy``)."""

_GO_SIGNAL_NAMES = {
    1: "hangup", 2: "interrupt", 4: "illegal instruction", 6: "aborted", 7: "bus error",
    8: "floating point exception", 9: "killed", 11: "segmentation fault", 15: "terminated",
}  # fmt: skip
"""How Go's ``syscall.Signal`` names the signals a crashed backend usually dies of (Linux numbers)."""


def backend_terminated_message(backend: str, returncode: int) -> str:
    """DMR's error for a backend process that exited on its own, e.g.
    ``llama.cpp terminated unexpectedly: signal: killed`` (Go's ``exec.ExitError`` wording)."""
    if returncode < 0:
        status = "signal: " + _GO_SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
    else:
        status = f"exit status {returncode}"
    return f"{backend} terminated unexpectedly: {status}"


def backend_crash_body(message: str) -> bytes:
    """The body of DMR's ``500`` when a runner's connection hits end of file and its process has exited."""
    return dumps({"type": "error", "code": None, "message": message, "param": None, "sequence_number": 1}).encode()


def mode_for_endpoint(endpoint: str) -> str:
    """The runner mode an inference endpoint needs: embeddings get their own runner."""
    return EMBEDDING_MODE if endpoint == EMBEDDINGS else COMPLETION_MODE


def upstream_path(path: str) -> str:
    """The path a runner forwards to its backend: cut to start at the first ``/v1/``."""
    index = path.find("/v1/")
    return path[index:] if index >= 0 else path


def engines_status_body(statuses: Mapping[str, str]) -> bytes:
    """``GET /engines/status``: keys sorted (a Go map), and no trailing newline."""
    return dumps(dict(sorted(statuses.items()))).encode()


def llamacpp_status(version: str) -> str:
    """The llama.cpp entry of ``/engines/status`` for a bundled Linux binary."""
    return f"Running: llama.cpp {version}"


def json_line(value: Any) -> bytes:
    """A JSON body as Go's streaming encoder writes it: compact, then ``\\n``."""
    return (dumps(value) + "\n").encode()


def go_time(seconds: float) -> str:
    """A Unix time as Go's ``time.Time`` marshals it (RFC 3339, nanoseconds, UTC ``Z``)."""
    import datetime as _dt  # local: only stand-in servers need it

    whole = int(seconds)
    nanos = int(round((seconds - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = _dt.datetime.fromtimestamp(whole, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


def ps_entry(
    *,
    backend: str,
    model_name: str,
    mode: str,
    last_used: str,
    in_use: bool = False,
    loading: bool = False,
    keep_alive: str | None = None,
) -> dict[str, Any]:
    """One element of ``GET /engines/ps``; ``in_use`` and ``loading`` are left out when false,
    ``keep_alive`` (:func:`format_keep_alive`) when the model was not configured with one."""
    entry: dict[str, Any] = {"backend_name": backend, "model_name": model_name, "mode": mode, "last_used": last_used}
    if in_use:
        entry["in_use"] = True
    if loading:
        entry["loading"] = True
    if keep_alive is not None:
        entry["keep_alive"] = keep_alive
    return entry


def untagged_action(tag: str) -> dict[str, str]:
    return {"Untagged": tag}


def deleted_action(model_id: str) -> dict[str, str]:
    return {"Deleted": model_id}


# --------------------------------------------------------------------------------------------
# CORS (section 0): which paths are wrapped, which origins are allowed, what is answered
# --------------------------------------------------------------------------------------------

ORIGIN_HEADER = "Origin"
ALLOW_ORIGIN_HEADER = "Access-Control-Allow-Origin"
ORIGIN_NOT_ALLOWED = "Origin not allowed"
PREFLIGHT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Credentials", "true"),
    ("Access-Control-Allow-Methods", "GET, POST, DELETE"),
    ("Access-Control-Allow-Headers", "*"),
)
"""What an ``OPTIONS`` preflight from an allowed origin gets, besides :data:`ALLOW_ORIGIN_HEADER`, with ``204``."""
DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = tuple(
    origin
    for host in ("localhost", "127.0.0.1", "0.0.0.0")
    for origin in (f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*")
)
"""The entries DMR always adds to ``DMR_ORIGINS``, in its order. Matching is exact, so the ``:*``
entries only match the literal string ``http://localhost:*``, not ``http://localhost:3000``."""
_CORS_WRAPPED_PREFIXES = ("/models/", "/engines/", "/v1/", "/api/", "/anthropic/", "/responses/")
_CORS_WRAPPED_PATHS = frozenset({"/models", "/rerank", "/score", "/responses"})


def allowed_origins(dmr_origins: str | None) -> tuple[str, ...]:
    """The list DMR's CORS checks: ``DMR_ORIGINS``'s comma-separated entries (trimmed, empty ones
    dropped), then :data:`DEFAULT_ALLOWED_ORIGINS`. A ``*`` entry here does **not** allow every
    origin (the list then has more than one entry): DMR allows all only for the list ``["*"]``."""
    given = [entry.strip() for entry in (dmr_origins or "").split(",")]
    return (*(entry for entry in given if entry), *DEFAULT_ALLOWED_ORIGINS)


def is_cors_wrapped(path: str) -> bool:
    """Whether DMR's CORS middleware sees requests for this (cleaned) path: ``/models*``,
    ``/engines/*``, ``/v1/*``, ``/rerank``, ``/score``, ``/api/*``, ``/anthropic/*``, ``/responses*``.
    ``/``, ``/version``, ``/metrics`` and unknown top-level paths are not wrapped."""
    return path in _CORS_WRAPPED_PATHS or path.startswith(_CORS_WRAPPED_PREFIXES)


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Exact string matching; only a list that is exactly ``["*"]`` allows every origin."""
    return (len(allowed) == 1 and allowed[0] == "*") or origin in allowed


class CorsAnswer(NamedTuple):
    """What the CORS middleware does with a request: answer at once (``status`` 403 with
    :data:`ORIGIN_NOT_ALLOWED` as a plain-text error, or 204 for a preflight), or let the handler
    answer (``status`` ``None``); ``headers`` go on whichever answer is sent."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()


def cors_answer(path: str, method: str, origin: str | None, allowed: Sequence[str]) -> CorsAnswer:
    """DMR's CORS middleware for one request. No ``Origin`` (or an empty one), or a path it does not
    wrap: nothing to do. An ``OPTIONS`` without an allowed origin goes on to the handler (a 404)."""
    if not origin or not is_cors_wrapped(path):
        return CorsAnswer(None)
    if not origin_allowed(origin, allowed):
        return CorsAnswer(403)
    headers = ((ALLOW_ORIGIN_HEADER, origin),)
    if method == "OPTIONS":
        return CorsAnswer(204, headers + PREFLIGHT_HEADERS)
    return CorsAnswer(None, headers)


# --------------------------------------------------------------------------------------------
# Go durations and keep-alive (section 5)
# --------------------------------------------------------------------------------------------

_SECOND = 1_000_000_000
_DURATION_UNITS = {
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": _SECOND, "m": 60 * _SECOND, "h": 3600 * _SECOND,
}  # fmt: skip
MAX_GO_DURATION = 2**63 - 1
"""The longest Go ``time.Duration``, in nanoseconds (about 292 years)."""
KEEP_ALIVE_FOREVER = -1
"""A keep-alive in nanoseconds that means "never unload when idle" (any negative duration becomes this)."""


def _time_quote(text: str) -> str:
    """How Go's ``time`` package quotes a value in its errors: ``\\xNN`` for each byte of a non-ASCII
    or control character (unlike ``%q``), a backslash before ``"`` and ``\\``."""
    out: list[str] = []
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    return '"' + "".join(out) + '"'


def _go_fraction(digits: str, unit: int) -> int:
    """Nanoseconds a duration's fraction adds, computed as Go does: from the leading digits that fit
    in 63 bits, in float64 arithmetic, truncated (so ``"1.9999999999999999999s"`` is exactly 2 s)."""
    value, scale = 0, 1.0
    for digit in digits:
        following = value * 10 + int(digit)
        if value > (MAX_GO_DURATION // 10) or following > MAX_GO_DURATION + 1:
            break  # Go stops taking digits into account here
        value, scale = following, scale * 10
    return int(value * (unit / scale)) if value else 0


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds: ``"1h30m"``, ``"90s"``, ``"1.5h"``, ``"300ms"``,
    ``"-2m"``, ``"0"``. Raises :class:`ValueError` with Go's message (``time: invalid duration "x"``)."""
    invalid = ValueError(f"time: invalid duration {_time_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        number = _regex(r"^([0-9]*)(?:\.([0-9]*))?").match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, fraction = int(number.group(1) or "0"), number.group(2) or ""
        if not number.group(1) and not fraction or whole > MAX_GO_DURATION + 1:
            raise invalid
        rest = rest[number.end() :]
        unit = _regex(r"^[^0-9.]*").match(rest).group(0)  # type: ignore[union-attr]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_time_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_time_quote(unit)} in duration {_time_quote(text)}")
        rest = rest[len(unit) :]
        scale = _DURATION_UNITS[unit]
        if whole > (MAX_GO_DURATION + 1) // scale:
            raise invalid
        value = whole * scale + _go_fraction(fraction, scale)
        total += value
        if value > MAX_GO_DURATION + 1 or total > MAX_GO_DURATION + 1:
            raise invalid
    if total > MAX_GO_DURATION + (1 if negative else 0):
        raise invalid
    return -total if negative else total


def _with_fraction(value: int, digits: int) -> str:
    whole, fraction = divmod(value, 10**digits)
    decimals = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{decimals}" if decimals else str(whole)


def format_go_duration(nanoseconds: int) -> str:
    """Go's ``Duration.String()``: ``"0s"``, ``"300ms"``, ``"1.5s"``, ``"1m30s"``, ``"10m0s"``, ``"1h30m0s"``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    size = abs(nanoseconds)
    if size < _SECOND:
        if size < 1_000:
            return f"{sign}{size}ns"
        if size < 1_000_000:
            return f"{sign}{_with_fraction(size, 3)}\u00b5s"
        return f"{sign}{_with_fraction(size, 6)}ms"
    seconds = _with_fraction(size % (60 * _SECOND), 9) + "s"
    minutes = size // (60 * _SECOND)
    if minutes == 0:
        return sign + seconds
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes}m{seconds}" if hours else f"{sign}{minutes}m{seconds}"


def parse_keep_alive(text: str) -> int:
    """A ``keep_alive`` string as DMR reads it, in nanoseconds: a Go duration, ``"0"`` (unload as soon
    as idle), ``"-1"`` or any negative duration (:data:`KEEP_ALIVE_FOREVER`). :class:`ValueError` otherwise."""
    if text == "-1":
        return KEEP_ALIVE_FOREVER
    try:
        duration = parse_go_duration(text)
    except ValueError as exc:
        raise ValueError(f"invalid keep_alive duration {go_quote(text)}: {exc}") from None
    return KEEP_ALIVE_FOREVER if duration < 0 else duration


def format_keep_alive(nanoseconds: int) -> str:
    """How DMR writes a keep-alive back (``/engines/ps``, ``_configure``): ``"-1"`` or ``Duration.String()``."""
    return "-1" if nanoseconds < 0 else format_go_duration(nanoseconds)


# --------------------------------------------------------------------------------------------
# POST /engines/_configure, GET /engines/_configure, POST /engines/unload (sections 5 and 7)
# --------------------------------------------------------------------------------------------

ENGINES_CONFIGURE_PATH = "/engines/_configure"
KNOWN_BACKENDS = (LLAMACPP_BACKEND, *sorted(OTHER_BACKENDS_STATUS))
"""Every backend DMR registers (installed or not): ``_configure`` answers ``404 backend not found`` for others."""
BACKEND_MODES = (COMPLETION_MODE, EMBEDDING_MODE, "reranking", "image-generation")
RUNNER_ALREADY_ACTIVE = "runner already active"
"""The ``409`` of ``_configure`` when a runner with the old settings is handling a request."""
_CONFIGURE_PATH = r"^/engines(?:/(?P<backend>[^/]+))?/_configure$"


def engines_configure_path(backend: str | None = None) -> str:
    """``/engines/_configure`` (the default backend) or ``/engines/{backend}/_configure``."""
    return f"/engines/{backend}/_configure" if backend else ENGINES_CONFIGURE_PATH


def match_configure_path(path: str) -> tuple[bool, str | None]:
    """Whether ``path`` is a ``POST`` ``_configure`` route, and the backend it names (``None``: default)."""
    found = _regex(_CONFIGURE_PATH).match(path)
    return (found is not None, found["backend"] if found else None)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python reads NaN and Infinity; Go does not


def _go_json_object(body: bytes) -> Mapping[str, Any]:
    """Decode a body as Go's ``json.Unmarshal`` into a struct would accept it: an object, or ``null``."""
    value = json.loads(body, parse_constant=_not_json)  # ValueError for invalid JSON, an empty body included
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("the body is not a JSON object")
    return value


def _go_field(data: Mapping[str, Any], key: str, kind: str) -> Any:
    """One field, checked as Go decodes it into its type; ``None`` when absent or ``null``."""
    value = data.get(key)
    if value is None:
        return None
    valid = {
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int32": isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31,
        "int": isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63,
        "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "strings": isinstance(value, list) and all(item is None or isinstance(item, str) for item in value),
        "object": isinstance(value, dict),
    }[kind]
    if not valid:
        raise ValueError(f"{key}: cannot decode {type(value).__name__} as {kind}")
    return value


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """Go's ``omitempty``: no nil, zero, empty string, empty list or empty map."""
    return {key: value for key, value in values.items() if value not in (None, "", 0, [], {})}


@dataclass(frozen=True)
class RunnerConfig:
    """A model's runner settings as ``_configure`` stores them (DMR's ``BackendConfiguration``).

    ``keep_alive`` is in nanoseconds (:func:`parse_keep_alive`), ``None`` for the runner's default
    idle timeout. ``speculative``, ``vllm`` and ``llamacpp`` keep only the keys DMR knows.
    """

    context_size: int | None = None
    runtime_flags: tuple[str, ...] = ()
    speculative: Mapping[str, Any] | None = None
    keep_alive: int | None = None
    vllm: Mapping[str, Any] | None = None
    llamacpp: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``Config`` of ``GET /engines/_configure``: DMR's keys and order, empty ones left out."""
        body: dict[str, Any] = {}
        if self.context_size is not None:
            body["context-size"] = self.context_size
        if self.runtime_flags:
            body["runtime-flags"] = list(self.runtime_flags)
        if self.speculative is not None:
            body["speculative"] = dict(self.speculative)
        if self.keep_alive is not None:
            body["keep_alive"] = format_keep_alive(self.keep_alive)
        if self.vllm is not None:
            body["vllm"] = dict(self.vllm)
        if self.llamacpp is not None:
            body["llamacpp"] = dict(self.llamacpp)
        return body

    def idle_timeout(self, default: float) -> float | None:
        """Seconds an unused runner with these settings stays loaded; ``None``: never unloaded when idle."""
        if self.keep_alive is None:
            return default
        return None if self.keep_alive < 0 else self.keep_alive / _SECOND


_SHELL_SPACES = " \t\r\n"
_SHELL_LINE_ENDS = ";&|<>"
_SHELL_ESCAPES = {"t": "\t", "n": "\n"}


def split_raw_runtime_flags(line: str) -> tuple[str, ...]:
    """``raw-runtime-flags`` split into words as DMR splits them (go-shellwords' ``Parse``, without
    environment or command substitution). Quotes group words (``''`` is an empty word); a backslash
    keeps the next character (``\\t``, ``\\n``: tab, newline), except inside single quotes; backquotes
    and ``$(...)`` are kept as text; an unquoted ``;``, ``&``, ``|``, ``<`` or ``>`` ends the line (what
    follows is ignored; a word starting with a digit before ``>`` too). :class:`ValueError` ``invalid
    command line string`` for an unclosed quote, a trailing backslash, a parenthesis outside ``$(...)``."""
    invalid = ValueError("invalid command line string")
    words: list[str] = []
    word, in_word = "", False  # in_word: a word has started, even an empty quoted one
    escaped = single = double = backquote = dollar = False
    for char in line:
        if escaped:
            word, escaped, in_word = word + _SHELL_ESCAPES.get(char, char), False, True
            continue
        if char == "\\" and not single:
            escaped = True
            continue
        quoted = single or double or backquote or dollar
        if char in _SHELL_SPACES:
            if quoted:
                word += char
            elif in_word:
                words.append(word)
                word, in_word = "", False
            continue
        if char == "'" and not (double or dollar):
            in_word, single = in_word or single, not single
            continue
        if char == '"' and not (single or dollar):
            in_word, double = in_word or double, not double
            continue
        if char in "()" and not (single or double or backquote):
            if char == "(" and (dollar or not word.endswith("$")) or char == ")" and not dollar:
                raise invalid
            dollar = char == "("
        elif char == "`" and not (single or double or dollar):
            backquote = not backquote
        elif char in _SHELL_LINE_ENDS and not quoted:
            if char == ">" and word[:1].isdigit() and word[0].isascii():
                in_word = False  # "2>": a redirection, not a word
            break
        word, in_word = word + char, True
    if in_word:
        words.append(word)
    if escaped or single or double or backquote or dollar:
        raise invalid
    return tuple(words)


@dataclass(frozen=True)
class ConfigureRequest:
    """The body of ``POST /engines/_configure``. ``mode`` ``None`` lets the runtime flags decide."""

    model: str
    mode: str | None = None
    raw_runtime_flags: str = ""
    config: RunnerConfig = field(default_factory=RunnerConfig)

    def to_json(self) -> dict[str, Any]:
        """What a client sends: ``{"model": ..., "keep_alive": "10m", "context-size": 4096, ...}``."""
        body: dict[str, Any] = {"model": self.model}
        if self.mode is not None:
            body["mode"] = self.mode
        if self.raw_runtime_flags:
            body["raw-runtime-flags"] = self.raw_runtime_flags
        body.update(self.config.to_json())
        return body

    def resolve(self) -> tuple[str, RunnerConfig]:
        """The runner mode and settings DMR stores: ``raw-runtime-flags`` split as DMR does (when
        ``runtime-flags`` is empty, :func:`split_raw_runtime_flags`); the mode given, else ``embedding``
        when the flags hold ``--embeddings``, else ``completion``. :class:`ValueError` ``invalid runtime
        flags: invalid command line string`` (DMR answers it with ``500``)."""
        config = self.config
        if not config.runtime_flags and self.raw_runtime_flags:
            try:
                flags = split_raw_runtime_flags(self.raw_runtime_flags)
            except ValueError as exc:
                raise ValueError(f"invalid runtime flags: {exc}") from None
            config = dataclasses.replace(config, runtime_flags=flags)
        if self.mode is not None:
            return self.mode, config
        return (EMBEDDING_MODE if "--embeddings" in config.runtime_flags else COMPLETION_MODE), config


_SPECULATIVE_FIELDS = {"draft_model": "string", "num_tokens": "int", "min_acceptance_rate": "number"}
_VLLM_FIELDS = {"hf-overrides": "object", "gpu-memory-utilization": "number"}
_LLAMACPP_FIELDS = {"reasoning-budget": "int32"}
"""The fields DMR knows in ``_configure``'s ``speculative``, ``vllm`` and ``llamacpp`` objects, and their Go types."""


def parse_configure_request(body: bytes) -> ConfigureRequest:
    """Decode ``_configure``'s body as DMR does; :class:`ValueError` where DMR answers ``400 invalid
    request``: invalid JSON, a field of the wrong type, an unknown ``mode``, a bad ``keep_alive``."""
    data = _go_json_object(body)
    mode = _go_field(data, "mode", "string")
    if mode is not None and mode not in BACKEND_MODES:
        raise ValueError(f"unknown backend mode: {go_quote(mode)}")
    keep_alive = _go_field(data, "keep_alive", "string")
    speculative = _go_field(data, "speculative", "object")
    vllm = _go_field(data, "vllm", "object")
    llamacpp = _go_field(data, "llamacpp", "object")
    for section, fields in ((speculative, _SPECULATIVE_FIELDS), (vllm, _VLLM_FIELDS), (llamacpp, _LLAMACPP_FIELDS)):
        for key, kind in fields.items():
            _go_field(section or {}, key, kind)
    config = RunnerConfig(
        context_size=_go_field(data, "context-size", "int32"),
        runtime_flags=tuple(flag or "" for flag in _go_field(data, "runtime-flags", "strings") or ()),
        speculative=None if speculative is None else _present(
            {key: speculative.get(key) for key in ("draft_model", "num_tokens", "min_acceptance_rate")}),
        keep_alive=None if keep_alive is None else parse_keep_alive(keep_alive),
        vllm=None if vllm is None else {
            key: vllm[key] for key in ("hf-overrides", "gpu-memory-utilization") if vllm.get(key) not in (None, {})},
        llamacpp=None if llamacpp is None else {
            key: llamacpp[key] for key in ("reasoning-budget",) if llamacpp.get(key) is not None},
    )  # fmt: skip
    return ConfigureRequest(
        model=_go_field(data, "model", "string") or "",
        mode=mode,
        raw_runtime_flags=_go_field(data, "raw-runtime-flags", "string") or "",
        config=config,
    )


def configure_entry(*, backend: str, model: str, model_id: str, mode: str, config: RunnerConfig) -> dict[str, Any]:
    """One element of ``GET /engines/_configure``: **capitalized** keys, ``Model`` the first tag."""
    return {"Backend": backend, "Model": model, "ModelID": model_id, "Mode": mode, "Config": config.to_json()}


@dataclass(frozen=True)
class UnloadRequest:
    """The body of ``POST /engines/unload``. ``backend`` ``""``: runners of any backend are evicted,
    but stored ``_configure`` settings are removed only for an exactly matching backend."""

    all: bool = False
    backend: str = ""
    models: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"all": self.all, "backend": self.backend, "models": list(self.models)}


def parse_unload_request(body: bytes) -> UnloadRequest:
    """Decode ``/engines/unload``'s body as DMR does; :class:`ValueError` where it answers ``400 invalid request``."""
    data = _go_json_object(body)
    return UnloadRequest(
        all=bool(_go_field(data, "all", "bool")),
        backend=_go_field(data, "backend", "string") or "",
        models=tuple(name or "" for name in _go_field(data, "models", "strings") or ()),
    )


# --------------------------------------------------------------------------------------------
# What a client reads back: /engines/ps and /engines/df (section 1)
# --------------------------------------------------------------------------------------------


def parse_go_time(text: str) -> datetime.datetime | None:
    """A Go ``time.Time`` as JSON writes it (RFC 3339, up to nanoseconds); ``None`` for the zero time
    (a runner in use or loading) or a value that does not parse."""
    import datetime  # local: most runs never read a time

    found = _regex(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$").match(text)
    if found is None or text == GO_ZERO_TIME:
        return None
    stamp, fraction, zone = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime.datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return parsed.replace(microsecond=micro)


@dataclass(frozen=True)
class RunningModel:
    """One runner from ``GET /engines/ps``. ``model`` is the name as the request that loaded it spelled
    it; ``last_used`` is ``None`` while it is in use or loading; ``keep_alive`` is DMR's text
    (``"10m0s"``, ``"-1"``), ``None`` when the model was not configured with one."""

    backend: str
    model: str
    mode: str
    last_used: datetime.datetime | None = None
    in_use: bool = False
    loading: bool = False
    keep_alive: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunningModel:
        keep_alive = data.get("keep_alive")
        return cls(
            backend=str(data.get("backend_name", "")),
            model=str(data.get("model_name", "")),
            mode=str(data.get("mode", "")),
            last_used=parse_go_time(str(data.get("last_used", ""))),
            in_use=data.get("in_use") is True,
            loading=data.get("loading") is True,
            keep_alive=None if keep_alive is None else str(keep_alive),
        )


@dataclass(frozen=True)
class DiskUsage:
    """``GET /engines/df``, in bytes: the model store, and the default backend's (llama.cpp's) install."""

    models: int
    default_backend: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiskUsage:
        return cls(models=int(data["models_disk_usage"]), default_backend=int(data["default_backend_disk_usage"]))
