"""The Ollama translator pins DMR's pkg/ollama bodies; the ollama SDK reads them (and where it cannot, that is DMR's)."""

from __future__ import annotations

from typing import Any

import httpx
import ollama
import pydantic
import pytest

from pytest_dmr.protocol import encoding, model_info, openai_api, pull_stream
from pytest_dmr.protocol import ollama_api as o

MODEL = "ai/smollm2"
STAMP = "2026-07-22T10:00:00Z"
INFO = model_info.ModelInfo(
    id="sha256:" + "ab" * 32, tags=("ai/smollm2:latest", "ai/smollm2:135M"), created=1700000000,
    config={"architecture": "llama", "parameters": "135M", "quantization": "Q4_1"},
)  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Invalid request: EOF"),
        (b'{"model": "x"', "Invalid request: unexpected EOF"),
        (b"{x}", "Invalid request: invalid character 'x' looking for beginning of object key string"),
        (b'{"model": "x", "stream": "no"}', "Invalid request: json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool"),
    ],
)
def test_request_decode_errors(raw: bytes, message: str) -> None:
    with pytest.raises(o.OllamaRequestError) as caught:
        o.parse_request(raw, "ollama.ChatRequest", {"model": "string", "stream": "bool"})
    assert (caught.value.status, caught.value.message) == (400, message)


def test_decoder_reads_only_the_first_value() -> None:
    assert o.parse_request(b'{"model": "x"} trailing', "ollama.ChatRequest") == {"model": "x"}


