"""The emulator's HTTP server: Docker Model Runner's API (DMR-PROTOCOL.md) over the stdlib.

A ``ThreadingHTTPServer`` speaking HTTP/1.1 (keep-alive; chunked responses for pulls and
streams). Management calls are answered from the local :class:`~.store.ModelStore`; inference is
proxied to a runner from the :class:`~.engines.Scheduler`, each chunk written and flushed as it
arrives, so a token streamed by llama.cpp reaches the client at once.

A connection that sends no request for ``connection_idle_timeout`` seconds is closed, so idle
keep-alive clients do not hold a thread each forever. The timeout covers only reading a request
(its line, headers and body); answering has none, so a long stream or pull is never cut, even for
a client that pauses reading.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytest_dmr.protocol import addresses, cors, encoding, engines_api, error_bodies, model_info, proxying, pull_stream, request_log, rerank_api, routes
from pytest_dmr.emulator.catalog import Catalog
from pytest_dmr.emulator.engines import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LOAD_TIMEOUT,
    LlamaEngine,
    LoadError,
    Runner,
    RunnerAlreadyActive,
    Scheduler,
    StillLoading,
    make_engine,
)
from pytest_dmr.emulator.inference import V1_ENDPOINTS, Answer, Inference, StreamCut, scheduler_path, with_headers
from pytest_dmr.emulator import anthropic_front, request_log_route
from pytest_dmr.emulator.ollama_front import API_PREFIX as OLLAMA_PREFIX
from pytest_dmr.emulator.ollama_front import OllamaFrontend
from pytest_dmr.emulator.responses_front import ResponsesFrontend
from pytest_dmr.emulator.store import DeleteRefused, ModelStore, PullRefused, StoredModel

DEFAULT_CONNECTION_IDLE_TIMEOUT = 60.0
"""Seconds a client connection may wait between requests before the server closes it."""

EMULATED_DMR_VERSION = "v1.2.6"
VERSION = f"{EMULATED_DMR_VERSION}+pytest-dmr-emulator"
"""What ``GET /version`` answers: the DMR release imitated, marked as the emulator."""

_TRUE_VALUES = {"", "1", "t", "T", "TRUE", "true", "True"}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
Headers = Sequence[tuple[str, str]]


class EmulatorServer:
    """A DMR stand-in: ``with EmulatorServer(catalog=DIR) as server: server.url``.

    ``catalog`` is the directory pulls copy from (see :mod:`~.catalog` for its naming scheme);
    ``store`` keeps pulled models (a temporary directory, removed on stop, when not given).
    ``engine`` is ``auto`` (llama.cpp if xllamacpp is installed, else the mock), ``llama`` or
    ``mock``. Inference waits while a model loads, as current DMR does; ``loading_503=True``
    answers llama.cpp's ``503 Loading model`` instead, as older runners let through.
    ``connection_idle_timeout`` closes a client connection that sends no request for that many
    seconds (``None``: never). ``origins`` is the whole list DMR's CORS checks (exact matching; only
    ``["*"]`` allows every origin); by default, as DMR builds it, the ``DMR_ORIGINS`` variable's
    entries plus :data:`~pytest_dmr.protocol.DEFAULT_ALLOWED_ORIGINS`.
    """

    def __init__(
        self,
        catalog: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: str = "auto",
        store: str | Path | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        loading_503: bool = False,
        threads: int = 1,
        ctx_size: int = 2048,
        slots: int | None = None,
        log_requests: bool = False,
        connection_idle_timeout: float | None = DEFAULT_CONNECTION_IDLE_TIMEOUT,
        origins: Sequence[str] | None = None,
    ) -> None:
        if connection_idle_timeout is not None and connection_idle_timeout <= 0:
            raise ValueError(f"connection_idle_timeout must be positive or None (never), not {connection_idle_timeout!r}")
        for problem in (
            f"port (--port) must be between 0 (any free port) and 65535, not {port!r}" if not 0 <= port <= 65535 else "",
            f"threads (--threads) must be at least 1, not {threads!r}" if threads < 1 else "",
            f"ctx_size (--ctx-size) must be 0 (the model's own) or more, not {ctx_size!r}" if ctx_size < 0 else "",
            f"slots (--slots) must be at least 1, not {slots!r}" if slots is not None and slots < 1 else "",
            f"load_timeout (--load-timeout) must be positive, not {load_timeout!r}" if not load_timeout > 0 else "",
        ):
            if problem:  # each would otherwise fail later: a bind error, llama.cpp quitting, requests that never end
                raise ValueError(problem)
        self.catalog = Catalog(catalog)
        self.engine = make_engine(engine, threads=threads, ctx_size=ctx_size, load_timeout=load_timeout)
        self.loading_503 = loading_503
        self.log_requests = log_requests
        self.connection_idle_timeout = connection_idle_timeout
        self.origins: tuple[str, ...] = (
            tuple(origins) if origins is not None else cors.allowed_origins(os.environ.get("DMR_ORIGINS"))
        )
        self._httpd = _HTTPServer(host, port, self)  # bind first: a busy port leaves nothing behind
        self._own_store = store is None
        self.store_dir = Path(store) if store is not None else Path(tempfile.mkdtemp(prefix="dmr-emulator-"))
        try:
            self.store = ModelStore(self.store_dir, self.catalog)
        except BaseException:  # an unreadable store: give back the port and the temporary directory
            self._httpd.server_close()
            if self._own_store:
                shutil.rmtree(self.store_dir, ignore_errors=True)
            raise
        if isinstance(self.engine, LlamaEngine):
            self.engine.log_dir = self.store_dir / "logs"
        self.inference = Inference(self)
        self.scheduler = Scheduler(
            self.engine, slots=slots, idle_timeout=idle_timeout, load_timeout=load_timeout,
            on_started=self.inference.runner_started, on_stopped=self.inference.runner_stopped,
        )  # fmt: skip
        self.responses = ResponsesFrontend(self)
        self.ollama = OllamaFrontend(self)
        self.stopping = threading.Event()
        """Set by :meth:`stop`: open request-log event streams end."""
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def engine_status(self) -> str:
        return self.engine.status()

    def start(self) -> EmulatorServer:
        """Serve in a background thread; returns at once (the socket is already listening)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="dmr-emulator", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or Ctrl-C in the command line)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving, unload every model, and remove the store if the emulator made it."""
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        self.scheduler.close()
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def pull(self, name: str) -> list[pull_stream.PullProgress]:
        """Pull ``name`` from the catalogue in-process (what ``POST /models/create`` does)."""
        tag, description = self.store.check_pull(name)
        return list(self.store.pull(tag, description))

    def resolve_id(self, name: str) -> str:
        """DMR's ``ResolveID``: the ID of the stored model ``name`` names, else ``name`` unchanged."""
        model = self.store.find(name)
        return model.id if model is not None else name

    def acquire(self, model: StoredModel, model_name: str, mode: str, *, wait: bool = True) -> Runner:
        """The scheduler's runner for a stored model (loading it); release it with ``scheduler.release``."""
        return self.scheduler.acquire(
            model_id=model.id,
            model_name=model_name,
            mode=mode,
            model_path=lambda: self.store.blob_path(model),
            alias=model.tags[0] if model.tags else model.id,
            wait=wait,
        )

    def configure(self, backend: str, body: bytes) -> tuple[int, str]:
        """DMR's ``ConfigureRunner`` after the body was read: ``(202, "")``, or the status and message
        of its error (400 invalid request, 500 bad runtime flags, 409 runner active)."""
        try:
            request = engines_api.parse_configure_request(body)
        except ValueError:
            return 400, error_bodies.INVALID_REQUEST
        try:
            mode, config = request.resolve()
        except ValueError as exc:
            return 500, str(exc)
        model = self.store.find(request.model)
        try:
            self.scheduler.configure((backend, model.id if model else request.model, mode), config)
        except RunnerAlreadyActive:
            return 409, engines_api.RUNNER_ALREADY_ACTIVE
        return 202, ""

    def unload(self, request: engines_api.UnloadRequest) -> int:
        """``POST /engines/unload`` once decoded: how many runners were unloaded."""
        if request.all:
            return self.scheduler.unload(None)
        ids = {self.resolve_id(name) for name in request.models}
        return self.scheduler.unload(ids, backend=request.backend)

    def preload_in_background(self, model: StoredModel, model_name: str) -> None:
        """What DMR does after ``_configure``: load the completion runner, in a thread, errors ignored."""

        def preload() -> None:
            try:
                runner = self.acquire(model, model_name, engines_api.COMPLETION_MODE)
            except (LoadError, StillLoading):
                return
            self.scheduler.release(runner)

        threading.Thread(target=preload, name="dmr-emulator-preload", daemon=True).start()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer
    _cors_headers: Headers = ()
    """Added to every answer to the current request (an allowed ``Origin`` on a CORS-wrapped path)."""

    # ------------------------------------------------------------------ plumbing

    @property
    def emulator(self) -> EmulatorServer:
        return self.server.emulator

    def handle_one_request(self) -> None:
        # Not the class attribute ``timeout``: StreamRequestHandler would set it on the socket for the
        # connection's whole life, every write included. This one bounds the wait for the next request
        # and the reading of it (the stdlib closes the connection when it expires); _route lifts it
        # before answering, and it is set again here for the next request on a kept-alive connection.
        self.connection.settimeout(self.emulator.connection_idle_timeout)
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.emulator.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def send_head(self, status: int, headers: Headers) -> None:
        self.log_request(status)  # send_response_only() does not log; --log-requests needs this line
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in [*headers, *self._cors_headers]:
            self.send_header(name, value)
        self.end_headers()
        self._head_sent = True

    def send_body(self, status: int, body: bytes, content_type: str | None, headers: Headers = ()) -> None:
        head = [("Content-Type", content_type)] if content_type else []
        self.send_head(status, [*head, *headers, *self._length(body)])
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _length(self, body: bytes) -> Headers:
        """``Content-Length`` as Go's server sends it: the body's, or for ``HEAD`` the body not sent's
        when it fitted its buffer (``routes.head_content_length``)."""
        length = routes.head_content_length(len(body)) if self.command == "HEAD" else str(len(body))
        return [("Content-Length", length)] if length is not None else []

    def send_plain_error(self, status: int, message: str, headers: Headers = ()) -> None:
        """Go's ``http.Error``: plain text, ``nosniff``, the message and a newline."""
        nosniff = [("X-Content-Type-Options", "nosniff"), *headers]
        self.send_body(status, error_bodies.plain_error_body(message), encoding.TEXT_PLAIN, nosniff)

    def method_not_allowed(self, allowed: str) -> None:
        """Go's ``ServeMux`` for a path registered for other methods: ``405`` and ``Allow``."""
        self.send_plain_error(405, "Method Not Allowed", [("Allow", allowed)])

    def send_json(self, status: int, value: Any) -> None:
        self.send_body(status, encoding.json_line(value), encoding.JSON_CONTENT_TYPE)

    def start_chunks(self, status: int, headers: Headers) -> None:
        self.send_head(status, [*headers, ("Transfer-Encoding", "chunked")])

    def chunk(self, data: bytes) -> None:
        if data and self.command != "HEAD":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        if self.command != "HEAD":
            self.wfile.write(b"0\r\n\r\n")

    def send_answer(self, answer: Answer) -> None:
        """Pass a scheduler answer on as it comes: one body with its length, or a stream chunk by chunk."""
        with answer:
            if answer.length is not None:
                body = answer.read()
                self.send_head(answer.status, [*answer.headers, *self._length(body)])
                if body and self.command != "HEAD":
                    self.wfile.write(body)
                return
            self.start_chunks(answer.status, answer.headers)
            for data in answer:
                self.chunk(data)
            self.end_chunks()

    def client_gone(self) -> bool:
        """Whether the client closed its connection (it sends nothing while it reads a stream)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        return peeked == b""

    def forwarded_headers(self, *replacements: tuple[str, str]) -> list[tuple[str, str]]:
        """The client's headers with some set (DMR's ``r.Clone`` then ``Header().Set``)."""
        return with_headers(list(self.headers.items()), replacements)

    def _read_body(self) -> bytes | None:
        """The request body; ``None`` when it is over the 10 MiB inference limit (read and dropped)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, size = [], 0
            while True:
                length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                part = self.rfile.read(length)
                self.rfile.readline()
                size += len(part)
                if size <= proxying.MAX_INFERENCE_BODY:
                    parts.append(part)
            return b"".join(parts) if size <= proxying.MAX_INFERENCE_BODY else None
        length = int(self.headers.get("Content-Length") or 0)
        if length <= proxying.MAX_INFERENCE_BODY:
            return self.rfile.read(length) if length else b""
        remaining = length
        while remaining > 0:
            dropped = self.rfile.read(min(remaining, 1 << 16))
            if not dropped:
                break
            remaining -= len(dropped)
        return None

    # ------------------------------------------------------------------ routing

    def _handle(self) -> None:
        self._head_sent = False
        self._cors_headers = ()
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # gone, or stalled while sending its body: nobody to answer
        except StreamCut:
            self.close_connection = True  # the client sees the stream cut short, as from DMR
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection silently
            self.close_connection = True  # the request may not have been read whole
            if not self._head_sent:
                self.send_plain_error(500, f"emulator error: {exc}")

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if "//" in path:
            path = re.sub(r"/{2,}", "/", path).rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self._read_body() if self.command in _BODY_METHODS else b""
        self.connection.settimeout(None)  # the request is read: answering (a stream, a pull) has no time limit
        method = self.command
        access = cors.cors_answer(path, method, self.headers.get(cors.ORIGIN_HEADER), self.emulator.origins)
        self._cors_headers = access.headers
        if access.status == 403:
            self.send_plain_error(403, cors.ORIGIN_NOT_ALLOWED)
        elif access.status is not None:  # an allowed preflight: 204 and the CORS headers, nothing else
            self.send_head(access.status, [])
        elif path == routes.ROOT_PATH:
            self.send_body(200, addresses.ROOT_BANNER.encode(), encoding.TEXT_PLAIN)
        elif path == routes.VERSION_PATH:
            self.send_json(200, {"version": VERSION})
        elif path == routes.METRICS_PATH:
            if method == "GET":
                self.send_body(200, proxying.NO_ACTIVE_RUNNERS_BODY, proxying.METRICS_CONTENT_TYPE)
            else:
                self.send_plain_error(405, "Method Not Allowed")
        elif path == routes.MANAGEMENT_MODELS_PATH or path.startswith(routes.MANAGEMENT_MODELS_PATH + "/"):
            self._models(method, path, query, body)
        elif self.emulator.responses.handles(path):
            self.emulator.responses.handle(self, method, path, body)
        elif path.startswith(OLLAMA_PREFIX + "/"):
            self.emulator.ollama.handle(self, method, path, body)
        elif path.startswith(anthropic_front.PREFIX + "/"):
            anthropic_front.handle(self.emulator, self, method, path, body)
        elif path.startswith("/engines/") or path.startswith(routes.ALIAS_PREFIX + "/") or rerank_api.alias_target(path):
            self._engines(method, scheduler_path(path), parts.query, query, body)
        else:
            self.send_plain_error(404, error_bodies.PAGE_NOT_FOUND)

    # ------------------------------------------------------------------ /models

    def _models(self, method: str, path: str, query: dict[str, list[str]], body: bytes | None) -> None:
        store = self.emulator.store
        ref = path[len(routes.MANAGEMENT_MODELS_PATH) + 1 :]
        if method in routes.READ_METHODS and path == routes.MANAGEMENT_MODELS_PATH:
            self.send_json(200, [model.to_json() for model in store.models()])
        elif method == "POST" and path == routes.MODELS_CREATE_PATH:
            self._pull(body)
        elif method == "DELETE" and path == routes.MODELS_PURGE_PATH:
            store.purge()
            self.send_body(200, b"", None)
        elif method in routes.READ_METHODS and ref:
            if "remote" in query:
                self._inspect_remote(ref)
                return
            model = store.find(ref) or store.find_partial(ref)
            if model is None:
                self.send_plain_error(404, error_bodies.MODEL_NOT_FOUND)
            else:
                self.send_json(200, model.info().to_json())
        elif method == "DELETE" and ref:
            force = any(value in _TRUE_VALUES for value in query.get("force", []))
            try:
                actions = store.delete(ref, force=force)
            except DeleteRefused as refused:
                self.send_plain_error(refused.status, refused.message)
                return
            remaining = {model.id for model in store.models()}
            gone = {action["Deleted"] for action in actions if "Deleted" in action} - remaining
            if gone:
                self.emulator.scheduler.unload(gone)
            self.send_json(200, actions)
        else:
            self.send_plain_error(404, error_bodies.NOT_FOUND)

    def _inspect_remote(self, ref: str) -> None:
        try:
            tag, description = self.emulator.store.check_pull(ref)
        except PullRefused:
            self.send_plain_error(
                404,
                f"error while getting remote model: failed to pull model {encoding.go_quote(ref)}: "
                "MANIFEST_UNKNOWN - Model not found",
            )
            return
        self.send_json(200, description.info(()).to_json())

    def _pull(self, body: bytes | None) -> None:
        try:
            request = json.loads(body or b"")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self.send_plain_error(400, error_bodies.INVALID_REQUEST_BODY)
            return
        reference = request.get("from")
        try:
            tag, description = self.emulator.store.check_pull(reference if isinstance(reference, str) else "")
        except PullRefused as refused:
            self.send_plain_error(refused.status, refused.message)
            return
        accept = self.headers.get("Accept")
        raw = pull_stream.pull_wants_raw_json(accept)
        lines = self.emulator.store.pull(tag, description)
        try:
            try:
                first = next(lines)  # waits for a pull slot: until then nothing is sent, as from DMR
            except OSError as exc:
                self.send_plain_error(500, f"error while pulling model: {exc}")
                return
            self.start_chunks(
                200,
                [
                    ("Content-Type", pull_stream.pull_content_type(accept)),
                    ("Cache-Control", "no-cache"),
                    ("Connection", "keep-alive"),
                ],
            )
            try:
                for progress in itertools.chain([first], lines):
                    self.chunk(pull_stream.encode_pull_line(progress, raw_json=raw))
            except OSError as exc:
                if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    raise
                error = pull_stream.PullProgress(type="error", message=f"Error: {exc}")
                self.chunk(pull_stream.encode_pull_line(error, raw_json=raw))
                self.chunk(f"error while pulling model: {exc}\n".encode())
            self.end_chunks()
        finally:
            lines.close()  # a client gone mid-pull frees its slot now, not when the generator is collected

    # ------------------------------------------------------------------ /engines

    def _engines(self, method: str, path: str, query: str, params: dict[str, list[str]], body: bytes | None) -> None:
        emulator = self.emulator
        if path == routes.ENGINES_STATUS_PATH and method in routes.READ_METHODS:
            statuses = {**engines_api.OTHER_BACKENDS_STATUS, engines_api.LLAMACPP_BACKEND: emulator.engine_status}
            self.send_body(200, engines_api.engines_status_body(statuses), encoding.JSON_CONTENT_TYPE)
            return
        if path == routes.ENGINES_PS_PATH and method in routes.READ_METHODS:
            self.send_json(200, emulator.scheduler.ps())
            return
        if path == routes.ENGINES_DF_PATH and method in routes.READ_METHODS:
            self.send_json(200, {"models_disk_usage": emulator.store.disk_usage(), "default_backend_disk_usage": 0})
            return
        if path == routes.ENGINES_UNLOAD_PATH and method == "POST":
            self._unload(body)
            return
        if path == routes.ENGINES_CONFIGURE_PATH and method in routes.READ_METHODS:
            self._configurations(params.get("model", [""])[0])
            return
        if path == request_log.REQUESTS_PATH and method in routes.READ_METHODS:
            request_log_route.serve(emulator, self, params)
            return
        is_configure, backend = routes.match_configure_path(path)
        if is_configure and method == "POST":
            self._configure(backend, body)
            return
        route = routes.match_inference_path(path)
        if rerank_api.match_rerank_path(path) is not None and method == "POST":
            self.send_answer(emulator.inference.serve(path, body, self.forwarded_headers(), query=query))
        elif route is None:
            self.send_plain_error(404, error_bodies.NOT_FOUND)
        elif route.endpoint == routes.MODELS or route.endpoint.startswith(routes.MODELS + "/"):
            if method in routes.READ_METHODS:
                self._openai_models(route.endpoint[len(routes.MODELS) + 1 :])
            else:
                self.send_plain_error(404, error_bodies.NOT_FOUND)
        elif method == "POST" and route.endpoint in V1_ENDPOINTS:
            self.send_answer(emulator.inference.serve(path, body, self.forwarded_headers(), query=query))
        else:
            self.send_plain_error(404, error_bodies.NOT_FOUND)

    def _unload(self, body: bytes | None) -> None:
        if body is None:
            self.send_plain_error(400, error_bodies.REQUEST_TOO_LARGE)
            return
        try:
            request = engines_api.parse_unload_request(body)
        except ValueError:
            self.send_plain_error(400, error_bodies.INVALID_REQUEST)
            return
        self.send_json(200, {"unloaded_runners": self.emulator.unload(request)})

    def _configure(self, backend: str | None, body: bytes | None) -> None:
        """``POST /engines[/{backend}]/_configure``: DMR's checks in its order, ``202``, then a preload.

        An unknown model is accepted (DMR stores its settings under the name as given, and its
        background preload fails quietly); ``GET /engines/_configure`` does not list it.
        """
        backend = backend or engines_api.LLAMACPP_BACKEND
        if backend not in engines_api.KNOWN_BACKENDS:
            self.send_plain_error(404, error_bodies.BACKEND_NOT_FOUND)
            return
        if body is None:
            self.send_plain_error(400, error_bodies.REQUEST_TOO_LARGE)
            return
        status, message = self.emulator.configure(backend, body)
        if status != 202:
            self.send_plain_error(status, message)
            return
        self.send_body(202, b"", None)
        name = engines_api.parse_configure_request(body).model
        model = self.emulator.store.find(name)
        if model is not None and backend == engines_api.LLAMACPP_BACKEND:
            self.emulator.preload_in_background(model, name)

    def _configurations(self, wanted: str) -> None:
        """``GET /engines/_configure[?model=]``: settings of stored models only, ``Model`` their first tag."""
        emulator = self.emulator
        wanted_id = emulator.resolve_id(wanted) if wanted else None
        entries = []
        for (backend, model_id, mode), config in emulator.scheduler.configurations():
            model = emulator.store.find(model_id)
            if model is None or (wanted_id is not None and model_id != wanted_id):
                continue
            first_tag = model.tags[0] if model.tags else ""
            entries.append(engines_api.configure_entry(backend=backend, model=first_tag, model_id=model_id, mode=mode, config=config))
        self.send_json(200, entries)

    def _openai_models(self, name: str) -> None:
        store = self.emulator.store
        if not name:
            self.send_json(200, model_info.openai_model_list(store.models()))
            return
        model = store.find(name)
        if model is None:
            self.send_plain_error(404, error_bodies.model_not_found_message(name))
        else:
            self.send_json(200, model.info().to_openai())
