"""The mock and the emulator answer the same requests the same way.

Both are stand-ins for one server, written separately; the same requests go to the mock (an httpx
transport) and to an emulator, and their answers are compared: status, the headers that matter
(content type, ``Allow``, CORS) and the body. DMR's CORS and ``_configure`` answers, and tool calls,
use an emulator on the mock engine (a tiny fake GGUF); every other front-end route (Responses,
Anthropic Messages, Ollama, reranking, the request log) uses the session's emulator on real
llama.cpp and SmolLM2, where generated text differs, so successful bodies compare by shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_dmr.emulator import EmulatorServer
from pytest_dmr.mock import MockModelRunner

from .conftest import MODEL, fake_gguf

COMPARED_HEADERS = ("content-type", "x-content-type-options", "vary", "access-control-allow-origin",
                    "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers")  # fmt: skip
ORIGINS = [None, "http://localhost", "https://127.0.0.1:*", "http://evil.example", "null", ""]
PATHS = [
    ("OPTIONS", "/"), ("OPTIONS", "/metrics"), ("OPTIONS", "/nowhere"), ("OPTIONS", "/models"),
    ("OPTIONS", "/engines/ps"), ("OPTIONS", "/v1/models"), ("OPTIONS", "/rerank"), ("OPTIONS", "/api/tags"),
    ("GET", "/engines/_configure?model=ai/other"), ("GET", "/models/ai/nothing"), ("GET", "/engines/ps"), ("GET", "/engines/nowhere"),
    ("GET", "/rerank/x"), ("GET", "/modelsx"), ("POST", "/engines/tensorrt/_configure"), ("DELETE", "/engines/_configure"),
]  # fmt: skip
CONFIGURE_BODIES = [
    b"{", b"[]", b"null", b'{"model":"ai/smollm2","keep_alive":"10"}', b'{"model":"ai/smollm2","keep_alive":600}',
    b'{"model":"ai/smollm2","mode":"chat"}', b'{"model":"ai/smollm2","raw-runtime-flags":"--seed (1)"}',
    b'{"model":"ai/smollm2","speculative":{"num_tokens":"2"}}', b'{"model":"ai/nothing","keep_alive":"1m"}',
    b'{"model":"smollm2","keep_alive":"1.9999999999999999999s","context-size":1024,"raw-runtime-flags":"--threads 2; x"}',
    b'{"model":"ai/smollm2","keep_alive":"-5m","mode":"embedding"}',
]  # fmt: skip


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    catalog = tmp_path_factory.mktemp("catalog")
    fake_gguf(catalog / "smollm2" / "latest.gguf")
    mock = MockModelRunner(models=("ai/smollm2",), serve_any_model=False)
    with EmulatorServer(catalog, engine="mock", origins=mock.origins) as server:
        server.pull("ai/smollm2")
        with httpx.Client(transport=mock, base_url=mock.base_url) as to_mock, httpx.Client(base_url=server.url) as to_emulator:
            yield to_mock, to_emulator


def answer(client: httpx.Client, method: str, path: str, origin: str | None, body: bytes | None = None) -> tuple[Any, ...]:
    response = client.request(method, path, content=body, headers={} if origin is None else {"Origin": origin})
    return response.status_code, response.content, {name: response.headers.get(name) for name in COMPARED_HEADERS}


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize(("method", "path"), PATHS)
def test_cors_answers_agree(both: tuple[httpx.Client, httpx.Client], method: str, path: str, origin: str | None) -> None:
    to_mock, to_emulator = both
    assert answer(to_mock, method, path, origin) == answer(to_emulator, method, path, origin)


HEAD_PATHS = ["/", "/version", "/metrics", "/models", "/models/ai/smollm2", "/models/ai/absent", "/engines/v1/models",
              "/engines/v1/models/ai/smollm2", "/v1/models", "/engines/status", "/engines/df", "/engines/requests",
              "/engines/_configure", "/engines/v1/chat/completions", "/nowhere"]  # fmt: skip


@pytest.mark.parametrize("path", HEAD_PATHS)
def test_head_answers_agree(both: tuple[httpx.Client, httpx.Client], path: str) -> None:
    """``HEAD`` where DMR's Go router takes ``GET`` (or refuses): status, headers, no body, and the
    length of the body not sent."""

    def head(client: httpx.Client) -> tuple[Any, ...]:
        got, head = client.get(path), client.head(path)
        length = head.headers.get("content-length")
        same_length = length == str(len(got.content)) if head.status_code == got.status_code else length is not None
        return head.status_code, head.content, head.headers.get("content-type"), head.headers.get("allow"), same_length

    assert head(both[0]) == head(both[1])


def test_configure_answers_and_stored_settings_agree(both: tuple[httpx.Client, httpx.Client]) -> None:
    to_mock, to_emulator = both
    for body in CONFIGURE_BODIES:
        for origin in (None, "http://0.0.0.0"):
            assert answer(to_mock, "POST", "/engines/_configure", origin, body) == answer(
                to_emulator, "POST", "/engines/_configure", origin, body), body  # fmt: skip

    def settings(client: httpx.Client) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [(entry["Backend"], entry["Model"], entry["Mode"], entry["Config"]) for entry in client.get("/engines/_configure").json()]

    assert settings(to_mock) == settings(to_emulator) == [
        ("llama.cpp", "docker.io/ai/smollm2:latest", "completion",
         {"context-size": 1024, "runtime-flags": ["--threads", "2"], "keep_alive": "2s"}),
        ("llama.cpp", "docker.io/ai/smollm2:latest", "embedding", {"keep_alive": "-1"}),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Every front-end DMR serves: the mock against the emulator on real llama.cpp and SmolLM2.
# Generated text and ids differ, so successful bodies compare by shape (keys in order, value types,
# and the values that name a kind: ``type``, ``object``, ``role``, ``status``...); errors and every
# non-JSON body compare byte for byte; streams as their sequence of event shapes, repeats merged.
# ------------------------------------------------------------------------------------------------

FRONTEND_HEADERS = ("content-type", "allow", "access-control-allow-origin", "access-control-allow-credentials",
                    "access-control-allow-methods", "access-control-allow-headers")  # fmt: skip
KIND_KEYS = frozenset({"type", "object", "role", "status", "event", "done", "stop_reason", "finish_reason", "code"})
HI = [{"role": "user", "content": "Say hello."}]
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def shape(value: Any) -> Any:
    """What a JSON value looks like, whatever the words in it (and whatever layer a pull line names)."""
    if isinstance(value, dict):
        return tuple((key, kind(value[key]) if key in KIND_KEYS and not isinstance(value[key], (dict, list)) else shape(value[key])) for key in value)
    if isinstance(value, list):
        return tuple(merged([shape(item) for item in value]))
    return "null" if value is None else "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else type(value).__name__


def kind(value: Any) -> Any:
    return "pulling <layer>" if isinstance(value, str) and value.startswith("pulling ") and value != "pulling manifest" else value


def merged(items: list[Any]) -> list[Any]:
    return [item for position, item in enumerate(items) if position == 0 or item != items[position - 1]]


def observe(response: httpx.Response) -> tuple[Any, ...]:
    """Status, the headers that matter, and the body: exact when it is an error or not JSON, else its shape."""
    content_type = response.headers.get("content-type", "")
    text = re.sub(r'"(resp_|msg_)[0-9a-z]+"', r'"\1<id>"', re.sub(r'"created_at":\d+', '"created_at":0', response.text))
    body: Any = text
    if content_type.startswith("text/event-stream"):
        events = []
        for block in text.split("\n\n"):
            if block.strip():
                fields = dict(line.split(": ", 1) for line in block.split("\n"))
                data = fields.get("data", "")
                events.append((fields.get("event"), data if data == "[DONE]" else shape(json.loads(data))))
        body = merged(events)
    elif response.status_code < 300 and text.strip():
        try:
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            pass
        else:
            body = merged([shape(line) for line in lines])
    return response.status_code, {name: response.headers.get(name) for name in FRONTEND_HEADERS}, body


@pytest.fixture(scope="module")
def live_pair(emulator: EmulatorServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The mock (over its transport) and the session's emulator on real llama.cpp."""
    mock = MockModelRunner(models=(MODEL,), serve_any_model=False, origins=emulator.origins)
    with httpx.Client(transport=mock, base_url=mock.base_url, timeout=300) as to_mock, httpx.Client(base_url=emulator.url, timeout=300) as to_emulator:
        yield to_mock, to_emulator


