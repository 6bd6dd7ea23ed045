"""The emulator's management API held against DMR-PROTOCOL.md: statuses, bodies, content types."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from pytest_dmr.protocol import pull_stream
from pytest_dmr.emulator import EmulatorServer
from pytest_dmr.emulator.catalog import file_digest

from .conftest import MODEL, MODEL_TAG

pytestmark = pytest.mark.tier_live

PLAIN = "text/plain; charset=utf-8"


def assert_plain_error(response: httpx.Response, status: int, message: str) -> None:
    """Go's http.Error: the status, the message and a newline, text/plain, nosniff."""
    assert (response.status_code, response.text) == (status, message + "\n")
    assert response.headers["content-type"] == PLAIN
    assert response.headers["x-content-type-options"] == "nosniff"


# ---------------------------------------------------------------------------------- basics


def test_root_banner_has_no_trailing_newline(http: httpx.Client) -> None:
    response = http.get("/")
    assert (response.status_code, response.content) == (200, b"Docker Model Runner is running")
    assert response.headers["content-type"] == PLAIN


def test_version_is_a_json_line(http: httpx.Client) -> None:
    response = http.get("/version")
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("}\n")
    assert response.json()["version"].startswith("v1.")


def test_engines_status_names_llama_cpp_and_its_version(http: httpx.Client) -> None:
    from importlib.metadata import version

    response = http.get("/engines/status")
    assert response.headers["content-type"] == "application/json"
    assert not response.text.endswith("\n")
    status = response.json()
    assert list(status) == sorted(status)
    assert status["llama.cpp"] == f"Running: llama.cpp {version('xllamacpp')}"
    assert status["vllm"].startswith("Not Installed")


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/nowhere", 404, "404 page not found"),
        ("/engines/nowhere", 404, "not found"),
        ("/models/ai/smollm2/extra/bits", 404, "model not found"),
    ],
)
def test_unknown_paths_answer_go_404_bodies(http: httpx.Client, path: str, status: int, body: str) -> None:
    assert_plain_error(http.get(path), status, body)


def test_metrics_without_runners_is_the_minimal_prometheus_answer(fresh_emulator: EmulatorServer) -> None:
    response = httpx.get(fresh_emulator.url + "/metrics")
    assert response.content == b"# No active runners\n"
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


# ---------------------------------------------------------------------------------- GET /models


def test_models_list_describes_the_gguf_file(http: httpx.Client, llama_model_path) -> None:  # noqa: ANN001
    response = http.get("/models")
    assert response.headers["content-type"] == "application/json"
    (model,) = response.json()
    assert model["tags"] == ["docker.io/ai/smollm2:latest"]
    assert model["id"].startswith("sha256:") and len(model["id"]) == 71
    config = model["config"]
    assert list(config) == ["format", "quantization", "parameters", "architecture", "size", "gguf", "context_size"]
    assert config["format"] == "gguf"
    assert config["quantization"] == "Q4_1"
    assert config["architecture"] == config["gguf"]["general.architecture"] == "llama"
    assert config["size"] == pull_stream.format_size(llama_model_path.stat().st_size)
    assert config["context_size"] == int(config["gguf"]["llama.context_length"]) == 8192
    assert config["parameters"].endswith(" M")
    assert "tokenizer.ggml.tokens" not in config["gguf"]  # arrays over 50 items are dropped


@pytest.mark.parametrize(
    "ref", ["ai/smollm2", "smollm2", "SmolLM2", "ai/smollm2:latest", "docker.io/ai/smollm2", "index.docker.io/ai/smollm2"]
)
def test_inspect_normalises_the_reference(http: httpx.Client, ref: str) -> None:
    response = http.get(f"/models/{ref}")
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["docker.io/ai/smollm2:latest"]


def test_inspect_by_full_and_short_id(http: httpx.Client) -> None:
    model_id = http.get("/models").json()[0]["id"]
    assert http.get(f"/models/{model_id}").json()["id"] == model_id
    assert http.get(f"/models/{model_id[7:19]}").json()["id"] == model_id


