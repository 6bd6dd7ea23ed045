"""``pytest-dmr models --running`` against a tiny DMR stand-in that answers ``/engines/ps`` as scripted.

DMR writes ``last_used`` in its own time zone (Go's ``time.Now()`` is local time, so a runner on a
Mac says ``+02:00``); the command prints UTC, and must convert, not relabel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_dmr import cli
from pytest_dmr.protocol import addresses

PS = [
    {"backend_name": "llama.cpp", "model_name": "ai/smollm2", "mode": "completion", "last_used": "2026-07-22T12:01:02.5+02:00",
     "keep_alive": "10m0s"},
    {"backend_name": "llama.cpp", "model_name": "ai/qwen3:0.6B", "mode": "embedding", "last_used": "2026-07-21T23:30:00-05:00"},
    {"backend_name": "llama.cpp", "model_name": "ai/gemma3", "mode": "completion", "last_used": "0001-01-01T00:00:00Z",
     "in_use": True, "keep_alive": "-1"},
]  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        answers = {"/": addresses.ROOT_BANNER, "/models": "[]", "/engines/ps": json.dumps(PS)}
        body = answers.get(self.path)
        self.send_response(200 if body is not None else 404)
        payload = (body if body is not None else "404 page not found\n").encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def standin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_last_used_is_printed_in_utc(standin: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DMR_DISCOVERY", "url,compose,host,desktop")
    assert cli.main(["--url", standin, "models", "--running"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "MODEL       MODE        STATE   KEEP ALIVE  LAST USED",
        "smollm2     completion  idle    10m0s       2026-07-22 10:01:02 UTC",
        "qwen3:0.6B  embedding   idle    default     2026-07-22 04:30:00 UTC",
        "gemma3      completion  in use  -1          -",
    ]
