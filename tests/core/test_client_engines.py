"""The client's engine calls: version, running_models, disk_usage, unload, configure (sync and async).

Mostly on the real MockModelRunner; a scripted transport stands in for answers the mock never
gives (DMR-PROTOCOL.md's ps example, a 409) and for servers that are not Docker Model Runner.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, engines_api
from pytest_dmr.client import AsyncModelRunnerClient, DiskUsage, ModelRunnerClient, RunningModel
from pytest_dmr.mock import MockModelRunner
from async_facade import AsyncFacade

RUNNER = "http://127.0.0.1:12434"
WHERE = f"runner {addresses.MOCK_BASE_URL}"
PS_EXAMPLE = """[
  {"backend_name":"llama.cpp","model_name":"ai/smollm2","mode":"completion","last_used":"2026-07-22T10:01:02.123456789Z"},
  {"backend_name":"llama.cpp","model_name":"ai/mxbai-embed-large","mode":"embedding","last_used":"0001-01-01T00:00:00Z","in_use":true,"keep_alive":"10m0s"},
  {"backend_name":"llama.cpp","model_name":"ai/qwen3","mode":"completion","last_used":"0001-01-01T00:00:00Z","loading":true}
]"""
"""DMR-PROTOCOL.md section 1's example, as written there."""
LLAMA_CPP_404 = '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}'


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner(models=("ai/smollm2",))


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(flavour: str, mock: MockModelRunner) -> Any:
    if flavour == "sync":
        return ModelRunnerClient(transport=mock)
    return AsyncFacade(AsyncModelRunnerClient(transport=mock))


@pytest.fixture
def scripted(flavour: str) -> Callable[[Callable[[httpx2.Request], httpx2.Response]], Any]:
    """A client on a transport that answers every request with ``handler``."""

    def make(handler: Callable[[httpx2.Request], httpx2.Response]) -> Any:
        transport = httpx2.MockTransport(handler)
        if flavour == "sync":
            return ModelRunnerClient(RUNNER, transport=transport)
        return AsyncFacade(AsyncModelRunnerClient(RUNNER, transport=transport))

    return make


def chat(mock: MockModelRunner, model: str = "ai/smollm2", endpoint: str = "/engines/v1/chat/completions") -> None:
    with httpx2.Client(transport=mock, base_url=mock.base_url) as http:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "input": "x"}
        assert http.post(endpoint, json=body).status_code == 200


# ------------------------------------------------------------------------------- reading


def test_version(client: Any, scripted: Callable[..., Any]) -> None:
    assert client.version() == "v1.2.6"
    other = scripted(lambda request: httpx2.Response(200, json={"version": "v1.0.11"}))
    assert other.version() == "v1.0.11"


def test_running_models_on_the_mock(client: Any, mock: MockModelRunner) -> None:
    assert client.running_models() == []
    chat(mock, "SmolLM2")
    chat(mock, "smollm2", "/engines/v1/embeddings")
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)  # the mock's clock, which dates each runner's last use
    assert client.running_models() == [
        RunningModel(backend="llama.cpp", model="SmolLM2", mode="completion", last_used=start),
        RunningModel(backend="llama.cpp", model="smollm2", mode="embedding", last_used=start),
    ]


def test_running_models_reads_every_field_of_dmrs_answer(scripted: Callable[..., Any]) -> None:
    client = scripted(lambda request: httpx2.Response(200, content=PS_EXAMPLE.encode(), headers={"content-type": "application/json"}))
    idle, busy, loading = client.running_models()
    assert idle == RunningModel(
        backend="llama.cpp", model="ai/smollm2", mode="completion",
        last_used=datetime.datetime(2026, 7, 22, 10, 1, 2, 123456, tzinfo=datetime.timezone.utc),
    )  # fmt: skip
    assert busy == RunningModel(backend="llama.cpp", model="ai/mxbai-embed-large", mode="embedding", in_use=True, keep_alive="10m0s")
    assert loading == RunningModel(backend="llama.cpp", model="ai/qwen3", mode="completion", loading=True)


