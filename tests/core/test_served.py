"""LoopbackServer: a transport (the mock, a cassette's replay) served over HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx
import httpx2
import pytest

from pytest_dmr.cassettes import Cassette, ReplayTransport
from pytest_dmr.mock import Fault, MockModelRunner
from pytest_dmr.served import NO_TRANSPORT, LoopbackServer

CHAT = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "Describe a harbour."}], "stream": True}


def events(client: httpx2.Client | httpx.Client) -> list[str]:
    with client.stream("POST", "/engines/v1/chat/completions", json=CHAT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line for line in response.iter_lines() if line]


def test_a_served_mock_answers_as_the_mock_does() -> None:
    mock = MockModelRunner()
    with httpx2.Client(transport=mock, base_url=mock.base_url) as direct:
        expected = events(direct)
        banner = direct.get("/").text
    with LoopbackServer(mock) as server, httpx.Client(base_url=server.url) as client:
        assert events(client) == expected and len(expected) > 3
        assert client.get("/").text == banner
        missing = client.get("/engines/v1/models/ai%2Fnever")
        assert missing.status_code == 404
    assert [request.path for request in mock.requests][-3:] == ["/engines/v1/chat/completions", "/", "/engines/v1/models/ai/never"]


def test_a_dropped_connection_is_dropped_and_no_transport_is_a_503() -> None:
    mock = MockModelRunner()
    mock.fail(Fault.disconnect())
    with LoopbackServer(mock) as server, httpx2.Client(base_url=server.url) as client:
        with pytest.raises(httpx2.TransportError):
            client.post("/engines/v1/chat/completions", json={**CHAT, "stream": False})
        server.transport = None
        answer = client.get("/")
        assert (answer.status_code, answer.text.strip()) == (503, NO_TRANSPORT)


def test_a_request_the_cassette_lacks_is_a_500_naming_it() -> None:
    with LoopbackServer(ReplayTransport(Cassette())) as server, httpx2.Client(base_url=server.url) as client:
        answer = client.post("/engines/v1/chat/completions", json=CHAT)
    assert answer.status_code == 500
    assert "/engines/v1/chat/completions" in answer.text and "cassette" in answer.text
