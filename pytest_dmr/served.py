"""``LoopbackServer``: an httpx2 transport (the mock, a cassette's replay or recording) served over
HTTP on 127.0.0.1, for code that builds its own client from a URL (``OPENAI_BASE_URL``,
``OLLAMA_HOST``, ``MODEL_RUNNER_URL``) and so cannot be handed a transport.

Each request is passed to :attr:`LoopbackServer.transport` as it came (method, path, query,
headers, body); the answer goes back with its status and headers, a streamed one piece by piece
(chunked encoding, each piece flushed as the transport yields it), so server-sent events and
NDJSON keep their boundaries. A connection the transport drops (the mock's faults) is dropped; a
transport error (a request a cassette lacks) is a 500 naming it. The transport can be swapped
between tests (``server.transport = mock``): the plugin keeps one server per process. No pytest here.

>>> with LoopbackServer(MockModelRunner()) as server:
...     openai.OpenAI(base_url=server.url + "/engines/v1", api_key="unused")
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx2

from pytest_dmr import errors
from pytest_dmr.protocol import addresses

HOP_BY_HOP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade",
                        "proxy-connection"})
NO_TRANSPORT = "no test is using pytest-dmr's served runner now"


class LoopbackServer:
    """Serves ``transport`` (an httpx2 ``BaseTransport``; ``None``: every request gets a 503) on
    ``host``:``port`` (port 0: a free one) from a background thread, once :meth:`start` is called.

    ``upstream`` is the root URL the requests are addressed to when passed on: the live runner's
    for a transport that sends them there (a recording one); any for the mock or a replay."""

    def __init__(self, transport: httpx2.BaseTransport | None = None, *, upstream: str = addresses.MOCK_BASE_URL,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.transport = transport
        self.upstream = upstream
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the root, as DMR's is."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LoopbackServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="pytest-dmr-loopback", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
        while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def _plain(self, status: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            body = _read_body(self)
            transport = server.transport
            if transport is None:
                self._plain(503, NO_TRANSPORT)
                return
            headers = [(name, value) for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP]
            request = httpx2.Request(self.command, server.upstream.rstrip("/") + self.path, headers=headers, content=body)
            try:
                response = transport.handle_request(request)
            except httpx2.TransportError:  # a dropped connection: drop this one too
                self.close_connection = True
                return
            except errors.DMRError as exc:  # a request the cassette lacks: the test reports it too
                self._plain(500, str(exc))
                return
            try:
                self._send(response)
            except (httpx2.TransportError, OSError):  # cut mid-answer (a fault), or the client went away
                self.close_connection = True
            finally:
                response.close()

        def _send(self, response: httpx2.Response) -> None:
            self.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            if "content-length" in response.headers or self.command == "HEAD":
                content = b"".join(response.iter_raw())
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in response.iter_raw():
                if piece:
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Handler