def agree(pair: tuple[httpx.Client, httpx.Client], method: str, path: str, body: Any = None, **headers: str) -> tuple[httpx.Response, httpx.Response]:
    """Send one request to both; assert they agree; return both answers."""
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    answers = tuple(client.request(method, path, content=content, headers=headers) for client in pair)
    assert observe(answers[0]) == observe(answers[1]), (method, path, body)
    return answers  # type: ignore[return-value]


SHORT_RESPONSE = {"model": MODEL, "input": "Say hello.", "max_output_tokens": 4, "temperature": 0}
SHORT_MESSAGE = {"model": MODEL, "max_tokens": 4, "messages": HI, "temperature": 0}
SHORT_OLLAMA = {"model": MODEL, "messages": HI, "options": {"num_predict": 4, "temperature": 0}}
ROUTES_THAT_AGREE = [
    # Responses: plain and streamed; DMR's 400 for each unsupported field; methods and unknown paths
    ("POST", "/v1/responses", SHORT_RESPONSE), ("POST", "/responses", SHORT_RESPONSE | {"stream": True}),
    ("POST", "/engines/v1/responses", SHORT_RESPONSE | {"store": False}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"include": ["reasoning.encrypted_content"]}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"background": True}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"truncation": "auto"}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"conversation": "conv_1"}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"tools": [{"type": "web_search"}]}),
    ("POST", "/v1/responses", SHORT_RESPONSE | {"previous_response_id": "resp_nothing"}),
    ("POST", "/v1/responses", b"{"), ("POST", "/v1/responses", {"input": "hi"}),
    ("GET", "/v1/responses", None), ("GET", "/responses", None), ("PUT", "/v1/responses/resp_x", None),
    ("GET", "/v1/responses/resp_nothing", None), ("DELETE", "/v1/responses/resp_nothing", None),
    ("GET", "/v1/responses/resp_nothing/input_items", None), ("GET", "/responses/a/b/c", None),
    # Anthropic: llama.cpp's Messages API under /anthropic (JSON errors) and /v1, /engines (plain text)
    ("POST", "/anthropic/v1/messages", SHORT_MESSAGE), ("POST", "/v1/messages", SHORT_MESSAGE | {"stream": True}),
    ("POST", "/engines/v1/messages", SHORT_MESSAGE), ("POST", "/engines/llama.cpp/v1/messages", SHORT_MESSAGE),
    ("POST", "/anthropic/v1/messages/count_tokens", {"model": MODEL, "messages": HI}),
    ("POST", "/v1/messages/count_tokens", {"model": MODEL, "messages": HI}),
    ("POST", "/anthropic/v1/messages", {"model": "ai/absent", "max_tokens": 4, "messages": HI}),
    ("POST", "/v1/messages", {"model": "ai/absent", "max_tokens": 4, "messages": HI}),
    ("POST", "/anthropic/v1/messages", b"{"), ("POST", "/v1/messages", b"{"),
    ("GET", "/anthropic/v1/messages", None), ("GET", "/anthropic/v1/nothing", None), ("GET", "/anthropic/", None),
    # Ollama: every route, NDJSON streams, preload and unload through /api/generate
    ("GET", "/api/version", None), ("GET", "/api/tags", None), ("HEAD", "/api/tags", None), ("POST", "/api/tags", None),
    ("POST", "/api/show", {"model": MODEL}), ("POST", "/api/show", {"model": "ai/absent"}), ("GET", "/api/show", None),
    ("POST", "/api/chat", SHORT_OLLAMA | {"stream": False}), ("POST", "/api/chat", SHORT_OLLAMA),
    ("POST", "/api/generate", {"model": MODEL, "prompt": "Say hello.", "options": {"num_predict": 4, "temperature": 0}}),
    ("POST", "/api/generate", {"model": MODEL, "prompt": "Say hello.", "stream": False, "options": {"num_predict": 4}}),
    ("POST", "/api/generate", {"model": MODEL}), ("POST", "/api/chat", {"model": "ai/absent", "messages": HI, "stream": False}),
    ("POST", "/api/chat", {"model": "ai/absent", "messages": HI}), ("POST", "/api/chat", b""), ("POST", "/api/chat", b"[]"),
    ("POST", "/api/pull", {"model": "ai/smollm2"}), ("POST", "/api/pull", {"model": "ai/Bad Name"}),
    ("DELETE", "/api/delete", {"model": "ai/absent"}), ("GET", "/api/delete", None), ("GET", "/api/nothing", None),
    ("GET", "/api", None),
    # Reranking and its /score, /engines forms; the request log
    ("POST", "/rerank", {"model": MODEL, "documents": ["a"]}), ("POST", "/rerank", {"query": "x"}),
    ("POST", "/engines/nothing/rerank", {}), ("POST", "/engines/llama.cpp/rerank", {}), ("POST", "/engines/vllm/rerank", {}),
    # Backends DMR registers but this runner lacks: the installer's answer once the model is found
    ("POST", "/engines/vllm/rerank", {"model": MODEL, "query": "x", "documents": ["a"]}),
    ("POST", "/engines/mlx/score", {"model": MODEL, "query": "x", "documents": ["a"]}),
    ("POST", "/engines/vllm/v1/messages", SHORT_MESSAGE), ("POST", "/engines/sglang/v1/messages/count_tokens", {"model": MODEL, "messages": HI}),
    ("POST", "/engines/vllm/v1/responses", SHORT_RESPONSE), ("POST", "/engines/diffusers/v1/responses", SHORT_RESPONSE | {"stream": True}),
    ("POST", "/engines/vllm/v1/chat/completions", {"model": MODEL, "messages": HI}), ("GET", "/rerank", None), ("GET", "/rerank/x", None),
    ("POST", "/score", {"model": MODEL, "query": "x", "documents": ["a"]}),
    ("POST", "/engines/score", {"model": MODEL, "query": "x", "documents": ["a"]}),
    ("POST", "/v1/rerank", {"model": MODEL, "query": "x", "documents": ["a"]}), ("POST", "/v1/score", {}),
    ("GET", "/engines/requests?model=ai/absent", None), ("POST", "/engines/requests", None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), ROUTES_THAT_AGREE, ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(ROUTES_THAT_AGREE)])
