"""DockerModelRunnerAdapter against scripted httpx2.MockTransport runners (bodies from protocol.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx2
import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import encoding, error_bodies, openai_api, sse
from pytest_dmr.adapter import ChatResult, DockerModelRunnerAdapter, LLMAdapter

RUNNER = "http://127.0.0.1:12434"
MODEL = "ai/smollm2"
STREAM_HINT = "The runner may have crashed or restarted: check `docker model logs`, then retry"


def completion(content: str | None = "Hello there.", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(id="chatcmpl-1", created=1, model=MODEL, content=content, finish_reason="stop",
                                  prompt_tokens=5, completion_tokens=3)
    fields.update(extra)
    return openai_api.chat_completion(**fields)


def chunks(pieces: Iterable[str]) -> list[bytes]:
    events = [sse.encode_sse(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={"role": "assistant"}))]
    events += [sse.encode_sse(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={"content": piece}))
               for piece in pieces]
    events.append(sse.encode_sse(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={},
                                                          finish_reason="stop")))
    return events


class Events(httpx2.AsyncByteStream):
    """An SSE body sent event by event, optionally failing with ``then`` after the last one."""

    def __init__(self, events: Iterable[bytes], then: BaseException | None = None) -> None:
        self.events = list(events)
        self.then = then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield event
        if self.then is not None:
            raise self.then


def sse_response(events: Iterable[bytes], then: BaseException | None = None) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Events(events, then))


def plain(status: int, body: str) -> httpx2.Response:
    return httpx2.Response(status, content=body.encode(), headers={"content-type": encoding.TEXT_PLAIN})


Answer = httpx2.Response | BaseException | Callable[[httpx2.Request], httpx2.Response]


class Script:
    """Answers requests in order from a list (the last answer repeats); records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx2.Response):
            if isinstance(answer.stream, Events):
                return answer
            return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.read())
        return answer(request)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make(script: Script, base_url: str = RUNNER, **kwargs: Any) -> tuple[DockerModelRunnerAdapter, Sleeps]:
    sleeps = Sleeps()
    adapter = DockerModelRunnerAdapter(base_url, MODEL, transport=httpx2.MockTransport(script), sleep=sleeps, **kwargs)
    return adapter, sleeps


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


# ------------------------------------------------------------------------------------------
# Requests: where they go and what they carry
# ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generate_posts_a_chat_completion_and_returns_the_text() -> None:
    script = Script(httpx2.Response(200, json=completion("Paris is the capital.")))
    adapter, _ = make(script)
    assert await adapter.generate("Capital of France?", system="Be brief.") == "Paris is the capital."
    request = script.requests[0]
    assert (request.method, str(request.url)) == ("POST", "http://127.0.0.1:12434/engines/v1/chat/completions")
    assert request.headers["content-type"] == "application/json"
    assert script.bodies[0] == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
    }


@pytest.mark.asyncio
async def test_options_pass_through_into_the_body_unchanged() -> None:
    script = Script(httpx2.Response(200, json=completion()))
    adapter, _ = make(script, default_options={"temperature": 0.7, "seed": 1})
    options = {
        "temperature": 0,
        "max_tokens": 12,
        "seed": 42,
        "stop": ["\n\n", "END"],
        "top_p": 0.9,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
    }
    await adapter.generate("hi", model="ai/qwen3", **options, extra_body={"custom_backend_flag": {"nested": [1, 2]}})
    assert script.bodies[0] == {"model": "ai/qwen3", "messages": [{"role": "user", "content": "hi"}], **options,
                                "custom_backend_flag": {"nested": [1, 2]}}


@pytest.mark.asyncio
async def test_default_options_apply_when_not_overridden() -> None:
    script = Script(httpx2.Response(200, json=completion()))
    adapter, _ = make(script, default_options={"temperature": 0, "seed": 7})
    await adapter.generate("hi", seed=8)
    assert script.bodies[0]["temperature"] == 0
    assert script.bodies[0]["seed"] == 8


