"""The wire protocol module against DMR-PROTOCOL.md's tables and examples."""

from __future__ import annotations

import json

import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, encoding, error_bodies, model_info, model_names, openai_api, pull_stream, routes, sse


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("smollm2", "ai/smollm2:latest"),
        ("ai/smollm2", "ai/smollm2:latest"),
        ("smollm2:360M-Q4_K_M", "ai/smollm2:360M-Q4_K_M"),
        ("SmolLM2", "ai/smollm2:latest"),
        ("MyModel", "ai/mymodel:latest"),
        ("myorg/model", "myorg/model:latest"),
        ("model:", "ai/model:latest"),
        ("docker.io/ai/smollm2", "docker.io/ai/smollm2:latest"),
        ("registry.example.com/model:v1", "registry.example.com/model:v1"),
        ("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", "huggingface.co/bartowski/smollm2-135m-instruct-gguf:Q4_K_M"),
        ("hf.co/org/model", "huggingface.co/org/model:latest"),
        ("  smollm2  ", "ai/smollm2:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("354bf30d0aa7", "354bf30d0aa7"),
        ("sha256:" + "a" * 64, "sha256:" + "a" * 64),
        ("ai/smollm2@sha256:" + "b" * 64, "ai/smollm2@sha256:" + "b" * 64),
        ("", ""),
    ],
)
def test_normalize_model_name_follows_dmr_table(given: str, expected: str) -> None:
    assert model_names.normalize_model_name(given) == expected


def test_uppercase_hex_is_a_name_not_an_id() -> None:
    assert model_names.normalize_model_name("354BF30D0AA7") == "ai/354bf30d0aa7:latest"


@pytest.mark.parametrize(
    "other",
    ["smollm2", "ai/smollm2:latest", "docker.io/ai/smollm2:latest", "index.docker.io/ai/smollm2", "docker.io/library/smollm2"],
)
def test_references_compare_equal_in_canonical_form(other: str) -> None:
    assert model_names.same_model("docker.io/ai/smollm2:latest", other)
    assert model_names.same_model("ai/smollm2:latest", other)


def test_different_tags_or_registries_are_different_models() -> None:
    assert not model_names.same_model("ai/smollm2", "ai/smollm2:135M-Q4_0")
    assert not model_names.same_model("ai/smollm2", "registry.example.com/ai/smollm2")


def test_short_model_name_is_the_cli_display_form() -> None:
    assert model_names.short_model_name("docker.io/ai/smollm2:latest") == "smollm2"
    assert model_names.short_model_name("ai/smollm2:360M-Q4_K_M") == "smollm2:360M-Q4_K_M"
    assert model_names.short_model_name("myorg/model:latest") == "myorg/model"


@pytest.mark.parametrize(
    ("url", "root", "prefix"),
    [
        ("http://localhost:12434", "http://localhost:12434", "/engines/v1"),
        ("http://localhost:12434/", "http://localhost:12434", "/engines/v1"),
        ("localhost:12434", "http://localhost:12434", "/engines/v1"),
        ("tcp://127.0.0.1:12434", "http://127.0.0.1:12434", "/engines/v1"),
        ("http://127.0.0.1:12434/engines/v1/", "http://127.0.0.1:12434", "/engines/v1"),
        ("http://127.0.0.1:12434/engines/llama.cpp/v1", "http://127.0.0.1:12434", "/engines/llama.cpp/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080", "/v1"),
        ("http://h:1/engines/vllm/v1", "http://h:1", "/engines/vllm/v1"),
        ("http://localhost/exp/vDD4.40", "http://localhost/exp/vDD4.40", "/engines/v1"),
        ("http://localhost/exp/vDD4.40/engines/v1", "http://localhost/exp/vDD4.40", "/engines/v1"),
    ],
)
def test_parse_runner_url_accepts_every_form_users_write(url: str, root: str, prefix: str) -> None:
    address = addresses.parse_runner_url(url)
    assert address == addresses.RunnerAddress(root, prefix)
    assert address.openai_url == root + prefix


