"""Ultra's ``LLMAdapter`` interface, and its Docker Model Runner implementation on httpx2.

:class:`DockerModelRunnerAdapter` talks to a runner's OpenAI-compatible API
(``/engines/v1/chat/completions``, ``/completions``, ``/embeddings``, ``/models``). The same class
serves live and mock runs: the mock is an httpx2 transport, so the parsing, streaming, retry and
error paths below run in both. :func:`create_modelrunner_adapter` builds one from Ultra's
environment variables.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import difflib
import inspect
import os
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx2

from pytest_dmr import _http, errors
from pytest_dmr._http import Deadline
from pytest_dmr.protocol import _shapes, addresses, encoding, model_info, openai_api, request_fields, routes, sse
from pytest_dmr.protocol.addresses import RunnerAddress
from pytest_dmr.redaction import redact_url

__all__ = ["ChatResult", "DockerModelRunnerAdapter", "LLMAdapter", "create_modelrunner_adapter"]

CLOSE_TIMEOUT = 5.0
"""Seconds :meth:`DockerModelRunnerAdapter.close` waits for the connections to close on another thread."""

Message = Mapping[str, Any]
Sleep = Callable[[float], Awaitable[Any]]

DMR_DEFAULT_CONTEXT_SIZE = 4096
"""Tokens a model's context holds on DMR unless the model or ``docker model configure`` sets more
(DMR's llama.cpp backend, ``pkg/inference/backends/llamacpp``: ``contextSize := 4096``)."""


class LLMAdapter(abc.ABC):
    """Ultra's adapter interface: what application code calls, whatever serves the model."""

    @abc.abstractmethod
    async def generate(self, prompt: str, **options: Any) -> str:
        """The model's whole answer to ``prompt``."""

    @abc.abstractmethod
    def stream_generate(self, prompt: str, **options: Any) -> AsyncIterator[str]:
        """The answer to ``prompt`` as it is produced, piece by piece (an async generator)."""

    @abc.abstractmethod
    async def check_availability(self) -> bool:
        """Whether the model's server answers; never raises."""

    @abc.abstractmethod
    def get_capabilities(self) -> dict[str, Any]:
        """What this adapter can do (streaming, embeddings, tools, ...), without any I/O."""

    @abc.abstractmethod
    async def get_available_models(self) -> list[str]:
        """The models the server can answer with."""


@dataclass(frozen=True)
class ChatResult:
    """One chat completion: the text, any tool calls, why it stopped, token usage and the raw body."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def json(self) -> Any:
        """The text parsed as JSON (for ``response_format`` answers);
        :class:`~pytest_dmr.errors.MalformedResponseError` (a ``ValueError``) when it is not JSON."""
        try:
            return encoding.loads(self.text)
        except ValueError:
            raise errors.MalformedResponseError(
                f"the model's answer is not JSON: {self.text[:120]!r}",
                model=self.model or None,
                hint="Ask for JSON with response_format={'type': 'json_object'} or a json_schema",
            ) from None


def _backend_of(transport: object | None) -> str:
    """``mock`` for the mock, a cassette's replay its own ``backend`` (``replay``), else ``live``."""
    # Their modules are imported by whoever built the transport, so no import is needed here.
    mock_class = getattr(sys.modules.get("pytest_dmr.mock"), "MockModelRunner", None)
    if mock_class is not None and isinstance(transport, mock_class):
        return "mock"
    replay_class = getattr(sys.modules.get("pytest_dmr.cassettes.replay"), "ReplayTransport", None)
    if replay_class is not None and isinstance(transport, replay_class):
        return str(transport.backend)
    return "live"


class DockerModelRunnerAdapter(LLMAdapter):
    """An :class:`LLMAdapter` on Docker Model Runner's OpenAI-compatible API.

    ``base_url`` may be a runner root (``http://localhost:12434``), an OpenAI base
    (``.../engines/v1``, ``.../engines/llama.cpp/v1``, ``.../v1``) or ``host:port``. ``transport``
    plugs in any httpx2 async transport, :class:`~pytest_dmr.mock.MockModelRunner` included.
    Failed connections and 502/503/504 answers are retried ``max_retries`` times with exponential
    backoff starting at ``backoff`` seconds (``sleep`` waits; tests pass a fake). Every failure is
    raised as a :class:`~pytest_dmr.errors.DMRError` naming the runner and the model.

    Bounds: ``timeout`` bounds each *whole* call (connecting, every retry and its wait, reading the
    answer, every piece of a stream): a server that trickles bytes or ``: keep-alive`` comments
    cannot extend it. A streamed line longer than ``max_line_bytes`` (16 MiB) raises
    :class:`~pytest_dmr.errors.ResponseTooLargeError`. A runner that stops accepting connections
    after having answered opens a circuit breaker shared by every adapter and client on its URL:
    calls fail at once with :class:`~pytest_dmr.errors.RunnerUnavailableError` for 30 s, then try again.

    Request options (``temperature=0``, ``seed=7``, ``max_tokens``, ``response_format``, ``tools``...)
    are checked against the fields OpenAI and llama.cpp define: an unknown one, such as a misspelt
    ``max_retry``, raises :class:`~pytest_dmr.errors.UnknownOptionError` naming the closest match.
    ``extra_body={...}`` sends fields outside that list unchecked.

    Ultra's calls work unchanged: ``DockerModelRunnerAdapter(api_key=None, model=..., base_url=...,
    timeout=...)``, ``generate(prompt, system_message=...)``, Ultra's capability keys, and
    :attr:`base_url` as given. An ``api_key`` goes out as ``Authorization: Bearer`` (DMR needs none;
    a llama.cpp server started with ``--api-key``, or a proxy, may).
    """

    name = "docker_modelrunner"
    """Ultra's ``LLMAdapter.name`` for this adapter."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str = addresses.DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.25,
        transport: httpx2.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        default_options: Mapping[str, Any] | None = None,
        sleep: Sleep | None = None,
        max_line_bytes: int = _http.MAX_LINE_BYTES,
    ) -> None:
        self._base_url = base_url or _http.default_base_url(transport)
        self.address: RunnerAddress = addresses.parse_runner_url(self._base_url)
        self.model = model
        self.api_key = _check_api_key(api_key)
        self.timeout = _http.check_seconds(timeout, "timeout")
        self.max_line_bytes = _http.check_limit(max_line_bytes, "max_line_bytes")
        self.retry = _http.RetryPolicy(max_retries=max_retries, backoff=backoff)
        self.backend = _backend_of(transport)
        self.default_options = dict(default_options or {})
        check_request_options(self.default_options, "default_options")
        self._transport = transport
        self._breaker = _http.breaker_for(self.address.root, transport)
        self._headers = {
            "User-Agent": _http.user_agent(),
            "Content-Type": encoding.JSON_CONTENT_TYPE,
            **({"Authorization": f"Bearer {api_key}"} if api_key else {}),
            **(headers or {}),
        }
        self._sleep: Sleep = sleep or asyncio.sleep
        self._client: httpx2.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._client_closer: AsyncGenerator[None, None] | None = None
        openai_url = self.address.openai_url
        self._urls = {  # parsed once: URL parsing is a visible share of a mock call's cost
            endpoint: httpx2.URL(openai_url + endpoint)
            for endpoint in (routes.CHAT_COMPLETIONS, routes.COMPLETIONS, routes.EMBEDDINGS, routes.MODELS)
        }

    def __repr__(self) -> str:
        url = redact_url(self.address.openai_url)
        return f"DockerModelRunnerAdapter({url!r}, model={self.model!r}, backend={self.backend!r})"

    @property
    def base_url(self) -> str:
        """The runner URL as it was given (Ultra reads it back); without one, the URL the adapter chose.
        Requests go to :attr:`openai_base_url`."""
        return self._base_url

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible base URL requests go to (``.../engines/v1``), normalised from :attr:`base_url`."""
        return self.address.openai_url

    # ---------------------------------------------------------------------------------------
    # Ultra's interface
    # ---------------------------------------------------------------------------------------

    async def generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        system_message: str | None = None,
        model: str | None = None,
        messages: Sequence[Message] | None = None,
        **options: Any,
    ) -> str:
        """The answer to ``prompt`` (after ``system`` and any earlier ``messages``), via chat completions.
        ``system_message`` is Ultra's name for ``system``."""
        conversation = _conversation(prompt, _system(system, system_message), messages)
        result = await self.chat(conversation, model=model, **options)
        return result.text

    async def stream_generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        system_message: str | None = None,
        model: str | None = None,
        messages: Sequence[Message] | None = None,
        **options: Any,
    ) -> AsyncIterator[str]:
        """The answer to ``prompt`` piece by piece, as the runner streams it (``system_message``: as in :meth:`generate`)."""
        conversation = _conversation(prompt, _system(system, system_message), messages)
        async for piece in self.stream_chat(conversation, model=model, **options):
            yield piece

    async def check_availability(self) -> bool:
        """Whether the runner answers its OpenAI model list, quickly and without retries. Never raises."""
        try:
            response = await self._send("GET", self._urls[routes.MODELS], None, model=None, retry=False,
                                        deadline=Deadline(min(self.timeout, 5.0)))
        except Exception:  # noqa: BLE001 - promised never to raise
            return False
        return response.status_code == 200

    def get_capabilities(self) -> dict[str, Any]:
        """What the adapter does, in our keys and in Ultra's (``name``, ``supports_*``, ``max_tokens``).

        Ultra's keys, as Ultra's own Docker Model Runner adapter fills them: ``name`` is
        ``local-<model>``; ``max_tokens`` the tokens a context holds on DMR by default (4096; a model
        or ``docker model configure`` may set more, which only the runner knows); ``supports_functions``
        is ``tools``; ``supports_vision`` is false: Ultra's calls carry text only (images go through
        :meth:`chat` content parts, to a model the runner serves with a projector).
        """
        return {
            "name": f"local-{self.model}",
            "supports_streaming": True,
            "max_tokens": DMR_DEFAULT_CONTEXT_SIZE,
            "supports_functions": True,
            "supports_vision": False,
            "provider": "docker-model-runner",
            "model": self.model,
            "backend": self.backend,
            "base_url": redact_url(self.address.root),
            "openai_base_url": redact_url(self.address.openai_url),
            "streaming": True,
            "chat": True,
            "completions": True,
            "embeddings": True,
            "tools": True,
            "json_schema": True,
            "timeout": self.timeout,
            "max_retries": self.retry.max_retries,
        }

    async def get_available_models(self) -> list[str]:
        """The OpenAI list's ids; the management list's names if that fails; ``[]`` if neither answers
        with a list it can read."""
        try:
            body = await self._request_json("GET", routes.MODELS, None, model=None, retry=False)
            return model_info.model_ids_from_openai_list(body)
        except errors.DMRError:
            pass
        try:
            listed = await self._request_json("GET", routes.MANAGEMENT_MODELS_PATH, None, model=None, retry=False,
                                              url=httpx2.URL(self.address.root + routes.MANAGEMENT_MODELS_PATH))
            if isinstance(listed, list):
                return [model_info.ModelInfo.from_json(entry).name for entry in listed]
        except errors.DMRError:
            pass
        return []

    # ---------------------------------------------------------------------------------------
    # The rest of the OpenAI-compatible API
    # ---------------------------------------------------------------------------------------

    async def chat(self, messages: Sequence[Message], *, model: str | None = None, **options: Any) -> ChatResult:
        """A non-streamed chat completion; ``options`` (known request fields, and ``extra_body``'s
        entries) go into the request body unchanged."""
        model = model or self.model
        body = self._body(model, "messages", list(messages), options)
        answer = await self._request_json("POST", routes.CHAT_COMPLETIONS, body, model=model)
        return self._chat_result(answer, model)

    async def stream_chat(
        self, messages: Sequence[Message], *, model: str | None = None, **options: Any
    ) -> AsyncIterator[str]:
        """A streamed chat completion: each non-empty ``delta.content`` as it arrives."""
        model = model or self.model
        body = self._body(model, "messages", list(messages), options, stream=True)
        async for piece in self._stream(routes.CHAT_COMPLETIONS, body, model):
            yield piece

    async def complete(self, prompt: str, *, model: str | None = None, **options: Any) -> str:
        """A text completion (``/completions``): the continuation of ``prompt``."""
        model = model or self.model
        body = self._body(model, "prompt", prompt, options)
        answer = await self._request_json("POST", routes.COMPLETIONS, body, model=model)
        text: str = self._read(openai_api.read_completion_text, answer, model)
        return text

    async def embed(self, texts: str | Sequence[str], *, model: str | None = None, **options: Any) -> list[list[float]]:
        """One embedding vector per text, in input order (``/embeddings``)."""
        model = model or self.model
        inputs = [texts] if isinstance(texts, str) else list(texts)
        body = self._body(model, "input", inputs, options)
        answer = await self._request_json("POST", routes.EMBEDDINGS, body, model=model)
        try:
            return openai_api.read_embeddings(answer, len(inputs))
        except errors.MalformedResponseError as exc:
            raise _http.naming(exc, runner_url=self.address.root, model=model) from exc

    # ---------------------------------------------------------------------------------------
    # Lifecycle
    # ---------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP connections (from async code; :meth:`close` is the synchronous twin)."""
        if self._client_loop is not None and self._client_loop is not asyncio.get_running_loop():
            self.close()  # the client belongs to another loop: close it there if that loop can
            return
        closer = self._forget_client()
        if closer is not None:
            await closer.aclose()

    def close(self) -> None:
        """Close the HTTP connections from synchronous code, e.g. a fixture's teardown. Never raises.

        The httpx2 client belongs to the event loop it was made on, so it is closed there: at once
        when that loop is idle (neither running nor closed), in a short-lived thread when another
        loop is running in this one; scheduled on it when it is running (the connections close at
        the loop's next turn). With no client yet, nothing happens; on a closed loop the client is
        dropped: if that loop was shut down by ``asyncio.run``, ``asyncio.Runner`` or
        pytest-asyncio, the client was closed then (see :meth:`_http`). The adapter stays usable:
        the next call makes a new client.
        """
        loop = self._client_loop
        closer = self._forget_client()
        if closer is None or loop is None or loop.is_closed():
            return
        closing = _finish(closer)
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(closing, loop)
            elif _loop_running_in_this_thread():
                # A thread runs one loop at a time: the idle client loop runs in a helper thread.
                helper = threading.Thread(target=loop.run_until_complete, args=(closing,), daemon=True)
                helper.start()
                helper.join(CLOSE_TIMEOUT)
            else:
                loop.run_until_complete(closing)
        except Exception:  # noqa: BLE001 - best effort by contract: a teardown must not fail on it
            closing.close()  # never started (or already done): no "never awaited" warning

    async def __aenter__(self) -> DockerModelRunnerAdapter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------------------------------
    # Internals: one httpx2 client per event loop, requests with retries, streams
    # ---------------------------------------------------------------------------------------

    async def _http(self) -> httpx2.AsyncClient:
        """The httpx2 client, made on first use; remade if called from another event loop
        (a connection pool cannot move between loops, and pytest-asyncio gives each test its own).

        The client is tied to its loop's shutdown: ``asyncio.run``, ``asyncio.Runner`` and
        pytest-asyncio run ``loop.shutdown_asyncgens()`` before closing a loop, which resumes the
        suspended :func:`_close_at_loop_shutdown` generator, so the pooled connections close on
        their own loop even when nobody calls :meth:`close` in time (a test's loop usually ends
        before its fixtures' teardown).
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self.close()
            client = httpx2.AsyncClient(
                transport=self._transport, **_http.client_options(self.address, self.timeout, self._headers)
            )
            closer = _close_at_loop_shutdown(client)
            await closer.__anext__()  # first step: the loop now tracks it (and holds it suspended)
            self._client, self._client_loop, self._client_closer = client, loop, closer
        return self._client

    def _forget_client(self) -> AsyncGenerator[None, None] | None:
        """Drop the client; return what closes it (``None`` when there was none)."""
        closer = self._client_closer
        self._client, self._client_loop, self._client_closer = None, None, None
        return closer

    def _body(
        self, model: str, key: str, value: Any, options: Mapping[str, Any], *, stream: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, key: value}
        merged = {**self.default_options, **options} if self.default_options else dict(options)
        extra = merged.pop("extra_body", None)
        if options:
            check_request_options(options, "request")
        body.update(merged)
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise errors.ConfigurationError(
                    f"extra_body must be a mapping of request fields, not {type(extra).__name__}",
                    runner_url=self.address.root, model=model, hint="For example extra_body={'my_field': 1}",
                )
            body.update(extra)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    def _error(self, exc: BaseException, model: str | None) -> errors.DMRError:
        return _http.transport_error(exc, runner_url=self.address.root, model=model, timeout=self.timeout)

    def _read(self, reader: Callable[[Any], Any], answer: Any, model: str) -> Any:
        """``reader(answer)`` (a protocol reader), its errors naming the runner and the model."""
        try:
            return reader(answer)
        except errors.MalformedResponseError as exc:
            raise _http.naming(exc, runner_url=self.address.root, model=model) from exc

    async def _send(
        self,
        method: str,
        url: httpx2.URL,
        content: bytes | None,
        *,
        model: str | None,
        retry: bool,
        deadline: Deadline,
        stream: bool = False,
    ) -> httpx2.Response:
        """Send with retries on failed connections and 502/503/504 within ``deadline``, through the
        runner's circuit breaker; the response is OK (2xx) or raised (a streamed one still open)."""
        client = await self._http()
        attempt = 0
        while True:
            self._breaker.check(model)
            request = client.build_request(method, url, content=content, timeout=deadline.timeouts())
            try:
                async with asyncio.timeout(deadline.remaining()):
                    response = await client.send(request, stream=stream)
                    if response.status_code >= 400 and stream:
                        try:
                            await response.aread()
                        finally:
                            await response.aclose()
            except TimeoutError as exc:  # asyncio's: the deadline passed
                raise deadline.error("the runner did not answer", runner_url=self.address.root, model=model) from exc
            except _http.http_errors() as exc:
                self._breaker.failed(exc)
                try:
                    self._breaker.check(model)  # this failure opened it: say so
                except errors.RunnerUnavailableError as gone:
                    raise gone from exc
                if retry and self._retries(attempt, deadline, self.retry.retries_error(exc)):
                    await self._sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise self._error(exc, model) from exc
            self._breaker.succeeded()
            if response.status_code < 400:
                return response
            if retry and self._retries(attempt, deadline, self.retry.retries_status(response.status_code), response):
                await self._sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            raise _http.status_error(response, runner_url=self.address.root, model=model)

    def _retries(
        self, attempt: int, deadline: Deadline, worth_it: bool, response: httpx2.Response | None = None
    ) -> bool:
        """Whether another attempt is allowed, and its wait ends before the deadline."""
        return worth_it and attempt < self.retry.max_retries and self.retry.delay(attempt, response) < deadline.remaining()

    async def _request_json(
        self,
        method: str,
        endpoint: str,
        body: Mapping[str, Any] | None,
        *,
        model: str | None,
        retry: bool = True,
        url: httpx2.URL | None = None,
    ) -> Any:
        """The JSON answer to a request to ``endpoint`` of the OpenAI API (or to ``url``)."""
        content = encoding.dumps(body).encode() if body is not None else None
        response = await self._send(method, url or self._urls[endpoint], content, model=model, retry=retry,
                                    deadline=Deadline(self.timeout))
        return _http.decode_json(response, what=f"{method} {endpoint}", runner_url=self.address.root, model=model)

    def _chat_result(self, answer: Any, model: str) -> ChatResult:
        parts: openai_api.ChatAnswer = self._read(openai_api.read_chat_completion, answer, model)
        return ChatResult(
            text=parts.text,
            tool_calls=parts.tool_calls,
            finish_reason=parts.finish_reason,
            usage=parts.usage,
            model=parts.model or model,
            raw=dict(answer),
        )

    async def _stream(self, endpoint: str, body: Mapping[str, Any], model: str) -> AsyncIterator[str]:
        deadline = Deadline(self.timeout)
        content = encoding.dumps(body).encode()
        response = await self._send("POST", self._urls[endpoint], content, model=model, retry=True, stream=True,
                                    deadline=deadline)
        try:
            async for piece in self._read_stream(response, endpoint, model, deadline):
                yield piece
        finally:
            await response.aclose()

    async def _lines(self, response: httpx2.Response, model: str, deadline: Deadline) -> AsyncIterator[str]:
        """The stream's lines, each at most ``max_line_bytes`` long, until the deadline."""
        splitter = _http.LineSplitter(self.max_line_bytes, runner_url=self.address.root, model=model)
        async with contextlib.aclosing(response.aiter_bytes()) as chunks:
            while True:
                try:
                    async with asyncio.timeout(deadline.remaining()):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                for line in splitter.feed(chunk):
                    yield line
        for line in splitter.flush():
            yield line

    async def _read_stream(
        self, response: httpx2.Response, endpoint: str, model: str, deadline: Deadline
    ) -> AsyncIterator[str]:
        received: list[str] = []
        timeouts: tuple[type[BaseException], ...] = (TimeoutError, *_http.stack_errors("TimeoutException"))
        try:
            if not response.headers.get("content-type", "").startswith(encoding.EVENT_STREAM):
                # The server ignored "stream": true and answered in one piece.
                async with asyncio.timeout(deadline.remaining()):
                    await response.aread()
                answer = _http.decode_json(response, what=f"POST {endpoint}", runner_url=self.address.root, model=model)
                if endpoint == routes.CHAT_COMPLETIONS:
                    text = self._chat_result(answer, model).text
                else:
                    text = self._read(openai_api.read_completion_text, answer, model)
                if text:
                    yield text
                return
            decoder = sse.SSEDecoder()
            async for line in self._lines(response, model, deadline):
                data = decoder.feed(line)
                if decoder.error is not None:
                    raise self._interrupted(f"the runner reported an error: {decoder.error[:200]}", received, model)
                if data == sse.SSE_DONE:
                    return
                piece = self._chunk_piece(data, received, model) if data is not None else ""
                if piece:
                    received.append(piece)
                    yield piece
            data = decoder.flush()
            if data == sse.SSE_DONE:
                return
            if data is not None:
                piece = self._chunk_piece(data, received, model)
                if piece:
                    received.append(piece)
                    yield piece
            raise self._interrupted("the stream ended without data: [DONE]", received, model)
        except timeouts as exc:
            characters = sum(len(piece) for piece in received)
            if received:
                what, detail = "the streamed answer did not finish", f" ({len(received)} pieces, {characters} characters received)"
            else:
                what, detail = "the runner sent no part of the streamed answer", ""
            raise deadline.error(what, runner_url=self.address.root, model=model, detail=detail) from exc
        except _http.http_errors() as exc:
            raise self._interrupted(f"the connection was lost ({type(exc).__name__})", received, model) from exc

    def _chunk_piece(self, data: str, received: list[str], model: str) -> str:
        try:
            chunk = encoding.loads(data)
        except ValueError:
            raise self._interrupted(f"the runner sent a malformed chunk {data[:80]!r}", received, model) from None
        if isinstance(chunk, Mapping) and "error" in chunk and not chunk.get("choices"):
            error = chunk["error"]
            message = _shapes.plain(error.get("message") if isinstance(error, Mapping) else error)
            raise self._interrupted(f"the runner reported an error: {(message or data)[:200]}", received, model)
        try:
            return openai_api.chunk_text(chunk)
        except errors.MalformedResponseError as exc:
            raise self._interrupted(f"the runner sent a malformed chunk ({exc.message}): {data[:80]!r}",
                                    received, model) from exc

    def _interrupted(self, reason: str, received: list[str], model: str) -> errors.StreamInterruptedError:
        text = "".join(received)
        preview = text if len(text) <= 60 else text[:57] + "..."
        return errors.StreamInterruptedError(
            f"the streamed answer stopped before its end: {reason}, after {len(received)} pieces "
            f"({len(text)} characters: {preview!r})",
            received=text,
            runner_url=self.address.root,
            model=model,
            hint=_http.STREAM_HINT,
        )