def test_frontend_answers_agree(live_pair: tuple[httpx.Client, httpx.Client], method: str, path: str, body: Any) -> None:
    agree(live_pair, method, path, body)


CHAT = "/engines/v1/chat/completions"
SHORT_CHAT = {"model": MODEL, "messages": HI, "max_tokens": 4, "temperature": 0}
MALFORMED = [
    # llama.cpp's refusals, as DMR passes them through each front-end
    (CHAT, {"model": MODEL}), (CHAT, SHORT_CHAT | {"messages": "hi"}), (CHAT, SHORT_CHAT | {"messages": [{"role": "user"}]}),
    (CHAT, SHORT_CHAT | {"messages": [{"content": "x", "b": "é/</"}]}), (CHAT, SHORT_CHAT | {"messages": [{"role": "user", "content": 5}]}),
    (CHAT, SHORT_CHAT | {"messages": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]}),
    (CHAT, SHORT_CHAT | {"tools": [{"type": "function", "x": "é"}]}), (CHAT, SHORT_CHAT | {"tools": [{"function": {"name": "f"}}]}),
    (CHAT, SHORT_CHAT | {"tool_choice": ""}), (CHAT, SHORT_CHAT | {"response_format": {"type": "bogus"}}), (CHAT, SHORT_CHAT | {"n": 2}),
    (CHAT, SHORT_CHAT | {"max_tokens": "4"}), (CHAT, SHORT_CHAT | {"top_k": {}}), (CHAT, SHORT_CHAT | {"cache_prompt": "x"}),
    (CHAT, SHORT_CHAT | {"stop": [5]}), (CHAT, SHORT_CHAT | {"top_logprobs": 2}), (CHAT, SHORT_CHAT | {"stream": "yes"}),
    ("/engines/v1/completions", {"model": MODEL, "max_tokens": 4}), ("/engines/v1/completions", {"model": MODEL, "prompt": None}),
    ("/engines/v1/completions", {"model": MODEL, "prompt": "Hi", "max_tokens": "4"}),
    ("/engines/v1/embeddings", {"model": MODEL}), ("/engines/v1/embeddings", {"model": MODEL, "input": []}),
    ("/anthropic/v1/messages", SHORT_MESSAGE | {"max_tokens": "4"}),
    ("/anthropic/v1/messages", SHORT_MESSAGE | {"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    ("/api/chat", SHORT_OLLAMA | {"stream": False, "options": {"num_predict": "4"}}), ("/api/chat", SHORT_OLLAMA | {"options": {"temperature": "x"}}),
    ("/v1/responses", {"model": MODEL}), ("/v1/responses", {"model": MODEL, "input": [], "stream": True}),
    (CHAT, SHORT_CHAT | {"max_tokens": -5}), (CHAT, SHORT_CHAT | {"n_keep": 3000000000}), (CHAT, SHORT_CHAT | {"repeat_penalty": 0}),
    (CHAT, SHORT_CHAT | {"messages": [*HI, {"role": "assistant", "content": "x", "tool_calls": 5}]}),
    (CHAT, SHORT_CHAT | {"messages": [*HI, {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": ""}}]}, *HI]}),
    (CHAT, SHORT_CHAT | {"logprobs": True, "stream": True, "tools": [{"type": "function", "function": {"name": "f"}}]}),
    (CHAT, json.dumps(SHORT_CHAT | {"messages": [{"role": "user", "content": "x\ud800"}]}).encode()),
    ("/engines/v1/completions", {"model": MODEL, "prompt": {"prompt": "Hi"}, "max_tokens": 4}),
    ("/api/chat", SHORT_OLLAMA | {"stream": False, "options": {"num_predict": -2}}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), MALFORMED, ids=[f"{path} {i}" for i, (path, _) in enumerate(MALFORMED)])
def test_malformed_requests_agree(live_pair: tuple[httpx.Client, httpx.Client], path: str, body: Any) -> None:
    """llama.cpp's refusals (status, type, message), byte for byte, through every front-end."""
    agree(live_pair, "POST", path, body)


PRELOADS = [
    ("/anthropic/v1/messages", SHORT_MESSAGE), ("/v1/messages", SHORT_MESSAGE), ("/engines/v1/messages", SHORT_MESSAGE),
    ("/api/chat", SHORT_OLLAMA), ("/api/chat", SHORT_OLLAMA | {"stream": False}),
    ("/api/generate", {"model": MODEL, "prompt": "Say hello.", "stream": False, "options": {"num_predict": 4}}),
    ("/v1/responses", SHORT_RESPONSE), ("/anthropic/v1/messages/count_tokens", {"model": MODEL, "messages": HI}),
    ("/rerank", {"model": MODEL, "query": "x", "documents": ["a"]}), ("/v1/score", {"model": MODEL, "query": "x", "documents": ["a"]}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), PRELOADS, ids=[f"{path} {i}" for i, (path, _) in enumerate(PRELOADS)])
def test_preload_only_agrees(live_pair: tuple[httpx.Client, httpx.Client], path: str, body: Any) -> None:
    """``X-Preload-Only`` reaches the scheduler where DMR's front-end clones the request (Messages,
    Ollama), and not where it builds a new one (Responses)."""
    agree(live_pair, "POST", path, body, **{"X-Preload-Only": "true"})


def test_responses_store_flow_agrees(live_pair: tuple[httpx.Client, httpx.Client]) -> None:
    """Create, read back, list input items, continue, delete, and read the deleted one, on each side."""
    seen = []
    for client in live_pair:
        steps = []
        created = client.post("/v1/responses", json=SHORT_RESPONSE)
        id = created.json()["id"]
        steps.append(created)
        for method, path in (("GET", f"/v1/responses/{id}"), ("HEAD", f"/responses/{id}"), ("GET", f"/engines/v1/responses/{id}/input_items"),
                             ("POST", f"/engines/llama.cpp/v1/responses/{id}"), ("PATCH", f"/v1/responses/{id}/input_items")):  # fmt: skip
            steps.append(client.request(method, path))
        follow = SHORT_RESPONSE | {"previous_response_id": id, "input": "Now tell me a long story.", "stream": True}
        steps.append(client.post("/responses", json=follow))
        steps += [client.delete(f"/v1/responses/{id}"), client.get(f"/v1/responses/{id}"), client.delete(f"/v1/responses/{id}")]
        unstored = client.post("/v1/responses", json=SHORT_RESPONSE | {"store": False}).json()["id"]
        steps.append(client.get(f"/v1/responses/{unstored}"))
        seen.append([observe(step) for step in steps])
    mock, emulator = seen
    for position, (one, other) in enumerate(zip(mock, emulator, strict=True)):
        if position in (8, 9, 10):  # the error names the id, which differs
            assert (one[0], one[1]) == (other[0], other[1]) and "not found" in one[2] and "not found" in other[2]
        else:
            assert one == other, position


def test_ollama_load_and_unload_agree(live_pair: tuple[httpx.Client, httpx.Client]) -> None:
    """Preload and unload through ``/api/generate``, and what ``/api/ps`` shows in between."""
    for body in ({"model": MODEL, "keep_alive": "5m"}, {"model": MODEL, "keep_alive": 0}, {"model": MODEL, "keep_alive": "0s"}):
        agree(live_pair, "POST", "/api/generate", body)
    agree(live_pair, "POST", "/api/chat", SHORT_OLLAMA | {"stream": False})
    agree(live_pair, "GET", "/api/ps")
    agree(live_pair, "POST", "/api/generate", {"model": MODEL, "keep_alive": 0})
    mock, emulator = agree(live_pair, "GET", "/api/ps")
    assert mock.json() == emulator.json() == {"models": []}


def test_request_log_agrees(live_pair: tuple[httpx.Client, httpx.Client]) -> None:
    """The log's JSON and its event stream, after one request through each front-end."""
    agree(live_pair, "POST", "/anthropic/v1/messages", SHORT_MESSAGE)
    agree(live_pair, "POST", "/api/chat", SHORT_OLLAMA | {"stream": False})
    agree(live_pair, "POST", "/v1/responses", SHORT_RESPONSE)
    mock, emulator = (client.get(f"/engines/requests?model={MODEL}") for client in live_pair)
    assert observe(mock)[:2] == observe(emulator)[:2]
    # ``config`` is the runner's: the model's own context size on llama.cpp, unknown to the mock
    without_config = [[shape({key: value for key, value in entry.items() if key != "config"}) for entry in answer.json()] for answer in (mock, emulator)]
    assert without_config[0] == without_config[1] and len(mock.json()[0]["records"]) >= 3
    streams = []
    for client in live_pair:  # the emulator's stream stays open: compare its head and first event
        with client.stream("GET", "/engines/requests?model=ai/absent", headers={"Accept": "text/event-stream"}) as response:
            lines: list[str] = []
            for line in response.iter_lines():
                if not line and lines:
                    break
                lines.append(line)
            streams.append((response.status_code, {name: response.headers.get(name) for name in FRONTEND_HEADERS}, lines))
    assert streams[0] == streams[1] == (200, streams[0][1], ["event: connected", 'data: {"status": "connected"}'])
    assert streams[0][1]["content-type"] == "text/event-stream"


CORS_PATHS = [("OPTIONS", "/v1/responses"), ("OPTIONS", "/anthropic/v1/messages"), ("OPTIONS", "/api/chat"), ("OPTIONS", "/rerank"),
              ("OPTIONS", "/score"), ("GET", "/api/version"), ("GET", "/v1/responses/resp_x"), ("POST", "/anthropic/v1/nothing")]  # fmt: skip


@pytest.mark.parametrize("origin", ["http://localhost", "http://evil.example"])
@pytest.mark.parametrize(("method", "path"), CORS_PATHS)
def test_frontend_cors_agrees(live_pair: tuple[httpx.Client, httpx.Client], method: str, path: str, origin: str) -> None:
    agree(live_pair, method, path, None, Origin=origin, **{"Access-Control-Request-Method": "POST"})


WEATHER = [{"role": "user", "content": "Weather in Paris?"}]
CHAT_TOOL = {"type": "function", "function": {"name": TOOL["name"], "description": "", "parameters": TOOL["parameters"]}}
CLAUDE_TOOL = {"name": TOOL["name"], "description": "", "input_schema": TOOL["parameters"]}
TOOL_CALLS = [
    ("/v1/responses", {"model": MODEL, "input": "Weather in Paris?", "tools": [TOOL], "tool_choice": "required"}),
    ("/v1/responses", {"model": MODEL, "input": "Weather in Paris?", "tools": [TOOL], "tool_choice": "required", "stream": True}),
    ("/anthropic/v1/messages", {"model": MODEL, "max_tokens": 64, "messages": HI, "tools": [CLAUDE_TOOL], "tool_choice": {"type": "any"}}),
    ("/v1/messages", {"model": MODEL, "max_tokens": 64, "messages": HI, "tools": [CLAUDE_TOOL], "tool_choice": {"type": "any"}, "stream": True}),
    ("/api/chat", {"model": MODEL, "messages": WEATHER, "tools": [CHAT_TOOL], "stream": False}),
    ("/api/chat", {"model": MODEL, "messages": WEATHER, "tools": [CHAT_TOOL]}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), TOOL_CALLS, ids=[f"{path} {i}" for i, (path, _) in enumerate(TOOL_CALLS)])
def test_tool_calls_agree_on_the_mock_engine(both: tuple[httpx.Client, httpx.Client], path: str, body: Any) -> None:
    """Tool calls in every format, on the emulator over the mock engine (SmolLM2 on this llama.cpp
    answers tools with text): the same items, blocks and NDJSON lines, streamed chunk by chunk as
    DMR translates them (an Ollama stream carries the arguments as string pieces)."""
    mock, emulator = agree(both, "POST", path, body)
    assert "get_weather" in mock.text


def test_ollama_pull_then_delete_agree(fresh_emulator: EmulatorServer) -> None:
    """On an empty store: pull (NDJSON progress), list, delete, delete again (the unload is fine,
    the store refuses), list again."""
    mock = MockModelRunner(models=(), serve_any_model=False, origins=fresh_emulator.origins)
    with httpx.Client(transport=mock, base_url=mock.base_url, timeout=300) as to_mock, httpx.Client(base_url=fresh_emulator.url, timeout=300) as to_emulator:
        pair = (to_mock, to_emulator)
        agree(pair, "GET", "/api/tags")
        agree(pair, "POST", "/api/pull", {"model": MODEL})
        listed, _ = agree(pair, "GET", "/api/tags")
        assert listed.json()["models"]
        agree(pair, "POST", "/api/show", {"name": MODEL})
        deleted, _ = agree(pair, "DELETE", "/api/delete", {"model": MODEL})
        assert deleted.text == "{}"
        again, _ = agree(pair, "DELETE", "/api/delete", {"model": MODEL})
        assert again.status_code == 500 and again.text.startswith("Failed to delete model: ")
        emptied, _ = agree(pair, "GET", "/api/tags")
        assert emptied.json() == {"models": []}


@pytest.mark.parametrize("fields", [{"logprobs": True, "top_logprobs": 2}, {"logprobs": 3}, {"logprobs": True, "top_logprobs": 0}, {"logprobs": False},
                                    {"logprobs": True, "top_logprobs": 30}, {"logprobs": True, "top_logprobs": "3"}])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_chat_logprobs_agree(live_pair: tuple[httpx.Client, httpx.Client], fields: dict[str, Any], stream: bool) -> None:
    """``choices`` (llama.cpp's own ``timings`` aside): ``logprobs.content`` per token, or per chunk."""
    body = SHORT_CHAT | fields | {"stream": stream}
    seen = []
    for client in live_pair:
        response = client.post(CHAT, json=body)
        assert response.status_code == 200, response.text
        if stream:
            lines = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: {")]
            seen.append(merged([shape(json.loads(line)["choices"]) for line in lines]))
        else:
            seen.append(shape(response.json()["choices"]))
    assert seen[0] == seen[1]


SHORT_COMPLETION = {"model": MODEL, "prompt": "Hi", "max_tokens": 4, "temperature": 0}
OPENAI_ANSWERS = [
    (CHAT, SHORT_CHAT), (CHAT, SHORT_CHAT | {"stream": True}), (CHAT, SHORT_CHAT | {"stream": True, "stream_options": {"include_usage": True}}),
    ("/engines/v1/completions", SHORT_COMPLETION), ("/engines/v1/completions", SHORT_COMPLETION | {"stream": True}),
    ("/engines/v1/embeddings", {"model": MODEL, "input": "Hi"}),
    ("/engines/v1/completions", SHORT_COMPLETION | {"logprobs": 2}),
    ("/engines/v1/completions", SHORT_COMPLETION | {"logprobs": True, "stream": True}),
]  # fmt: skip
"""Completions at temperature 0, so that llama.cpp gives the same tokens at each run: sampled (its
default), one run in many streamed fewer content chunks than ``max_tokens``, and the shapes differed."""


@pytest.mark.parametrize(("path", "body"), OPENAI_ANSWERS, ids=[f"{path} {i}" for i, (path, _) in enumerate(OPENAI_ANSWERS)])
def test_openai_answers_agree(live_pair: tuple[httpx.Client, httpx.Client], path: str, body: Any) -> None:
    """The OpenAI API's answers, llama.cpp's ``timings`` and ``prompt_tokens_details`` included."""
    agree(live_pair, "POST", path, body)


HEADED = [
    (CHAT, SHORT_CHAT), (CHAT, SHORT_CHAT | {"stream": True}), (CHAT, SHORT_CHAT | {"messages": "x"}), ("/engines/v1/embeddings", {"model": MODEL, "input": "x"}),
    ("/anthropic/v1/messages", SHORT_MESSAGE), ("/anthropic/v1/messages", SHORT_MESSAGE | {"stream": True}),
    ("/v1/responses", SHORT_RESPONSE), ("/v1/responses", SHORT_RESPONSE | {"stream": True}), ("/v1/responses", {"model": MODEL, "input": [], "stream": True}),
    ("/api/chat", SHORT_OLLAMA), ("/api/chat", SHORT_OLLAMA | {"stream": False}), ("/api/chat", SHORT_OLLAMA | {"options": {"num_predict": "4"}}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), HEADED, ids=[f"{path} {i}" for i, (path, _) in enumerate(HEADED)])
def test_every_header_agrees(live_pair: tuple[httpx.Client, httpx.Client], path: str, body: Any) -> None:
    """All headers but the date and the framing (the mock's transport has no wire): llama.cpp's
    ``Server`` and a stream's ``X-Accel-Buffering`` pass through DMR, and nothing more."""
    seen = []
    for client in live_pair:
        response = client.post(path, json=body)
        framing = ("date", "transfer-encoding", "content-length")
        seen.append((response.status_code, sorted((name, value) for name, value in response.headers.items() if name not in framing),
                     "content-length" in response.headers))  # fmt: skip
    assert seen[0] == seen[1]