@pytest.mark.asyncio
async def test_generate_continues_a_conversation() -> None:
    script = Script(httpx2.Response(200, json=completion()))
    adapter, _ = make(script)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    await adapter.generate("And now?", system="S", messages=history)
    assert script.bodies[0]["messages"] == [{"role": "system", "content": "S"}, *history,
                                            {"role": "user", "content": "And now?"}]


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("http://localhost:12434", "http://localhost:12434/engines/v1/chat/completions"),
        ("localhost:12434", "http://localhost:12434/engines/v1/chat/completions"),
        ("tcp://127.0.0.1:12434", "http://127.0.0.1:12434/engines/v1/chat/completions"),
        ("http://127.0.0.1:12434/engines/llama.cpp/v1/", "http://127.0.0.1:12434/engines/llama.cpp/v1/chat/completions"),
        ("http://127.0.0.1:12434/v1", "http://127.0.0.1:12434/v1/chat/completions"),
        ("http://localhost/exp/vDD4.40", "http://localhost/exp/vDD4.40/engines/v1/chat/completions"),
    ],
)
@pytest.mark.asyncio
async def test_base_url_in_every_form(base_url: str, url: str) -> None:
    script = Script(httpx2.Response(200, json=completion()))
    adapter, _ = make(script, base_url)
    await adapter.generate("hi")
    assert str(script.requests[0].url) == url


def test_a_bad_base_url_or_timeout_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match=r"^'ftp://x' is not a usable runner URL\. Give an http"):
        DockerModelRunnerAdapter("ftp://x")
    with pytest.raises(errors.ConfigurationError, match=r"^timeout must be a positive number of seconds, got 0"):
        DockerModelRunnerAdapter(RUNNER, timeout=0)
    with pytest.raises(errors.ConfigurationError, match=r"^max_retries must be 0 or more, got -1"):
        DockerModelRunnerAdapter(RUNNER, max_retries=-1)


@pytest.mark.asyncio
async def test_chat_returns_text_tool_calls_finish_reason_usage_and_raw() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    body = completion(None, tool_calls=[call], finish_reason="tool_calls", model="docker.io/ai/smollm2:latest")
    adapter, _ = make(Script(httpx2.Response(200, json=body)))
    result = await adapter.chat([{"role": "user", "content": "weather?"}], tools=[], tool_choice="required")
    assert result == ChatResult(
        text="",
        tool_calls=[call],
        finish_reason="tool_calls",
        usage={"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8},
        model="docker.io/ai/smollm2:latest",
        raw=body,
    )
    assert result.raw == body


@pytest.mark.asyncio
async def test_chat_result_json_parses_structured_answers() -> None:
    adapter, _ = make(Script(httpx2.Response(200, json=completion('{"answer": 42}'))))
    result = await adapter.chat([{"role": "user", "content": "q"}], response_format={"type": "json_object"})
    assert result.json() == {"answer": 42}


@pytest.mark.asyncio
async def test_complete_uses_text_completions() -> None:
    body = openai_api.text_completion(id="c", created=1, model=MODEL, text=" upon a time", finish_reason="stop",
                                    prompt_tokens=3, completion_tokens=3)
    script = Script(httpx2.Response(200, json=body))
    adapter, _ = make(script)
    assert await adapter.complete("Once", max_tokens=3) == " upon a time"
    assert script.requests[0].url.path == "/engines/v1/completions"
    assert script.bodies[0] == {"model": MODEL, "prompt": "Once", "max_tokens": 3}


@pytest.mark.asyncio
async def test_embed_returns_vectors_in_input_order() -> None:
    body = openai_api.embeddings_response(model="ai/nomic", vectors=[[0.1, 0.2], [0.3, 0.4]], prompt_tokens=4)
    body["data"].reverse()  # servers may send them in any order; "index" says which is which
    script = Script(httpx2.Response(200, json=body))
    adapter, _ = make(script)
    assert await adapter.embed(["a", "b"], model="ai/nomic") == [[0.1, 0.2], [0.3, 0.4]]
    assert script.requests[0].url.path == "/engines/v1/embeddings"
    assert script.bodies[0] == {"model": "ai/nomic", "input": ["a", "b"]}


@pytest.mark.asyncio
@pytest.mark.parametrize("data", [[{"index": 0}], [[0.1, 0.2]]], ids=["no-embedding-key", "not-an-object"])
async def test_embed_with_malformed_entries_is_a_dmr_error(data: list[Any]) -> None:
    adapter, _ = make(Script(httpx2.Response(200, json={"object": "list", "data": data})))
    with pytest.raises(errors.MalformedResponseError) as caught:
        await adapter.embed("a")
    assert str(caught.value).startswith("the runner's answer cannot be read: ")
    assert f"(runner {RUNNER}, model {MODEL})" in str(caught.value)


@pytest.mark.asyncio
async def test_embed_a_single_string() -> None:
    body = openai_api.embeddings_response(model=MODEL, vectors=[[1.0, 0.0]], prompt_tokens=1)
    script = Script(httpx2.Response(200, json=body))
    adapter, _ = make(script)
    assert await adapter.embed("a") == [[1.0, 0.0]]
    assert script.bodies[0]["input"] == ["a"]


# ------------------------------------------------------------------------------------------
# Streaming
# ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_generate_yields_each_piece_until_done() -> None:
    usage = openai_api.usage_chunk(id="c", created=1, model=MODEL, prompt_tokens=2, completion_tokens=3)
    script = Script(sse_response([*chunks(["Hel", "lo", " world"]), sse.encode_sse(usage), sse.SSE_DONE_EVENT]))
    adapter, _ = make(script)
    pieces = await collect(adapter.stream_generate("hi", stream_options={"include_usage": True}, temperature=0))
    assert pieces == ["Hel", "lo", " world"]
    assert script.bodies[0] == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                                "stream_options": {"include_usage": True}, "temperature": 0, "stream": True}


