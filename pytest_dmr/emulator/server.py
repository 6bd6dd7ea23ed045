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
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from pytest_dmr.protocol import addresses, cors, encoding, engines_api, error_bodies, model_info, openai_api, proxying, pull_stream, routes
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
from pytest_dmr.emulator.store import DeleteRefused, ModelStore, PullRefused, StoredModel

DEFAULT_CONNECTION_IDLE_TIMEOUT = 60.0
"""Seconds a client connection may wait between requests before the server closes it."""
CRASH_EXIT_WAIT = 2.0
"""How long a request whose runner connection dropped waits for the runner's process to exit."""

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
        threads: int = 2,
        ctx_size: int = 2048,
        slots: int | None = None,
        log_requests: bool = False,
        connection_idle_timeout: float | None = DEFAULT_CONNECTION_IDLE_TIMEOUT,
        origins: Sequence[str] | None = None,
    ) -> None:
        if connection_idle_timeout is not None and connection_idle_timeout <= 0:
            raise ValueError(f"connection_idle_timeout must be positive or None (never), not {connection_idle_timeout!r}")
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
        self.scheduler = Scheduler(self.engine, slots=slots, idle_timeout=idle_timeout, load_timeout=load_timeout)
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

    def _send_head(self, status: int, headers: Headers) -> None:
        self.log_request(status)  # send_response_only() does not log; --log-requests needs this line
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in [*headers, *self._cors_headers]:
            self.send_header(name, value)
        self.end_headers()
        self._head_sent = True

    def _send(self, status: int, body: bytes, content_type: str | None, headers: Headers = ()) -> None:
        head = [("Content-Type", content_type)] if content_type else []
        self._send_head(status, [*head, *headers, ("Content-Length", str(len(body)))])
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        """Go's ``http.Error``: plain text, ``nosniff``, the message and a newline."""
        self._send(status, error_bodies.plain_error_body(message), encoding.TEXT_PLAIN, [("X-Content-Type-Options", "nosniff")])

    def _json(self, status: int, value: Any) -> None:
        self._send(status, encoding.json_line(value), encoding.JSON_CONTENT_TYPE)

    def _start_chunks(self, status: int, headers: Headers) -> None:
        self._send_head(status, [*headers, ("Transfer-Encoding", "chunked")])

    def _chunk(self, data: bytes) -> None:
        if data and self.command != "HEAD":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self) -> None:
        if self.command != "HEAD":
            self.wfile.write(b"0\r\n\r\n")

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
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection silently
            self.close_connection = True  # the request may not have been read whole
            if not self._head_sent:
                self._error(500, f"emulator error: {exc}")

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
            self._error(403, cors.ORIGIN_NOT_ALLOWED)
        elif access.status is not None:  # an allowed preflight: 204 and the CORS headers, nothing else
            self._send_head(access.status, [])
        elif path == routes.ROOT_PATH:
            self._send(200, addresses.ROOT_BANNER.encode(), encoding.TEXT_PLAIN)
        elif path == routes.VERSION_PATH:
            self._json(200, {"version": VERSION})
        elif path == routes.METRICS_PATH:
            if method == "GET":
                self._send(200, proxying.NO_ACTIVE_RUNNERS_BODY, proxying.METRICS_CONTENT_TYPE)
            else:
                self._error(405, "Method Not Allowed")
        elif path == routes.MANAGEMENT_MODELS_PATH or path.startswith(routes.MANAGEMENT_MODELS_PATH + "/"):
            self._models(method, path, query, body)
        elif path.startswith("/engines/") or path.startswith(routes.ALIAS_PREFIX + "/"):
            self._engines(method, path, parts.query, query, body)
        else:
            self._error(404, error_bodies.PAGE_NOT_FOUND)

    # ------------------------------------------------------------------ /models

    def _models(self, method: str, path: str, query: dict[str, list[str]], body: bytes | None) -> None:
        store = self.emulator.store
        ref = path[len(routes.MANAGEMENT_MODELS_PATH) + 1 :]
        if method == "GET" and path == routes.MANAGEMENT_MODELS_PATH:
            self._json(200, [model.to_json() for model in store.models()])
        elif method == "POST" and path == routes.MODELS_CREATE_PATH:
            self._pull(body)
        elif method == "DELETE" and path == routes.MODELS_PURGE_PATH:
            store.purge()
            self._send(200, b"", None)
        elif method == "GET" and ref:
            if "remote" in query:
                self._inspect_remote(ref)
                return
            model = store.find(ref) or store.find_partial(ref)
            if model is None:
                self._error(404, error_bodies.MODEL_NOT_FOUND)
            else:
                self._json(200, model.info().to_json())
        elif method == "DELETE" and ref:
            force = any(value in _TRUE_VALUES for value in query.get("force", []))
            try:
                actions = store.delete(ref, force=force)
            except DeleteRefused as refused:
                self._error(refused.status, refused.message)
                return
            remaining = {model.id for model in store.models()}
            gone = {action["Deleted"] for action in actions if "Deleted" in action} - remaining
            if gone:
                self.emulator.scheduler.unload(gone)
            self._json(200, actions)
        else:
            self._error(404, error_bodies.NOT_FOUND)

    def _inspect_remote(self, ref: str) -> None:
        try:
            tag, description = self.emulator.store.check_pull(ref)
        except PullRefused:
            self._error(
                404,
                f"error while getting remote model: failed to pull model {encoding.go_quote(ref)}: "
                "MANIFEST_UNKNOWN - Model not found",
            )
            return
        self._json(200, description.info(()).to_json())

    def _pull(self, body: bytes | None) -> None:
        try:
            request = json.loads(body or b"")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._error(400, error_bodies.INVALID_REQUEST_BODY)
            return
        reference = request.get("from")
        try:
            tag, description = self.emulator.store.check_pull(reference if isinstance(reference, str) else "")
        except PullRefused as refused:
            self._error(refused.status, refused.message)
            return
        accept = self.headers.get("Accept")
        raw = pull_stream.pull_wants_raw_json(accept)
        lines = self.emulator.store.pull(tag, description)
        try:
            try:
                first = next(lines)  # waits for a pull slot: until then nothing is sent, as from DMR
            except OSError as exc:
                self._error(500, f"error while pulling model: {exc}")
                return
            self._start_chunks(
                200,
                [
                    ("Content-Type", pull_stream.pull_content_type(accept)),
                    ("Cache-Control", "no-cache"),
                    ("Connection", "keep-alive"),
                ],
            )
            try:
                for progress in itertools.chain([first], lines):
                    self._chunk(pull_stream.encode_pull_line(progress, raw_json=raw))
            except OSError as exc:
                if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    raise
                error = pull_stream.PullProgress(type="error", message=f"Error: {exc}")
                self._chunk(pull_stream.encode_pull_line(error, raw_json=raw))
                self._chunk(f"error while pulling model: {exc}\n".encode())
            self._end_chunks()
        finally:
            lines.close()  # a client gone mid-pull frees its slot now, not when the generator is collected

    # ------------------------------------------------------------------ /engines

    def _engines(self, method: str, path: str, query: str, params: dict[str, list[str]], body: bytes | None) -> None:
        emulator = self.emulator
        if path == routes.ENGINES_STATUS_PATH and method == "GET":
            statuses = {**engines_api.OTHER_BACKENDS_STATUS, engines_api.LLAMACPP_BACKEND: emulator.engine_status}
            self._send(200, engines_api.engines_status_body(statuses), encoding.JSON_CONTENT_TYPE)
            return
        if path == routes.ENGINES_PS_PATH and method == "GET":
            self._json(200, emulator.scheduler.ps())
            return
        if path == routes.ENGINES_DF_PATH and method == "GET":
            self._json(200, {"models_disk_usage": emulator.store.disk_usage(), "default_backend_disk_usage": 0})
            return
        if path == routes.ENGINES_UNLOAD_PATH and method == "POST":
            self._unload(body)
            return
        if path == routes.ENGINES_CONFIGURE_PATH and method in ("GET", "HEAD"):
            self._configurations(params.get("model", [""])[0])
            return
        is_configure, backend = routes.match_configure_path(path)
        if is_configure and method == "POST":
            self._configure(backend, body)
            return
        route = routes.match_inference_path(path)
        if route is None:
            self._error(404, error_bodies.NOT_FOUND)
        elif route.endpoint == routes.MODELS or route.endpoint.startswith(routes.MODELS + "/"):
            if method == "GET":
                self._openai_models(route.endpoint[len(routes.MODELS) + 1 :])
            else:
                self._error(404, error_bodies.NOT_FOUND)
        elif method == "POST" and route.endpoint in routes.INFERENCE_ENDPOINTS:
            if route.backend not in (None, engines_api.LLAMACPP_BACKEND):
                self._error(404, error_bodies.BACKEND_NOT_FOUND)
            else:
                self._inference(route.endpoint, path + (f"?{query}" if query else ""), body)
        else:
            self._error(404, error_bodies.NOT_FOUND)

    def _unload(self, body: bytes | None) -> None:
        if body is None:
            self._error(400, error_bodies.REQUEST_TOO_LARGE)
            return
        try:
            request = engines_api.parse_unload_request(body)
        except ValueError:
            self._error(400, error_bodies.INVALID_REQUEST)
            return
        scheduler = self.emulator.scheduler
        if request.all:
            count = scheduler.unload(None)
        else:
            ids = {self.emulator.resolve_id(name) for name in request.models}
            count = scheduler.unload(ids, backend=request.backend)
        self._json(200, {"unloaded_runners": count})

    def _configure(self, backend: str | None, body: bytes | None) -> None:
        """``POST /engines[/{backend}]/_configure``: DMR's checks in its order, ``202``, then a preload.

        An unknown model is accepted (DMR stores its settings under the name as given, and its
        background preload fails quietly); ``GET /engines/_configure`` does not list it.
        """
        backend = backend or engines_api.LLAMACPP_BACKEND
        if backend not in engines_api.KNOWN_BACKENDS:
            self._error(404, error_bodies.BACKEND_NOT_FOUND)
            return
        if body is None:
            self._error(400, error_bodies.REQUEST_TOO_LARGE)
            return
        try:
            request = engines_api.parse_configure_request(body)
        except ValueError:
            self._error(400, error_bodies.INVALID_REQUEST)
            return
        try:
            mode, config = request.resolve()
        except ValueError as exc:
            self._error(500, str(exc))
            return
        emulator = self.emulator
        model = emulator.store.find(request.model)
        try:
            emulator.scheduler.configure((backend, model.id if model else request.model, mode), config)
        except RunnerAlreadyActive:
            self._error(409, engines_api.RUNNER_ALREADY_ACTIVE)
            return
        self._send(202, b"", None)
        if model is not None and backend == engines_api.LLAMACPP_BACKEND:
            emulator.preload_in_background(model, request.model)

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
        self._json(200, entries)

    def _openai_models(self, name: str) -> None:
        store = self.emulator.store
        if not name:
            self._json(200, model_info.openai_model_list(store.models()))
            return
        model = store.find(name)
        if model is None:
            self._error(404, error_bodies.model_not_found_message(name))
        else:
            self._json(200, model.info().to_openai())

    def _inference(self, endpoint: str, path: str, body: bytes | None) -> None:
        if body is None:
            self._error(400, error_bodies.REQUEST_TOO_LARGE)
            return
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        model_name = request.get("model") if isinstance(request, dict) else None
        if not isinstance(request, dict) or (model_name is not None and not isinstance(model_name, str)):
            self._error(400, error_bodies.INVALID_REQUEST)
            return
        if not model_name:
            self._error(400, error_bodies.MODEL_REQUIRED)
            return
        emulator = self.emulator
        model = emulator.store.find(model_name)
        if model is None:
            self._error(404, error_bodies.model_not_found_message(model_name))
            return
        preload = self.headers.get(routes.PRELOAD_HEADER) == "true"
        try:
            runner = emulator.acquire(
                model, model_name, engines_api.mode_for_endpoint(endpoint), wait=preload or not emulator.loading_503
            )
        except StillLoading:
            loading = encoding.dumps(openai_api.LOADING_MODEL_BODY).encode()
            self._send(503, loading, openai_api.LLAMACPP_JSON_CONTENT_TYPE)
            return
        except LoadError as exc:
            self._error(500, error_bodies.unable_to_load_message(str(exc)))
            return
        try:
            if preload:
                self._send(200, b"", None)
            else:
                self._proxy(runner, proxying.upstream_path(path), body)
        finally:
            emulator.scheduler.release(runner)

    def _proxy(self, runner: Runner, upstream_path: str, body: bytes) -> None:
        """Forward the request; pass status, headers and body back, flushing every chunk.

        When the runner's connection fails, DMR's answer depends on its process: exited, a ``500``
        with the backend error as JSON (and the runner is evicted, so the next request reloads the
        model); still running, a ``502`` with no body. Once the head is sent, the stream is cut.
        """
        client = runner.client
        headers = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in proxying.HOP_BY_HOP_HEADERS and name.lower() not in ("host", "content-length")
        ]
        request = client.build_request("POST", upstream_path, headers=headers, content=body)
        try:
            response = client.send(request, stream=True)
        except httpx2.HTTPError:
            self._upstream_failed(runner)
            return
        try:
            passed = _response_headers(response.headers.multi_items())
            if "content-length" in response.headers:
                data = response.read()
                self._send_head(response.status_code, [*passed, ("Content-Length", str(len(data)))])
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            self._start_chunks(response.status_code, passed)
            try:
                for chunk in response.iter_raw():
                    self._chunk(chunk)
            except httpx2.HTTPError:
                self._upstream_failed(runner)
                return
            self._end_chunks()
        except httpx2.HTTPError:
            self._upstream_failed(runner)
        finally:
            response.close()

    def _upstream_failed(self, runner: Runner) -> None:
        error = self.emulator.scheduler.crashed(runner, wait=CRASH_EXIT_WAIT)
        if self._head_sent:
            self.close_connection = True  # the client sees the stream cut short, as from DMR
        elif error is not None:
            # DMR sets application/json only after WriteHeader, so Go sniffs the body: text/plain.
            self._send(500, proxying.backend_crash_body(error), encoding.TEXT_PLAIN)
        else:
            self._send(502, b"", None)


def _response_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Upstream headers minus hop-by-hop ones, the length and CORS (DMR's CORS adds its own)."""
    dropped = proxying.HOP_BY_HOP_HEADERS | {"content-length", "access-control-allow-origin", "date"}
    return [(name, value) for name, value in items if name.lower() not in dropped]
