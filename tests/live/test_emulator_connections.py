"""Client connections to the emulator: idle ones are closed, long answers are never cut.

A keep-alive connection that sends no request for ``connection_idle_timeout`` seconds is closed by
the server (else every idle client would hold a handler thread forever); the timeout bounds only
the wait for a request, so a stream slower than it, or a client that pauses reading, still gets the
whole answer. The runner behind the emulator is a fake whose answers take as long as a test needs.
No real part is needed: these tests run everywhere.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_dmr.protocol import addresses, engines_api, sse
from pytest_dmr.emulator import EmulatorServer

from .conftest import fake_gguf

IDLE_TIMEOUT = 0.3
MODEL = "ai/tiny:1B"


class SlowHandle:
    """A runner whose answers the test scripts: an iterator of body pieces per request."""

    def __init__(self, pieces: Iterator[bytes], content_type: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"Content-Type": content_type}, content=pieces)

        self.client = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://runner")

    def exit_error(self, wait: float = 0.0) -> str | None:
        return None

    def close(self) -> None:
        self.client.close()


class SlowEngine:
    name = engines_api.LLAMACPP_BACKEND

    def __init__(self, pieces: Iterator[bytes], content_type: str = "text/event-stream") -> None:
        self.pieces = pieces
        self.content_type = content_type

    def status(self) -> str:
        return "Running: slow fake"

    def start(self, *, model_path: Path, alias: str, mode: str) -> SlowHandle:
        return SlowHandle(self.pieces, self.content_type)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    fake_gguf(tmp_path / "catalog" / "tiny" / "1B.gguf")
    with EmulatorServer(tmp_path / "catalog", engine="mock", connection_idle_timeout=IDLE_TIMEOUT) as emulator:
        emulator.pull(MODEL)
        yield emulator


def connect(emulator: EmulatorServer) -> socket.socket:
    sock = socket.create_connection((emulator.host, emulator.port), timeout=10)
    return sock


def read_response(sock: socket.socket, ending: bytes) -> bytes:
    received = b""
    while not received.endswith(ending):
        data = sock.recv(65536)
        assert data, f"the server closed the connection mid-answer: {received!r}"
        received += data
    return received


def seconds_until_closed(sock: socket.socket) -> float:
    """How long the server takes to close the connection (fails after 10 s of silence)."""
    started = time.monotonic()
    assert sock.recv(1) == b"", "the server sent something on an idle connection"
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(server: EmulatorServer) -> None:
    with connect(server) as sock:
        waited = seconds_until_closed(sock)
    assert IDLE_TIMEOUT * 0.8 <= waited < IDLE_TIMEOUT + 3


def test_a_kept_alive_connection_serves_requests_then_closes_when_idle(server: EmulatorServer) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with connect(server) as sock:
        for _ in range(2):  # kept alive: a second request on the same connection is answered
            sock.sendall(request)
            answer = read_response(sock, addresses.ROOT_BANNER.encode())
            assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" not in answer
            time.sleep(IDLE_TIMEOUT / 3)  # shorter than the timeout: the connection stays open
        waited = seconds_until_closed(sock)
    assert waited < IDLE_TIMEOUT + 3


def test_a_client_that_stalls_sending_its_body_is_dropped(server: EmulatorServer) -> None:
    head = b"POST /engines/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
    with connect(server) as sock:
        sock.sendall(head)
        waited = seconds_until_closed(sock)  # no answer: nobody is there to read it
    assert waited < IDLE_TIMEOUT + 3


def test_a_stream_slower_than_the_timeout_is_not_cut(server: EmulatorServer) -> None:
    pause = IDLE_TIMEOUT * 2

    def pieces() -> Iterator[bytes]:
        for n in range(4):
            time.sleep(pause)  # every gap is longer than the idle timeout
            yield sse.encode_sse({"n": n})
        yield sse.encode_sse("[DONE]")

    server.scheduler.engine = SlowEngine(pieces())
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with http.stream("POST", "/engines/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = list(sse.iter_sse_data(response.iter_lines()))
        assert events == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', "[DONE]"]
        assert time.monotonic() - started >= 4 * pause
        # The connection is still usable after the long answer.
        assert http.get("/").text == addresses.ROOT_BANNER


def test_a_client_that_pauses_reading_a_large_answer_gets_all_of_it(server: EmulatorServer) -> None:
    """The server's writes block while the client does not read: no timeout may apply to them."""
    piece = b"x" * 65536
    count = 256  # 16 MiB: more than the sockets' buffers hold, so the server waits on the client

    server.scheduler.engine = SlowEngine(iter([piece] * count), content_type="application/octet-stream")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        body = {"model": MODEL, "prompt": "hi"}
        with http.stream("POST", "/engines/v1/completions", json=body) as response:
            chunks = response.iter_raw()
            received = len(next(chunks))
            time.sleep(IDLE_TIMEOUT * 5)
            received += sum(len(chunk) for chunk in chunks)
    assert received == len(piece) * count


def test_the_idle_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"connection_idle_timeout must be positive or None \(never\), not 0"):
        EmulatorServer(tmp_path, engine="mock", connection_idle_timeout=0)
