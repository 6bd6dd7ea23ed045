"""Every parser of a runner's answers (and of the URLs and values users give), against any input.

Whatever a parser is given (valid JSON of the wrong shape, huge numbers, NaN and Infinity, deep
nesting, keys that are not strings, bytes that are not UTF-8), it returns a value of its declared
type or raises a :class:`~pytest_dmr.errors.DMRError`; never a raw ``TypeError``, ``KeyError``,
``OverflowError`` or ``RecursionError``. The few parsers documented to raise :class:`ValueError`
(what the stand-in servers turn into DMR's ``400``) may raise that, and nothing else.

Inputs are drawn with hypothesis, derandomized (the same examples on every run and machine).
``benchmarks/fuzz_escapes.py`` runs the same cases and counts the escapes instead of failing.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import math
import reprlib
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_dmr import errors
from pytest_dmr.discovery_http import _json as probe_json, _parse_response
from pytest_dmr.emulator import gguf
from pytest_dmr.protocol import (
    addresses,
    cors,
    durations,
    encoding,
    engines_api,
    error_bodies,
    model_info,
    model_names,
    openai_api,
    pull_stream,
    routes,
    sse,
)
from pytest_dmr.settings import Settings, resolve

EXAMPLES = 500
FUZZ = settings(
    derandomize=True,  # the same examples everywhere: CI cannot flake on a new one
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

ODD_NUMBERS = st.sampled_from([10**400, -(10**400), 2**63, 2**64, -(2**63) - 1, 1e308, -0.0, 5e-324, math.nan, math.inf, -math.inf])
ODD_TEXTS = st.sampled_from(["", " ", "\x00", "\ud800", "\u0661\u0662", "\U0001d7d7", "\r\n", "null", "[DONE]", "9" * 5000])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | ODD_NUMBERS | ODD_TEXTS
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10
)
"""Any value ``json.loads`` can give (NaN and Infinity included), not deeply nested."""


def nested(depth: int, kind: str) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


DEEP = st.builds(nested, st.integers(1000, 1600), st.sampled_from(["list", "dict"]))
"""Nesting deeper than Python's recursion limit (``json.loads`` of a hostile body can give some)."""
PY_KEYS = st.text(max_size=6) | st.integers() | st.none() | st.floats() | st.booleans()
PYTHON = st.recursive(
    SCALARS | st.binary(max_size=4) | st.just(()), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(PY_KEYS, inner, max_size=4),
    max_leaves=10,
)
"""What a Python caller might pass: keys that are not strings, bytes, tuples."""
ANY_VALUE = JSON | DEEP | PYTHON

_DEEP_MARK = "\x00deep\x00"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


@st.composite
def mutated(draw: st.DrawFn, valid: Any, replacements: st.SearchStrategy[Any] = ANY_VALUE) -> Any:
    """A valid document with one value (or the whole) replaced by another, or one key removed."""
    document = copy.deepcopy(valid)
    path = draw(st.sampled_from(list(_paths(document))))
    if not path:
        return draw(replacements)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(replacements)
    return document


def shaped(*valid: Any) -> st.SearchStrategy[Any]:
    """Valid documents, the same with one part wrong, and anything at all."""
    return st.sampled_from(valid) | st.one_of(*(mutated(document) for document in valid)) | ANY_VALUE


@st.composite
def _mutated_text(draw: st.DrawFn, valid: Any) -> str:
    document = draw(mutated(valid, JSON | st.just(_DEEP_MARK)))
    text = json.dumps(document)
    depth = draw(st.integers(1000, 5000))
    return text.replace(json.dumps(_DEEP_MARK), "[" * depth + "]" * depth)


DEEP_TEXT = st.integers(900, 100_000).flatmap(
    lambda depth: st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth])
)
ODD_JSON_TEXT = st.sampled_from(["NaN", "-Infinity", "1e999", "9" * 5000, '{"a":1e999}', "{", "", '"\\ud800"', "[1,]"])


