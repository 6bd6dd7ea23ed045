"""Matching: what counts as the same request, repeated requests in recorded order, and the error
for a request the cassette lacks (the closest recorded request, field by field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from pytest_dmr.cassettes import Cassette, RecordingTransport, ReplayTransport, save
from pytest_dmr.cassettes.matching import Index, capture, normalize
from pytest_dmr.errors import CassetteMismatchError, DMRError
from pytest_dmr.mock import MockModelRunner

CHAT = "/engines/v1/chat/completions"
BODY: dict[str, Any] = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "Say hi"}], "temperature": 0.5, "seed": 7}


def recorded(*bodies: dict[str, Any], path: str = CHAT, headers: dict[str, str] | None = None) -> Cassette:
    """A cassette holding the mock's answers to ``bodies``, posted to ``path``."""
    mock = MockModelRunner()
    cassette = Cassette()
    with httpx2.Client(transport=RecordingTransport(mock, cassette), base_url=mock.base_url) as client:
        for body in bodies:
            client.post(path, json=body, headers=headers or {})
    return cassette


def send(cassette: Cassette, body: Any, *, path: str = CHAT, headers: dict[str, str] | None = None,
         base_url: str = "http://127.0.0.1:9", **options: Any) -> httpx2.Response:
    with httpx2.Client(transport=ReplayTransport(cassette, **options), base_url=base_url) as client:
        if isinstance(body, bytes):
            return client.post(path, content=body, headers=headers or {})
        return client.post(path, json=body, headers=headers or {})


SAME = {
    "model name forms": ({**BODY, "model": "docker.io/ai/smollm2:latest"}, CHAT, {}),
    "bare model name": ({**BODY, "model": "smollm2"}, CHAT, {}),
    "key order": (dict(reversed(list(BODY.items()))), CHAT, {}),
    "1.0 for 1": ({**BODY, "seed": 7.0}, CHAT, {}),
    "the /v1 alias": (BODY, "/v1/chat/completions", {}),
    "Desktop's socket prefix": (BODY, "/exp/vDD4.40/engines/v1/chat/completions", {}),
    "a doubled slash": (BODY, "/engines//v1/chat/completions", {}),
    "SDK telemetry and credentials": (BODY, CHAT, {"x-stainless-retry-count": "2", "user-agent": "x/1", "authorization": "Bearer k"}),
}


@pytest.mark.parametrize(("body", "path", "headers"), list(SAME.values()), ids=list(SAME))
def test_requests_dmr_reads_alike_match(body: dict[str, Any], path: str, headers: dict[str, str]) -> None:
    cassette = recorded(BODY)
    answer = send(cassette, body, path=path, headers=headers, base_url="http://runner.elsewhere:80")
    assert answer.content == cassette.exchanges[0].response.body


DIFFERENT = {
    "seed": ({**BODY, "seed": 8}, CHAT, {}, "body.seed: recorded 7, sent 8"),
    "user": ({**BODY, "user": "u1"}, CHAT, {}, 'body.user: recorded (absent), sent "u1"'),
    "metadata": ({**BODY, "metadata": {"run": "a"}}, CHAT, {}, 'body.metadata.run: recorded (absent), sent "a"'),
    "stream_options": ({**BODY, "stream_options": {"include_usage": True}}, CHAT, {},
                       "body.stream_options.include_usage: recorded (absent), sent true"),
    "another model": ({**BODY, "model": "ai/qwen3"}, CHAT, {},
                      'body.model: recorded "docker.io/ai/smollm2:latest", sent "docker.io/ai/qwen3:latest"'),
    "Accept": (BODY, CHAT, {"accept": "text/event-stream"}, 'header.accept: recorded "*/*", sent "text/event-stream"'),
    "X-Preload-Only": (BODY, CHAT, {"x-preload-only": "true"}, 'header.x-preload-only: recorded (absent), sent "true"'),
    "a named backend": (BODY, "/engines/llama.cpp/v1/chat/completions", {},
                        'path: recorded "/engines/v1/chat/completions", sent "/engines/llama.cpp/v1/chat/completions"'),
}