@pytest.mark.parametrize("url", ["", "   ", "ftp://host/x", "http://", "http://host:99999"])
def test_parse_runner_url_rejects_unusable_urls_with_a_hint(url: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        addresses.parse_runner_url(url)
    assert "http://localhost:12434" in str(caught.value) or "port" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/engines/v1/chat/completions", (None, "/chat/completions")),
        ("/engines/llama.cpp/v1/embeddings", ("llama.cpp", "/embeddings")),
        ("/v1/models", (None, "/models")),
        ("/engines/v1/models/ai/smollm2", (None, "/models/ai/smollm2")),
        ("/engines//v1//completions/", (None, "/completions")),
        ("/models", None),
        ("/engines/status", None),
    ],
)
def test_match_inference_path(path: str, route: tuple[str | None, str] | None) -> None:
    assert routes.match_inference_path(path) == route


def test_model_not_found_body_matches_dmr_exactly() -> None:
    assert error_bodies.model_not_found_message("nonexistent/model:latest") == (
        """error while getting model: get model '"nonexistent/model:latest"': model not found"""
    )
    assert error_bodies.plain_error_body("model is required") == b"model is required\n"


def test_model_not_found_quotes_like_go_and_cuts_at_100_characters() -> None:
    message = error_bodies.model_not_found_message('a"b\n' + "x" * 200)
    quoted = message.split("'")[1]
    assert quoted.startswith('"a\\"b\\n')
    assert quoted.count("x") == 96  # 100 characters: a, ", b, newline, then 96 x


def test_model_info_round_trips_and_lists_like_openai() -> None:
    raw = {
        "id": "sha256:" + "1" * 64,
        "tags": ["docker.io/ai/smollm2:latest", "docker.io/ai/smollm2:360M-Q4_K_M"],
        "created": 1742816981,
        "config": {"format": "gguf", "architecture": "llama", "size": "256.35 MiB", "context_size": 8192},
    }
    info = model_info.ModelInfo.from_json(raw)
    assert info.to_json() == raw
    assert info.matches("smollm2") and info.matches("ai/smollm2:360M-Q4_K_M") and info.matches("1" * 12)
    assert not info.matches("ai/smollm2:135M-Q4_0")
    listed = model_info.openai_model_list([info])
    assert listed["object"] == "list"
    assert listed["data"][0] == {
        "id": "docker.io/ai/smollm2:latest",
        "object": "model",
        "created": 1742816981,
        "owned_by": "docker",
        "dmr": {"context_window": 8192, "architecture": "llama", "size": "256.35 MiB"},
    }
    assert model_info.model_ids_from_openai_list(listed) == ["docker.io/ai/smollm2:latest"]
    assert model_info.openai_model_list([]) == {"object": "list", "data": []}


def test_model_info_matches_every_id_form_dmr_resolves() -> None:
    hex_id = "354bf30d0aa7" + "c" * 52
    info = model_info.ModelInfo(id="sha256:" + hex_id, tags=("docker.io/ai/smollm2:latest",))
    for ref in ("sha256:" + hex_id, hex_id, hex_id[:12], f"ai/smollm2@sha256:{hex_id}", f"other/name@sha256:{hex_id}"):
        assert info.matches(ref), ref
    for ref in (hex_id[:11], hex_id.upper(), "c" * 64, "sha256:" + "c" * 64, "ai/smollm2@sha256:" + "c" * 64, "", "  "):
        assert not info.matches(ref), ref


def test_clean_path_only_cleans_paths_with_double_slashes() -> None:
    assert routes.clean_path("/engines//v1/models/") == "/engines/v1/models"
    assert routes.clean_path("/engines/v1/models/") == "/engines/v1/models/"
    assert routes.clean_path("//") == "/"
    assert routes.match_inference_path("/engines/v1/chat/completions/") == (None, "/chat/completions/")


def test_untagged_model_is_listed_by_its_id() -> None:
    info = model_info.ModelInfo(id="sha256:" + "2" * 64)
    assert info.to_json() == {"id": info.id, "created": 0, "config": None}
    assert info.to_openai()["id"] == info.id


def test_sse_decoder_handles_framing_comments_and_multiline_data() -> None:
    stream = (
        sse.encode_sse({"a": 1}) + b": keep-alive\n\n" + b"data: line1\ndata: line2\n\n" + sse.SSE_DONE_EVENT
    ).decode()
    assert list(sse.iter_sse_data(stream.split("\n"))) == ['{"a":1}', "line1\nline2", "[DONE]"]


def test_sse_decoder_keeps_llama_cpp_error_field() -> None:
    decoder = sse.SSEDecoder()
    assert decoder.feed('error: {"message":"boom"}') is None
    assert decoder.error == '{"message":"boom"}'