@pytest.mark.asyncio
async def test_stream_chat_with_a_server_that_ignores_stream() -> None:
    adapter, _ = make(Script(httpx2.Response(200, json=completion("all at once"))))
    assert await collect(adapter.stream_chat([{"role": "user", "content": "x"}])) == ["all at once"]


@pytest.mark.asyncio
async def test_generate_drops_a_stream_flag() -> None:
    script = Script(httpx2.Response(200, json=completion("whole")))
    adapter, _ = make(script)
    assert await adapter.generate("hi", stream=True) == "whole"
    assert "stream" not in script.bodies[0]


def interrupted(reason: str, pieces: int, text: str) -> str:
    return (f"the streamed answer stopped before its end: {reason}, after {pieces} pieces ({len(text)} characters: "
            f"{text!r}) (runner http://127.0.0.1:12434, model ai/smollm2). {STREAM_HINT}")


@pytest.mark.parametrize(
    ("events", "then", "reason"),
    [
        (chunks(["Hel", "lo"]), None, "the stream ended without data: [DONE]"),
        ([*chunks(["Hel", "lo"])[:3], b"data: {not json\n\n"], None, "the runner sent a malformed chunk '{not json'"),
        ([*chunks(["Hel", "lo"])[:3], b'error: {"code":500,"message":"slot crashed"}\n\n'], None,
         'the runner reported an error: {"code":500,"message":"slot crashed"}'),
        ([*chunks(["Hel", "lo"])[:3], b'data: {"error":{"code":500,"message":"context full"}}\n\n'], None,
         "the runner reported an error: context full"),
        (chunks(["Hel", "lo"])[:3], httpx2.RemoteProtocolError("peer closed connection"),
         "the connection was lost (RemoteProtocolError)"),
        (chunks(["Hel", "lo"])[:3], httpx2.ReadError("connection reset"), "the connection was lost (ReadError)"),
    ],
    ids=["no-done", "malformed", "error-field", "error-chunk", "remote-protocol", "read-error"],
)
@pytest.mark.asyncio
async def test_a_stream_that_stops_early_raises_stream_interrupted(
    events: list[bytes], then: BaseException | None, reason: str
) -> None:
    script = Script(sse_response(events, then))
    adapter, sleeps = make(script)
    received: list[str] = []
    with pytest.raises(errors.StreamInterruptedError) as caught:
        async for piece in adapter.stream_generate("hi"):
            received.append(piece)
    assert received == ["Hel", "lo"]
    assert str(caught.value) == interrupted(reason, 2, "Hello")
    assert caught.value.received == "Hello"
    assert (caught.value.runner_url, caught.value.model) == (RUNNER, MODEL)
    assert len(script.requests) == 1 and sleeps.waits == []  # never retried once a piece was yielded