@pytest.mark.parametrize(("body", "path", "headers", "difference"), list(DIFFERENT.values()), ids=list(DIFFERENT))
def test_requests_that_may_get_another_answer_do_not_match(body: dict[str, Any], path: str, headers: dict[str, str],
                                                           difference: str) -> None:
    cassette = recorded(BODY)
    with pytest.raises(CassetteMismatchError) as caught:
        send(cassette, body, path=path, headers=headers)
    assert f"  - {difference}\n" in str(caught.value)


def test_the_unmatched_error_names_the_closest_request_and_every_difference() -> None:
    other = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "Something else entirely"}], "max_tokens": 3}
    cassette = recorded(other, BODY)
    cassette.path = None
    sent = {**BODY, "messages": [{"role": "user", "content": "Say hello"}], "seed": 8}
    with pytest.raises(CassetteMismatchError) as caught:
        send(cassette, sent, path="/v1/chat/completions")
    error = caught.value
    assert isinstance(error, DMRError)
    assert str(error).startswith(
        "no recorded answer for POST /v1/chat/completions in the cassette (2 exchanges). The closest recorded "
        "request, exchange 2 (POST /engines/v1/chat/completions), differs in:\n"
        '  - body.messages[0].content: recorded "Say hi", sent "Say hello"\n'
        "  - body.seed: recorded 7, sent 8\n"
        "Record it with --dmr-record=new"
    )
    assert error.request == "POST /v1/chat/completions" and error.closest == "POST /engines/v1/chat/completions"


def test_an_empty_cassette_says_so() -> None:
    with pytest.raises(CassetteMismatchError, match=r"no recorded answer for GET /models: the cassette is empty"):
        with httpx.Client(transport=ReplayTransport(Cassette()), base_url="http://x") as client:
            client.get("/models")


def test_repeated_requests_are_answered_in_recorded_order_then_the_last_repeats() -> None:
    mock = MockModelRunner()
    for number in (1, 2):
        mock.add_rule(reply=f"answer {number}", times=1)
    cassette = Cassette()
    with httpx2.Client(transport=RecordingTransport(mock, cassette), base_url=mock.base_url) as client:
        live = [client.post(CHAT, json=BODY).json()["choices"][0]["message"]["content"] for _ in range(2)]
    assert sorted(live) == ["answer 1", "answer 2"]
    transport = ReplayTransport(cassette)
    with httpx2.Client(transport=transport, base_url="http://x") as client:
        replayed = [client.post(CHAT, json=BODY).json()["choices"][0]["message"]["content"] for _ in range(3)]
    assert replayed == [*live, live[-1]]
    assert transport.replayed == 3 and transport.unused() == []


def test_a_fallback_answers_what_the_cassette_lacks_and_is_counted() -> None:
    cassette = recorded(BODY)
    mock = MockModelRunner()
    mock.reply("from the mock")
    transport = ReplayTransport(cassette, fallback=mock)
    with httpx2.Client(transport=transport, base_url=transport.base_url) as client:
        replayed = client.post(CHAT, json=BODY).json()
        fallen = client.post(CHAT, json={**BODY, "seed": 99}).json()
    assert httpx2.Response(200, content=cassette.exchanges[0].response.body).json() == replayed
    assert fallen["choices"][0]["message"]["content"] == "from the mock"
    assert (transport.replayed, transport.passed_on, transport.mismatches) == (1, 1, [])
    assert transport.base_url == mock.base_url


def test_ignored_fields_are_left_out_of_matching() -> None:
    cassette = recorded({**BODY, "metadata": {"trace_id": "a1", "suite": "x"}})
    answer = send(cassette, {**BODY, "metadata": {"trace_id": "b2", "suite": "x"}}, ignore=["metadata.trace_id"])
    assert answer.status_code == 200
    with pytest.raises(CassetteMismatchError, match=r'body.metadata.suite: recorded "x", sent "y"'):
        send(cassette, {**BODY, "metadata": {"trace_id": "b2", "suite": "y"}}, ignore=["metadata.trace_id"])