def test_chunk_text_reads_chat_and_completion_chunks() -> None:
    chat = openai_api.chat_chunk(id="x", created=1, model="m", delta={"content": "Hi"})
    assert openai_api.chunk_text(chat) == "Hi"
    assert openai_api.chunk_text(openai_api.text_completion(id="x", created=1, model="m", text="yo", finish_reason=None)) == "yo"
    assert openai_api.chunk_text(openai_api.usage_chunk(id="x", created=1, model="m", prompt_tokens=1, completion_tokens=2)) == ""


def test_usage_totals_add_up() -> None:
    body = openai_api.chat_completion(
        id="c", created=1, model="m", content="x", finish_reason="stop", prompt_tokens=7, completion_tokens=5
    )
    assert body["usage"] == {"completion_tokens": 5, "prompt_tokens": 7, "total_tokens": 12, "prompt_tokens_details": {"cached_tokens": 0}}


def test_pull_line_is_raw_only_for_exact_json_accept() -> None:
    progress = pull_stream.PullProgress("progress", "Downloaded: 1.00 MB", 10, "sha256:ab", 10, 5)
    raw = pull_stream.encode_pull_line(progress, raw_json=True)
    assert json.loads(raw) == {
        "type": "progress",
        "message": "Downloaded: 1.00 MB",
        "total": 10,
        "layer": {"id": "sha256:ab", "size": 10, "current": 5},
        "mode": "pull",
    }
    escaped = pull_stream.encode_pull_line(progress, raw_json=False)
    assert b'"' not in escaped and escaped.startswith(b"{&#34;type&#34;")
    assert pull_stream.parse_pull_line(escaped.decode(), escaped=True) == progress
    assert pull_stream.pull_wants_raw_json("application/json")
    assert not pull_stream.pull_wants_raw_json("application/json, */*")
    assert not pull_stream.pull_wants_raw_json(None)


def test_pull_line_parser_accepts_the_pre_v1_0_12_format_and_skips_plain_text() -> None:
    old = '{"type":"progress","message":"Downloaded: 1.00 MB","total":9,"pulled":3,"layer":{"ID":"sha256:c","Size":9,"Current":3}}'
    parsed = pull_stream.parse_pull_line(old, escaped=False)
    assert parsed == pull_stream.PullProgress("progress", "Downloaded: 1.00 MB", 9, "sha256:c", 9, 3)
    assert pull_stream.parse_pull_line("error while pulling model: writing image to store: disk full", escaped=False) is None
    assert pull_stream.parse_pull_line("", escaped=True) is None


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"progress","total":"many","layer":{"id":"sha256:a","size":1,"current":1}}',
        '{"type":"progress","total":1,"layer":{"id":"sha256:a","size":[1],"current":1}}',
    ],
)
def test_pull_line_with_values_that_are_not_numbers_is_skipped(line: str) -> None:
    assert pull_stream.parse_pull_line(line, escaped=False) is None


def test_pull_line_whose_layer_is_not_an_object_keeps_the_rest() -> None:
    parsed = pull_stream.parse_pull_line('{"type":"success","message":"ok","layer":"?"}', escaped=False)
    assert parsed == pull_stream.PullProgress("success", "ok")


def test_success_line_has_no_layer_id() -> None:
    line = pull_stream.encode_pull_line(pull_stream.PullProgress("success", pull_stream.PULL_SUCCESS_MESSAGE), raw_json=True)
    assert line == b'{"type":"success","message":"Model pulled successfully","total":0,"layer":{"size":0,"current":0},"mode":"pull"}\n'


def test_sizes_and_messages_use_dmr_units() -> None:
    assert pull_stream.downloaded_message(13107200) == "Downloaded: 12.50 MB"
    assert pull_stream.format_size(268803072) == "256.35 MiB"
    assert pull_stream.format_size(512) == "512 B"
    assert pull_stream.cached_model_message("256.35 MiB") == "Using cached model: 256.35 MiB"


def test_html_escape_is_go_html_escape_string() -> None:
    assert pull_stream.html_escape("""<a href='x'>&"</a>""") == "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
    assert pull_stream.html_unescape(pull_stream.html_escape("""&amp; "q" 'a' <b>""")) == """&amp; "q" 'a' <b>"""


