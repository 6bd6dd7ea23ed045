"""The fault matrix of issue 12 for the client and the adapter, against small hostile servers on
127.0.0.1 (threaded stdlib sockets started here).

Each case asserts the exception type, that the message names the runner and the model, that the
call ends (bounds are generous: they catch hangs, not slowness), and that nothing leaks: once the
client or adapter is closed, the server sees every connection closed (and the suite runs with
``-W error``, so an unclosed socket's ``ResourceWarning`` fails it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_dmr import _http, errors
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.client import AsyncModelRunnerClient, ModelRunnerClient
from pytest_dmr.protocol import encoding, openai_api, sse

MODEL = "ai/smollm2"
HANG = 60.0
"""Seconds after which a call counts as hung: far above any bound under test (they are 1 s or less)."""

Handler = Callable[["Connection"], None]


class Connection:
    """One accepted connection: the request read, helpers to answer (or misbehave)."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock, self.stop = sock, stop
        self.method, self.path, self.body = "", "", b""

    def read_request(self) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.path = lines[0].split(" ")[:2]
        length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.body = rest
        return True

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def answer(self, status: int, body: bytes, content_type: str = encoding.JSON_CONTENT_TYPE) -> None:
        self.send(f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)

    def start_stream(self, content_type: str = encoding.EVENT_STREAM) -> None:
        self.send(f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n".encode())

    def reset(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class HostileServer:
    """Accepts connections on 127.0.0.1 and lets ``handler`` answer each request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # accept() wakes up to see the listener closed
        self.listening = True
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.open_connections = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while self.listening:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self.open_connections += 1
            self._sockets.append(sock)
        connection = Connection(sock, self.stop)
        try:
            while not self.stop.is_set() and connection.read_request():
                self.requests.append((connection.method, connection.path))
                self.handler(connection)
                if sock.fileno() == -1:
                    break
        except OSError:
            pass
        finally:
            with self._lock:
                self.open_connections -= 1
            sock.close()

    def close_listener(self) -> None:
        """The runner goes away: new connections are refused."""
        self.listening = False
        self._accepter.join(HANG)
        self.listener.close()

    def die(self) -> None:
        """The runner crashes: its connections are cut and new ones refused."""
        self.close_listener()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def all_closed(self) -> bool:
        """Whether every connection was closed by the client (waits up to :data:`HANG`)."""
        end = time.monotonic() + HANG
        while time.monotonic() < end:
            with self._lock:
                if self.open_connections == 0:
                    return True
            time.sleep(0.01)
        return False

    def shutdown(self) -> None:
        self.stop.set()
        self.close_listener()
        for thread in self._threads:
            thread.join(HANG)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], HostileServer]]:
    servers: list[HostileServer] = []

    def start(handler: Handler) -> HostileServer:
        server = HostileServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


async def _no_sleep(seconds: float) -> None:
    return None


def run_adapter(server: HostileServer, call: Callable[[DockerModelRunnerAdapter], Any], **options: Any) -> Any:
    """``call(adapter)`` on an adapter of ``server``, closed afterwards; its result or its exception."""
    options.setdefault("sleep", _no_sleep)

    async def main() -> Any:
        async with DockerModelRunnerAdapter(server.url, MODEL, **options) as adapter:
            return await call(adapter)

    started = time.monotonic()
    try:
        return asyncio.run(main())
    finally:
        assert time.monotonic() - started < HANG
        assert server.all_closed()


def adapter_error(server: HostileServer, call: Callable[[DockerModelRunnerAdapter], Any], expected: type[errors.DMRError],
                  **options: Any) -> errors.DMRError:
    with pytest.raises(expected) as caught:
        run_adapter(server, call, **options)
    assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value), caught.value
    return caught.value


async def collect(adapter: DockerModelRunnerAdapter) -> list[str]:
    return [piece async for piece in adapter.stream_generate("hi")]


def completion(content: str = "Hello") -> bytes:
    return encoding.dumps(openai_api.chat_completion(id="c", created=1, model=MODEL, content=content,
                                                     finish_reason="stop", prompt_tokens=1, completion_tokens=1)).encode()


def chunk(text: str) -> bytes:
    return sse.encode_sse(openai_api.chat_chunk(id="c", created=1, model=MODEL, delta={"content": text}))


# -------------------------------------------------------------------------------------------
# What the first wave handled: error statuses, cut streams, garbage, resets
# -------------------------------------------------------------------------------------------


def test_a_missing_model_is_model_not_found(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(404, b"error while getting model: get model '\"ai/smollm2\"': model not found\n",
                                      encoding.TEXT_PLAIN))
    adapter_error(server, lambda a: a.generate("hi"), errors.ModelNotFoundError)
    with ModelRunnerClient(server.url) as client, pytest.raises(errors.ModelNotFoundError) as caught:
        client.inspect(MODEL)
    assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value)


def test_a_model_still_loading_after_the_retries(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(503, encoding.dumps(openai_api.LOADING_MODEL_BODY).encode()))
    adapter_error(server, lambda a: a.generate("hi"), errors.ModelLoadingError, max_retries=2)
    assert len(server.requests) == 3


def test_a_stream_cut_midway(serve: Callable[[Handler], HostileServer]) -> None:
    def cut(c: Connection) -> None:
        c.start_stream()
        c.send(chunk("Hel") + chunk("lo"))
        c.reset()

    error = adapter_error(serve(cut), collect, errors.StreamInterruptedError)
    assert isinstance(error, errors.StreamInterruptedError) and error.received == "Hello"


@pytest.mark.parametrize("garbage", [b"data: {not json\n\n", b"data: [1, 2]\n\n", b'data: {"choices": 5}\n\n',
                                     b'data: {"choices": [{"delta": {"content": 7}}]}\n\n'])
def test_garbage_in_a_stream(serve: Callable[[Handler], HostileServer], garbage: bytes) -> None:
    def handler(c: Connection) -> None:
        c.start_stream()
        c.send(chunk("ok") + garbage + sse.SSE_DONE_EVENT)
        c.sock.close()

    error = adapter_error(serve(handler), collect, errors.StreamInterruptedError)
    assert "malformed chunk" in error.message


def test_a_reset_connection(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.reset())
    adapter_error(server, lambda a: a.generate("hi"), errors.RunnerUnavailableError, max_retries=1)
    with ModelRunnerClient(server.url) as client, pytest.raises(errors.RunnerUnavailableError) as caught:
        client.inspect(MODEL)
    assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value)


def test_an_answer_that_is_not_json(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(200, b"<html>hello</html>", "text/html"))
    error = adapter_error(server, lambda a: a.generate("hi"), errors.MalformedResponseError)
    assert "<html>hello</html>" in error.message


# -------------------------------------------------------------------------------------------
# Wrong-shape JSON: only DMRError, naming runner and model
# -------------------------------------------------------------------------------------------

WRONG_SHAPES = [
    ("generate", {"choices": [{"message": "x"}]}),
    ("generate", {"choices": [{"message": {"content": "hi", "tool_calls": 5}}]}),
    ("generate", {"choices": [{"message": {"content": "hi"}}], "usage": [1]}),
    ("generate", [[[[]]]]),
    ("complete", {"choices": [{"text": {"a": 1}}]}),
    ("embed", {"data": [{"embedding": "x", "index": 0}]}),
    ("embed", {"data": [{"embedding": [1e400], "index": 0}]}),
]
CALLS: dict[str, Callable[[DockerModelRunnerAdapter], Any]] = {
    "generate": lambda a: a.generate("hi"), "complete": lambda a: a.complete("hi"), "embed": lambda a: a.embed("hi"),
}


@pytest.mark.parametrize(("call", "body"), WRONG_SHAPES)
def test_json_of_the_wrong_shape(serve: Callable[[Handler], HostileServer], call: str, body: Any) -> None:
    server = serve(lambda c: c.answer(200, json.dumps(body).encode()))
    adapter_error(server, CALLS[call], errors.MalformedResponseError)


def test_json_nested_deeper_than_the_stack(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(200, b"[" * 100_000 + b"]" * 100_000))
    adapter_error(server, lambda a: a.generate("hi"), errors.MalformedResponseError)
    with ModelRunnerClient(server.url) as client, pytest.raises(errors.MalformedResponseError) as caught:
        client.inspect(MODEL)
    assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value)


@pytest.mark.parametrize(("path", "body", "call"), [
    ("/models/ai/smollm2", {"id": 5}, lambda c: c.inspect(MODEL)),
    ("/models/ai/smollm2", [{"Deleted": {"deep": [1]}}], lambda c: c.delete(MODEL)),
])
def test_client_wrong_shapes_name_runner_and_model(serve: Callable[[Handler], HostileServer], path: str, body: Any,
                                                    call: Callable[[ModelRunnerClient], Any]) -> None:
    server = serve(lambda c: c.answer(200, json.dumps(body).encode()))
    with ModelRunnerClient(server.url) as client, pytest.raises(errors.MalformedResponseError) as caught:
        call(client)
    assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value)
    assert server.requests[0][1] == path
    assert server.all_closed()


# -------------------------------------------------------------------------------------------
# Bounded everything: keep-alive comments, endless lines, a dead runner
# -------------------------------------------------------------------------------------------


def keep_alive_forever(c: Connection) -> None:
    c.start_stream()
    while not c.stop.is_set() and c.send(b": keep-alive\n\n"):
        time.sleep(0.02)


def test_keep_alive_comments_do_not_extend_a_stream(serve: Callable[[Handler], HostileServer]) -> None:
    error = adapter_error(serve(keep_alive_forever), collect, errors.RunnerTimeoutError, timeout=0.5)
    assert error.message == "the runner sent no part of the streamed answer within 0.5 s"


def test_a_trickled_body_does_not_extend_a_plain_call(serve: Callable[[Handler], HostileServer]) -> None:
    def trickle(c: Connection) -> None:
        c.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n")
        while not c.stop.is_set() and c.send(b" "):
            time.sleep(0.02)

    server = serve(trickle)
    error = adapter_error(server, lambda a: a.generate("hi"), errors.RunnerTimeoutError, timeout=0.5)
    assert "within 0.5 s" in error.message
    for client_class in (ModelRunnerClient, AsyncModelRunnerClient):
        started = time.monotonic()
        with pytest.raises(errors.RunnerTimeoutError) as caught:
            if client_class is ModelRunnerClient:
                with ModelRunnerClient(server.url, timeout=0.5) as client:
                    client.inspect(MODEL)
            else:
                async def inspect() -> None:
                    async with AsyncModelRunnerClient(server.url, timeout=0.5) as client:
                        await client.inspect(MODEL)
                asyncio.run(inspect())
        assert time.monotonic() - started < HANG
        assert f"runner {server.url}" in str(caught.value) and f"model {MODEL}" in str(caught.value)
    assert server.all_closed()


def test_a_keep_alive_pull_ends_at_its_deadline(serve: Callable[[Handler], HostileServer]) -> None:
    def pulling(c: Connection) -> None:
        c.start_stream(encoding.JSON_CONTENT_TYPE)
        line = json.dumps({"type": "progress", "message": "Downloading", "total": 10}).encode() + b"\n"
        while not c.stop.is_set() and c.send(line):
            time.sleep(0.02)

    server = serve(pulling)
    with ModelRunnerClient(server.url) as client, pytest.raises(errors.RunnerTimeoutError) as caught:
        client.pull(MODEL, deadline=0.5)
    assert "the pull did not finish within 0.5 s" in caught.value.message
    assert f"runner {server.url}" in str(caught.value) and "model ai/smollm2" in str(caught.value)
    assert server.all_closed()


def endless_line(prefix: bytes, content_type: str) -> Handler:
    def handler(c: Connection) -> None:
        c.start_stream(content_type)
        c.send(prefix)
        while not c.stop.is_set() and c.send(b"x" * 65536):
            pass

    return handler


def test_an_endless_sse_line_is_cut_at_the_bound(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(endless_line(b"data: ", encoding.EVENT_STREAM))
    error = adapter_error(server, collect, errors.ResponseTooLargeError, max_line_bytes=1 << 20)
    assert f"a line longer than {1 << 20} bytes" in error.message


def test_an_endless_pull_line_is_cut_at_the_bound(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(endless_line(b'{"type": "progress", "message": "', encoding.JSON_CONTENT_TYPE))
    with ModelRunnerClient(server.url, max_line_bytes=1 << 20) as client, \
            pytest.raises(errors.ResponseTooLargeError) as caught:
        client.pull(MODEL)
    assert f"runner {server.url}" in str(caught.value) and "model ai/smollm2" in str(caught.value)
    assert server.all_closed()


def test_a_runner_that_dies_mid_session_fails_the_rest_fast(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(200, completion()))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def session() -> list[BaseException]:
        async with DockerModelRunnerAdapter(server.url, MODEL, sleep=sleep, max_retries=4) as adapter:
            assert await adapter.generate("hi") == "Hello"
            server.die()
            await asyncio.sleep(0)
            failures = []
            for _ in range(5):
                with pytest.raises(errors.RunnerUnavailableError) as caught:
                    await adapter.generate("hi")
                failures.append(caught.value)
            return failures

    failures = asyncio.run(session())
    # The first call after the death tried twice more (3 failures open the breaker), the others not at all.
    assert len(waits) <= 2
    for failure in failures:
        assert "the runner went away at " in str(failure) and f"runner {server.url}" in str(failure)
        assert f"model {MODEL}" in str(failure)
    assert "Restart the runner" in str(failures[-1])
    # Shared with a client on the same URL, which fails at once too (and is_running says no).
    with ModelRunnerClient(server.url) as client:
        with pytest.raises(errors.RunnerUnavailableError, match="went away"):
            client.inspect(MODEL)
        assert client.is_running() is False
    assert server.all_closed()


def test_the_breaker_half_opens_after_its_cool_down() -> None:
    now = [0.0]
    breaker = _http.Breaker("http://127.0.0.1:9", threshold=2, cooldown=10.0, clock=lambda: now[0])
    refused = _http.stack_errors("ConnectError")[0]("refused")
    breaker.failed(refused)
    breaker.failed(refused)
    breaker.check(MODEL)  # never answered: discovery's business, not the breaker's
    breaker.succeeded()
    breaker.failed(refused)
    breaker.check(MODEL)
    breaker.failed(refused)
    with pytest.raises(errors.RunnerUnavailableError, match="calls to it fail at once for 10 s"):
        breaker.check(MODEL)
    now[0] = 10.5
    breaker.check(MODEL)  # half-open: a call may try
    breaker.failed(refused)
    with pytest.raises(errors.RunnerUnavailableError):
        breaker.check(MODEL)  # failed again: open again
    now[0] = 21.0
    breaker.succeeded()
    breaker.check(MODEL)
    timeout = _http.stack_errors("ReadTimeout")[0]("slow")
    for _ in range(5):
        breaker.failed(timeout)  # a slow runner is not a dead one
    breaker.check(MODEL)


# -------------------------------------------------------------------------------------------
# No data loss: names in paths, secrets in URLs
# -------------------------------------------------------------------------------------------

TRAVERSALS = ["ai/other/../../smollm2", "../smollm2", "ai/./smollm2", "ai\\..\\smollm2", "ai%2F..%2Fsmollm2",
              "ai/smollm2\r\nX: y", "ai//smollm2", "ai/smollm2?force=true", "ai/smollm2#x", "", "ai/smollm2/"]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_a_name_that_would_leave_its_path_is_refused(serve: Callable[[Handler], HostileServer], name: str) -> None:
    server = serve(lambda c: c.answer(200, b"[]"))
    with ModelRunnerClient(server.url) as client:
        for call in (client.delete, client.inspect):
            with pytest.raises(errors.ConfigurationError) as caught:
                call(name)
            assert repr(name) in caught.value.message and "cannot be used in a request path" in caught.value.message
    assert server.requests == []


@pytest.mark.parametrize(("name", "path"), [
    ("ai/smollm2:latest", "/models/ai/smollm2:latest"),
    ("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", "/models/hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"),
    ("sha256:" + "a" * 64, "/models/sha256:" + "a" * 64),
    ("localhost:5000/org/model@sha256:" + "b" * 64, "/models/localhost:5000/org/model@sha256:" + "b" * 64),
])
def test_references_go_into_the_path_as_dmr_expects(serve: Callable[[Handler], HostileServer], name: str, path: str) -> None:
    server = serve(lambda c: c.answer(200, b"[]"))
    with ModelRunnerClient(server.url) as client:
        assert client.delete(name) == []
    assert server.requests == [("DELETE", path)]


def test_a_password_in_the_url_is_never_shown(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(500, b"boom"))
    port = server.url.rsplit(":", 1)[1]
    url = f"http://alice:s3cret@127.0.0.1:{port}"

    async def main() -> tuple[str, str, dict[str, Any]]:
        async with DockerModelRunnerAdapter(url, MODEL, max_retries=0) as adapter:
            with pytest.raises(errors.RunnerHTTPError) as caught:
                await adapter.generate("hi")
            return str(caught.value), repr(adapter), adapter.get_capabilities()

    message, shown, capabilities = asyncio.run(main())
    with ModelRunnerClient(url) as client:
        with pytest.raises(errors.RunnerHTTPError) as caught:
            client.inspect(MODEL)
        outputs = [message, shown, json.dumps(capabilities), str(caught.value), repr(client)]
    assert all("s3cret" not in output for output in outputs), outputs
    assert all("alice:***@127.0.0.1" in output for output in outputs), outputs
    assert server.all_closed()


# -------------------------------------------------------------------------------------------
# Misspelt arguments
# -------------------------------------------------------------------------------------------


def test_a_misspelt_argument_names_the_close_match(serve: Callable[[Handler], HostileServer]) -> None:
    server = serve(lambda c: c.answer(200, completion()))
    with pytest.raises(errors.UnknownOptionError) as caught:
        run_adapter(server, lambda a: a.generate("hi", max_retry=0))
    assert "'max_retry'" in str(caught.value) and "did you mean the adapter argument 'max_retries'" in str(caught.value)
    assert isinstance(caught.value, TypeError)
    with pytest.raises(errors.UnknownOptionError, match="did you mean 'temperature'"):
        DockerModelRunnerAdapter(server.url, MODEL, default_options={"temprature": 0})
    assert server.requests == []
    # Known request fields and extra_body go through.
    assert run_adapter(server, lambda a: a.generate("hi", temperature=0, top_k=5, extra_body={"max_retry": 0})) == "Hello"
    assert len(server.requests) == 1


def test_a_misspelt_factory_argument_names_the_close_match() -> None:
    from pytest_dmr.adapter import create_modelrunner_adapter

    with pytest.raises(errors.UnknownOptionError, match="Did you mean 'max_retries'"):
        create_modelrunner_adapter(environ={}, use_mock=True, max_retry=0)
