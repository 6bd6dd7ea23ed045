"""The mock's CORS and ``_configure`` against DMR-PROTOCOL.md sections 0 (CORS row), 5 and 7.

Expected strings are written out as the document gives them, not taken from ``protocol``, so a
wrong constant there fails here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pytest_dmr.protocol import engines_api
from pytest_dmr.mock import MockModelRunner

CHAT = "/engines/v1/chat/completions"
DEFAULT_ORIGINS = [
    "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
    "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
    "http://0.0.0.0", "https://0.0.0.0", "http://0.0.0.0:*", "https://0.0.0.0:*",
]  # fmt: skip
"""DMR's envconfig.AllowedOrigins() without DMR_ORIGINS (pkg/envconfig/envconfig.go)."""


def assert_plain_error(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == text + "\n"


def chat(client: httpx.Client, model: str = "ai/smollm2") -> httpx.Response:
    return client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def configure(client: httpx.Client, body: Any, path: str = "/engines/_configure") -> httpx.Response:
    return client.post(path, content=body if isinstance(body, bytes) else json.dumps(body).encode())


def ps(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/engines/ps")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ CORS


def test_the_default_allowed_list_is_dmrs() -> None:
    assert MockModelRunner().origins == tuple(DEFAULT_ORIGINS)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models"), ("GET", "/models/ai/smollm2"), ("DELETE", "/models/ai/smollm2"), ("GET", "/engines/ps"),
     ("POST", CHAT), ("GET", "/v1/models"), ("OPTIONS", CHAT), ("POST", "/engines/_configure"), ("GET", "/api/tags"),
     ("GET", "/engines/nowhere")],
)  # fmt: skip
def test_an_origin_not_allowed_gets_403_before_any_handler(mock: MockModelRunner, client: httpx.Client, method: str, path: str) -> None:
    body = json.dumps({"model": "ai/smollm2", "messages": []}).encode() if method == "POST" else None
    response = client.request(method, path, content=body, headers={"Origin": "http://evil.example"})
    assert_plain_error(response, 403, "Origin not allowed")
    assert "access-control-allow-origin" not in response.headers
    assert [model.name for model in mock.models] == ["docker.io/ai/smollm2:latest"]  # the DELETE did not happen
    assert mock.loaded_runners == [] and mock.runner_configs == {}  # nor the inference, nor the _configure


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [("/", 200, "Docker Model Runner is running"), ("/version", 200, '{"version":"v1.2.6"}\n'),
     ("/metrics", 200, "# No active runners\n"), ("/nowhere", 404, "404 page not found\n")],
)  # fmt: skip
def test_root_version_metrics_and_unknown_paths_are_not_wrapped(client: httpx.Client, path: str, status: int, text: str) -> None:
    response = client.get(path, headers={"Origin": "http://evil.example"})
    assert (response.status_code, response.text) == (status, text)
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("origin", DEFAULT_ORIGINS)
def test_an_allowed_origin_is_echoed(client: httpx.Client, origin: str) -> None:
    response = client.get("/models", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == [origin]
    assert "access-control-allow-credentials" not in response.headers  # only on a preflight


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://LOCALHOST", "http://localhost/", "localhost", "null"])
def test_matching_is_exact_string_matching(client: httpx.Client, origin: str) -> None:
    assert_plain_error(client.get("/models", headers={"Origin": origin}), 403, "Origin not allowed")


def test_errors_and_streams_of_an_allowed_origin_carry_the_header(client: httpx.Client) -> None:
    origin = {"Origin": "http://127.0.0.1"}
    missing = client.get("/models/ai/nothing", headers=origin)
    assert_plain_error(missing, 404, "model not found")
    assert missing.headers["access-control-allow-origin"] == "http://127.0.0.1"
    body = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with client.stream("POST", CHAT, json=body, headers=origin) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["access-control-allow-origin"] == "http://127.0.0.1"
        assert b"data: [DONE]" in stream.read()


def test_a_preflight_from_an_allowed_origin_gets_204_and_the_three_headers(mock: MockModelRunner, client: httpx.Client) -> None:
    response = client.options(CHAT, headers={"Origin": "https://localhost"})
    assert response.status_code == 204
    assert response.content == b""
    assert {name: response.headers.get(name) for name in (
        "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
        "access-control-allow-headers")} == {
        "access-control-allow-origin": "https://localhost", "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, DELETE", "access-control-allow-headers": "*"}  # fmt: skip
    assert mock.loaded_runners == []  # answered by the middleware, not by inference


def test_requests_without_origin_are_untouched(client: httpx.Client) -> None:
    assert_plain_error(client.options(CHAT), 404, "not found")  # no preflight: the router's 404
    assert_plain_error(client.options(CHAT, headers={"Origin": ""}), 404, "not found")  # empty counts as none
    response = client.get("/models")
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_origins_replaces_the_list_and_a_lone_star_allows_all() -> None:
    only_app = MockModelRunner(origins=["http://app.test"])
    with httpx.Client(transport=only_app, base_url=only_app.base_url) as client:
        assert client.get("/models", headers={"Origin": "http://app.test"}).headers["access-control-allow-origin"] == "http://app.test"
        assert client.get("/models", headers={"Origin": "http://localhost"}).status_code == 403
    everyone = MockModelRunner(origins=["*"])
    with httpx.Client(transport=everyone, base_url=everyone.base_url) as client:
        response = client.get("/engines/ps", headers={"Origin": "http://anything.example:8080"})
        assert response.headers["access-control-allow-origin"] == "http://anything.example:8080"
    star_among_others = MockModelRunner(origins=["*", *DEFAULT_ORIGINS])  # what DMR_ORIGINS=* gives DMR
    with httpx.Client(transport=star_among_others, base_url=star_among_others.base_url) as client:
        assert client.get("/models", headers={"Origin": "http://anything.example"}).status_code == 403


def test_the_mock_never_reads_dmr_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_ORIGINS", "http://app.test")
    mock = MockModelRunner()
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        assert client.get("/models", headers={"Origin": "http://app.test"}).status_code == 403


def test_origins_given_as_one_string_is_refused() -> None:
    with pytest.raises(TypeError, match=r"origins must be a list of origins, not the string 'http://a,http://b'"):
        MockModelRunner(origins="http://a,http://b")


# ------------------------------------------------------------------------------------ _configure


def test_configure_answers_202_stores_and_lists_the_setting(mock: MockModelRunner, client: httpx.Client) -> None:
    response = configure(client, {"model": "smollm2", "keep_alive": "10m"})
    assert (response.status_code, response.content) == (202, b"")
    listed = client.get("/engines/_configure")
    assert listed.headers["content-type"] == "application/json" and listed.text.endswith("]\n")
    assert listed.json() == [{
        "Backend": "llama.cpp", "Model": "docker.io/ai/smollm2:latest", "ModelID": mock.models[0].id,
        "Mode": "completion", "Config": {"keep_alive": "10m0s"},
    }]  # fmt: skip


def test_configure_preloads_the_completion_runner_and_ps_shows_its_keep_alive(client: httpx.Client) -> None:
    configure(client, {"model": "SmolLM2", "keep_alive": "-1", "mode": "embedding"})
    configure(client, {"model": "ai/smollm2", "keep_alive": "1h30m"})
    # DMR's preload always asks for chat completions, whatever the configured mode: one runner.
    entries = ps(client)
    assert entries == [{"backend_name": "llama.cpp", "model_name": "ai/smollm2", "mode": "completion",
                        "last_used": "2026-01-01T00:00:00Z", "keep_alive": "1h30m0s"}]  # fmt: skip (the mock clock: the preload used it)
    client.post("/engines/v1/embeddings", json={"model": "smollm2", "input": "x"})
    assert [(entry["mode"], entry.get("keep_alive")) for entry in ps(client)] == [("completion", "1h30m0s"), ("embedding", "-1")]


@pytest.mark.parametrize(
    ("given", "shown"),
    [("0", "0s"), ("-1", "-1"), ("-5m", "-1"), ("1h30m", "1h30m0s"), ("90s", "1m30s"), ("1.5h", "1h30m0s"),
     ("300ms", "300ms"), ("10m", "10m0s"), ("2h", "2h0m0s"), ("1m0.5s", "1m0.5s")],
)  # fmt: skip
def test_keep_alive_is_written_back_as_go_does(client: httpx.Client, given: str, shown: str) -> None:
    assert configure(client, {"model": "ai/smollm2", "keep_alive": given}).status_code == 202
    assert client.get("/engines/_configure").json()[0]["Config"] == {"keep_alive": shown}


@pytest.mark.parametrize(
    "body",
    [b"{", b"", b"[]", b'"ai/smollm2"', {"model": 5}, {"model": "ai/smollm2", "keep_alive": 600},
     {"model": "ai/smollm2", "keep_alive": "ten minutes"}, {"model": "ai/smollm2", "keep_alive": "10"},
     {"model": "ai/smollm2", "keep_alive": "5y"}, {"model": "ai/smollm2", "mode": "chat"},
     {"model": "ai/smollm2", "context-size": "4096"}, {"model": "ai/smollm2", "context-size": 2**31},
     {"model": "ai/smollm2", "context-size": 4096.5}, {"model": "ai/smollm2", "runtime-flags": "--threads 2"},
     {"model": "ai/smollm2", "speculative": "ai/x"}, {"model": "ai/smollm2", "speculative": {"num_tokens": "4"}},
     {"model": "ai/smollm2", "speculative": {"draft_model": 1}}, {"model": "ai/smollm2", "speculative": {"num_tokens": 1.5}},
     {"model": "ai/smollm2", "speculative": {"min_acceptance_rate": "0.5"}},
     {"model": "ai/smollm2", "vllm": {"gpu-memory-utilization": True}}, {"model": "ai/smollm2", "vllm": {"hf-overrides": []}},
     {"model": "ai/smollm2", "llamacpp": {"reasoning-budget": 2**31}}, b'{"model":"ai/smollm2","vllm":{"gpu-memory-utilization":NaN}}',
     b'{"model":"ai/smollm2","speculative":{"min_acceptance_rate":Infinity}}',
     b'{"model":"ai/smollm2","speculative":{"min_acceptance_rate":1e999}}'],
    ids=["truncated", "empty", "array", "string", "model-number", "keep-alive-number", "keep-alive-words",
         "keep-alive-no-unit", "keep-alive-unknown-unit", "unknown-mode", "context-string", "context-overflow",
         "context-float", "flags-string", "speculative-string", "num-tokens-string", "draft-model-number",
         "num-tokens-float", "acceptance-string", "gpu-memory-bool", "hf-overrides-array", "reasoning-budget-overflow",
         "nan", "infinity", "number-overflow"],
)  # fmt: skip
def test_bodies_dmr_cannot_decode_are_400_invalid_request(mock: MockModelRunner, client: httpx.Client, body: Any) -> None:
    assert_plain_error(configure(client, body), 400, "invalid request")
    assert mock.runner_configs == {} and mock.loaded_runners == []


@pytest.mark.parametrize("raw", ["--alias 'unterminated", '--alias "x', "--threads 2 \\", "--seed (1)", "--seed `date"])
def test_unparsable_raw_runtime_flags_are_a_500_with_go_shellwords_message(mock: MockModelRunner, client: httpx.Client,
                                                                           raw: str) -> None:  # fmt: skip
    response = configure(client, {"model": "ai/smollm2", "raw-runtime-flags": raw})
    assert_plain_error(response, 500, "invalid runtime flags: invalid command line string")
    assert mock.runner_configs == {}


def test_raw_runtime_flags_are_split_as_dmr_splits_them(mock: MockModelRunner, client: httpx.Client) -> None:
    """DMR splits with go-shellwords: an unquoted ';' ends the line, a backslash-t is a tab."""
    raw = "--threads 2 --alias \"my model\" --stop 'a\\tb' --seed \\t1; --log-file /etc/passwd"
    assert configure(client, {"model": "ai/smollm2", "raw-runtime-flags": raw}).status_code == 202
    assert client.get("/engines/_configure").json()[0]["Config"] == {
        "runtime-flags": ["--threads", "2", "--alias", "my model", "--stop", "a\\tb", "--seed", "\t1"]}
    assert (configure(client, {"model": "ai/smollm2", "raw-runtime-flags": "x", "runtime-flags": ["--embeddings"]})
            .status_code) == 202  # fmt: skip
    assert client.get("/engines/_configure").json()[1]["Config"] == {"runtime-flags": ["--embeddings"]}  # the list wins


def test_backends_and_routes(mock: MockModelRunner, client: httpx.Client) -> None:
    assert_plain_error(configure(client, {"model": "ai/smollm2"}, "/engines/tensorrt/_configure"), 404, "backend not found")
    assert configure(client, {"model": "ai/smollm2", "keep_alive": "1m"}, "/engines/vllm/_configure").status_code == 202
    assert [entry["Backend"] for entry in client.get("/engines/_configure").json()] == ["vllm"]
    assert mock.loaded_runners == []  # no preload on a backend the runner cannot run
    assert_plain_error(client.get("/engines/llama.cpp/_configure"), 404, "not found")
    assert_plain_error(client.delete("/engines/_configure"), 404, "not found")
    assert_plain_error(client.put("/engines/_configure", json={"model": "ai/smollm2"}), 404, "not found")


def test_an_unknown_model_is_accepted_but_not_listed_nor_loaded(client: httpx.Client) -> None:
    strict = MockModelRunner(serve_any_model=False)
    with httpx.Client(transport=strict, base_url=strict.base_url) as strict_client:
        assert configure(strict_client, {"model": "ai/nothing", "keep_alive": "1m"}).status_code == 202
        assert strict_client.get("/engines/_configure").json() == []
        assert ps(strict_client) == []  # the preload's inference would 404


def test_mode_comes_from_mode_or_the_embeddings_flag(client: httpx.Client) -> None:
    configure(client, {"model": "ai/smollm2", "mode": "reranking"})
    configure(client, {"model": "ai/smollm2", "runtime-flags": ["--embeddings"]})
    configure(client, {"model": "ai/smollm2", "raw-runtime-flags": "--threads 2", "context-size": 4096,
                       "speculative": {"draft_model": "ai/smollm2:135M", "bogus": 1}, "llamacpp": {"reasoning-budget": 0},
                       "vllm": {"gpu-memory-utilization": 0.5}})  # fmt: skip
    assert [(entry["Mode"], entry["Config"]) for entry in client.get("/engines/_configure").json()] == [
        ("reranking", {}),
        ("embedding", {"runtime-flags": ["--embeddings"]}),
        ("completion", {"context-size": 4096, "runtime-flags": ["--threads", "2"],
                        "speculative": {"draft_model": "ai/smollm2:135M"}, "vllm": {"gpu-memory-utilization": 0.5},
                        "llamacpp": {"reasoning-budget": 0}}),
    ]  # fmt: skip


def test_the_model_query_filters_by_model_id(mock: MockModelRunner, client: httpx.Client) -> None:
    mock.add_model("ai/qwen3")
    configure(client, {"model": "ai/smollm2", "keep_alive": "1m"})
    configure(client, {"model": "qwen3", "keep_alive": "2m"})
    assert [entry["Model"] for entry in client.get("/engines/_configure").json()] == [
        "docker.io/ai/smollm2:latest", "docker.io/ai/qwen3:latest"]
    filtered = client.get("/engines/_configure", params={"model": "docker.io/ai/qwen3:latest"}).json()
    assert [entry["Config"] for entry in filtered] == [{"keep_alive": "2m0s"}]
    assert client.get("/engines/_configure", params={"model": "ai/other"}).json() == []


def test_keep_alive_zero_unloads_as_soon_as_idle(client: httpx.Client) -> None:
    configure(client, {"model": "ai/smollm2", "keep_alive": "0"})
    assert ps(client) == []
    assert chat(client).status_code == 200
    assert ps(client) == []  # a mock request is instant: idle at once, so unloaded at once
    chat(client, "ai/qwen3")
    assert [entry["model_name"] for entry in ps(client)] == ["ai/qwen3"]  # other models keep the default


def test_new_settings_unload_the_runner_unchanged_ones_keep_it(client: httpx.Client) -> None:
    chat(client, "SmolLM2")
    assert [entry["model_name"] for entry in ps(client)] == ["SmolLM2"]
    configure(client, {"model": "ai/smollm2", "keep_alive": "-1"})  # other settings: unloaded, then preloaded
    assert [(entry["model_name"], entry["keep_alive"]) for entry in ps(client)] == [("ai/smollm2", "-1")]
    chat(client, "smollm2")
    configure(client, {"model": "smollm2", "keep_alive": "-1"})  # the same settings: the runner stays as it is
    assert [entry["model_name"] for entry in ps(client)] == ["ai/smollm2"]


def test_unload_all_forgets_every_setting(client: httpx.Client) -> None:
    configure(client, {"model": "ai/smollm2", "keep_alive": "-1"})
    response = client.post("/engines/unload", json={"all": True})
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"unloaded_runners":1}\n'
    assert client.get("/engines/_configure").json() == [] and ps(client) == []