def json_text(*valid: Any) -> st.SearchStrategy[str]:
    """Bodies: valid documents, the same with one part wrong (deep nesting included), any JSON, any text."""
    return (
        st.sampled_from([json.dumps(document) for document in valid])
        | st.one_of(*(_mutated_text(document) for document in valid))
        | JSON.map(json.dumps)
        | DEEP_TEXT
        | ODD_JSON_TEXT
        | st.text()
    )


def json_bytes(*valid: Any) -> st.SearchStrategy[bytes]:
    """Bodies as bytes: :func:`json_text` encoded (lone surrogates kept), and bytes that are not UTF-8."""
    return json_text(*valid).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=64) | st.just(b"\xff\xfe{}")


# --------------------------------------------------------------------------------------------
# Cases: a parser, its inputs, the type it must return, what it may raise
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    inputs: st.SearchStrategy[Any]
    parse: Callable[[Any], Any]
    returns: Callable[[Any], bool]
    may_raise: tuple[type[Exception], ...] = (errors.DMRError,)


def outcome(case: Case, value: Any) -> tuple[str, BaseException | None]:
    """``("returned", None)``, ``("raised", None)`` for an allowed error, or ``("escaped", exc)``."""
    try:
        result = case.parse(value)
    except case.may_raise:
        return "raised", None
    except Exception as exc:  # noqa: BLE001 - what this test is looking for
        return "escaped", exc
    if not case.returns(result):
        return "escaped", TypeError(f"returned {type(result).__name__}: {reprlib.repr(result)}")
    return "returned", None


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def str_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(item, str) for item in value)


def str_keyed(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)


def model_info_ok(info: Any) -> bool:
    return (
        isinstance(info, model_info.ModelInfo)
        and is_str(info.id)
        and str_tuple(info.tags)
        and is_int(info.created)
        and str_keyed(info.config)
        and is_str(info.name)
        and isinstance(info.size, (str, type(None)))
        and isinstance(info.matches("smollm2"), bool)
        and isinstance(info.to_openai(), dict)
    )


def chat_ok(answer: Any) -> bool:
    return (
        isinstance(answer, openai_api.ChatAnswer)
        and is_str(answer.text)
        and all(str_keyed(call) for call in answer.tool_calls)
        and isinstance(answer.finish_reason, (str, type(None)))
        and str_keyed(answer.usage)
        and all(is_int(count) for count in answer.usage.values())
        and isinstance(answer.model, (str, type(None)))
    )


def pull_ok(progress: Any) -> bool:
    if progress is None:
        return True
    return (
        isinstance(progress, pull_stream.PullProgress)
        and all(is_str(value) for value in (progress.type, progress.message, progress.mode))
        and isinstance(progress.layer_id, (str, type(None)))
        and all(is_int(value) for value in (progress.total, progress.layer_size, progress.layer_current))
    )


def running_ok(running: Any) -> bool:
    return (
        isinstance(running, engines_api.RunningModel)
        and all(is_str(value) for value in (running.backend, running.model, running.mode))
        and isinstance(running.last_used, (datetime.datetime, type(None)))
        and isinstance(running.in_use, bool)
        and isinstance(running.loading, bool)
        and isinstance(running.keep_alive, (str, type(None)))
    )


def configure_ok(request: Any) -> bool:
    mode, config = request.resolve()  # may raise ValueError too, like parsing
    return isinstance(request, engines_api.ConfigureRequest) and is_str(mode) and str_tuple(config.runtime_flags)


def sse_events(lines: list[str]) -> list[Any]:
    decoder = sse.SSEDecoder()
    events = [decoder.feed(line) for line in lines]
    return [*events, decoder.flush(), decoder.error, *sse.iter_sse_data(lines)]