@pytest.mark.asyncio
async def test_a_read_timeout_mid_stream_is_runner_timeout() -> None:
    adapter, _ = make(Script(sse_response(chunks(["Hel", "lo"])[:3], httpx2.ReadTimeout("timed out"))), timeout=2.5)
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        await collect(adapter.stream_generate("hi"))
    assert str(caught.value) == (
        "the streamed answer did not finish within 2.5 s (2 pieces, 5 characters received) "
        "(runner http://127.0.0.1:12434, model ai/smollm2). "
        "Raise the timeout (--dmr-timeout, or LOCAL_MODEL_TIMEOUT in milliseconds), or use a smaller model"
    )


@pytest.mark.asyncio
async def test_a_stream_is_retried_before_its_first_piece() -> None:
    script = Script(plain(503, encoding.dumps(openai_api.LOADING_MODEL_BODY)), sse_response([*chunks(["ok"]), sse.SSE_DONE_EVENT]))
    adapter, sleeps = make(script)
    assert await collect(adapter.stream_generate("hi")) == ["ok"]
    assert len(script.requests) == 2 and sleeps.waits == [0.25]


@pytest.mark.asyncio
async def test_a_stream_refused_with_404_is_model_not_found() -> None:
    script = Script(plain(404, error_bodies.model_not_found_message("ai/nothing") + "\n"))
    adapter, sleeps = make(script)
    with pytest.raises(errors.ModelNotFoundError):
        await collect(adapter.stream_generate("hi", model="ai/nothing"))
    assert len(script.requests) == 1 and sleeps.waits == []


# ------------------------------------------------------------------------------------------
# Retries and errors
# ------------------------------------------------------------------------------------------

LOADING = plain(503, encoding.dumps(openai_api.LOADING_MODEL_BODY))


@pytest.mark.asyncio
async def test_loading_is_retried_with_exponential_backoff() -> None:
    script = Script(LOADING, LOADING, plain(502, ""), httpx2.Response(200, json=completion("ready")))
    adapter, sleeps = make(script)
    assert await adapter.generate("hi") == "ready"
    assert len(script.requests) == 4
    assert sleeps.waits == [0.25, 0.5, 1.0]


@pytest.mark.asyncio
async def test_loading_for_too_long_is_model_loading_error() -> None:
    script = Script(LOADING)
    adapter, sleeps = make(script, max_retries=3, backoff=1.0)
    with pytest.raises(errors.ModelLoadingError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        "the model was still loading when the retries ran out (503: Loading model) "
        "(runner http://127.0.0.1:12434, model ai/smollm2). "
        "Raise the timeout (--dmr-timeout) or preload the model before the tests"
    )
    assert len(script.requests) == 4 and sleeps.waits == [1.0, 2.0, 4.0]


@pytest.mark.asyncio
async def test_backoff_is_capped_and_retry_after_is_honoured() -> None:
    busy = httpx2.Response(503, content=b"backend installation in progress\n", headers={"retry-after": "3"})
    script = Script(busy)
    adapter, sleeps = make(script, max_retries=6, backoff=1.0)
    with pytest.raises(errors.BackendUnavailableError):
        await adapter.generate("hi")
    assert sleeps.waits == [3.0, 3.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.asyncio
async def test_gateway_errors_are_retried(status: int) -> None:
    script = Script(plain(status, ""), httpx2.Response(200, json=completion("fine")))
    adapter, sleeps = make(script)
    assert await adapter.generate("hi") == "fine"
    assert sleeps.waits == [0.25]


@pytest.mark.asyncio
async def test_gateway_errors_that_persist_say_so() -> None:
    script = Script(plain(504, "gateway timeout\n"))
    adapter, sleeps = make(script, max_retries=2)
    with pytest.raises(errors.RunnerHTTPError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        "the runner answered 504: gateway timeout (runner http://127.0.0.1:12434, model ai/smollm2). "
        "Retry; if it persists, check the runner's logs (`docker model logs`)"
    )
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (plain(404, error_bodies.model_not_found_message("ai/nothing") + "\n"), errors.ModelNotFoundError,
         "the runner does not have this model (404: error while getting model: get model '\"ai/nothing\"': "
         "model not found) (runner http://127.0.0.1:12434, model ai/smollm2). "
         "Pull it first: `docker model pull ai/smollm2`, or run pytest with --dmr-pull"),
        (plain(400, error_bodies.MODEL_REQUIRED + "\n"), errors.BadRequestError,
         "the runner rejected the request (400: model is required) (runner http://127.0.0.1:12434, model ai/smollm2). "
         "Pass a model name (model=... or --dmr-model)"),
        (plain(500, error_bodies.unable_to_load_message("inference backend quit unexpectedly") + "\n"),
         errors.ModelLoadError,
         "the runner could not load the model (500: unable to load runner: inference backend quit unexpectedly) "
         "(runner http://127.0.0.1:12434, model ai/smollm2). "
         "Check the runner's logs (`docker model logs`) and that the model fits in memory"),
    ],
    ids=["404", "400", "500"],
)
@pytest.mark.asyncio
async def test_client_and_load_errors_are_not_retried(
    response: httpx2.Response, error: type[Exception], message: str
) -> None:
    script = Script(response)
    adapter, sleeps = make(script)
    with pytest.raises(error) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == message
    assert len(script.requests) == 1 and sleeps.waits == []


