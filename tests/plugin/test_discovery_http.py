"""The probe's own few lines of HTTP: what a runner, Docker's socket or llama.cpp may send back."""

from __future__ import annotations

import gc
import socket
import threading
import warnings

import pytest

from pytest_dmr.discovery import Target, probe
from pytest_dmr.discovery_http import MAX_BODY, _parse_response
from pytest_dmr.protocol.addresses import parse_runner_url


def test_a_content_length_answer() -> None:
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n\r\nDocker Model Runner is running"
    assert _parse_response(raw) == (200, b"Docker Model Runner is running")


def test_a_chunked_answer_is_decoded() -> None:
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n4\r\n{"ob\r\n9;ext=1\r\nject":[]}\r\n0\r\n\r\n'
    assert _parse_response(raw) == (200, b'{"object":[]}')


def test_an_error_status_keeps_its_body() -> None:
    assert _parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n404 page not found\n") == (404, b"404 page not found\n")


def test_a_long_body_is_cut() -> None:
    status, body = _parse_response(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_BODY + 10))
    assert status == 200 and len(body) == MAX_BODY


@pytest.mark.parametrize(
    "raw",
    [b"", b"HTTP/1.1 200 OK\r\nno end of headers", b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n"],
)
def test_what_is_not_http_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        _parse_response(raw)


def _closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def test_probes_leave_no_socket_open() -> None:
    """A refused connect, and an answer that is not a runner's, close their sockets at once
    (a socket left to the garbage collector warns, and fails suites run with -W error)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer_once() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.0 404 Not Found\r\n\r\nnot found\n")

        closed = _closed_port()
        targets = [
            Target("host", "refused", *parse_runner_url(f"http://127.0.0.1:{closed}"), "127.0.0.1", closed),
            Target("host", "answers", *parse_runner_url(f"http://127.0.0.1:{port}"), "127.0.0.1", port),
        ]
        threading.Thread(target=lambda: [answer_once() for _ in range(4)], daemon=True).start()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            outcomes = [probe(target).probe.result for target in targets]
            gc.collect()
    assert outcomes == ["refused", "not-dmr"]
    assert [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)] == []


@pytest.mark.parametrize(
    ("sent", "detail"),
    [
        (b"", "closed the connection without answering GET / (not an HTTP server?)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "answered GET / with something that is not HTTP (not an HTTP status line: 'SSH-2.0-OpenSSH_9.2')"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "answered GET / with something that is not HTTP (not a chunk size: b'zz')"),
    ],
    ids=["closes at once", "another protocol", "a broken chunk"],
)
def test_a_listener_that_is_no_http_server_is_said_so(sent: bytes, detail: str) -> None:
    """What the header shows for such a candidate: what it did, not an exception's class name."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer_each() -> None:
            for _ in range(2):  # the probe may connect twice (its connect check, then GET /)
                connection, _ = server.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(sent)

        threading.Thread(target=answer_each, daemon=True).start()
        found = probe(Target("host", "odd", *parse_runner_url(f"http://127.0.0.1:{port}"), "127.0.0.1", port)).probe
    assert (found.result, found.detail) == ("error", detail)