GO_TIME = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$"
DURATION = r"^[-+]?(?:[0-9]*(?:\.[0-9]*)?(?:ns|us|\u00b5s|ms|s|m|h|x)?){1,4}$"
URL_PARTS = st.tuples(
    st.sampled_from(["", "http://", "https://", "tcp://", "ftp://", "://", "http:/"]),
    st.sampled_from(["localhost", "127.0.0.1", "[::1]", "[::1", "::1]", "[", "]", "h\u0131st", "a b", "", "user:pw@h", "\uff0e"])
    | st.text(max_size=6),
    st.sampled_from(["", ":12434", ":0", ":99999", ":-1", ":x", ":", ":\u0661"]),
    st.sampled_from(["", "/", "/engines", "/engines/", "/engines/v1", "/engines/llama.cpp/v1", "/v1", "//engines//v1//",
                     "/exp/vDD4.40", "/a/engines", "/engines/llama.cpp"]) | st.text(max_size=8),
    st.sampled_from(["", "?q=1", "#f"]),
).map("".join)


def gguf_file() -> bytes:
    """A small valid GGUF v3 header: scalars, a string, arrays (one over the 50-item cut), a tensor."""

    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    metadata = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("llama.context_length") + struct.pack("<II", 4, 4096),
        string("general.file_type") + struct.pack("<II", 4, 15),
        string("x.floats") + struct.pack("<IIQ", 9, 6, 2) + struct.pack("<ff", 1.5, 2.5),
        string("x.many") + struct.pack("<IIQ", 9, 4, 60) + struct.pack("<60I", *range(60)),
        string("x.names") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("b"),
    ]
    tensor = string("w") + struct.pack("<I", 2) + struct.pack("<QQ", 8, 4) + struct.pack("<IQ", 0, 0)
    return b"GGUF" + struct.pack("<IQQ", 3, 1, len(metadata)) + b"".join(metadata) + tensor


@st.composite
def gguf_bytes(draw: st.DrawFn) -> bytes:
    """The valid header cut short, with bytes overwritten (sizes, counts, types), or anything."""
    data = bytearray(gguf_file())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        patch = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff" * 8, b"\x09\x00\x00\x00", b"\x0d\x00\x00\x00"]))
        data[at : at + len(patch)] = patch
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


def header_ok(header: Any) -> bool:
    return isinstance(header, gguf.GGUFHeader) and is_int(header.parameters) and str_keyed(header.metadata)


