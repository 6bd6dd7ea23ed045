"""ModelRunnerClient and AsyncModelRunnerClient against scripted httpx2.MockTransport runners.

Every test runs twice, through the sync client and the async one, with the same assertions: the
two share their request building and response reading, and these tests hold them to it.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, encoding, model_info, pull_stream
from pytest_dmr.client import AsyncModelRunnerClient, ModelRunnerClient, PullResult
from pytest_dmr.protocol.pull_stream import PullProgress
from async_facade import AsyncFacade

RUNNER = "http://127.0.0.1:12434"
SMOLLM2 = {
    "id": "sha256:" + "a" * 64,
    "tags": ["docker.io/ai/smollm2:latest", "docker.io/ai/smollm2:360M-Q4_K_M"],
    "created": 1742816981,
    "config": {"format": "gguf", "size": "256.35 MiB", "context_size": 8192},
}
OLD_STYLE = {"id": "sha256:" + "b" * 64, "tags": ["ai/qwen3:latest"], "created": 1, "config": {"size": "1 GiB"}}

Handler = Callable[[httpx2.Request], httpx2.Response]


def text(status: int, body: str, content_type: str = encoding.TEXT_PLAIN) -> httpx2.Response:
    return httpx2.Response(status, content=body.encode(), headers={"content-type": content_type})


class Runner:
    """A scripted runner: routes ``(METHOD, path)`` to a response or a callable; records requests."""

    def __init__(self, routes: dict[tuple[str, str], httpx2.Response | Handler | BaseException]) -> None:
        self.routes = routes
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return text(404, "404 page not found\n")
        if isinstance(route, BaseException):
            raise route
        if callable(route):
            return route(request)
        # a fresh copy each time: an httpx2.Response is read once, by one kind of client
        return httpx2.Response(route.status_code, headers=route.headers, content=route.read())


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Callable[..., Any]:
    def make(handler: Handler, base_url: str = RUNNER) -> Any:
        transport = httpx2.MockTransport(handler)
        if request.param == "sync":
            return ModelRunnerClient(base_url, transport=transport)
        return AsyncFacade(AsyncModelRunnerClient(base_url, transport=transport))

    return make


# ------------------------------------------------------------------------------------------
# Is a runner there?
# ------------------------------------------------------------------------------------------


def test_is_running_and_is_model_runner_on_dmr(make_client: Callable[..., Any]) -> None:
    runner = Runner({("GET", "/"): text(200, addresses.ROOT_BANNER)})
    client = make_client(runner)
    assert client.is_running() is True
    assert client.is_model_runner() is True
    assert [request.url.path for request in runner.requests] == ["/", "/"]


def test_bare_llama_cpp_is_running_but_is_not_a_model_runner(make_client: Callable[..., Any]) -> None:
    runner = Runner(
        {
            ("GET", "/"): text(200, "<html>llama.cpp</html>", "text/html"),
            ("GET", "/v1/models"): httpx2.Response(200, json={"object": "list", "data": [{"id": "smollm2"}]}),
        }
    )
    client = make_client(runner, "http://127.0.0.1:8080/v1")
    assert client.is_running() is True
    assert client.is_model_runner() is False


@pytest.mark.parametrize(
    "routes",
    [
        {("GET", "/"): httpx2.ConnectError("[Errno 111] Connection refused")},
        {("GET", "/"): httpx2.ReadTimeout("timed out")},
        {},  # a web server that is something else: 404 everywhere
        {("GET", "/"): text(200, "hello"), ("GET", "/engines/v1/models"): text(200, "not json")},
    ],
    ids=["refused", "timeout", "404", "other-server"],
)
def test_is_running_is_false_and_never_raises(make_client: Callable[..., Any], routes: dict[Any, Any]) -> None:
    client = make_client(Runner(routes))
    assert client.is_running() is False
    assert client.is_model_runner() is False


def test_engines_status(make_client: Callable[..., Any]) -> None:
    status = {"llama.cpp": "Running: llama.cpp b1234", "vllm": "Not Installed"}
    client = make_client(Runner({("GET", "/engines/status"): httpx2.Response(200, json=status)}))
    assert client.engines_status() == status


# ------------------------------------------------------------------------------------------
# Listing and inspecting
# ------------------------------------------------------------------------------------------


def test_list_models_reads_the_management_list(make_client: Callable[..., Any]) -> None:
    client = make_client(Runner({("GET", "/models"): httpx2.Response(200, json=[SMOLLM2, OLD_STYLE])}))
    models = client.list_models()
    assert [model.name for model in models] == ["docker.io/ai/smollm2:latest", "ai/qwen3:latest"]
    assert models[0].size == "256.35 MiB"
    assert models[0].id == SMOLLM2["id"]


@pytest.mark.parametrize(
    ("response", "shown"),
    [
        (httpx2.Response(200, json={"object": "list", "data": [{"id": "smollm2"}]}), "200 '{\"object\":\"list\""),
        (text(404, "404 page not found\n"), "404 '404 page not found'"),
    ],
    ids=["llama.cpp-models", "404"],
)
def test_list_models_on_a_server_without_management_api(
    make_client: Callable[..., Any], response: httpx2.Response, shown: str
) -> None:
    client = make_client(Runner({("GET", "/models"): response}))
    with pytest.raises(errors.NotAModelRunnerError) as caught:
        client.list_models()
    message = str(caught.value)
    assert message.startswith(f"the server answered GET /models with {shown}")
    assert "it is not a Docker Model Runner (no model management API) (runner http://127.0.0.1:12434)." in message
    assert message.endswith(
        "Point the URL at Docker Model Runner (e.g. http://localhost:12434); a bare llama.cpp or other "
        "OpenAI-compatible server only supports inference and list_openai_models()"
    )
    assert isinstance(caught.value, errors.RunnerUnavailableError)


@pytest.mark.parametrize(
    ("base_url", "path"),
    [
        ("http://127.0.0.1:12434", "/engines/v1/models"),
        ("http://127.0.0.1:12434/engines/llama.cpp/v1", "/engines/llama.cpp/v1/models"),
        ("127.0.0.1:12434/v1", "/v1/models"),
    ],
)
def test_list_openai_models_uses_the_api_prefix(make_client: Callable[..., Any], base_url: str, path: str) -> None:
    body = model_info.openai_model_list([model_info.ModelInfo.from_json(SMOLLM2), model_info.ModelInfo.from_json(OLD_STYLE)])
    runner = Runner({("GET", path): httpx2.Response(200, json=body)})
    assert make_client(runner, base_url).list_openai_models() == ["docker.io/ai/smollm2:latest", "ai/qwen3:latest"]
    assert runner.requests[0].url.path == path


def test_inspect_finds_a_model(make_client: Callable[..., Any]) -> None:
    runner = Runner({("GET", "/models/ai/smollm2"): httpx2.Response(200, json=SMOLLM2)})
    model = make_client(runner).inspect("ai/smollm2")
    assert model.tags == tuple(SMOLLM2["tags"])
    assert model.config["context_size"] == 8192


def test_inspect_of_a_missing_model_raises_model_not_found(make_client: Callable[..., Any]) -> None:
    client = make_client(Runner({("GET", "/models/ai/nothing"): text(404, "model not found\n")}))
    with pytest.raises(errors.ModelNotFoundError) as caught:
        client.inspect("ai/nothing")
    assert str(caught.value) == (
        "the runner does not have this model (404: model not found) (runner http://127.0.0.1:12434, model ai/nothing). "
        "Pull it first: `docker model pull ai/nothing`, or run pytest with --dmr-pull"
    )
    assert caught.value.status_code == 404


@pytest.mark.parametrize("name", ["smollm2", "ai/smollm2", "ai/smollm2:latest", "docker.io/ai/smollm2", "SmolLM2",
                                  "ai/smollm2:360M-Q4_K_M", "qwen3", "docker.io/ai/qwen3:latest"])
def test_has_model_compares_canonical_names_in_both_tag_forms(make_client: Callable[..., Any], name: str) -> None:
    client = make_client(Runner({("GET", "/models"): httpx2.Response(200, json=[SMOLLM2, OLD_STYLE])}))
    assert client.has_model(name) is True


@pytest.mark.parametrize("name", ["ai/smollm2:135M-Q4_0", "ai/smollm2:360m-q4_k_m", "myorg/smollm2", "llama3.2"])
def test_has_model_is_false_for_other_models(make_client: Callable[..., Any], name: str) -> None:
    client = make_client(Runner({("GET", "/models"): httpx2.Response(200, json=[SMOLLM2, OLD_STYLE])}))
    assert client.has_model(name) is False


def test_has_model_falls_back_to_the_openai_list_on_a_bare_server(make_client: Callable[..., Any]) -> None:
    runner = Runner({("GET", "/engines/v1/models"): httpx2.Response(200, json={"data": [{"id": "ai/smollm2"}]})})
    client = make_client(runner)
    assert client.has_model("smollm2") is True
    assert client.has_model("qwen3") is False


# ------------------------------------------------------------------------------------------
# Pulling
# ------------------------------------------------------------------------------------------

LAYER_A, LAYER_B = "sha256:" + "1" * 64, "sha256:" + "2" * 64
PULL_LINES = [
    PullProgress("progress", pull_stream.downloaded_message(1024), 3072, LAYER_A, 2048, 1024),
    PullProgress("progress", pull_stream.downloaded_message(2048), 3072, LAYER_B, 1024, 1024),
    PullProgress("warning", "this model is big", 0),
    PullProgress("progress", pull_stream.downloaded_message(3072), 3072, LAYER_A, 2048, 2048),
    PullProgress("success", pull_stream.PULL_SUCCESS_MESSAGE),
]


def pull_response(lines: list[PullProgress], *, raw_json: bool, trailer: str = "") -> Handler:
    def respond(request: httpx2.Request) -> httpx2.Response:
        body = b"".join(pull_stream.encode_pull_line(line, raw_json=raw_json) for line in lines) + trailer.encode()
        # a runner that answers text/plain whatever the Accept header says (the client must cope)
        content_type = pull_stream.pull_content_type(encoding.JSON_CONTENT_TYPE if raw_json else None)
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return respond


@pytest.mark.parametrize("raw_json", [True, False], ids=["application/json", "text/plain-escaped"])
def test_pull_reports_every_line_and_returns_the_outcome(make_client: Callable[..., Any], raw_json: bool) -> None:
    lines = [*PULL_LINES[:2], PullProgress("progress", "Selected <Q4_K_M> & \"default\"", 0), *PULL_LINES[2:]]
    runner = Runner({("POST", "/models/create"): pull_response(lines, raw_json=raw_json)})
    seen: list[PullProgress] = []
    result = make_client(runner).pull("smollm2", progress=seen.append)
    assert seen == lines
    assert result == PullResult(
        model="ai/smollm2:latest", cached=False, total=3072, message="Model pulled successfully",
        warnings=("this model is big",),
    )
    request = runner.requests[0]
    assert request.headers["accept"] == "application/json"
    assert json.loads(request.content) == {"from": "smollm2"}


def test_pull_reads_the_old_capitalised_layer_keys(make_client: Callable[..., Any]) -> None:
    body = (
        '{"type":"progress","message":"Downloaded: 1.00 MB","total":2048,"pulled":1024,'
        '"layer":{"ID":"sha256:abc","Size":2048,"Current":1024}}\n'
        '{"type":"success","message":"Model pulled successfully","total":0,"layer":{"ID":"","Size":0,"Current":0}}\n'
    )
    runner = Runner({("POST", "/models/create"): text(200, body, "application/json")})
    seen: list[PullProgress] = []
    make_client(runner).pull("ai/smollm2", progress=seen.append)
    assert (seen[0].layer_id, seen[0].layer_size, seen[0].layer_current) == ("sha256:abc", 2048, 1024)


def test_pull_of_a_cached_model(make_client: Callable[..., Any]) -> None:
    cached = [PullProgress("success", pull_stream.cached_model_message("256.35 MiB"))]
    runner = Runner({("POST", "/models/create"): pull_response(cached, raw_json=True)})
    result = make_client(runner).pull("ai/smollm2")
    assert result.cached is True
    assert result.message == "Using cached model: 256.35 MiB"


def test_pull_error_line_raises_after_reporting_it(make_client: Callable[..., Any]) -> None:
    lines = [PULL_LINES[0], PullProgress("error", "Error: writing image to store: disk full")]
    handler = pull_response(lines, raw_json=True, trailer="error while pulling model: writing image to store\n")
    seen: list[PullProgress] = []
    with pytest.raises(errors.PullError) as caught:
        make_client(Runner({("POST", "/models/create"): handler})).pull("ai/smollm2", progress=seen.append)
    assert [line.type for line in seen] == ["progress", "error"]
    assert str(caught.value) == (
        "the runner reported an error while pulling: Error: writing image to store: disk full "
        "(error while pulling model: writing image to store) (runner http://127.0.0.1:12434, model ai/smollm2:latest). "
        "Check the runner's disk space and network access, then retry"
    )


@pytest.mark.parametrize(
    ("status", "body", "hint"),
    [
        (400, "Invalid model reference", "Check the model reference: e.g. ai/smollm2 or ai/smollm2:360M-Q4_K_M"),
        (401, "Unauthorized", "The registry refused access: the model may not exist, or it needs a login (`docker login`)"),
        (404, "Model not found", "Check the name: Docker Hub's models live under ai/ (https://hub.docker.com/u/ai)"),
        (500, "error while pulling model: boom", "Check the runner's logs (`docker model logs`) and its network access"),
    ],
)
def test_pull_refused_statuses_raise_pull_error(
    make_client: Callable[..., Any], status: int, body: str, hint: str
) -> None:
    client = make_client(Runner({("POST", "/models/create"): text(status, body + "\n")}))
    with pytest.raises(errors.PullError) as caught:
        client.pull("ai/nothing:v9")
    assert str(caught.value) == (
        f"the runner refused to pull the model ({status}: {body}) (runner http://127.0.0.1:12434, "
        f"model ai/nothing:v9). {hint}"
    )


def test_pull_without_a_success_line_is_an_error(make_client: Callable[..., Any]) -> None:
    runner = Runner({("POST", "/models/create"): pull_response(PULL_LINES[:2], raw_json=True)})
    with pytest.raises(errors.PullError, match=r"^the pull ended after 2 progress lines without the runner reporting success"):
        make_client(runner).pull("ai/smollm2")


# ------------------------------------------------------------------------------------------
# Deleting
# ------------------------------------------------------------------------------------------


def test_delete_returns_the_actions_and_sends_force(make_client: Callable[..., Any]) -> None:
    actions = [{"Untagged": "docker.io/ai/smollm2:latest"}, {"Deleted": SMOLLM2["id"]}]
    runner = Runner({("DELETE", "/models/ai/smollm2"): httpx2.Response(200, json=actions)})
    client = make_client(runner)
    assert client.delete("ai/smollm2") == actions
    assert client.delete("ai/smollm2", force=True) == actions
    assert [request.url.params.get("force") for request in runner.requests] == [None, "true"]


def test_delete_of_a_missing_model(make_client: Callable[..., Any]) -> None:
    runner = Runner({("DELETE", "/models/ai/nothing"): text(404, "error while deleting model: model not found\n")})
    with pytest.raises(errors.ModelNotFoundError, match=r"^the runner does not have this model \(404: error while "):
        make_client(runner).delete("ai/nothing")


def test_delete_conflict_says_to_force(make_client: Callable[..., Any]) -> None:
    body = 'error while deleting model: unable to delete "abc" (must be forced) due to multiple tag references: resource conflict\n'
    client = make_client(Runner({("DELETE", "/models/abc"): text(409, body)}))
    with pytest.raises(errors.RunnerHTTPError) as caught:
        client.delete("abc")
    assert str(caught.value).endswith("(runner http://127.0.0.1:12434, model abc). The model has several tags: "
                                      "delete them one by one, or pass force=True")
    assert caught.value.status_code == 409


# ------------------------------------------------------------------------------------------
# Transport failures
# ------------------------------------------------------------------------------------------

START_HINT = (
    "Start Docker Model Runner (Docker Desktop: `docker desktop enable model-runner --tcp 12434`; "
    "Docker Engine: `docker model install-runner`), or point --dmr-url / MODEL_RUNNER_URL at a running one"
)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_connection_refused_names_the_url_and_how_to_start_dmr(flavour: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client: Any = ModelRunnerClient(url) if flavour == "sync" else AsyncFacade(AsyncModelRunnerClient(url))
    assert client.is_running() is False
    with pytest.raises(errors.RunnerUnavailableError) as caught:
        client.list_models()
    message = str(caught.value)
    assert message.startswith("cannot connect to the runner (")
    assert message.endswith(f") (runner {url}). {START_HINT}")
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


def test_name_resolution_failure_is_runner_unavailable(make_client: Callable[..., Any]) -> None:
    failure = httpx2.ConnectError("[Errno -2] Name or service not known")
    client = make_client(Runner({("GET", "/models"): failure}), "http://dmr.example.invalid:12434")
    with pytest.raises(errors.RunnerUnavailableError) as caught:
        client.list_models()
    assert str(caught.value) == (
        f"cannot connect to the runner ([Errno -2] Name or service not known) "
        f"(runner http://dmr.example.invalid:12434). {START_HINT}"
    )


def test_timeout_is_runner_timeout_error(make_client: Callable[..., Any]) -> None:
    client = make_client(Runner({("GET", "/models/ai/smollm2"): httpx2.ReadTimeout("timed out")}))
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        client.inspect("ai/smollm2")
    assert str(caught.value) == (
        "the runner did not answer within 30 s (runner http://127.0.0.1:12434, model ai/smollm2). "
        "Raise the timeout (--dmr-timeout, or LOCAL_MODEL_TIMEOUT in milliseconds), or use a smaller model"
    )


def test_pull_connection_lost_midway_is_a_pull_error(make_client: Callable[..., Any]) -> None:
    class Cut(httpx2.SyncByteStream, httpx2.AsyncByteStream):
        line = pull_stream.encode_pull_line(PULL_LINES[0], raw_json=True)

        def __iter__(self):  # type: ignore[no-untyped-def]
            yield self.line
            raise httpx2.RemoteProtocolError("peer closed connection")

        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield self.line
            raise httpx2.RemoteProtocolError("peer closed connection")

    def respond(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/json"}, stream=Cut())

    seen: list[PullProgress] = []
    with pytest.raises(errors.PullError) as caught:
        make_client(Runner({("POST", "/models/create"): respond})).pull("ai/smollm2", progress=seen.append)
    assert seen == [PULL_LINES[0]]
    assert str(caught.value).startswith(
        "the pull stopped after 1 progress lines: the connection was lost (RemoteProtocolError) "
        "(runner http://127.0.0.1:12434, model ai/smollm2:latest)"
    )


def test_client_defaults_to_the_transports_base_url() -> None:
    class WithBaseUrl(httpx2.MockTransport):
        base_url = "http://dmr-mock.invalid"

    client = ModelRunnerClient(transport=WithBaseUrl(Runner({("GET", "/"): text(200, addresses.ROOT_BANNER)})))
    assert client.base_url == "http://dmr-mock.invalid"
    assert ModelRunnerClient().base_url == addresses.DEFAULT_HOST_URL


def test_client_context_managers_close_their_http_clients() -> None:
    transport = httpx2.MockTransport(Runner({}))
    with ModelRunnerClient(RUNNER, transport=transport) as client:
        pass
    assert client._http.is_closed

    async def use() -> AsyncModelRunnerClient:
        async with AsyncModelRunnerClient(RUNNER, transport=transport) as client:
            return client

    assert asyncio.run(use())._http.is_closed
