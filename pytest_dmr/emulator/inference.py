"""The scheduler's inference handler (DMR's ``handleOpenAIInference``), shared by every front-end.

:meth:`Inference.serve` takes a POST for ``/engines[/{backend}]/v1/...``, ``/engines[/{backend}]/rerank``
or ``score`` (after DMR's alias rewrite), runs DMR's checks in its order (backend, size, JSON,
``model``, the stored model, the load), records the request in the request log, forwards it to the
runner of the right mode and hands back an :class:`Answer`: status, headers and the body as it
arrives. The server writes it to the client as it is; the Responses and Ollama front-ends translate
it, as DMR's wrapping ``ResponseWriter``\\ s do. Closing the answer releases the runner and completes
the request's record.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from email.message import Message
from typing import TYPE_CHECKING, Protocol

import httpx2

from pytest_dmr.protocol import encoding, engines_api, error_bodies, openai_api, proxying, request_log, rerank_api, routes

if TYPE_CHECKING:
    from pytest_dmr.emulator.engines import Runner
    from pytest_dmr.emulator.server import EmulatorServer

CRASH_EXIT_WAIT = 2.0
"""How long a request whose runner connection dropped waits for the runner's process to exit."""
MESSAGES = "/messages"
COUNT_TOKENS = "/messages/count_tokens"
V1_ENDPOINTS = (*routes.INFERENCE_ENDPOINTS, MESSAGES, COUNT_TOKENS)
"""What the scheduler serves under ``/engines[/{backend}]/v1`` (POST): OpenAI's and Anthropic's."""
PLAIN_ERROR_HEADERS = (("Content-Type", encoding.TEXT_PLAIN), ("X-Content-Type-Options", "nosniff"))

Headers = Sequence[tuple[str, str]]


class StreamCut(Exception):
    """The runner's connection broke after the answer's head was sent: the client's is cut too."""


class Answer:
    """An answer of the scheduler: ``status``, ``headers`` (no length, no hop-by-hop ones), and the
    body, iterated as it arrives (:class:`StreamCut` when the runner dies mid-stream). ``length`` is
    the body's size when the runner sent one whole body (written with a Content-Length), else
    ``None`` (a stream, written chunked). Use it as a context manager: closing it releases the runner."""

    def __init__(
        self,
        status: int,
        headers: Headers,
        chunks: Iterable[bytes],
        *,
        length: int | None = None,
        on_close: Callable[[Answer], None] | None = None,
    ) -> None:
        self.status, self.headers, self.length = status, list(headers), length
        self._chunks, self._on_close = chunks, on_close
        self.received: list[bytes] = []
        """The body as far as it was read (the request log records it)."""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.received.append(chunk)
            yield chunk

    def read(self) -> bytes:
        return b"".join(self)

    def text(self) -> str:
        return self.read().decode(errors="replace")

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def whole_answer(status: int, body: bytes, headers: Headers = ()) -> Answer:
    return Answer(status, headers, [body], length=len(body))


def plain_error(status: int, message: str) -> Answer:
    """Go's ``http.Error``: the message and a newline, ``text/plain``, ``nosniff``."""
    return whole_answer(status, error_bodies.plain_error_body(message), PLAIN_ERROR_HEADERS)


