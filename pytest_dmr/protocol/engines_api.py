"""The engines API: backends and modes, ``/engines/status``, ``ps``, ``df``, ``unload`` and ``_configure`` (sections 1, 5, 7)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol import _shapes
from pytest_dmr.protocol.durations import NANOSECONDS_PER_SECOND, format_keep_alive, parse_keep_alive
from pytest_dmr.protocol.encoding import dumps, go_quote, loads, parse_go_time
from pytest_dmr.protocol.routes import EMBEDDINGS

if TYPE_CHECKING:
    import datetime


LLAMACPP_BACKEND = "llama.cpp"
OTHER_BACKENDS_STATUS: dict[str, str] = {
    "diffusers": "Not Installed",
    "mlx": "Not Installed: only supported on Apple Silicon",
    "sglang": "Not Installed: package not installed",
    "vllm": "Not Installed: binary not found",
}
"""How a Linux runner without GPUs reports the backends other than llama.cpp on ``/engines/status``."""

DEFAULT_KEEP_ALIVE_SECONDS = 300.0
"""How long DMR keeps an idle runner loaded without a configured keep-alive (``inference.KeepAliveDefault``)."""
COMPLETION_MODE = "completion"
EMBEDDING_MODE = "embedding"


def mode_for_endpoint(endpoint: str) -> str:
    """The runner mode an inference endpoint needs: embeddings get their own runner."""
    return EMBEDDING_MODE if endpoint == EMBEDDINGS else COMPLETION_MODE


def engines_status_body(statuses: Mapping[str, str]) -> bytes:
    """``GET /engines/status``: keys sorted (a Go map), and no trailing newline."""
    return dumps(dict(sorted(statuses.items()))).encode()


def llamacpp_status(version: str) -> str:
    """The llama.cpp entry of ``/engines/status`` for a bundled Linux binary."""
    return f"Running: llama.cpp {version}"


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


KNOWN_BACKENDS = (LLAMACPP_BACKEND, *sorted(OTHER_BACKENDS_STATUS))
"""Every backend DMR registers (installed or not): ``_configure`` answers ``404 backend not found`` for others."""


def unavailable_backend(backend: str) -> tuple[int, str]:
    """The status and plain-text error of an inference request (its model found) for a registered
    backend other than llama.cpp on a Linux runner without it: the installer's wait fails."""
    return (412, "vLLM binary not found") if backend == "vllm" else (503, "backend installation failed: platform not supported")
BACKEND_MODES = (COMPLETION_MODE, EMBEDDING_MODE, "reranking", "image-generation")
RUNNER_ALREADY_ACTIVE = "runner already active"
"""The ``409`` of ``_configure`` when a runner with the old settings is handling a request."""


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python reads NaN and Infinity; Go does not


def _go_json_object(body: bytes) -> Mapping[str, Any]:
    """Decode a body as Go's ``json.Unmarshal`` into a struct would accept it: an object, or ``null``."""
    value = loads(body, parse_constant=_not_json)  # ValueError for invalid JSON, an empty body included
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
        "number": _shapes.is_number(value),  # float64: not an integer too large for one
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
        return None if self.keep_alive < 0 else self.keep_alive / NANOSECONDS_PER_SECOND


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
    def from_json(cls, data: object) -> RunningModel:
        """One ``/engines/ps`` entry; :class:`~pytest_dmr.errors.MalformedResponseError` for a field of the wrong type."""
        body = _shapes.json_object(data, "a running model")
        return cls(
            backend=_shapes.text(body.get("backend_name"), "a running model's backend_name"),
            model=_shapes.text(body.get("model_name"), "a running model's model_name"),
            mode=_shapes.text(body.get("mode"), "a running model's mode"),
            last_used=parse_go_time(_shapes.optional_text(body.get("last_used"), "a running model's last_used")),
            in_use=body.get("in_use") is True,
            loading=body.get("loading") is True,
            keep_alive=_shapes.optional_text(body.get("keep_alive"), "a running model's keep_alive"),
        )


@dataclass(frozen=True)
class DiskUsage:
    """``GET /engines/df``, in bytes: the model store, and the default backend's (llama.cpp's) install."""

    models: int
    default_backend: int

    @classmethod
    def from_json(cls, data: object) -> DiskUsage:
        """``/engines/df``'s body; :class:`~pytest_dmr.errors.MalformedResponseError` unless both sizes are whole numbers."""
        body = _shapes.json_object(data, "the disk usage")
        return cls(
            models=_shapes.integer(body.get("models_disk_usage"), "models_disk_usage", default=None),
            default_backend=_shapes.integer(body.get("default_backend_disk_usage"), "default_backend_disk_usage", default=None),
        )
