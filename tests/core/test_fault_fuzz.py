"""Property-based tests of the adapter and the client against hostile answers (issue 12).

Whatever an ``httpx2.MockTransport`` answers (any status, any body bytes, JSON of any shape, any
sequence of SSE or pull lines), callers see only :class:`~pytest_dmr.errors.DMRError` and streams
yield only ``str``. Bodies are mostly valid DMR answers with one part replaced by a hostile value,
so the search reaches past the first shape check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_dmr import errors
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.client import ModelRunnerClient
from pytest_dmr.protocol import encoding

RUNNER = "http://127.0.0.1:12434"
MODEL = "ai/smollm2"
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from([2**64, -(2**70), 1e308, "", "[DONE]", "sha256:" + "a" * 64])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
DEEP = json.dumps([[]]).replace("[]", "[" * 50_000 + "]" * 50_000)  # nesting deeper than the stack

CHAT = {"choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": "hi",
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "model": MODEL, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
TEXT = {"choices": [{"text": "hi", "index": 0, "finish_reason": "stop"}], "model": MODEL}
EMBEDDINGS = {"data": [{"embedding": [0.1, 0.2], "index": 0, "object": "embedding"}], "model": MODEL}
OPENAI_LIST = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 1, "owned_by": "docker"}]}
MODEL_INFO = {"id": "sha256:" + "a" * 64, "tags": [MODEL + ":latest"], "created": 1, "config": {"size": "1 GB"}}
PS_ENTRY = {"backend_name": "llama.cpp", "model_name": MODEL, "mode": "completion", "last_used": "2024-01-01T00:00:00Z",
            "in_use": False, "loading": False, "keep_alive": "5m0s"}
CHUNK = {"choices": [{"delta": {"content": "hi"}, "index": 0}]}
PULL = {"type": "success", "message": "Model pulled successfully", "total": 1, "layer": {"id": "l", "size": 1, "current": 1}}
TEMPLATES: list[Any] = [
    CHAT, TEXT, EMBEDDINGS, OPENAI_LIST, MODEL_INFO, [MODEL_INFO], [PS_ENTRY],
    {"models_disk_usage": 1, "default_backend_disk_usage": 2}, {"version": "v1.0.0"}, {"unloaded_runners": 1},
    {"llama.cpp": "Running"}, [{"Untagged": MODEL}, {"Deleted": "sha256:x"}],
    {"error": {"code": 500, "message": "boom", "type": "server_error"}},
    CHUNK, PULL,
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, prefix + (index,))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


WRONG_KINDS = st.sampled_from(["x", 7, -1, 1.5, True, None, [], [1, "a"], {}, {"a": {"b": []}}, [[[[]]]], 2**64])


@st.composite
def mutated_json(draw: st.DrawFn, templates: tuple[Any, ...] = ()) -> Any:
    """A DMR answer (one of ``templates`` mostly) with one to three parts, possibly the whole, replaced
    by a value of another kind or any JSON value."""
    value = draw(st.sampled_from(templates) if templates and draw(st.integers(0, 3)) else st.sampled_from(TEMPLATES))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        value = _replace(value, path, draw(WRONG_KINDS | JSON_VALUES))
    return value


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def bodies(templates: tuple[Any, ...]) -> st.SearchStrategy[bytes]:
    mutated = mutated_json(templates).map(_dump)
    return st.one_of(
        mutated, mutated, mutated, mutated,
        JSON_VALUES.map(_dump),
        st.binary(max_size=64),
        st.sampled_from([DEEP.encode(), b"1" * 5000, b"[" + b"1" * 5000 + b"]", b'{"data": 1e999}', b"\xff\xfe{", b"NaN", b""]),
    )


SSE_LINES = st.one_of(
    mutated_json((CHUNK, TEXT)).map(lambda value: "data: " + json.dumps(value, allow_nan=True)),
    st.sampled_from(["data: [DONE]", "", ": keep-alive", "event: x", "error: boom", "data: {", "data: " + DEEP,
                     'error: {"message": "x"}', "data: null", "\r", "retry: 5"]),
    st.text(max_size=20),
)
PULL_LINES = st.one_of(
    mutated_json((PULL,)).map(lambda value: json.dumps(value, allow_nan=True)),
    st.sampled_from(['{"type": "error", "message": "x"}', '{"type": "success", "message": "done"}', "", DEEP]),
    st.text(max_size=20),
)
STATUSES = st.sampled_from([200, 200, 200, 200, 202, 204, 400, 404, 405, 409, 412, 500, 503, 599])
CONTENT_TYPES = st.sampled_from([encoding.JSON_CONTENT_TYPE, encoding.EVENT_STREAM, encoding.TEXT_PLAIN, None])


@st.composite
def answers(
    draw: st.DrawFn, templates: tuple[Any, ...] = (), kind: str = "body"
) -> Callable[[httpx2.Request], httpx2.Response]:
    """One hostile answer, served for every request of an example: mostly a 200 of the ``kind`` the
    call expects, made from ``templates``."""
    expected = draw(st.integers(0, 3)) > 0
    status = 200 if expected else draw(STATUSES)
    content_type = encoding.EVENT_STREAM if kind == "sse" else encoding.JSON_CONTENT_TYPE
    if not expected:
        content_type, kind = draw(CONTENT_TYPES), draw(st.sampled_from(["body", "sse", "pull"]))
    if kind == "sse":
        body = ("\n".join(draw(st.lists(SSE_LINES, max_size=6))) + draw(st.sampled_from(["", "\n", "\n\n"]))).encode()
    elif kind == "pull":
        body = "\n".join(draw(st.lists(PULL_LINES, max_size=5))).encode()
    else:
        body = draw(bodies(templates))
    headers = {"content-type": content_type} if content_type else {}

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers=headers, content=body)

    return answer


async def _no_sleep(seconds: float) -> None:
    return None


def _adapter(answer: Callable[[httpx2.Request], httpx2.Response]) -> DockerModelRunnerAdapter:
    return DockerModelRunnerAdapter(RUNNER, MODEL, transport=httpx2.MockTransport(answer), max_retries=1,
                                    sleep=_no_sleep)


async def _collect(adapter: DockerModelRunnerAdapter) -> list[str]:
    pieces = [piece async for piece in adapter.stream_generate("hi")]
    assert all(type(piece) is str for piece in pieces), pieces
    return pieces


ADAPTER_CALLS: dict[str, Callable[[DockerModelRunnerAdapter], Any]] = {
    "generate": lambda adapter: adapter.generate("hi"),
    "chat": lambda adapter: adapter.chat([{"role": "user", "content": "hi"}]),
    "stream_generate": _collect,
    "complete": lambda adapter: adapter.complete("hi"),
    "embed": lambda adapter: adapter.embed(["a"]),
    "get_available_models": lambda adapter: adapter.get_available_models(),
    "check_availability": lambda adapter: adapter.check_availability(),
}

ADAPTER_TEMPLATES: dict[str, tuple[Any, ...]] = {
    "generate": (CHAT,), "chat": (CHAT,), "stream_generate": (CHAT, CHUNK), "complete": (TEXT,),
    "embed": (EMBEDDINGS,), "get_available_models": (OPENAI_LIST, [MODEL_INFO]), "check_availability": (OPENAI_LIST,),
}
RESULT_TYPES: dict[str, Any] = {
    "generate": str, "stream_generate": list, "complete": str, "embed": list, "get_available_models": list,
    "check_availability": bool,
}


async def _adapter_call(name: str, answer: Callable[[httpx2.Request], httpx2.Response]) -> Any:
    adapter = _adapter(answer)
    try:
        return await ADAPTER_CALLS[name](adapter)
    finally:
        await adapter.aclose()


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(ADAPTER_CALLS)))
def test_the_adapter_raises_only_dmr_errors(data: st.DataObject, name: str) -> None:
    answer = data.draw(answers(ADAPTER_TEMPLATES[name], "sse" if name == "stream_generate" else "body"))
    try:
        result = asyncio.run(_adapter_call(name, answer))
    except errors.DMRError as exc:
        assert exc.runner_url == RUNNER
        assert name == "get_available_models" or exc.model == MODEL, exc
        return
    if name in RESULT_TYPES:
        assert isinstance(result, RESULT_TYPES[name])
    if name == "get_available_models":
        assert all(type(item) is str for item in result)
    if name == "embed":
        assert all(type(value) is float for vector in result for value in vector)


CLIENT_CALLS: dict[str, Callable[[ModelRunnerClient], Any]] = {
    "is_running": lambda client: client.is_running(),
    "is_model_runner": lambda client: client.is_model_runner(),
    "engines_status": lambda client: client.engines_status(),
    "list_models": lambda client: client.list_models(),
    "list_openai_models": lambda client: client.list_openai_models(),
    "inspect": lambda client: client.inspect(MODEL),
    "has_model": lambda client: client.has_model(MODEL),
    "delete": lambda client: client.delete(MODEL),
    "version": lambda client: client.version(),
    "running_models": lambda client: client.running_models(),
    "disk_usage": lambda client: client.disk_usage(),
    "unload": lambda client: client.unload(MODEL),
    "configure": lambda client: client.configure(MODEL, keep_alive="5m"),
    "pull": lambda client: client.pull(MODEL, progress=lambda progress: None),
}
CLIENT_TEMPLATES: dict[str, tuple[Any, ...]] = {
    "is_running": (OPENAI_LIST,), "is_model_runner": (), "engines_status": ({"llama.cpp": "Running"},),
    "list_models": ([MODEL_INFO],), "list_openai_models": (OPENAI_LIST,), "inspect": (MODEL_INFO,),
    "has_model": ([MODEL_INFO], OPENAI_LIST), "delete": ([{"Untagged": MODEL}, {"Deleted": "sha256:x"}],),
    "version": ({"version": "v1.0.0"},), "running_models": ([PS_ENTRY],),
    "disk_usage": ({"models_disk_usage": 1, "default_backend_disk_usage": 2},), "unload": ({"unloaded_runners": 1},),
    "configure": (), "pull": (PULL,),
}
NAMES_THE_MODEL = {"inspect", "delete", "pull", "configure", "has_model"}


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(CLIENT_CALLS)))
def test_the_client_raises_only_dmr_errors(data: st.DataObject, name: str) -> None:
    answer = data.draw(answers(CLIENT_TEMPLATES[name], "pull" if name == "pull" else "body"))
    with ModelRunnerClient(RUNNER, transport=httpx2.MockTransport(answer)) as client:
        try:
            result = CLIENT_CALLS[name](client)
        except errors.DMRError as exc:
            assert exc.runner_url == RUNNER
            if name in NAMES_THE_MODEL - {"has_model"}:
                assert exc.model is not None and "smollm2" in exc.model, exc
            return
    if name == "engines_status":
        assert all(type(key) is str and type(value) is str for key, value in result.items())
    if name == "list_openai_models":
        assert all(type(item) is str for item in result)
    if name == "delete":
        assert all(type(value) is str for entry in result for value in entry.values())
    if name in ("unload",):
        assert type(result) is int
    if name == "version":
        assert type(result) is str


def test_every_client_call_is_fuzzed() -> None:
    """The tables above cover the whole public surface (a new method must be added to them)."""
    public = {attr for attr in vars(ModelRunnerClient) if not attr.startswith("_")} - {"close", "base_url"}
    assert public == set(CLIENT_CALLS)