@pytest.mark.asyncio
async def test_connect_errors_are_retried_then_reported() -> None:
    script = Script(httpx2.ConnectError("[Errno 111] Connection refused"))
    adapter, sleeps = make(script, max_retries=2)
    with pytest.raises(errors.RunnerUnavailableError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        "cannot connect to the runner ([Errno 111] Connection refused) (runner http://127.0.0.1:12434, model ai/smollm2). "
        "Start Docker Model Runner (Docker Desktop: `docker desktop enable model-runner --tcp 12434`; "
        "Docker Engine: `docker model install-runner`), or point --dmr-url / MODEL_RUNNER_URL at a running one"
    )
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)
    assert len(script.requests) == 3 and sleeps.waits == [0.25, 0.5]


@pytest.mark.asyncio
async def test_a_connect_error_then_success() -> None:
    script = Script(httpx2.ConnectError("refused"), httpx2.Response(200, json=completion("back")))
    adapter, _ = make(script)
    assert await adapter.generate("hi") == "back"


@pytest.mark.asyncio
async def test_timeouts_are_not_retried() -> None:
    script = Script(httpx2.ReadTimeout("timed out"))
    adapter, sleeps = make(script, timeout=1.5)
    with pytest.raises(errors.RunnerTimeoutError) as caught:
        await adapter.generate("hi")
    assert str(caught.value) == (
        "the runner did not answer within 1.5 s (runner http://127.0.0.1:12434, model ai/smollm2). "
        "Raise the timeout (--dmr-timeout, or LOCAL_MODEL_TIMEOUT in milliseconds), or use a smaller model"
    )
    assert len(script.requests) == 1 and sleeps.waits == []


@pytest.mark.asyncio
async def test_a_disconnect_before_any_answer() -> None:
    adapter, _ = make(Script(httpx2.RemoteProtocolError("Server disconnected without sending a response.")))
    with pytest.raises(errors.RunnerUnavailableError) as caught:
        await adapter.generate("hi")
    assert str(caught.value).startswith(
        "the runner closed the connection before a complete answer (Server disconnected without sending a response.) "
        "(runner http://127.0.0.1:12434, model ai/smollm2)."
    )


@pytest.mark.asyncio
async def test_an_answer_that_is_not_json() -> None:
    adapter, _ = make(Script(httpx2.Response(200, content=b"<html>hi</html>")))
    with pytest.raises(errors.DMRError) as caught:
        await adapter.generate("hi")
    assert str(caught.value).startswith("the runner's answer to POST /chat/completions is not JSON: '<html>hi</html>'")


@pytest.mark.asyncio
async def test_the_timeout_reaches_the_request() -> None:
    seen: list[dict[str, float]] = []

    def respond(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"])
        return httpx2.Response(200, json=completion())

    adapter, _ = make(Script(respond), timeout=7.5)
    await adapter.generate("hi")
    # The call's whole bound: what is left of it when the request goes out.
    assert 7 < seen[0]["read"] <= 7.5 and seen[0]["connect"] == seen[0]["read"]


# ------------------------------------------------------------------------------------------
# Availability, capabilities, models, lifecycle
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "available"),
    [
        (httpx2.Response(200, json={"object": "list", "data": []}), True),
        (plain(500, "boom\n"), False),
        (httpx2.ConnectError("refused"), False),
        (httpx2.ConnectTimeout("timed out"), False),
    ],
    ids=["200", "500", "refused", "timeout"],
)
@pytest.mark.asyncio
async def test_check_availability_never_raises(answer: Answer, available: bool) -> None:
    script = Script(answer)
    adapter, sleeps = make(script)
    assert await adapter.check_availability() is available
    assert [request.url.path for request in script.requests] == ["/engines/v1/models"]
    assert sleeps.waits == []


