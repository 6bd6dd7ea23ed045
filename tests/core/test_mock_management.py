"""The mock's management API against DMR-PROTOCOL.md sections 0, 1, 2, 5 and 6."""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_dmr.protocol import pull_stream
from pytest_dmr.mock import Fault, MockModelRunner


def assert_plain_error(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == text + "\n"


# -- basic endpoints -------------------------------------------------------------------------------


def test_root_banner_has_no_trailing_newline(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Docker Model Runner is running"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"  # sniffed by Go
    assert "x-content-type-options" not in response.headers  # only http.Error sets nosniff


def test_version_is_json_with_newline(client: httpx.Client) -> None:
    response = client.get("/version")
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("}\n")
    assert response.json()["version"].startswith("v")


def test_engines_status_reports_llamacpp_running_without_trailing_newline(client: httpx.Client) -> None:
    response = client.get("/engines/status")
    assert response.status_code == 200
    assert not response.text.endswith("\n")
    status = response.json()
    assert status["llama.cpp"].startswith("Running: llama.cpp ")
    assert set(status) == {"llama.cpp", "mlx", "vllm", "diffusers", "sglang"}
    assert list(status) == sorted(status)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/nope", "404 page not found"),
        ("GET", "/api2/models", "404 page not found"),
        ("GET", "/engines/nope", "not found"),
        ("PUT", "/models", "not found"),
        ("GET", "/engines/v1/chat/completions", "not found"),
        ("POST", "/engines/v1/unknown", "not found"),
    ],
)
def test_unknown_paths_get_go_404_bodies(client: httpx.Client, method: str, path: str, body: str) -> None:
    assert_plain_error(client.request(method, path), 404, body)


def test_double_slashes_are_cleaned_before_routing(client: httpx.Client) -> None:
    assert client.get("/models//").json()[0]["tags"] == ["docker.io/ai/smollm2:latest"]
    assert client.get("/engines//v1/models").json()["data"][0]["id"] == "docker.io/ai/smollm2:latest"


def test_metrics_and_disk_usage(client: httpx.Client) -> None:
    metrics = client.get("/metrics")
    assert metrics.content == b"# No active runners\n"
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    usage = client.get("/engines/df").json()
    assert set(usage) == {"models_disk_usage", "default_backend_disk_usage"}
    assert usage["models_disk_usage"] > 200 * 1024 * 1024  # smollm2's 256 MiB


def test_ps_lists_runners_loaded_by_inference_and_unload_evicts_them(client: httpx.Client) -> None:
    assert client.get("/engines/ps").json() == []
    client.post("/engines/v1/chat/completions", json={"model": "smollm2", "messages": []})
    client.post("/engines/v1/embeddings", json={"model": "smollm2", "input": "x"})
    entries = client.get("/engines/ps").json()
    assert [(entry["model_name"], entry["mode"]) for entry in entries] == [("smollm2", "completion"), ("smollm2", "embedding")]
    assert client.post("/engines/unload", json={"models": ["ai/smollm2:latest"]}).json() == {"unloaded_runners": 2}
    assert client.get("/engines/ps").json() == []
    assert_plain_error(client.post("/engines/unload", content=b"{"), 400, "invalid request")


def test_one_runner_per_model_and_mode_whatever_the_spelling(client: httpx.Client) -> None:
    for name in ("smollm2", "ai/smollm2:latest", "docker.io/ai/smollm2"):
        client.post("/engines/v1/chat/completions", json={"model": name, "messages": []})
    client.post("/engines/v1/chat/completions", json={"model": "ai/qwen3", "messages": []})
    entries = client.get("/engines/ps").json()
    assert [(entry["model_name"], entry["mode"]) for entry in entries] == [("smollm2", "completion"), ("ai/qwen3", "completion")]


# -- listing and inspecting ------------------------------------------------------------------------


def test_list_models_uses_the_management_shape() -> None:
    mock = MockModelRunner(models=["ai/smollm2", "ai/nomic-embed-text-v1.5"])
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        response = client.get("/models")
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("]\n")
    models = response.json()
    assert [model["tags"] for model in models] == [["docker.io/ai/smollm2:latest"], ["docker.io/ai/nomic-embed-text-v1.5:latest"]]
    first = models[0]
    assert list(first) == ["id", "tags", "created", "config"]
    assert first["id"].startswith("sha256:") and len(first["id"]) == 71
    assert list(first["config"]) == ["format", "quantization", "parameters", "architecture", "size", "context_size"]
    assert first["config"]["size"] == "256.35 MiB"