def test_an_sdk_call_the_cassette_lacks_raises_the_mismatch_which_is_also_kept() -> None:
    cassette = recorded(BODY)
    transport = ReplayTransport(cassette)
    sdk = openai.OpenAI(base_url="http://x/engines/v1", api_key="k", max_retries=0, http_client=httpx2.Client(transport=transport))
    with sdk, pytest.raises(CassetteMismatchError) as caught:
        sdk.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "not recorded"}])
    assert transport.mismatches == [caught.value]  # for callers whose client wraps transport errors
    assert '  - header.accept: recorded "*/*", sent "application/json"\n' in str(caught.value)


def test_management_paths_compare_model_references_as_dmr_does() -> None:
    mock = MockModelRunner()
    cassette = Cassette()
    with httpx2.Client(transport=RecordingTransport(mock, cassette), base_url=mock.base_url) as client:
        inspected = client.get("/models/ai/smollm2").json()
    with httpx2.Client(transport=ReplayTransport(cassette), base_url="http://x") as client:
        assert client.get("/models/smollm2:latest").json() == inspected
        with pytest.raises(CassetteMismatchError, match="/models/ai/qwen3"):
            client.get("/models/ai/qwen3")



def test_a_request_with_a_repeated_matched_header_replays_as_it_was_recorded() -> None:
    """A cassette keeps a repeated header's last value; a replayed call reads it so too."""
    sent = [("Accept", "application/json"), ("Accept", "text/event-stream")]
    cassette = Cassette()
    mock = MockModelRunner()
    with httpx2.Client(transport=RecordingTransport(mock, cassette), base_url=mock.base_url) as client:
        client.post(CHAT, json=BODY, headers=sent)
    assert cassette.exchanges[0].request.headers["accept"] == "text/event-stream"
    replay = ReplayTransport(cassette)
    with httpx2.Client(transport=replay, base_url=mock.base_url) as client:
        assert client.post(CHAT, json=BODY, headers=sent).status_code == 200
    assert replay.replayed == 1


COMPACT = b'{"model":"ai/smollm2","messages":[{"role":"user","content":"Say hi"}],"temperature":0.5,"seed":7}'
SENT_FORMS = {  # body, query, raw headers, whether the recorded exchange answers it
    "byte for byte as recorded": (COMPACT, "", [], True),
    "spaced JSON, keys reordered": (b'{"seed": 7.0, "temperature": 0.5, "messages": [{"content": "Say hi", "role": "user"}], '
                                    b'"model": "smollm2"}', "", [], True),
    "matched headers in any case, repeated": (COMPACT, "", [(b"ACCEPT", b"text/event-stream"), (b"accept", b"application/json"),
                                                            (b"Origin", b"http://a"), (b"X-Other", b"1")], False),
    "a query with a key": (COMPACT, "api_key=secret&b=2", [], False),
}


@pytest.mark.parametrize(("body", "query", "headers", "answered"), list(SENT_FORMS.values()), ids=list(SENT_FORMS))
def test_the_key_of_a_sent_request_is_the_key_of_its_recorded_form(tmp_path: Path, body: bytes, query: str,
                                                                    headers: list[tuple[bytes, bytes]], answered: bool) -> None:
    """A replayed call's key (looked up when the request is byte for byte a recorded one, else
    normalised from the raw request) is the key of the request as a cassette keeps it."""
    cassette = recorded(BODY)
    cassette.path = tmp_path / "c.json"
    save(cassette)
    index = Index(Cassette.load(cassette.path).exchanges)
    as_kept = capture("POST", CHAT, query, [(name.decode(), value.decode()) for name, value in headers], body)
    key = index.key("POST", CHAT, query, headers, body)
    assert key == normalize(as_kept).key
    assert (index.answer(key) is not None) is answered