def test_disk_usage(client: Any, mock: MockModelRunner, scripted: Callable[..., Any]) -> None:
    usage = client.disk_usage()
    assert isinstance(usage, DiskUsage)
    assert usage.models > 200 * 1024 * 1024  # smollm2's 256 MiB
    mock.add_model("ai/qwen3:0.6B-Q4_0")
    assert client.disk_usage().models > usage.models
    answer = {"models_disk_usage": 1234567890, "default_backend_disk_usage": 45678901}
    assert scripted(lambda request: httpx2.Response(200, json=answer)).disk_usage() == DiskUsage(1234567890, 45678901)


# ------------------------------------------------------------------------------- unloading


def test_unload_returns_the_count_and_takes_one_name_or_many(client: Any, mock: MockModelRunner) -> None:
    chat(mock)
    chat(mock, endpoint="/engines/v1/embeddings")
    chat(mock, "ai/qwen3")
    assert client.unload("ai/nothing") == 0
    assert client.unload("smollm2") == 2  # one string is one model, not its letters
    assert mock.loaded_runners == [("ai/qwen3", "completion")]
    assert mock.last_request.json == {"all": False, "backend": "", "models": ["smollm2"]}
    chat(mock)
    assert client.unload(["qwen3", "ai/smollm2:latest"]) == 2
    assert client.unload(all=True) == 0
    assert mock.last_request.json == {"all": True, "backend": "", "models": []}


def test_unload_and_settings_per_backend(client: Any, mock: MockModelRunner) -> None:
    client.configure("ai/smollm2", keep_alive="-1")
    assert client.unload(["ai/smollm2"]) == 1
    assert len(mock.runner_configs) == 1  # no backend: the setting stays (DMR-PROTOCOL.md section 5)
    assert client.unload(["ai/smollm2"], backend="llama.cpp") == 0
    assert mock.runner_configs == {}
    client.configure("ai/smollm2", keep_alive="-1")
    assert client.unload(all=True) == 1 and mock.runner_configs == {}


def test_unload_of_nothing_is_a_clear_error(client: Any) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        client.unload()
    assert str(caught.value) == "unload() was given no model to unload. Pass the models (unload(['ai/smollm2'])) or all=True"


# ------------------------------------------------------------------------------- configure


@pytest.mark.parametrize(
    ("keep_alive", "shown"),
    [("10m", "10m0s"), (600, "10m0s"), (datetime.timedelta(minutes=90), "1h30m0s"), ("90m", "1h30m0s"), (1.5, "1.5s"),
     (0, "0s"), ("0", "0s"), (-1, "-1"), ("-1", "-1"), ("-3m", "-1"), (datetime.timedelta(seconds=-5), "-1")],
)  # fmt: skip
def test_configure_sends_keep_alive_as_dmr_writes_it(client: Any, mock: MockModelRunner, keep_alive: Any, shown: str) -> None:
    assert client.configure("ai/smollm2", keep_alive=keep_alive) is None
    assert mock.last_request.path == "/engines/_configure"
    assert mock.last_request.json == {"model": "ai/smollm2", "keep_alive": shown}
    with httpx2.Client(transport=mock, base_url=mock.base_url) as http:
        assert http.get("/engines/_configure").json()[0]["Config"] == {"keep_alive": shown}
    running = client.running_models()
    if shown == "0s":
        assert running == []  # unloaded as soon as idle
    else:
        assert [(entry.model, entry.keep_alive) for entry in running] == [("ai/smollm2", shown)]