def test_capabilities_describe_the_adapter() -> None:
    adapter, _ = make(Script(), "http://127.0.0.1:12434/engines/llama.cpp/v1", timeout=9)
    assert adapter.get_capabilities() == {
        "name": f"local-{MODEL}",  # Ultra's keys, as Ultra's own adapter fills them
        "supports_streaming": True,
        "max_tokens": 4096,
        "supports_functions": True,
        "supports_vision": False,
        "provider": "docker-model-runner",
        "model": MODEL,
        "backend": "live",
        "base_url": "http://127.0.0.1:12434",
        "openai_base_url": "http://127.0.0.1:12434/engines/llama.cpp/v1",
        "streaming": True,
        "chat": True,
        "completions": True,
        "embeddings": True,
        "tools": True,
        "json_schema": True,
        "timeout": 9.0,
        "max_retries": 4,
    }
    assert isinstance(adapter, LLMAdapter)


@pytest.mark.asyncio
async def test_available_models_from_the_openai_list() -> None:
    body = {"object": "list", "data": [{"id": "docker.io/ai/smollm2:latest"}, {"id": "ai/qwen3:latest"}]}
    adapter, _ = make(Script(httpx2.Response(200, json=body)))
    assert await adapter.get_available_models() == ["docker.io/ai/smollm2:latest", "ai/qwen3:latest"]