def test_unload_forgets_settings_only_for_the_exact_backend(mock: MockModelRunner, client: httpx.Client) -> None:
    configure(client, {"model": "ai/smollm2", "keep_alive": "-1"})
    configure(client, {"model": "ai/smollm2", "keep_alive": "1m"}, "/engines/vllm/_configure")
    assert client.post("/engines/unload", json={"models": ["smollm2"], "backend": ""}).json() == {"unloaded_runners": 1}
    assert ps(client) == [] and len(client.get("/engines/_configure").json()) == 2  # empty backend: settings stay
    chat(client)
    assert client.post("/engines/unload", json={"models": ["smollm2"], "backend": "vllm"}).json() == {"unloaded_runners": 0}
    assert [entry["Backend"] for entry in client.get("/engines/_configure").json()] == ["llama.cpp"]
    assert len(ps(client)) == 1  # a llama.cpp runner is not a vllm one
    assert client.post("/engines/unload", json={"models": ["ai/smollm2:latest"], "backend": "llama.cpp"}).json() == {
        "unloaded_runners": 1}
    assert client.get("/engines/_configure").json() == [] and mock.runner_configs == {}


@pytest.mark.parametrize(("body", "status"), [(b"null", 200), (b'{"all":"yes"}', 400), (b'{"models":"ai/smollm2"}', 400),
                                              (b'{"backend":1}', 400)])  # fmt: skip
def test_unload_bodies_are_decoded_as_go_does(client: httpx.Client, body: bytes, status: int) -> None:
    response = client.post("/engines/unload", content=body)
    assert response.status_code == status
    assert response.text == ('{"unloaded_runners":0}\n' if status == 200 else "invalid request\n")


def test_configure_through_cors_and_reset(mock: MockModelRunner, client: httpx.Client) -> None:
    response = client.post("/engines/_configure", json={"model": "ai/smollm2"}, headers={"Origin": "http://0.0.0.0"})
    assert response.status_code == 202 and response.headers["access-control-allow-origin"] == "http://0.0.0.0"
    assert mock.runner_configs == {("llama.cpp", mock.models[0].id, "completion"): engines_api.RunnerConfig()}
    mock.reset()
    assert mock.runner_configs == {} and mock.loaded_runners == []