URL = "http://127.0.0.1:12434"


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (404, error_bodies.model_not_found_message("ai/x"), errors.ModelNotFoundError, "docker model pull ai/x"),
        (404, "404 page not found\n", errors.RunnerHTTPError, "no such endpoint"),
        (404, "backend not found\n", errors.BackendUnavailableError, "no such inference backend"),
        (400, "model is required\n", errors.BadRequestError, "Pass a model name"),
        (400, '{"error":{"code":400,"message":"bad grammar","type":"invalid_request_error"}}', errors.BadRequestError, "bad grammar"),
        (412, "vLLM binary not found\n", errors.BackendUnavailableError, "vLLM binary not found"),
        (503, json.dumps(openai_api.LOADING_MODEL_BODY), errors.ModelLoadingError, "still loading"),
        (503, "backend installation failed: platform not supported\n", errors.BackendUnavailableError, "platform not supported"),
        (500, "unable to load runner: inference backend quit unexpectedly\n", errors.ModelLoadError, "quit unexpectedly"),
        (502, "", errors.RunnerHTTPError, "(empty body)"),
    ],
)
def test_error_mapping_names_runner_model_and_fix(status: int, body: str, kind: type, words: str) -> None:
    error = error_bodies.error_from_response(status, body, runner_url=URL, model="ai/x")
    assert type(error) is kind
    assert error.status_code == status and error.body == body
    text = str(error)
    assert words in text
    assert f"runner {URL}" in text and "model ai/x" in text


def test_loading_and_retryable_statuses() -> None:
    assert error_bodies.is_loading_response(503, json.dumps(openai_api.LOADING_MODEL_BODY))
    assert not error_bodies.is_loading_response(503, "service unavailable")
    assert not error_bodies.is_loading_response(500, json.dumps(openai_api.LOADING_MODEL_BODY))
    assert [status for status in (400, 404, 500, 502, 503, 504) if error_bodies.is_retryable_status(status)] == [502, 503, 504]


def test_dumps_is_compact_and_keeps_unicode() -> None:
    assert encoding.dumps({"b": "é", "a": [1, 2]}) == '{"b":"é","a":[1,2]}'


JSON_VALUES = [
    {"b": "é\n\"\u2028\x00", "a": [1, 2.5, -0.0, 1e300, True, None]}, "plain", 7, [], {}, [{"z": {"y": [{}]}}], "\ud83d\ude00", [float("nan"), float("inf")],
]


@pytest.mark.parametrize("c_speedups", [True, False], ids=["C encoder", "no C encoder"])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_compact_encoder_writes_what_json_dumps_writes(monkeypatch: pytest.MonkeyPatch, c_speedups: bool, sort_keys: bool) -> None:
    if not c_speedups:  # an interpreter without json's C speedups
        monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = encoding.compact_encoder(sort_keys=sort_keys)
    for value in JSON_VALUES:
        assert encode(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    assert encode(value) == encode(value)  # made once, used again
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"a": object()})
    assert encoding.compact_encoder(default=str)({"a": b"x"}) == '{"a":"b\'x\'"}'


def test_last_user_message_reads_chat_parts_and_prompts() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "sec"}, {"type": "text", "text": "ond"}]},
        ]
    }
    assert openai_api.last_user_message(body) == "second"
    assert openai_api.last_user_message({"prompt": "complete me"}) == "complete me"
    assert openai_api.last_user_message({"input": ["a", "b"]}) == "a b"
    assert openai_api.last_user_message({"messages": [{"role": "system", "content": "s"}]}) == ""


def test_errors_render_one_paragraph() -> None:
    error = errors.RunnerUnavailableError("nothing answered", runner_url=URL, hint="Start DMR")
    assert str(error) == f"nothing answered (runner {URL}). Start DMR"
    assert str(errors.DMRError("plain")) == "plain"


@pytest.mark.parametrize("content", ["Hello, world.", "", None, 'quote " back\\slash \n tab\t é 😀 \u2028 \x01'])
@pytest.mark.parametrize("tool_calls", [None, [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]])
def test_chat_completion_json_is_chat_completion_dumped(content: str | None, tool_calls: list[dict[str, object]] | None) -> None:
    parts = {"id": "chatcmpl-1f", "created": 1_700_000_123, "model": 'ai/"odd"\nmodel', "content": content,
             "finish_reason": "length", "prompt_tokens": 40, "completion_tokens": 7, "tool_calls": tool_calls}  # fmt: skip
    assert openai_api.chat_completion_json(**parts) == encoding.dumps(openai_api.chat_completion(**parts))  # type: ignore[arg-type]