async def _close_at_loop_shutdown(client: httpx2.AsyncClient) -> AsyncGenerator[None, None]:
    """Waits, suspended, for the client's end: an explicit close, or its event loop's shutdown."""
    try:
        yield
    finally:
        await client.aclose()


async def _finish(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()


def _loop_running_in_this_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_ADAPTER_ARGUMENTS = frozenset(inspect.signature(DockerModelRunnerAdapter.__init__).parameters) - {"self"}
_CALL_ARGUMENTS = frozenset({"system", "system_message", "messages", "prompt", "texts"})


def check_request_options(options: Mapping[str, Any], where: str) -> None:
    """:class:`~pytest_dmr.errors.UnknownOptionError` for a key that is not a known request field
    (``extra_body`` carries the others), naming the closest adapter argument or request field."""
    for key in options:
        if key in request_fields.REQUEST_FIELDS or key == "extra_body":
            continue
        known = sorted(request_fields.REQUEST_FIELDS | _ADAPTER_ARGUMENTS | _CALL_ARGUMENTS)
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
        if close and close[0] in _ADAPTER_ARGUMENTS:
            guess = f"did you mean the adapter argument {close[0]!r} (DockerModelRunnerAdapter({close[0]}=...), dmr_config or dmr_adapter_factory)? "
        elif close:
            guess = f"did you mean {close[0]!r}? "
        else:
            guess = ""
        raise errors.UnknownOptionError(
            f"unknown {where} option {key!r}: it is neither an adapter argument nor a request field OpenAI or llama.cpp define",
            hint=f"{guess}To send a field the runner knows but pytest-dmr does not, pass extra_body={{{key!r}: ...}}",
        )


def _check_api_key(api_key: object) -> str | None:
    """``api_key`` if it can go out in an ``Authorization`` header (visible ASCII), else
    :class:`~pytest_dmr.errors.ConfigurationError`, which does not show the key."""
    if api_key is None or (isinstance(api_key, str) and all("!" <= char <= "~" for char in api_key)):
        return api_key
    what = f"a {type(api_key).__name__}" if not isinstance(api_key, str) else "a space, a control or a non-ASCII character"
    raise errors.ConfigurationError(
        f"api_key cannot be sent as a bearer token: it holds {what}" if isinstance(api_key, str)
        else f"api_key must be a string or None, got {what}",
        hint="Pass the key as given by the server (a stray newline from a file or an environment variable?)",
    )


def _system(system: str | None, system_message: str | None) -> str | None:
    """``system``, or Ultra's ``system_message``; both, unless equal, is an error (an empty one is
    no system prompt, as it is alone)."""
    if system and system_message and system != system_message:
        raise errors.ConfigurationError(
            "generate() got both system= and system_message= with different texts",
            hint="Pass one: system_message is Ultra's name for system",
        )
    return system or system_message


def _conversation(prompt: str, system: str | None, messages: Sequence[Message] | None) -> list[Message]:
    conversation: list[Message] = []
    if system:
        conversation.append({"role": "system", "content": system})
    if messages:
        conversation.extend(messages)
    if prompt or not messages:
        conversation.append({"role": "user", "content": prompt})
    return conversation


# -------------------------------------------------------------------------------------------
# From Ultra's environment
# -------------------------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.ConfigurationError(
        f"{name}={environ[name]!r} is not a yes/no value", hint=f"Set {name} to one of true, 1, yes or false, 0, no"
    )