@pytest.mark.asyncio
async def test_available_models_fall_back_to_the_management_list() -> None:
    def respond(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/models":
            return httpx2.Response(200, json=[{"id": "sha256:" + "a" * 64, "tags": ["docker.io/ai/smollm2:latest"]}])
        return plain(404, "not found\n")

    adapter, _ = make(Script(respond))
    assert await adapter.get_available_models() == ["docker.io/ai/smollm2:latest"]


@pytest.mark.asyncio
async def test_available_models_is_empty_when_nothing_answers() -> None:
    adapter, _ = make(Script(httpx2.ConnectError("refused")))
    assert await adapter.get_available_models() == []


@pytest.mark.asyncio
async def test_the_http_client_is_made_once_and_closed_by_the_context_manager() -> None:
    script = Script(httpx2.Response(200, json=completion()))
    adapter, _ = make(script)
    async with adapter:
        await adapter.generate("a")
        first = adapter._client
        await adapter.generate("b")
        assert adapter._client is first
    assert first is not None and first.is_closed
    assert adapter._client is None


def test_a_new_event_loop_gets_a_new_http_client() -> None:
    adapter, _ = make(Script(httpx2.Response(200, json=completion("x"))))

    async def generate() -> tuple[str, Any]:
        return await adapter.generate("hi"), adapter._client

    first_text, first_client = asyncio.run(generate())
    second_text, second_client = asyncio.run(generate())
    assert first_text == second_text == "x"
    assert first_client is not second_client


# ------------------------------------------------------------------------------------------
# close(): the synchronous close a fixture's teardown uses
# ------------------------------------------------------------------------------------------


class ClosingTransport(httpx2.MockTransport):
    """A scripted transport that counts how often the adapter's httpx2 client closed it."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def closing_adapter() -> tuple[DockerModelRunnerAdapter, ClosingTransport]:
    transport = ClosingTransport(Script(httpx2.Response(200, json=completion("x"))))
    return DockerModelRunnerAdapter(RUNNER, MODEL, transport=transport), transport


def close_without_warnings(adapter: DockerModelRunnerAdapter) -> None:
    """``adapter.close()``, failing the test on any warning (a coroutine never awaited, for one)."""
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapter.close()
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


def test_close_after_a_call_on_an_open_loop_closes_the_client_on_that_loop() -> None:
    adapter, transport = closing_adapter()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(adapter.generate("a")) == "x"
        client = adapter._client
        close_without_warnings(adapter)
        assert client is not None and client.is_closed
        assert transport.closed == 1
        # Still usable on the same loop, with a new client, which close() closes in turn.
        assert loop.run_until_complete(adapter.generate("b")) == "x"
        assert adapter._client is not client
        adapter.close()
        assert transport.closed == 2
    finally:
        loop.close()


def test_close_after_a_call_on_a_loop_since_closed_drops_the_client() -> None:
    adapter, transport = closing_adapter()
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(adapter.generate("a")) == "x"
    client = adapter._client
    loop.close()
    close_without_warnings(adapter)
    assert adapter._client is None
    assert client is not None and not client.is_closed and transport.closed == 0
    assert asyncio.run(adapter.generate("b")) == "x"


def test_close_before_any_call_does_nothing() -> None:
    adapter, transport = closing_adapter()
    close_without_warnings(adapter)
    close_without_warnings(adapter)
    assert transport.closed == 0
    assert asyncio.run(adapter.generate("a")) == "x"


def test_close_inside_the_running_loop_closes_at_its_next_turn() -> None:
    adapter, transport = closing_adapter()

    async def scenario() -> tuple[int, bool]:
        await adapter.generate("a")
        client = adapter._client
        assert client is not None
        adapter.close()
        closed_at_once = transport.closed
        for _ in range(20):
            if client.is_closed:
                break
            await asyncio.sleep(0)
        return closed_at_once, client.is_closed

    assert asyncio.run(scenario()) == (0, True)
    assert transport.closed == 1


def test_close_while_another_loop_runs_in_this_thread_closes_on_the_clients_loop() -> None:
    adapter, transport = closing_adapter()
    idle = asyncio.new_event_loop()
    try:
        assert idle.run_until_complete(adapter.generate("a")) == "x"

        async def close_from_another_loop() -> None:
            close_without_warnings(adapter)  # the idle loop cannot run in this thread: it runs in another

        asyncio.run(close_from_another_loop())
        assert adapter._client is None and transport.closed == 1
    finally:
        idle.close()


def test_the_client_is_closed_when_asyncio_run_shuts_its_loop_down() -> None:
    # A test's loop usually ends before its fixtures' teardown calls close(): the loop's shutdown
    # must close the pooled connections itself, or they leak (a ResourceWarning, an error under -W error).
    adapter, transport = closing_adapter()
    assert asyncio.run(adapter.generate("a")) == "x"
    assert transport.closed == 1
    close_without_warnings(adapter)
    assert transport.closed == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner (pytest-asyncio's loops) is Python 3.11+")
def test_the_loop_shutdown_closes_the_client_of_each_loop_once() -> None:
    adapter, transport = closing_adapter()
    with asyncio.Runner() as runner:
        assert runner.run(adapter.generate("a")) == "x"
        assert runner.run(adapter.generate("b")) == "x"
        assert transport.closed == 0  # one client per loop, kept between calls
    assert transport.closed == 1
    assert asyncio.run(adapter.generate("c")) == "x"
    assert transport.closed == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(("timeout", "connect"), [(120.0, 10.0), (3.0, 3.0)])
async def test_connecting_waits_at_most_ten_seconds_whatever_the_request_timeout(timeout: float, connect: float) -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"])
        return httpx2.Response(200, json={"object": "list", "data": []})

    async with DockerModelRunnerAdapter("http://127.0.0.1:12434", transport=httpx2.MockTransport(handler), timeout=timeout) as adapter:
        await adapter.get_available_models()
    assert len(seen) == 1 and seen[0]["connect"] <= connect and connect - seen[0]["connect"] < 0.5
    assert all(timeout - 0.5 < seen[0][name] <= timeout for name in ("read", "write", "pool"))


def test_a_connect_timeout_names_the_connect_limit_not_the_request_timeout() -> None:
    from pytest_dmr import _http

    error = _http.transport_error(httpx2.ConnectTimeout("timed out"), runner_url="http://127.0.0.1:12434", timeout=120)
    assert isinstance(error, errors.RunnerTimeoutError)
    assert str(error).startswith("the runner did not accept the connection within 10 s (runner http://127.0.0.1:12434)")