def test_configure_sends_the_other_settings(client: Any, mock: MockModelRunner) -> None:
    client.configure("ai/smollm2", context_size=4096, mode="embedding", runtime_flags=["--threads", "2"], backend="llama.cpp")
    assert mock.last_request.path == "/engines/llama.cpp/_configure"
    assert mock.last_request.json == {"model": "ai/smollm2", "mode": "embedding", "context-size": 4096,
                                      "runtime-flags": ["--threads", "2"]}  # fmt: skip
    key = ("llama.cpp", mock.models[0].id, "embedding")
    assert mock.runner_configs == {key: engines_api.RunnerConfig(context_size=4096, runtime_flags=("--threads", "2"))}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"keep_alive": "ten minutes"},
      "keep_alive 'ten minutes' is not a duration DMR understands (invalid keep_alive duration \"ten minutes\": "
      "time: invalid duration \"ten minutes\"). Give a Go duration such as \"30s\", \"10m\" or \"1h30m\", \"0\" to "
      "unload when idle, \"-1\" to never unload, or a number of seconds"),
     ({"keep_alive": "10"},
      "keep_alive '10' is not a duration DMR understands (invalid keep_alive duration \"10\": time: missing unit in "
      "duration \"10\"). Give a Go duration such as \"30s\", \"10m\" or \"1h30m\", \"0\" to unload when idle, \"-1\" "
      "to never unload, or a number of seconds"),
     ({"keep_alive": True},
      "keep_alive must be a duration string, a number of seconds or a timedelta, not True. For example "
      "keep_alive=\"10m\", keep_alive=600 or keep_alive=timedelta(minutes=10)"),
     ({"context_size": 0},
      "context_size must be a positive number of tokens, not 0 (model ai/smollm2). For example context_size=4096"),
     ({"mode": "chat"},
      "mode 'chat' is not one of DMR's runner modes (model ai/smollm2). Use one of completion, embedding, reranking, "
      "image-generation"),
     ({"runtime_flags": "--threads 2"},
      "runtime_flags must be a list of flags, not one string (model ai/smollm2). For example "
      "runtime_flags=['--threads', '2']")],
    ids=["words", "no-unit", "bool", "context", "mode", "flags"],
)  # fmt: skip
def test_bad_settings_are_refused_before_sending(client: Any, mock: MockModelRunner, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        client.configure("ai/smollm2", **arguments)
    assert str(caught.value) == message
    assert mock.requests == []


@pytest.mark.parametrize(
    "keep_alive", [float("inf"), float("nan"), 1e12, 2**70, datetime.timedelta(days=999_999)], ids=["inf", "nan", "1e12", "2**70", "days"]
)  # fmt: skip
def test_a_keep_alive_longer_than_a_go_duration_is_refused_clearly(client: Any, mock: MockModelRunner, keep_alive: Any) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        client.configure("ai/smollm2", keep_alive=keep_alive)
    assert str(caught.value) == (
        f"keep_alive {keep_alive!r} is not a duration DMR can hold (at most about 292 years). "
        'Give a number of seconds, or keep_alive="-1" to never unload the model when idle'
    )
    assert mock.requests == []


def test_the_longest_keep_alive_in_seconds_still_goes_through(client: Any, mock: MockModelRunner) -> None:
    client.configure("ai/smollm2", keep_alive=9e9)  # 285 years
    assert mock.last_request.json == {"model": "ai/smollm2", "keep_alive": "2500000h0m0s"}


def test_an_unknown_backend(client: Any) -> None:
    with pytest.raises(errors.BackendUnavailableError) as caught:
        client.configure("ai/smollm2", keep_alive="1m", backend="tensorrt")
    assert caught.value.status_code == 404
    assert str(caught.value) == (
        f"the runner has no backend 'tensorrt' (404: backend not found) ({WHERE}, model ai/smollm2). "
        "Use one of llama.cpp, diffusers, mlx, sglang, vllm, or leave backend out for llama.cpp"
    )


def test_a_runner_in_use_with_other_settings_is_a_409(scripted: Callable[..., Any]) -> None:
    client = scripted(lambda request: httpx2.Response(409, text="runner already active\n"))
    with pytest.raises(errors.RunnerHTTPError) as caught:
        client.configure("ai/smollm2", keep_alive="5m")
    assert caught.value.status_code == 409
    assert str(caught.value) == (
        f"the runner refused the new settings (409: runner already active) (runner {RUNNER}, model ai/smollm2). "
        "A request is using the model with its current settings: configure it before using it, "
        "or retry once that request has finished"
    )


def test_other_errors_go_through_the_usual_mapping(scripted: Callable[..., Any]) -> None:
    client = scripted(lambda request: httpx2.Response(400, text="invalid request\n"))
    with pytest.raises(errors.BadRequestError) as caught:
        client.configure("ai/smollm2", keep_alive="5m")
    assert str(caught.value) == (
        f"the runner rejected the request (400: invalid request) (runner {RUNNER}, model ai/smollm2). Check the request options"
    )
    failing = scripted(lambda request: httpx2.Response(500, text="Failed to get models disk usage: disk on fire\n"))
    with pytest.raises(errors.RunnerHTTPError) as caught_500:
        failing.disk_usage()
    assert caught_500.value.status_code == 500
    assert "the runner answered 500: Failed to get models disk usage: disk on fire" in str(caught_500.value)


# ------------------------------------------------------------------------------- not DMR


CALLS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "version": (lambda client: client.version(), "GET /version"),
    "running_models": (lambda client: client.running_models(), "GET /engines/ps"),
    "disk_usage": (lambda client: client.disk_usage(), "GET /engines/df"),
    "unload": (lambda client: client.unload(all=True), "POST /engines/unload"),
    "configure": (lambda client: client.configure("ai/smollm2", keep_alive="1m"), "POST /engines/_configure"),
}