def _env_timeout_ms(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        milliseconds = float(raw)
    except ValueError:
        milliseconds = -1.0
    if not milliseconds > 0 or milliseconds == float("inf"):
        raise errors.ConfigurationError(
            f"{name}={environ[name]!r} is not a timeout", hint=f"Set {name} to a positive number of milliseconds, e.g. 30000"
        )
    return milliseconds / 1000


def _env_url(environ: Mapping[str, str]) -> str | None:
    for name in ("MODEL_RUNNER_URL", "MODEL_RUNNER_HOST"):
        value = environ.get(name, "").strip()
        if value:
            try:
                addresses.parse_runner_url(value)
            except errors.ConfigurationError as exc:
                raise errors.ConfigurationError(
                    f"{name}={value!r} is not a usable runner URL ({exc.message})",
                    hint=f"Set {name} to an http(s) URL such as http://localhost:12434 or http://localhost:12434/engines/v1",
                ) from None
            return value
    return None


def create_modelrunner_adapter(
    model: str | None = None, *, environ: Mapping[str, str] | None = None, use_mock: bool | None = None, **overrides: Any
) -> DockerModelRunnerAdapter:
    """An adapter configured from Ultra's environment; arguments win over the environment
    (``create_modelrunner_adapter("ai/smollm2")``, as Ultra calls it, or ``model=``).

    ``MODEL_RUNNER_URL`` (then ``MODEL_RUNNER_HOST``) is the runner, ``DEFAULT_LOCAL_MODEL`` the
    model, ``LOCAL_MODEL_TIMEOUT`` the timeout in milliseconds, and ``USE_MOCK`` (true/1/yes)
    answers from a :class:`~pytest_dmr.mock.MockModelRunner` instead of a runner. Values that
    cannot be used raise :class:`~pytest_dmr.errors.ConfigurationError` naming the variable.
    """
    env = os.environ if environ is None else environ
    for key in overrides:
        if key not in _ADAPTER_ARGUMENTS:
            close = difflib.get_close_matches(key, sorted(_ADAPTER_ARGUMENTS), n=1, cutoff=0.75)
            raise errors.UnknownOptionError(
                f"create_modelrunner_adapter() takes no argument {key!r}",
                hint=(f"Did you mean {close[0]!r}? " if close else "")
                + "Request options go to the calls (generate(..., temperature=0)) or into default_options={...}",
            )
    options = dict(overrides)
    options["model"] = model or env.get("DEFAULT_LOCAL_MODEL", "").strip() or addresses.DEFAULT_MODEL
    if "timeout" not in options:
        timeout = _env_timeout_ms(env, "LOCAL_MODEL_TIMEOUT")
        if timeout is not None:
            options["timeout"] = timeout
    mock = _env_flag(env, "USE_MOCK") if use_mock is None else use_mock
    if mock and options.get("transport") is None:
        from pytest_dmr.mock import MockModelRunner

        transport = MockModelRunner(models=(options["model"],))
        options["transport"] = transport
        if options.get("base_url") is None:
            options["base_url"] = transport.base_url
    if options.get("base_url") is None:  # Ultra passes base_url=None for "the usual runner"
        options["base_url"] = _env_url(env)
    return DockerModelRunnerAdapter(**options)