def test_inspect_falls_back_to_partial_name_matching(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(f"ai/smollm2:{MODEL_TAG}")
    with httpx.Client(base_url=fresh_emulator.url) as http:
        # Normal lookup of "smollm2" means ai/smollm2:latest, which is not stored; the bare name matches.
        response = http.get("/models/smollm2")
        assert response.status_code == 200
        assert response.json()["tags"] == [f"docker.io/ai/smollm2:{MODEL_TAG}"]
        assert_plain_error(http.get("/models/SmolLM2"), 404, "model not found")  # partial matching is case-sensitive
        # Inference does not use partial matching.
        response = http.post("/engines/v1/chat/completions", json={"model": "smollm2", "messages": []})
        assert_plain_error(response, 404, """error while getting model: get model '"smollm2"': model not found""")


def test_openai_models_list_and_get(http: httpx.Client) -> None:
    listing = http.get("/engines/v1/models").json()
    assert listing["object"] == "list"
    (entry,) = listing["data"]
    assert entry["id"] == "docker.io/ai/smollm2:latest"
    assert entry["owned_by"] == "docker"
    assert entry["dmr"]["context_window"] == 8192 and entry["dmr"]["quantization"] == "Q4_1"
    for prefix in ("/v1", "/engines/llama.cpp/v1", "/engines/anything/v1"):
        assert http.get(f"{prefix}/models").json() == listing
    assert http.get("/engines/v1/models/smollm2").json() == entry
    assert_plain_error(
        http.get("/engines/v1/models/ai/unknown"), 404, """error while getting model: get model '"ai/unknown"': model not found"""
    )


def test_openai_models_list_is_empty_not_null(fresh_emulator: EmulatorServer) -> None:
    assert httpx.get(fresh_emulator.url + "/engines/v1/models").json() == {"object": "list", "data": []}
    assert httpx.get(fresh_emulator.url + "/models").json() == []


# ---------------------------------------------------------------------------------- pulls


def pull_lines(response: httpx.Response, *, escaped: bool) -> list[pull_stream.PullProgress]:
    lines = [pull_stream.parse_pull_line(line, escaped=escaped) for line in response.text.splitlines()]
    assert None not in lines, response.text
    return lines  # type: ignore[return-value]


def test_pull_with_json_accept_streams_raw_progress_then_success(
    fresh_emulator: EmulatorServer, llama_model_path
) -> None:  # noqa: ANN001
    size = llama_model_path.stat().st_size
    with httpx.Client(base_url=fresh_emulator.url) as http:
        response = http.post("/models/create", json={"from": "ai/smollm2"}, headers={"Accept": "application/json"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["cache-control"] == "no-cache"
        raw = response.text.splitlines()
        assert all(json.loads(line)["mode"] == "pull" for line in raw)
        lines = pull_lines(response, escaped=False)
        *progress, success = lines
        assert success == pull_stream.PullProgress(type="success", message="Model pulled successfully")
        assert progress and all(line.type == "progress" for line in progress)
        assert {line.layer_id for line in progress} == {file_digest(llama_model_path)}
        assert {(line.total, line.layer_size) for line in progress} == {(size, size)}
        currents = [line.layer_current for line in progress]
        assert currents == sorted(currents) and currents[-1] == size
        # DMR's throttle: a line per MiB (or 100 ms), so no two lines are far apart in bytes.
        steps = [b - a for a, b in zip([0, *currents], currents)]
        assert max(steps) <= 1024 * 1024
        assert progress[-1].message == pull_stream.downloaded_message(size)
        assert http.get("/models/smollm2").json()["config"]["size"] == pull_stream.format_size(size)


def test_pull_without_accept_sends_html_escaped_text(fresh_emulator: EmulatorServer) -> None:
    response = httpx.post(fresh_emulator.url + "/models/create", json={"from": "smollm2"},
                          headers={"Accept": "application/json, */*"})  # fmt: skip
    assert response.headers["content-type"] == "text/plain"
    assert '"' not in response.text and "&#34;type&#34;" in response.text
    assert pull_lines(response, escaped=True)[-1].message == "Model pulled successfully"


def test_pull_of_a_present_model_answers_using_cached_model(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    response = httpx.post(fresh_emulator.url + "/models/create", json={"from": "ai/smollm2:latest"},
                          headers={"Accept": "application/json"})  # fmt: skip
    size = httpx.get(fresh_emulator.url + "/models/smollm2").json()["config"]["size"]
    assert pull_lines(response, escaped=False) == [pull_stream.PullProgress(type="success", message=f"Using cached model: {size}")]


def test_pull_of_a_second_tag_of_the_same_file_adds_a_tag_without_copying(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    lines = fresh_emulator.pull(f"smollm2:{MODEL_TAG}")
    assert [line.type for line in lines] == ["success"]
    (model,) = httpx.get(fresh_emulator.url + "/models").json()
    assert model["tags"] == ["docker.io/ai/smollm2:latest", f"docker.io/ai/smollm2:{MODEL_TAG}"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"from": "ai/not-in-catalogue"}, 404, "Model not found"),
        ({"from": f"ai/smollm2:{MODEL_TAG.lower()}"}, 404, "Model not found"),  # tags keep their case
        ({"from": "ai/smollm2:no such tag"}, 400, "Invalid model reference"),
        ({"from": ""}, 400, "Invalid model reference"),
        ({}, 400, "Invalid model reference"),
    ],
)
def test_pull_refusals_are_plain_text(fresh_emulator: EmulatorServer, body: dict, status: int, message: str) -> None:
    assert_plain_error(httpx.post(fresh_emulator.url + "/models/create", json=body), status, message)


def test_pull_with_invalid_json_is_an_invalid_request_body(fresh_emulator: EmulatorServer) -> None:
    response = httpx.post(fresh_emulator.url + "/models/create", content=b"{not json")
    assert_plain_error(response, 400, "invalid request body")


# ---------------------------------------------------------------------------------- delete


def test_delete_untags_then_deletes(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    fresh_emulator.pull(f"ai/smollm2:{MODEL_TAG}")
    with httpx.Client(base_url=fresh_emulator.url) as http:
        model_id = http.get("/models").json()[0]["id"]
        response = http.delete("/models/smollm2")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == [{"Untagged": "docker.io/ai/smollm2:latest"}]
        response = http.delete(f"/models/ai/smollm2:{MODEL_TAG}")
        assert response.json() == [{"Untagged": f"docker.io/ai/smollm2:{MODEL_TAG}"}, {"Deleted": model_id}]
        assert http.get("/models").json() == []
        assert_plain_error(http.delete("/models/smollm2"), 404, "error while deleting model: model not found")
        assert not any(fresh_emulator.store.blobs.iterdir())


def test_delete_by_id_needs_force_when_several_tags(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    fresh_emulator.pull(f"ai/smollm2:{MODEL_TAG}")
    with httpx.Client(base_url=fresh_emulator.url) as http:
        model_id = http.get("/models").json()[0]["id"]
        short = model_id[7:19]
        assert_plain_error(
            http.delete(f"/models/{short}"),
            409,
            f'error while deleting model: unable to delete "{short}" (must be forced) due to multiple tag references: '
            "resource conflict",
        )
        actions = http.delete(f"/models/{short}", params={"force": "true"}).json()
        assert actions[-1] == {"Deleted": model_id} and len(actions) == 3


def test_delete_does_not_use_partial_matching(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull(f"ai/smollm2:{MODEL_TAG}")
    response = httpx.delete(fresh_emulator.url + "/models/smollm2")
    assert_plain_error(response, 404, "error while deleting model: model not found")


# ---------------------------------------------------------------------------------- inference errors


@pytest.mark.parametrize("prefix", ["/engines/v1", "/engines/llama.cpp/v1", "/v1"])
def test_inference_errors_are_dmr_plain_text(http: httpx.Client, prefix: str) -> None:
    chat = f"{prefix}/chat/completions"
    assert_plain_error(http.post(chat, json={"messages": []}), 400, "model is required")
    assert_plain_error(http.post(chat, json={"model": ""}), 400, "model is required")
    assert_plain_error(http.post(chat, json={"model": 7}), 400, "invalid request")
    assert_plain_error(http.post(chat, content=b"[1,"), 400, "invalid request")
    assert_plain_error(
        http.post(f"{prefix}/embeddings", json={"model": "nonexistent/model:latest", "input": "x"}),
        404,
        """error while getting model: get model '"nonexistent/model:latest"': model not found""",
    )


def test_unknown_backend_is_not_found(http: httpx.Client) -> None:
    response = http.post("/engines/tensorrt/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert_plain_error(response, 404, "backend not found")


def test_oversized_body_is_refused(http: httpx.Client) -> None:
    body = b'{"model":"ai/smollm2","prompt":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert_plain_error(http.post("/engines/v1/completions", content=body), 400, "request too large")


# ---------------------------------------------------------------------------------- preload, ps, idle


def test_preload_loads_without_inferring_and_ps_shows_the_runner(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    with httpx.Client(base_url=fresh_emulator.url, timeout=60) as http:
        assert http.get("/engines/ps").json() == []
        response = http.post(
            "/engines/v1/chat/completions",
            json={"model": "SmolLM2", "messages": []},
            headers={"X-Preload-Only": "true"},
        )
        assert (response.status_code, response.content) == (200, b"")
        (entry,) = http.get("/engines/ps").json()
        assert entry["backend_name"] == "llama.cpp"
        assert entry["model_name"] == "SmolLM2"  # the raw request string, as DMR reports it
        assert entry["mode"] == "completion"
        assert entry["last_used"].endswith("Z") and not entry["last_used"].startswith("0001")
        assert "in_use" not in entry and "loading" not in entry


def test_idle_runners_are_unloaded(live_catalog) -> None:  # noqa: ANN001
    with EmulatorServer(live_catalog, engine="llama", threads=1, idle_timeout=2.0) as server:
        server.pull("ai/smollm2")
        with httpx.Client(base_url=server.url, timeout=60) as http:
            http.post("/engines/v1/embeddings", json={"model": MODEL, "input": "x"}, headers={"X-Preload-Only": "true"})
            assert [entry["mode"] for entry in http.get("/engines/ps").json()] == ["embedding"]
            deadline = time.monotonic() + 15
            while http.get("/engines/ps").json() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert http.get("/engines/ps").json() == []


def test_unload_answers_the_count(fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.pull("ai/smollm2")
    with httpx.Client(base_url=fresh_emulator.url, timeout=60) as http:
        http.post("/engines/v1/completions", json={"model": MODEL}, headers={"X-Preload-Only": "true"})
        assert http.post("/engines/unload", json={"models": ["ai/unknown"]}).json() == {"unloaded_runners": 0}
        response = http.post("/engines/unload", json={"models": ["smollm2"], "backend": ""})
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"unloaded_runners": 1}
        assert http.get("/engines/ps").json() == []
        assert_plain_error(http.post("/engines/unload", content=b"nope"), 400, "invalid request")


def test_a_model_that_cannot_load_is_a_500_unable_to_load_runner(tmp_path, llama_model_path) -> None:  # noqa: ANN001
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "latest.gguf").write_bytes(b"GGUF not really a model")
    with EmulatorServer(tmp_path, engine="llama") as server:
        server.pull("ai/broken")
        response = httpx.post(server.url + "/engines/v1/chat/completions", json={"model": "broken", "messages": []},
                              timeout=60)  # fmt: skip
        assert response.status_code == 500
        assert response.text.startswith(
            "unable to load runner: error waiting for runner to be ready: inference backend quit unexpectedly"
        )
        assert httpx.get(server.url + "/engines/ps").json() == []
