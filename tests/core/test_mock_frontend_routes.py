"""The mock's front-ends at the edges of DMR's routing: Go's 405 with ``Allow``, ``HEAD`` on ``GET``
routes, ``X-Preload-Only`` where DMR's front-end forwards the client's headers, and ``/api/pull`` of
a name the registry client cannot parse. (tests/live/test_mock_emulator_agree.py holds the same
answers against the emulator on real llama.cpp.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pytest_dmr.mock import Fault, MockModelRunner

MODEL = "ai/smollm2"
HI = [{"role": "user", "content": "Say hello."}]
PRELOAD = {"X-Preload-Only": "true"}


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner(models=(MODEL,), serve_any_model=False)


@pytest.fixture
def http(mock: MockModelRunner) -> Iterator[httpx.Client]:
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/v1/responses", "POST"), ("GET", "/engines/llama.cpp/v1/responses", "POST"), ("PUT", "/responses/resp_x", "DELETE, GET, HEAD"),
     ("POST", "/v1/responses/resp_x/input_items", "GET, HEAD"), ("GET", "/anthropic/v1/messages", "POST"),
     ("GET", "/anthropic/v1/messages/count_tokens", "POST"), ("POST", "/api/tags", "GET, HEAD"), ("GET", "/api/chat", "POST"),
     ("POST", "/api/delete", "DELETE")],
)  # fmt: skip
def test_method_not_allowed_names_the_allowed_methods(http: httpx.Client, method: str, path: str, allowed: str) -> None:
    answer = http.request(method, path)
    assert (answer.status_code, answer.headers.get("allow"), answer.text) == (405, allowed, "Method Not Allowed\n")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_head_on_get_routes_answers_headers_only(http: httpx.Client) -> None:
    created = http.post("/v1/responses", json={"model": MODEL, "input": "hi"}).json()["id"]
    for path in ("/api/tags", "/api/version", f"/v1/responses/{created}", f"/responses/{created}/input_items"):
        answer = http.head(path)
        assert (answer.status_code, answer.headers["content-type"], answer.content) == (200, "application/json", b""), path
    assert http.get("/api/tags").json()["models"]


@pytest.mark.parametrize(
    "path",
    ["/", "/version", "/models", f"/models/{MODEL}", "/engines/v1/models", f"/v1/models/{MODEL}", "/engines/status", "/engines/ps",
     "/engines/df", "/engines/requests", "/engines/_configure", "/api/tags"],
)  # fmt: skip
def test_head_on_dmr_get_routes_sends_the_get_answers_headers_and_length(http: httpx.Client, path: str) -> None:
    """Go's router sends ``HEAD`` to a ``GET`` route, and its server drops the body but keeps the
    length of the body it held whole."""
    got, head = http.get(path), http.head(path)
    assert (head.status_code, head.content) == (got.status_code, b"")
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == (str(len(got.content)) if len(got.content) <= 2048 else None)


def test_head_of_a_body_past_gos_buffer_has_no_length_and_a_refused_origin_no_body(mock: MockModelRunner, http: httpx.Client) -> None:
    for index in range(12):
        mock.add_model(f"ai/model-{index}")
    assert len(http.get("/models").content) > 2048
    assert "content-length" not in http.head("/models").headers  # Go sent its headers before the body's end
    refused = http.head("/models", headers={"Origin": "http://elsewhere.example"})
    assert (refused.status_code, refused.content, refused.headers["content-length"]) == (403, b"", "19")


def test_head_keeps_a_faults_delay_and_cut(mock: MockModelRunner, http: httpx.Client) -> None:
    mock.fail(Fault.cut_stream(1), endpoint="/models")
    with pytest.raises(httpx.RemoteProtocolError):
        http.head("/engines/v1/models")


def test_head_where_go_refuses_sends_the_refusal_without_its_body(http: httpx.Client) -> None:
    refused = http.head("/metrics")  # DMR's metrics handler takes GET only
    assert (refused.status_code, refused.content, refused.headers["content-length"]) == (405, b"", str(len("Method Not Allowed\n")))
    assert http.head("/engines/v1/chat/completions").status_code == 404  # the scheduler's catch-all "/" route


def test_preload_only_loads_without_answering_where_dmr_forwards_the_header(mock: MockModelRunner, http: httpx.Client) -> None:
    message = {"model": MODEL, "max_tokens": 4, "messages": HI}
    documents = {"model": MODEL, "query": "x", "documents": ["a"]}
    for path, body in (("/anthropic/v1/messages", message), ("/v1/messages", message), ("/engines/llama.cpp/v1/messages", message),
                       ("/rerank", documents), ("/engines/score", documents)):  # fmt: skip
        answer = http.post(path, json=body, headers=PRELOAD)
        assert (answer.status_code, answer.content, answer.headers.get("content-type")) == (200, b"", None), path
    streamed = http.post("/api/chat", json={"model": MODEL, "messages": HI}, headers=PRELOAD)
    assert (streamed.status_code, streamed.content, streamed.headers.get("content-type")) == (200, b"", None)
    for path, body in (("/api/chat", {"messages": HI}), ("/api/generate", {"prompt": "hi"})):
        whole = http.post(path, json={"model": MODEL, "stream": False} | body, headers=PRELOAD)
        assert (whole.status_code, whole.text) == (500, "Failed to parse response\n"), path  # DMR cannot parse the empty body
    assert [entry["records"] for entry in http.get("/engines/requests").json()] == [[]]  # loaded, nothing recorded
    assert sorted((entry["model_name"], entry["mode"]) for entry in http.get("/engines/ps").json()) == [(MODEL, "completion"), (MODEL, "reranking")]
    response = http.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers=PRELOAD)
    assert response.json()["status"] == "completed"  # the Responses front-end builds a new request without the header


def test_pull_of_an_unparsable_name_is_the_registry_clients_error(http: httpx.Client) -> None:
    answer = http.post("/api/pull", json={"model": "ai/Bad Name"})
    assert (answer.status_code, answer.headers["content-type"]) == (500, "application/json")
    quoted = '\\"ai/bad name:latest\\"'
    assert answer.text == (
        '{"error":"Failed to pull model: error while pulling model: reading model from registry: '
        f'invalid model reference {quoted}: invalid reference {quoted}: invalid reference format"}}\n'
    )


def test_the_v1_alias_makes_v1_the_backend_of_a_rerank_path(http: httpx.Client) -> None:
    """``/v1/score`` is ``/engines/v1/score`` to DMR's alias: the scheduler's ``{backend}`` is ``v1``."""
    for path in ("/v1/score", "/v1/rerank"):
        answer = http.post(path, json={"model": MODEL, "query": "x", "documents": ["a"]})
        assert (answer.status_code, answer.text) == (404, "backend not found\n"), path


LLAMACPP_STREAM = [("server", "llama.cpp"), ("x-accel-buffering", "no")]
HEADERS = [
    ("/engines/v1/chat/completions", {"messages": HI}, [("content-type", "application/json; charset=utf-8"), ("server", "llama.cpp")]),
    ("/engines/v1/chat/completions", {"messages": "x"}, [("content-type", "application/json; charset=utf-8"), ("server", "llama.cpp")]),
    ("/engines/v1/chat/completions", {"messages": HI, "stream": True}, [("content-type", "text/event-stream"), *LLAMACPP_STREAM]),
    ("/anthropic/v1/messages", {"messages": HI, "max_tokens": 4, "stream": True}, [("content-type", "text/event-stream"), *LLAMACPP_STREAM]),
    ("/api/chat", {"messages": HI}, [("content-type", "application/json"), *LLAMACPP_STREAM]),
    ("/api/chat", {"messages": HI, "stream": False}, [("content-type", "application/json")]),
    ("/v1/responses", {"input": "hi", "stream": True},
     [("cache-control", "no-cache"), ("connection", "keep-alive"), ("content-type", "text/event-stream"), *LLAMACPP_STREAM]),
    ("/v1/responses", {"input": [], "stream": True}, [("content-type", "application/json; charset=utf-8"), ("server", "llama.cpp")]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "headers"), HEADERS, ids=[f"{path} {i}" for i, (path, _, _) in enumerate(HEADERS)])
def test_headers_are_llamacpps_through_dmr(http: httpx.Client, path: str, body: dict[str, object], headers: list[tuple[str, str]]) -> None:
    """llama.cpp's ``Server`` (and a stream's ``X-Accel-Buffering``, no ``Cache-Control``) pass through
    DMR's proxy and its streaming front-ends; a stream has no ``Content-Length``."""
    response = http.post(path, json={"model": MODEL, **body})
    streamed = body.get("stream", path == "/api/chat")
    assert sorted(item for item in response.headers.items() if item[0] != "content-length") == headers
    assert ("content-length" in response.headers) is not streamed