def test_tags_one_entry_per_tag() -> None:
    body = o.tags_body([INFO])
    assert [entry["name"] for entry in body["models"]] == ["ai/smollm2:latest", "ai/smollm2:135M"]
    assert body["models"][0] == {
        "name": "ai/smollm2:latest", "model": "ai/smollm2:latest", "modified_at": "2023-11-14T22:13:20Z", "size": 0,
        "digest": INFO.id,
        "details": {"format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "135M", "quantization_level": "Q4_1"},
    }  # fmt: skip
    assert ollama.ListResponse.model_validate(body).models[1].digest == INFO.id


def test_ps_expiry() -> None:
    assert o.expires_at(last_used=100.0, in_use=False, keep_alive_seconds=None) == 400.0
    assert o.expires_at(last_used=100.0, in_use=True, keep_alive_seconds=None) is None
    assert o.expires_at(last_used=100.0, in_use=False, keep_alive_seconds=-1) is None
    body = o.ps_body([o.PsModel("ai/smollm2:latest", INFO.id, 1700000300.0), o.PsModel("gone", "gone")])
    assert body["models"][0] == {"name": "ai/smollm2:latest", "model": "ai/smollm2:latest", "size": 0, "digest": INFO.id, "expires_at": "2023-11-14T22:18:20Z"}
    assert body["models"][1]["expires_at"] == "0001-01-01T00:00:00Z"
    assert ollama.ProcessResponse.model_validate(body).models[0].name == "ai/smollm2:latest"


def test_show_has_only_details_which_the_sdk_rejects() -> None:
    body = o.show_body(INFO)
    assert list(body) == ["details"]
    with pytest.raises(pydantic.ValidationError, match="model_info"):  # DMR's /api/show lacks ollama's required model_info
        ollama.ShowResponse.model_validate(body)
    assert o.show_not_found_message("ai/x") == "Model not found: error while getting model: get model '\"ai/x\"': model not found"


def test_chat_plan_defaults_and_options() -> None:
    plan = o.chat_plan({
        "model": MODEL, "messages": [{"role": "user", "content": "hi", "images": ["iVBORw0"]}], "format": "json",
        "options": {"temperature": 0, "num_predict": 5, "stop": ["."], "seed": 1, "top_k": 3, "num_ctx": 4096.0, "mirostat": 1},
        "keep_alive": 300, "think": True,
    })  # fmt: skip
    assert plan.stream is True
    assert plan.chat_body == {
        "max_tokens": 5, "messages": [{"content": [{"text": "hi", "type": "text"}, {"image_url": {"url": "data:image/png;base64,iVBORw0"}, "type": "image_url"}], "role": "user"}],
        "model": MODEL, "seed": 1, "stop": ["."], "stream": True, "temperature": 0, "top_k": 3,
    }  # fmt: skip
    assert plan.configure == {"model": MODEL, "context-size": 4096, "keep_alive": "5m0s", "llamacpp": {"reasoning-budget": -1}}
    assert o.chat_plan({"model": MODEL, "messages": [], "stream": False}).stream is False
    assert o.chat_plan({"model": MODEL, "messages": []}).configure is None


def test_assistant_tool_calls_go_upstream_with_string_arguments() -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": "<"}}}]}
    converted = o.chat_plan({"model": MODEL, "messages": [message]}).chat_body["messages"][0]
    assert converted["tool_calls"] == [{"id": "", "type": "function", "function": {"name": "f", "arguments": '{"a":"\\u003c","b":1}'}}]


@pytest.mark.parametrize(
    ("request_body", "kind"),
    [
        ({"model": MODEL}, "unload"), ({"model": MODEL, "keep_alive": 0}, "unload"), ({"model": MODEL, "keep_alive": "0s"}, "unload"),
        ({"model": MODEL, "keep_alive": "5m"}, "preload"), ({"model": MODEL, "keep_alive": -1}, "preload"),
        ({"model": MODEL, "prompt": "hi"}, "generate"),
    ],
)  # fmt: skip
def test_generate_kinds(request_body: dict[str, Any], kind: str) -> None:
    assert o.classify_generate(request_body) == kind


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return openai_api.chat_chunk(id="c", created=1, model=MODEL, delta=delta, finish_reason=finish)


def test_chat_stream_lines_and_the_sdk() -> None:
    lines = [o.chat_chunk(chunk(d), model=MODEL, created_at=STAMP) for d in ({"role": "assistant", "content": None}, {"content": "<Hi>"})]
    lines.append(o.done_chunk(model=MODEL, created_at=STAMP))
    assert lines[1] == {"model": MODEL, "created_at": STAMP, "message": {"role": "assistant", "content": "<Hi>"}, "done": False}
    assert lines[2] == {"model": MODEL, "created_at": STAMP, "message": {"role": "", "content": ""}, "done": True}
    body = b"".join(o.json_bytes(line) for line in lines)
    assert b"\\u003cHi\\u003e" in body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": o.CHAT_STREAM_CONTENT_TYPE})

    client = ollama.Client(host="http://127.0.0.1:12434", transport=httpx.MockTransport(handler))
    parts = list(client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert ["".join(p.message.content or "" for p in parts), parts[-1].done] == ["<Hi>", True]


def test_tool_calls_to_ollama_form() -> None:
    call = openai_api.tool_call(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    chat = openai_api.chat_completion(id="c", created=1, model=MODEL, content="", finish_reason="tool_calls", prompt_tokens=1, completion_tokens=1, tool_calls=[call])
    body = o.chat_response(chat, model=MODEL, created_at=STAMP)
    assert body["message"]["tool_calls"] == [{"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert ollama.ChatResponse.model_validate(body).message.tool_calls[0].function.arguments == {"city": "Paris"}
    fragment = o.chat_chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}), model=MODEL, created_at=STAMP)
    assert fragment["message"]["tool_calls"][0]["function"]["arguments"] == '{"ci'  # a fragment stays a string, as in DMR


def test_generate_lines() -> None:
    assert o.generate_chunk(chunk({"content": "x"}), model=MODEL, created_at=STAMP) == {"model": MODEL, "created_at": STAMP, "response": "x", "done": False}
    assert o.generate_done(model=MODEL, created_at=STAMP) == {"model": MODEL, "created_at": STAMP, "done": True}
    chat = openai_api.chat_completion(id="c", created=1, model=MODEL, content="ok", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
    assert ollama.GenerateResponse.model_validate(o.generate_response(chat, model=MODEL, created_at=STAMP)).response == "ok"


def test_upstream_errors() -> None:
    llama_error = encoding.dumps(openai_api.backend_error_body(400, "bad request"))
    assert o.upstream_error(llama_error, stream=False) == b'{"error":"bad request"}\n'
    assert o.upstream_error("model not found\n", stream=False) == b"model not found\n"
    assert o.upstream_error(llama_error, stream=True) == b""


def test_pull_lines() -> None:
    layer = "sha256:" + "0123456789ab" + "c" * 52
    progress = pull_stream.PullProgress(type="progress", message="Downloaded: 1.00 MB", total=10, layer_id=layer, layer_size=10, layer_current=4)
    assert o.pull_line(progress) == {"status": "pulling 0123456789ab", "digest": layer, "total": 10, "completed": 4}
    assert o.pull_line(pull_stream.PullProgress(type="progress")) == {"status": "pulling manifest"}
    assert o.pull_line(pull_stream.PullProgress(type="success", message=pull_stream.PULL_SUCCESS_MESSAGE)) == {"status": "success"}
    assert o.pull_line(pull_stream.PullProgress(type="error", message="Error: boom")) == {"error": "Error: boom"}
    assert o.pull_line(pull_stream.PullProgress(type="other")) is None
    assert o.pull_failure_line("boom") == {"error": "Failed to pull model: error while pulling model: boom"}
    assert ollama.ProgressResponse.model_validate(o.pull_line(progress)).completed == 4
    assert o.delete_failure_message(unload_status=500) == "Failed to unload model: scheduler returned status 500"
