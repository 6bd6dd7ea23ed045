"""No secret is ever written to a cassette: credential headers, key-like query parameters,
passwords in URLs, whichever client sent them."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai

from pytest_dmr.cassettes import Cassette, RecordingTransport, ReplayTransport, save
from pytest_dmr.mock import MockModelRunner

SECRETS = {
    "authorization": "Bearer sekret-bearer-1",
    "api-key": "sekret-azure-2",
    "x-api-key": "sekret-anthropic-3",
    "proxy-authorization": "Basic sekret-proxy-4",
    "cookie": "session=sekret-cookie-5",
}
QUERY = {"key": "sekret-q-6", "api_key": "sekret-q-7", "access_token": "sekret-q-8", "password": "sekret-q-9",
         "X-Amz-Signature": "sekret-q-10"}


def test_credentials_never_reach_the_file_whichever_client_sends_them(tmp_path: Path) -> None:
    mock = MockModelRunner()
    cassette = Cassette(path=tmp_path / "c.json")
    transport = RecordingTransport(mock, cassette)
    chat = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(transport=transport, base_url="http://dmr-user:sekret-url-11@model-runner.mock") as client:
        client.post("/engines/v1/chat/completions", params=QUERY, headers=SECRETS, json=chat)
    with httpx.Client(transport=transport, base_url="http://model-runner.mock") as client:
        client.get("/models", params={"token": "sekret-q-12"}, headers={"x-api-key": "sekret-anthropic-13"})
    sdk = openai.OpenAI(base_url="http://model-runner.mock/engines/v1", api_key="sk-sekret-openai-14",
                        http_client=httpx2.Client(transport=transport))
    with sdk:
        sdk.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "hi"}])
    claude = anthropic.Anthropic(base_url="http://model-runner.mock", api_key="sk-ant-sekret-15", max_retries=0,
                                 http_client=httpx2.Client(transport=transport))
    with claude, contextlib.suppress(anthropic.NotFoundError):  # recorded whatever the answer (the mock's front-ends vary)
        claude.messages.create(model="ai/smollm2", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    written = save(cassette).read_text()

    assert "sekret" not in written
    assert base64.b64encode(b"dmr-user:sekret-url-11").decode() not in written  # the URL's password, as Basic auth
    assert len(cassette.exchanges) == 4
    first = cassette.exchanges[0].request
    assert {name: first.headers[name] for name in SECRETS} == dict.fromkeys(SECRETS, "***")
    assert first.query == [(name, "***") for name in QUERY]

    # and a request carrying other credentials still replays: they are not part of matching
    with httpx2.Client(transport=ReplayTransport(Cassette.load(cassette.path)), base_url="http://127.0.0.1:9") as client:
        again = client.post("/engines/v1/chat/completions", params={**QUERY, "key": "other"},
                            headers={"authorization": "Bearer other"}, json=chat)
    assert again.content == cassette.exchanges[0].response.body


def test_cookies_a_runner_sets_are_masked_too(tmp_path: Path) -> None:
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, headers={"set-cookie": "sid=sekret-16"}, json={}))
    cassette = Cassette(path=tmp_path / "c.json")
    with httpx2.Client(transport=RecordingTransport(inner, cassette), base_url="http://x") as client:
        client.get("/")
    assert "sekret" not in save(cassette).read_text() and ("set-cookie", "***") in cassette.exchanges[0].response.headers