CHAT_CHUNK = openai_api.chat_chunk(id="c", created=1, model="m", delta={"role": "assistant", "content": "Hi"})
TEXT_CHUNK = openai_api.text_completion(id="c", created=1, model="m", text="yo", finish_reason=None)
USAGE_CHUNK = openai_api.usage_chunk(id="c", created=1, model="m", prompt_tokens=1, completion_tokens=2)
CHAT = openai_api.chat_completion(
    id="c", created=1, model="m", content="Hi", finish_reason="tool_calls", prompt_tokens=1, completion_tokens=2,
    tool_calls=[openai_api.tool_call(id="t", name="f", arguments="{}")],
)
CHAT_PARTS = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}]}}], "usage": {"x": {"y": 1}}}
COMPLETION = openai_api.text_completion(id="c", created=1, model="m", text="yo", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
EMBEDDINGS = openai_api.embeddings_response(model="m", vectors=[[0.5, 1.0], [2, -1e300]], prompt_tokens=2)
MODEL = model_info.ModelInfo(
    id="sha256:" + "1" * 64,
    tags=("docker.io/ai/smollm2:latest",),
    created=1742816981,
    config={"format": "gguf", "architecture": "llama", "size": "256.35 MiB", "context_size": 8192},
).to_json()
PULL = pull_stream.PullProgress("progress", "Downloaded: 1.00 MB", 9, "sha256:c", 9, 3).to_json()
PULL_OLD = {"type": "progress", "message": "m", "total": 9, "layer": {"ID": "sha256:c", "Size": 9, "Current": 3}}
PS = engines_api.ps_entry(
    backend="llama.cpp", model_name="ai/smollm2", mode="completion", last_used="2025-03-24T12:29:41.5Z", keep_alive="5m0s"
)
DF = {"models_disk_usage": 268435456, "default_backend_disk_usage": 104857600}
CONFIGURE = engines_api.ConfigureRequest(
    model="ai/smollm2",
    mode="completion",
    raw_runtime_flags="--threads 2 'a b'",
    config=engines_api.RunnerConfig(
        context_size=4096,
        speculative={"draft_model": "ai/x", "num_tokens": 4, "min_acceptance_rate": 0.5},
        keep_alive=600 * durations.NANOSECONDS_PER_SECOND,
        vllm={"gpu-memory-utilization": 0.5},
        llamacpp={"reasoning-budget": 10},
    ),
).to_json()
UNLOAD = engines_api.UnloadRequest(all=False, backend="llama.cpp", models=("ai/smollm2",)).to_json()
ERROR_BODIES = (
    openai_api.LOADING_MODEL_BODY,
    openai_api.backend_error_body(400, "bad"),
    {"error": "model not found"},
    {"message": "unable to load runner: x"},
)
ENV_NAMES = ("DMR_MODE", "DMR_URL", "MODEL_RUNNER_HOST", "DMR_MODEL", "DMR_PROVISION", "DMR_IMAGE", "DMR_PULL", "DMR_REUSE",
             "DMR_REQUIRE_LIVE", "DMR_DISCOVERY", "DMR_TIMEOUT", "LOCAL_MODEL_TIMEOUT", "DMR_URL_URL", "DMR_URL_MODEL")
ENV_VALUES = st.sampled_from(["", "0", "-1", "1e999", "nan", "inf", "1_000", "http://[::1", "live", "yes", "url,,host", "\u0661"])
ENVIRON = st.dictionaries(st.sampled_from(ENV_NAMES), ENV_VALUES | st.text(st.characters(exclude_characters="\x00"), max_size=12))
VALUE_ERROR = (ValueError,)
"""What the stand-in servers answer with DMR's 400 (or 500): the documented error of request parsers."""


def _error_from(args: tuple[int, str]) -> errors.RunnerHTTPError:
    return error_bodies.error_from_response(args[0], args[1], runner_url="http://r", model="m")


CASES = [
    Case("chunk_text", shaped(CHAT_CHUNK, TEXT_CHUNK, USAGE_CHUNK), openai_api.chunk_text, is_str),
    Case("message_text", shaped("Hi", [{"type": "text", "text": "a"}, {"type": "image_url"}]), openai_api.message_text, is_str, ()),
    Case(
        "last_user_message",
        shaped({"messages": [{"role": "user", "content": "Hi"}]}, {"prompt": ["a", "b"]}, {"input": "x"}).filter(
            lambda value: isinstance(value, Mapping)
        ),
        openai_api.last_user_message,
        is_str,
        (),
    ),
    Case("read_chat_completion", shaped(CHAT, CHAT_PARTS), openai_api.read_chat_completion, chat_ok),
    Case("read_completion_text", shaped(COMPLETION), openai_api.read_completion_text, is_str),
    Case(
        "read_embeddings",
        shaped(EMBEDDINGS),
        lambda body: openai_api.read_embeddings(body, 2),
        lambda vectors: len(vectors) == 2 and all(isinstance(x, float) and math.isfinite(x) for vector in vectors for x in vector),
    ),
    Case("ModelInfo.from_json", shaped(MODEL), model_info.ModelInfo.from_json, model_info_ok),
    Case(
        "model_ids_from_openai_list",
        shaped(model_info.openai_model_list([model_info.ModelInfo.from_json(MODEL)])),
        model_info.model_ids_from_openai_list,
        lambda ids: isinstance(ids, list) and all(isinstance(name, str) for name in ids),
    ),
    Case(
        "parse_pull_line",
        st.tuples(json_text(PULL, PULL_OLD) | st.just(pull_stream.html_escape(json.dumps(PULL))), st.booleans()),
        lambda args: pull_stream.parse_pull_line(args[0], escaped=args[1]),
        pull_ok,
        (),  # a line it cannot use is None
    ),
    Case("RunningModel.from_json", shaped(PS), engines_api.RunningModel.from_json, running_ok),
    Case(
        "DiskUsage.from_json",
        shaped(DF),
        engines_api.DiskUsage.from_json,
        lambda usage: is_int(usage.models) and is_int(usage.default_backend),
    ),
    Case(
        "error_from_response",
        st.tuples(st.sampled_from([400, 404, 412, 500, 503]) | st.integers(0, 999), json_text(*ERROR_BODIES)),
        _error_from,
        lambda error: isinstance(error, errors.RunnerHTTPError) and is_str(str(error)),
        (),
    ),
    Case(
        "is_loading_response",
        st.tuples(st.just(503), json_text(*ERROR_BODIES)),
        lambda args: error_bodies.is_loading_response(*args),
        lambda loading: isinstance(loading, bool),
        (),
    ),
    Case(
        "parse_go_time",
        st.from_regex(GO_TIME, fullmatch=True) | st.floats(0, 1e10).map(encoding.go_time) | st.text(max_size=40),
        encoding.parse_go_time,
        lambda parsed: isinstance(parsed, (datetime.datetime, type(None))),
        (),
    ),
    Case(
        "parse_runner_url",
        URL_PARTS | st.text(),
        addresses.parse_runner_url,
        lambda address: isinstance(address, addresses.RunnerAddress) and is_str(address.authority),
        (errors.ConfigurationError,),
    ),
    Case(
        "SSEDecoder",
        st.lists(
            st.sampled_from(["", "\r", ":", ": keep-alive", "data:", "data: [DONE]", "error: boom", "event: x", "id: 1", "data"])
            | st.text().map(lambda text: "data: " + text)
            | st.text(),
            max_size=12,
        ),
        sse_events,
        lambda events: all(isinstance(event, (str, type(None))) for event in events),
        (),
    ),
    Case(
        "parse_configure_request",
        json_bytes(CONFIGURE, {"model": "m", "runtime-flags": ["--embeddings"]}),
        lambda body: engines_api.parse_configure_request(body),
        configure_ok,
        VALUE_ERROR,
    ),
    Case(
        "parse_unload_request",
        json_bytes(UNLOAD, {"all": True}),
        engines_api.parse_unload_request,
        lambda request: isinstance(request, engines_api.UnloadRequest) and str_tuple(request.models),
        VALUE_ERROR,
    ),
    Case(
        "split_raw_runtime_flags",
        st.text(st.sampled_from(" \t\\'\"`$()<>;&|2a\n")) | st.text(),
        engines_api.split_raw_runtime_flags,
        str_tuple,
        VALUE_ERROR,
    ),
    Case(
        "parse_go_duration",
        st.from_regex(DURATION, fullmatch=True) | st.sampled_from(["9" * 5000 + "s", "1." + "9" * 5000 + "s", "-", "+0"]) | st.text(),
        durations.parse_go_duration,
        lambda value: is_int(value) and -(2**63) <= value < 2**63,
        VALUE_ERROR,
    ),
    Case(
        "parse_keep_alive",
        st.from_regex(DURATION, fullmatch=True) | st.sampled_from(["-1", "0", "9" * 5000 + "h"]) | st.text(),
        durations.parse_keep_alive,
        is_int,
        VALUE_ERROR,
    ),
    Case(
        "model names",
        st.text() | st.sampled_from(["hf.co/", "a:b@c", "sha256:", "localhost:5000/x"]),
        lambda ref: (model_names.normalize_model_name(ref), model_names.canonical_model_name(ref),
                     model_names.short_model_name(ref), model_names.is_valid_reference(ref),
                     model_names.partial_name_matches(ref, "ai/smollm2:latest")),
        lambda results: all(isinstance(result, (str, bool)) for result in results),
        (),
    ),
    Case(
        "routes and CORS",
        st.tuples(st.text() | st.sampled_from(["/engines//v1//chat", "/v1/", "/engines/x/_configure"]), st.text(max_size=8) | st.none()),
        lambda args: (routes.clean_path(args[0]), routes.match_inference_path(args[0]), routes.match_configure_path(args[0]),
                      cors.cors_answer(args[0], "OPTIONS", args[1], cors.allowed_origins(args[1]))),
        lambda results: is_str(results[0]),
        (),
    ),
    Case("read GGUF header", gguf_bytes() | st.binary(max_size=64), lambda data: gguf.parse_header(io.BytesIO(data)), header_ok),
    Case(
        "discovery: probe answer",
        json_bytes({"data": []}).map(lambda body: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body)
        | st.binary(max_size=64)
        | st.sampled_from([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 \u0662\r\n\r\n".encode()]),
        lambda raw: (_parse_response(raw), probe_json(raw.partition(b"\r\n\r\n")[2])),
        lambda results: is_int(results[0][0]) and isinstance(results[0][1], bytes),
        VALUE_ERROR,  # _get turns it into a probe's ERROR outcome
    ),
    Case("settings from the environment", ENVIRON, lambda environ: resolve({}, {}, environ), lambda found: isinstance(found, Settings)),
]


def run_case(case: Case, record: Callable[[Any, str, BaseException | None], None]) -> None:
    """Feed the case its examples, reporting each outcome to ``record``."""

    @FUZZ
    @given(case.inputs)
    def examples(value: Any) -> None:
        record(value, *outcome(case, value))

    examples()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_parser_returns_its_type_or_raises_a_dmr_error(case: Case) -> None:
    seen: dict[str, int] = {"returned": 0, "raised": 0}

    def record(value: Any, result: str, escaped: BaseException | None) -> None:
        if escaped is not None:
            raise AssertionError(f"{case.name}({reprlib.repr(value)}) escaped: {type(escaped).__name__}: {escaped}") from escaped
        seen[result] += 1

    run_case(case, record)
    assert seen["returned"] > 0, f"{case.name}: no example parsed; the inputs are too far off to test it"
    if case.may_raise:
        assert seen["raised"] > 0, f"{case.name}: no example was refused; the inputs are too tame to test it"


# --------------------------------------------------------------------------------------------
# The escapes the fuzzing found, as plain examples
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunk",
    [{"choices": [{"delta": 5}]}, {"choices": [{"delta": {"content": 5}}]}, {"choices": 7}, {"choices": ["x"]}, {"choices": [{"text": [1]}]}, 3],
)
def test_a_chunk_of_another_shape_is_a_malformed_response_not_a_type_error(chunk: Any) -> None:
    with pytest.raises(errors.MalformedResponseError, match="cannot be read: .*(chunk|delta|content)"):
        openai_api.chunk_text(chunk)


def test_malformed_response_can_name_the_runner_and_model() -> None:
    with pytest.raises(errors.MalformedResponseError) as caught:
        model_info.ModelInfo.from_json({"id": "x", "tags": 5})
    named = caught.value.naming(runner_url="http://127.0.0.1:12434", model="ai/smollm2")
    assert str(named).startswith("the runner's answer cannot be read: a model's tags is a number, not a list of strings")
    assert "runner http://127.0.0.1:12434, model ai/smollm2" in str(named) and named.hint == caught.value.hint


def test_an_unclosed_ipv6_bracket_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="not a usable runner URL"):
        addresses.parse_runner_url("http://[::1")


@pytest.mark.parametrize("url", ["http://localhost:12434/engines", "http://localhost:12434/engines/", "localhost:12434//engines"])
def test_the_engines_root_is_the_runner_with_the_default_prefix(url: str) -> None:
    assert addresses.parse_runner_url(url) == addresses.RunnerAddress("http://localhost:12434", "/engines/v1")


def test_json_nested_too_deeply_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        encoding.loads("[" * 100_000 + "]" * 100_000)
    assert error_bodies.error_from_response(500, "{" * 5000, runner_url=None, model=None).status_code == 500


def test_a_gguf_header_with_a_huge_string_length_is_cut_short() -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**63)
    with pytest.raises(gguf.GGUFError, match="cut short"):
        gguf.parse_header(io.BytesIO(data))
    assert gguf.parse_header(io.BytesIO(gguf_file())).metadata["x.floats"] == "1.500000, 2.500000"