def test_empty_store_lists_empty_arrays() -> None:
    mock = MockModelRunner(models=[])
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        assert client.get("/models").text == "[]\n"
        assert client.get("/engines/v1/models").json() == {"object": "list", "data": []}


@pytest.mark.parametrize("ref", ["ai/smollm2", "smollm2", "SmolLM2", "ai/smollm2:latest", "docker.io/ai/smollm2:latest"])
def test_inspect_normalises_names(client: httpx.Client, ref: str) -> None:
    response = client.get(f"/models/{ref}")
    assert response.status_code == 200
    assert response.json()["tags"] == ["docker.io/ai/smollm2:latest"]


def test_inspect_by_id_and_short_id(client: httpx.Client, mock: MockModelRunner) -> None:
    model_id = mock.models[0].id
    assert client.get(f"/models/{model_id}").json()["id"] == model_id
    assert client.get(f"/models/{model_id[7:19]}").json()["id"] == model_id


def test_inspect_falls_back_to_partial_name_matching(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_model("myorg/tinyllm:v1")
    response = client.get("/models/tinyllm")  # normalises to ai/tinyllm:latest, which is absent
    assert response.status_code == 200
    assert response.json()["tags"] == ["docker.io/myorg/tinyllm:v1"]
    assert_plain_error(client.get("/models/TinyLLM"), 404, "model not found")  # partial matching is case-sensitive


def test_inspect_unknown_model_is_plain_404(client: httpx.Client) -> None:
    assert_plain_error(client.get("/models/ai/unknown"), 404, "model not found")


def test_remote_inspect_leaves_tags_out(client: httpx.Client) -> None:
    body = client.get("/models/ai/qwen3:0.6B-Q4_0", params={"remote": "true"}).json()
    assert "tags" not in body
    assert body["config"]["architecture"] == "qwen3"


def test_remote_inspect_uses_no_partial_matching(client: httpx.Client, mock: MockModelRunner) -> None:
    local = mock.add_model("myorg/tinyllm:v1")
    assert client.get("/models/tinyllm").json()["id"] == local.id  # local lookup: partial match
    assert client.get("/models/tinyllm", params={"remote": ""}).json()["id"] != local.id  # the registry's ai/tinyllm


def test_openai_models_list_and_single_model(client: httpx.Client) -> None:
    for prefix in ("/engines/v1", "/engines/llama.cpp/v1", "/v1", "/engines/vllm/v1"):
        listing = client.get(f"{prefix}/models").json()
        assert [entry["id"] for entry in listing["data"]] == ["docker.io/ai/smollm2:latest"]
        assert listing["data"][0]["owned_by"] == "docker"
        assert listing["data"][0]["dmr"]["context_window"] == 8192
    assert client.get("/engines/v1/models/ai/smollm2").json()["id"] == "docker.io/ai/smollm2:latest"


def test_openai_single_model_uses_no_partial_matching(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_model("myorg/tinyllm:v1")
    assert_plain_error(
        client.get("/engines/v1/models/tinyllm"), 404, "error while getting model: get model '\"tinyllm\"': model not found"
    )


# -- delete ------------------------------------------------------------------------------------------


def test_delete_by_tag_untags_and_deletes_a_single_tag_model(client: httpx.Client, mock: MockModelRunner) -> None:
    model_id = mock.models[0].id
    response = client.delete("/models/smollm2")
    assert response.status_code == 200
    assert response.json() == [{"Untagged": "docker.io/ai/smollm2:latest"}, {"Deleted": model_id}]
    assert client.get("/models").json() == []


def test_delete_one_tag_of_several_only_untags(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.add_model("ai/smollm2", tags=["ai/smollm2:360M-Q4_K_M"])
    response = client.delete("/models/ai/smollm2:360M-Q4_K_M")
    assert response.json() == [{"Untagged": "docker.io/ai/smollm2:360M-Q4_K_M"}]
    assert client.get("/models").json()[0]["tags"] == ["docker.io/ai/smollm2:latest"]


def test_delete_by_id_of_multi_tag_model_needs_force(client: httpx.Client, mock: MockModelRunner) -> None:
    info = mock.add_model("ai/smollm2", tags=["ai/smollm2:360M-Q4_K_M"])
    short = info.id[7:19]
    assert_plain_error(
        client.delete(f"/models/{short}"),
        409,
        f'error while deleting model: unable to delete "{short}" (must be forced) due to multiple tag references: resource conflict',
    )
    forced = client.delete(f"/models/{short}", params={"force": "true"})
    assert forced.json() == [
        {"Untagged": "docker.io/ai/smollm2:latest"},
        {"Untagged": "docker.io/ai/smollm2:360M-Q4_K_M"},
        {"Deleted": info.id},
    ]
    assert mock.models == []


def test_delete_by_digest_reference(client: httpx.Client, mock: MockModelRunner) -> None:
    model_id = mock.models[0].id
    assert client.delete(f"/models/ai/smollm2@{model_id}").json()[-1] == {"Deleted": model_id}


def test_delete_and_inspect_by_full_hex_id_without_prefix(client: httpx.Client, mock: MockModelRunner) -> None:
    model_id = mock.models[0].id
    assert client.get(f"/models/{model_id[7:]}").json()["id"] == model_id
    assert client.delete(f"/models/{model_id[7:]}").json()[-1] == {"Deleted": model_id}
    assert_plain_error(client.delete(f"/models/{model_id[7:]}"), 404, "error while deleting model: model not found")


def test_delete_unknown_and_purge(client: httpx.Client, mock: MockModelRunner) -> None:
    assert_plain_error(client.delete("/models/ai/unknown"), 404, "error while deleting model: model not found")
    mock.add_model("ai/qwen3:0.6B-Q4_0")
    purge = client.delete("/models/purge")
    assert (purge.status_code, purge.content) == (200, b"")
    assert mock.models == []


# -- pull ---------------------------------------------------------------------------------------------


def parse_lines(response: httpx.Response, *, escaped: bool) -> list[pull_stream.PullProgress]:
    parsed = [pull_stream.parse_pull_line(line, escaped=escaped) for line in response.text.splitlines()]
    return [line for line in parsed if line is not None]


def test_pull_streams_raw_json_lines_only_for_exact_accept(client: httpx.Client, mock: MockModelRunner) -> None:
    response = client.post("/models/create", json={"from": "ai/qwen3:0.6B-Q4_0"}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    raw_lines = response.text.splitlines()
    assert all(json.loads(line)["mode"] == "pull" for line in raw_lines)
    lines = parse_lines(response, escaped=False)
    assert lines[-1].type == "success" and lines[-1].message == "Model pulled successfully"
    progress = lines[:-1]
    assert progress and all(line.type == "progress" for line in progress)
    layers = {line.layer_id: line.layer_size for line in progress}
    assert len(layers) == 2
    assert all(line.total == sum(layers.values()) for line in progress)
    final = {line.layer_id: line.layer_current for line in progress}
    assert final == layers  # every layer reaches 100%
    assert all(line.message == pull_stream.downloaded_message(line.layer_current) for line in progress)
    assert mock.store.find("ai/qwen3:0.6B-Q4_0") is not None


@pytest.mark.parametrize("accept", [None, "application/json, */*", "text/plain"])
def test_pull_without_exact_accept_is_html_escaped_text(client: httpx.Client, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {"Accept": ""}
    response = client.post("/models/create", json={"from": "ai/llama3.2:1B-Q4_0"}, headers=headers)
    assert response.headers["content-type"] == "text/plain"
    assert '"' not in response.text and "&#34;type&#34;" in response.text
    assert parse_lines(response, escaped=True)[-1].message == "Model pulled successfully"


def test_pull_lines_arrive_one_chunk_per_line(client: httpx.Client) -> None:
    with client.stream("POST", "/models/create", json={"from": "ai/qwen3:0.6B-Q4_0"}) as response:
        chunks = list(response.iter_raw())
    assert len(chunks) == 6
    assert all(chunk.endswith(b"\n") and chunk.count(b"\n") == 1 for chunk in chunks)


def test_pull_of_a_present_model_sends_one_cached_line(client: httpx.Client, mock: MockModelRunner) -> None:
    response = client.post("/models/create", json={"from": "smollm2"}, headers={"Accept": "application/json"})
    lines = response.text.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "type": "success",
        "message": "Using cached model: 256.35 MiB",
        "total": 0,
        "layer": {"size": 0, "current": 0},
        "mode": "pull",
    }


def test_pull_then_list_and_cached_second_pull(client: httpx.Client) -> None:
    client.post("/models/create", json={"from": "hf.co/Org/Model-GGUF:Q4_K_M"})
    tags = [model["tags"] for model in client.get("/models").json()]
    assert ["huggingface.co/org/model-gguf:Q4_K_M"] in tags
    again = client.post("/models/create", json={"from": "hf.co/org/model-gguf:Q4_K_M"}, headers={"Accept": "application/json"})
    assert json.loads(again.text)["message"].startswith("Using cached model: ")


@pytest.mark.parametrize("body", [{"from": ""}, {"from": "Bad Name!"}, {}, {"from": None}])
def test_pull_of_an_invalid_reference_is_400(client: httpx.Client, body: dict) -> None:
    assert_plain_error(client.post("/models/create", json=body), 400, "Invalid model reference")


@pytest.mark.parametrize("content", [b"{nope", b'{"from": 3}', b'["ai/smollm2"]'])
def test_pull_with_a_body_go_cannot_decode(client: httpx.Client, content: bytes) -> None:
    assert_plain_error(client.post("/models/create", content=content), 400, "invalid request body")


def test_pull_error_fault_sends_error_line_then_plain_text(client: httpx.Client, mock: MockModelRunner) -> None:
    rule = mock.fail(Fault.pull_error("writing image to store: disk full"), endpoint="/models/create")
    response = client.post("/models/create", json={"from": "ai/qwen3:0.6B-Q4_0"}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    text_lines = response.text.splitlines()
    assert text_lines[-1] == "error while pulling model: writing image to store: disk full"
    parsed = parse_lines(response, escaped=False)
    assert [line.type for line in parsed] == ["progress", "error"]
    assert parsed[-1].message == "Error: writing image to store: disk full"
    assert rule.calls == 1
    assert mock.store.find("ai/qwen3:0.6B-Q4_0") is None


def test_pull_http_fault_uses_pull_bodies(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.http(404), endpoint="/models/create", model="ai/private")
    assert_plain_error(client.post("/models/create", json={"from": "ai/private"}), 404, "Model not found")
    assert client.post("/models/create", json={"from": "ai/public"}).status_code == 200


def test_not_found_faults_use_each_endpoint_s_body(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.model_not_found(), when=lambda request: request.method == "DELETE", endpoint="/models/ai/smollm2")
    assert_plain_error(client.delete("/models/ai/smollm2"), 404, "error while deleting model: model not found")
    mock.fail(Fault.model_not_found(), endpoint="/models/ai/smollm2")
    assert_plain_error(client.get("/models/ai/smollm2"), 404, "model not found")
    mock.fail(Fault.model_not_found(), endpoint="/models")
    assert_plain_error(
        client.get("/engines/v1/models/ai/smollm2"), 404, "error while getting model: get model '\"ai/smollm2\"': model not found"
    )


def test_pull_error_fault_must_target_pulls(mock: MockModelRunner) -> None:
    with pytest.raises(ValueError, match="Fault.pull_error only applies to pulls: pass endpoint='/models/create'"):
        mock.fail(Fault.pull_error("disk full"))


def test_pull_cut_stream_raises_and_stores_nothing(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.fail(Fault.cut_stream(after=2), endpoint="/models/create")
    received = []
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        with client.stream("POST", "/models/create", json={"from": "ai/qwen3:0.6B-Q4_0"}) as response:
            for line in response.iter_lines():
                received.append(line)
    assert len(received) == 2
    assert mock.store.find("ai/qwen3:0.6B-Q4_0") is None


def test_add_and_remove_model(mock: MockModelRunner) -> None:
    info = mock.add_model("ai/custom:7B", size=5 * 1024**3)
    assert info.config["size"] == "5.00 GiB"
    assert info.tags == ("docker.io/ai/custom:7B",)
    mock.remove_model("custom:7B")
    assert [model.name for model in mock.models] == ["docker.io/ai/smollm2:latest"]
    with pytest.raises(KeyError, match="has no model 'ai/absent'.*docker.io/ai/smollm2:latest"):
        mock.remove_model("ai/absent")
