"""Record, then replay in a fresh process with no runner: identical text, identical stream pieces,
through every layer; a real socket's stream passes through the recorder unbuffered."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from pytest_dmr.cassettes import Cassette, Chunk, Exchange, RecordedRequest, RecordedResponse, RecordingTransport
from pytest_dmr.cassettes import ReplayTransport, replay, save
from pytest_dmr.mock import MockModelRunner

SUITE = Path(__file__).with_name("cassette_suite.py")
sys.path.insert(0, str(SUITE.parent))
import cassette_suite  # noqa: E402


def replay_in_fresh_process(path: Path) -> object:
    done = subprocess.run([sys.executable, str(SUITE), str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_suite_recorded_on_the_mock_replays_identically_in_a_fresh_process(tmp_path: Path) -> None:
    mock = MockModelRunner()
    cassette = Cassette(path=tmp_path / "suite.json")
    recorded = cassette_suite.run(RecordingTransport(mock, cassette), mock.base_url)
    save(cassette)

    assert len(recorded["adapter_pieces"]) > 3 and "".join(recorded["adapter_pieces"]) == recorded["adapter_text"]
    assert replay_in_fresh_process(cassette.path) == recorded  # type: ignore[arg-type]
    kinds = [(x.request.method, x.request.path, x.response.chunks is not None) for x in Cassette.load(cassette.path).exchanges]
    assert ("POST", "/models/create", True) in kinds  # pull progress, chunk by chunk
    assert ("GET", "/models", False) in kinds  # management calls too
    assert kinds.count(("POST", "/engines/v1/chat/completions", True)) == 3


# -- a real socket ---------------------------------------------------------------------------------

SSE_PIECES = [b'data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n', b'data: {"choices":[{"delta":{"content":" there"}}]}\n\n',
              "data: {\"choices\":[{\"delta\":{\"content\":\" caf\u00e9\"}}]}\n\n".encode(), b"data: [DONE]\n\n"]


class _Server(http.server.ThreadingHTTPServer):
    first_piece_seen = threading.Event()
    waited_for_client = False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"object":"list","data":[{"id":"ai/smollm2"}]}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number, piece in enumerate(SSE_PIECES):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            if number == 0:  # the rest only once the client has the first piece: a buffering recorder would stall here
                self.server.waited_for_client = self.server.first_piece_seen.wait(timeout=30)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@pytest.fixture
def server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.first_piece_seen = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_real_sockets_stream_passes_through_unbuffered_and_replays_piece_for_piece(server: _Server, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cassette = Cassette(path=tmp_path / "socket.json")
    with httpx2.Client(transport=RecordingTransport(httpx2.HTTPTransport(), cassette), base_url=url) as client:
        listed = client.get("/v1/models").json()
        with client.stream("POST", "/engines/v1/chat/completions", json={"model": "ai/smollm2", "stream": True}) as response:
            received = []
            for piece in response.iter_raw():
                received.append(piece)
                server.first_piece_seen.set()
    save(cassette)

    assert server.waited_for_client  # the caller had piece 1 while the server still held piece 2
    assert received[0] == SSE_PIECES[0] and b"".join(received) == b"".join(SSE_PIECES)
    stream = Cassette.load(cassette.path).exchanges[1].response
    assert stream.chunks is not None and [chunk.data for chunk in stream.chunks] == received
    assert stream.chunks[1].ms >= 0 and stream.complete

    script = (
        "import sys, json, httpx\nfrom pytest_dmr.cassettes import Cassette, ReplayTransport\n"
        "t = ReplayTransport(Cassette.load(sys.argv[1]))\n"
        "with httpx.Client(transport=t, base_url='http://127.0.0.1:9') as c:\n"
        "    listed = c.get('/engines/v1/models').json()\n"
        "    with c.stream('POST', '/v1/chat/completions', json={'stream': True, 'model': 'smollm2'}) as r:\n"
        "        pieces = [p.decode() for p in r.iter_raw()]\n"
        "print(json.dumps([listed, pieces]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(cassette.path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [listed, [piece.decode() for piece in received]]


# -- pacing, incomplete streams --------------------------------------------------------------------

def _streamed(chunks: list[Chunk], complete: bool = True) -> Cassette:
    request = RecordedRequest("POST", "/engines/v1/chat/completions", body=b'{"model":"ai/smollm2","stream":true}')
    response = RecordedResponse(200, [("content-type", "text/event-stream")], chunks=chunks, complete=complete)
    return Cassette([Exchange(request, response)])


BODY = {"model": "ai/smollm2", "stream": True}


def test_paced_async_replay_waits_without_blocking_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    cassette = _streamed([Chunk(b"data: 1\n\n", 0), Chunk(b"data: 2\n\n", 20), Chunk(b"data: [DONE]\n\n", 20)])

    def blocking(seconds: float) -> None:
        raise AssertionError("time.sleep in an async replay blocks the event loop")

    monkeypatch.setattr(replay.time, "sleep", blocking)

    async def scenario() -> tuple[list[bytes], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        async with httpx2.AsyncClient(transport=ReplayTransport(cassette, pace=True), base_url="http://x") as client:
            async with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
                pieces = [piece async for piece in response.aiter_raw()]
                seen = ticks
        stop.set()
        await task
        return pieces, seen

    pieces, ticks = asyncio.run(scenario())
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]
    assert ticks > 1  # the loop ran other tasks during the recorded gaps


PACED = [Chunk(b"data: 1\n\n", 0), Chunk(b"data: 2\n\n", 7), Chunk(b"data: [DONE]\n\n", 3)]


async def _never(seconds: float) -> None:
    raise AssertionError("an async sleep in a sync client")


@pytest.mark.parametrize("stack", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_paced_sync_replay_sleeps_the_recorded_gaps(stack: Any) -> None:
    slept: list[float] = []
    cassette = _streamed(PACED)
    with stack.Client(transport=ReplayTransport(cassette, pace=True, sleep=slept.append, async_sleep=_never),
                      base_url="http://x") as client:
        with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
            assert list(response.iter_raw()) == [chunk.data for chunk in PACED]
    assert slept == [0.007, 0.003]


@pytest.mark.parametrize("stack", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_paced_async_replay_awaits_the_recorded_gaps(stack: Any) -> None:
    waited: list[float] = []
    pieces: list[bytes] = []

    async def async_sleep(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    def blocking(seconds: float) -> None:
        raise AssertionError("a blocking sleep in an async client")

    async def scenario() -> None:
        transport = ReplayTransport(_streamed(PACED), pace=True, sleep=blocking, async_sleep=async_sleep)
        async with stack.AsyncClient(transport=transport, base_url="http://x") as client:
            async with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
                pieces.extend([piece async for piece in response.aiter_raw()])

    asyncio.run(scenario())
    assert pieces == [chunk.data for chunk in PACED] and waited == [0.007, 0.003]


@pytest.mark.parametrize("stack", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_unpaced_replay_never_waits(stack: Any) -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("waited without pace")

    with stack.Client(transport=ReplayTransport(_streamed(PACED), sleep=sleep), base_url="http://x") as client:
        with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
            assert list(response.iter_raw()) == [chunk.data for chunk in PACED]


@pytest.mark.parametrize("pace", [False, True], ids=["at-once", "paced"])
@pytest.mark.parametrize("stack", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_an_incomplete_recording_breaks_off_where_the_recording_did(stack: object, pace: bool) -> None:
    cassette = _streamed([Chunk(b"data: 1\n\n")], complete=False)
    with stack.Client(transport=ReplayTransport(cassette, pace=pace), base_url="http://x") as client:  # type: ignore[attr-defined]
        with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
            pieces = []
            with pytest.raises(stack.RemoteProtocolError):  # type: ignore[attr-defined]
                for piece in response.iter_raw():
                    pieces.append(piece)
    assert pieces == [b"data: 1\n\n"]


def test_a_stream_the_client_left_early_is_recorded_as_incomplete(tmp_path: Path) -> None:
    mock = MockModelRunner()
    cassette = Cassette(path=tmp_path / "early.json")
    with httpx2.Client(transport=RecordingTransport(mock, cassette), base_url=mock.base_url) as client:
        with client.stream("POST", "/engines/v1/chat/completions", json={**BODY, "messages": [{"role": "user", "content": "hi"}]}) as response:
            first = next(response.iter_raw())
    save(cassette)
    stream = Cassette.load(cassette.path).exchanges[0].response
    assert not stream.complete and stream.chunks is not None and [chunk.data for chunk in stream.chunks] == [first]
    assert '"complete": false' in cassette.path.read_text()