def llama_cpp(request: httpx2.Request) -> httpx2.Response:
    """A bare llama.cpp server: its OpenAI API, and its JSON 404 for everything else."""
    if request.url.path == "/v1/models":
        return httpx2.Response(200, json={"object": "list", "data": [{"id": "smollm2"}]})
    return httpx2.Response(404, content=LLAMA_CPP_404.encode(), headers={"content-type": "application/json; charset=utf-8"})


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_plain_openai_server_is_not_a_model_runner(scripted: Callable[..., Any], call: str) -> None:
    operation, what = CALLS[call]
    with pytest.raises(errors.NotAModelRunnerError) as caught:
        operation(scripted(llama_cpp))
    where = f"runner {RUNNER}, model ai/smollm2" if call == "configure" else f"runner {RUNNER}"  # the model it was about
    assert str(caught.value) == (
        f"the server answered {what} with 404 {LLAMA_CPP_404!r}: it is not a Docker Model Runner (no model "
        f"management API) ({where}). Point the URL at Docker Model Runner (e.g. http://localhost:12434); "
        "a bare llama.cpp or other OpenAI-compatible server only supports inference and list_openai_models()"
    )


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_server_answering_html_is_not_a_model_runner(scripted: Callable[..., Any], call: str) -> None:
    operation, what = CALLS[call]
    page = "<html>welcome</html>"
    client = scripted(lambda request: httpx2.Response(200 if request.method == "GET" else 405, text=page))
    with pytest.raises(errors.NotAModelRunnerError, match=f"^the server answered {what} with"):
        operation(client)


def test_configure_answered_by_a_catch_all_page_is_not_a_model_runner(scripted: Callable[..., Any]) -> None:
    """DMR answers ``_configure`` with 202 and nothing else; a 200 page means the settings went nowhere."""
    client = scripted(lambda request: httpx2.Response(200, text="<html>welcome</html>"))
    with pytest.raises(errors.NotAModelRunnerError, match="^the server answered POST /engines/_configure with 200 '<html>welcome</html>'"):
        client.configure("ai/smollm2", keep_alive="1m")


def test_a_json_answer_of_the_wrong_shape_is_not_a_model_runner(scripted: Callable[..., Any]) -> None:
    client = scripted(lambda request: httpx2.Response(200, json={"status": "ok"}))
    for call in ("version", "running_models", "disk_usage", "unload"):
        with pytest.raises(errors.NotAModelRunnerError):
            CALLS[call][0](client)


def test_nothing_is_sent_with_an_origin(mock: MockModelRunner, client: Any) -> None:
    """The client is not a browser: CORS never gets in its way, whatever the mock's allowed list."""
    strict = MockModelRunner(origins=["http://only.example"])
    assert ModelRunnerClient(transport=strict).running_models() == []
    client.version()
    assert "origin" not in mock.last_request.headers