def passed_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Upstream headers minus hop-by-hop ones, the length and CORS (DMR's CORS adds its own)."""
    dropped = proxying.HOP_BY_HOP_HEADERS | {"content-length", "access-control-allow-origin", "date"}
    return [(name, value) for name, value in items if name.lower() not in dropped]


def with_headers(headers: Headers, replacements: Headers) -> list[tuple[str, str]]:
    """``headers`` with each of ``replacements`` set (Go's ``Header().Set``: replaces every value)."""
    names = {name.lower() for name, _ in replacements}
    return [(name, value) for name, value in headers if name.lower() not in names] + list(replacements)


def scheduler_path(path: str) -> str:
    """The path DMR's scheduler sees: ``/v1/...`` -> ``/engines/v1/...``, ``/rerank`` -> ``/engines/rerank``."""
    if path.startswith(routes.ALIAS_PREFIX + "/"):
        return "/engines" + path
    return rerank_api.alias_target(path) or path


def mode_for_path(path: str) -> str:
    """DMR's ``backendModeForRequest``: reranking for ``rerank``/``score``, embedding, else completion."""
    if path.endswith(("/rerank", "/score")):
        return rerank_api.RERANKING_MODE
    return engines_api.EMBEDDING_MODE if path.endswith("/v1" + routes.EMBEDDINGS) else engines_api.COMPLETION_MODE


class Inference:
    """DMR's scheduler inference handler over the emulator's store, scheduler and request log."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.log = request_log.RequestLog(emulator.resolve_id)
        self._clock_lock = threading.Lock()
        self._last_ns = 0

    def _now_ns(self) -> int:
        """Unix nanoseconds, strictly increasing (record IDs stay unique on a coarse clock)."""
        with self._clock_lock:
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            return self._last_ns

    def runner_started(self, runner: Runner, config: engines_api.RunnerConfig | None) -> None:
        """A runner loaded: the request log's entry for its model, with the settings it runs with
        (without ``_configure`` settings, the model's own context size, as DMR's loader reports it)."""
        if config is not None:
            settings = config.to_json()
        else:
            model = self.emulator.store.find(runner.model_id)
            context = model.config.get("context_size") if model is not None else None
            settings = {"context-size": context} if isinstance(context, int) else {}
        self.log.set_config(runner.model_id, settings)

    def runner_stopped(self, runner: Runner) -> None:
        self.log.remove_model(runner.model_id)

    def serve(self, path: str, body: bytes | None, headers: Headers, *, query: str = "") -> Answer:
        """Answer a POST to the scheduler's ``path`` (already rewritten: :func:`scheduler_path`)."""
        backend = _backend(path)
        if backend is not None and backend not in engines_api.KNOWN_BACKENDS:
            return plain_error(404, error_bodies.BACKEND_NOT_FOUND)
        if body is None:
            return plain_error(400, error_bodies.REQUEST_TOO_LARGE)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        model_name = request.get("model") if isinstance(request, dict) else None
        if not isinstance(request, dict) or (model_name is not None and not isinstance(model_name, str)):
            return plain_error(400, error_bodies.INVALID_REQUEST)
        if not model_name:
            return plain_error(400, error_bodies.MODEL_REQUIRED)
        emulator = self.emulator
        model = emulator.store.find(model_name)
        if model is None:
            return plain_error(404, error_bodies.model_not_found_message(model_name))
        if backend not in (None, engines_api.LLAMACPP_BACKEND):  # registered, not installed here
            return plain_error(*engines_api.unavailable_backend(backend))
        header = _header(headers)
        preload = header(routes.PRELOAD_HEADER) == "true"
        from pytest_dmr.emulator.engines import LoadError, StillLoading

        try:
            runner = emulator.acquire(model, model_name, mode_for_path(path), wait=preload or not emulator.loading_503)
        except StillLoading:
            loading = encoding.dumps(openai_api.LOADING_MODEL_BODY).encode()
            return whole_answer(503, loading, [("Content-Type", openai_api.LLAMACPP_JSON_CONTENT_TYPE)])
        except LoadError as exc:
            return plain_error(500, error_bodies.unable_to_load_message(str(exc)))
        if preload:
            emulator.scheduler.release(runner)
            return whole_answer(200, b"")
        record_id = self.log.record_request(
            model_name, url=path, body=body, now_ns=self._now_ns(), user_agent=header("User-Agent") or "",
            origin=request_log.request_origin(path, header(request_log.REQUEST_ORIGIN_HEADER)),
        )  # fmt: skip

        def finish(answer: Answer) -> None:
            emulator.scheduler.release(runner)
            self.log.record_response(record_id, model_name, status_code=answer.status, body=b"".join(answer.received))

        upstream = rerank_api.upstream_path(path) + (f"?{query}" if query else "")
        return self._proxy(runner, upstream, body, headers, finish)

    def _proxy(self, runner: Runner, upstream_path: str, body: bytes, headers: Headers, finish: Callable[[Answer], None]) -> Answer:
        """Forward to the runner. When its connection fails, DMR's answer depends on its process:
        exited, a ``500`` with the backend error as JSON (the runner is evicted, so the next request
        reloads the model); still running, a ``502`` with no body. Once the head is sent, the stream is cut."""
        client = runner.client
        forwarded = [
            (name, value)
            for name, value in headers
            if name.lower() not in proxying.HOP_BY_HOP_HEADERS and name.lower() not in ("host", "content-length")
        ]
        request = client.build_request("POST", upstream_path, headers=forwarded, content=body)
        try:
            response = self._send(client, request)
        except httpx2.HTTPError:
            return self._failed(runner, finish)
        passed = passed_headers(response.headers.multi_items())
        if "content-length" in response.headers:
            try:
                data = response.read()
            except httpx2.HTTPError:
                response.close()
                return self._failed(runner, finish)
            response.close()
            return Answer(response.status_code, passed, [data], length=len(data), on_close=finish)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_raw()
            except httpx2.HTTPError:
                self.emulator.scheduler.crashed(runner, wait=CRASH_EXIT_WAIT)
                raise StreamCut() from None

        def close(answer: Answer) -> None:
            response.close()
            finish(answer)

        return Answer(response.status_code, passed, chunks(), on_close=close)

    @staticmethod
    def _send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
        """Send once more, on a new connection, when llama.cpp closed a kept-alive one just as it was
        reused (nothing was answered): the race a pool cannot see, not a runner failure."""
        try:
            return client.send(request, stream=True)
        except httpx2.RemoteProtocolError:
            return client.send(request, stream=True)

    def _failed(self, runner: Runner, finish: Callable[[Answer], None]) -> Answer:
        error = self.emulator.scheduler.crashed(runner, wait=CRASH_EXIT_WAIT)
        status, body, headers = 502, b"", []
        if error is not None:  # DMR sets application/json only after WriteHeader, so Go sniffs the body: text/plain.
            status, body, headers = 500, proxying.backend_crash_body(error), [("Content-Type", encoding.TEXT_PLAIN)]
        return Answer(status, headers, [body], length=len(body), on_close=finish)


def _backend(path: str) -> str | None:
    """The backend a scheduler path names (``/engines/{backend}/...``), ``None`` for the default."""
    rerank = rerank_api.match_rerank_path(path)
    if rerank is not None:
        return rerank.backend
    route = routes.match_inference_path(path)
    return route.backend if route is not None else None


def _header(headers: Headers) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        return next((value for key, value in headers if key.lower() == name.lower()), None)

    return get



class Reply(Protocol):
    """What a front-end writes its answer with: the request handler (see :mod:`~.server`)."""

    command: str
    headers: Message

    def send_head(self, status: int, headers: Headers) -> None: ...

    def send_body(self, status: int, body: bytes, content_type: str | None, headers: Headers = ()) -> None: ...

    def send_plain_error(self, status: int, message: str, headers: Headers = ()) -> None: ...

    def method_not_allowed(self, allowed: str) -> None: ...

    def send_answer(self, answer: Answer) -> None: ...

    def start_chunks(self, status: int, headers: Headers) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def end_chunks(self) -> None: ...

    def forwarded_headers(self, *replacements: tuple[str, str]) -> list[tuple[str, str]]: ...

    def client_gone(self) -> bool: ...
