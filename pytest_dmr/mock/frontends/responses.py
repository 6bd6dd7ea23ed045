"""OpenAI Responses (DMR's ``pkg/responses``): translated to a chat completion and back, kept an hour.

Routes: ``POST <prefix>``, ``GET``/``DELETE <prefix>/{id}``, ``GET <prefix>/{id}/input_items`` for
each prefix of :data:`responses_api.PREFIXES` and ``/engines/{backend}/v1/responses``. The store is
:attr:`MockModelRunner.response_store`, on the mock's clock (``mock.clock.advance(3601)`` expires
what it holds). IDs (``resp_``, ``msg_``, ``item_``...) are SHA-256 of the request and of how many
requests came before, so they differ between identical requests and are the same in every run.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from typing import Any

from pytest_dmr.protocol import encoding, routes
from pytest_dmr.protocol import responses_api as api
from pytest_dmr.protocol._regex import compiled
from pytest_dmr.mock.frontends import Call, View, admit, generate_chat, method_not_allowed, translated_stream
from pytest_dmr.mock import responses
from pytest_dmr.mock.inference import ChatOutcome, openai_chat_answer
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.state import MockState


_ROUTE = (
    r"^(?:/responses|/v1/responses|/engines/responses|/engines/v1/responses|/engines/(?P<backend>[^/]+)/v1/responses)"
    r"(?:/(?P<id>[^/]+)(?P<items>/input_items)?)?$"
)
_ID_LENGTH = 24


def view(runner: MockState, method: str, path: str, body: Any, content: bytes) -> View | None:
    found = compiled(_ROUTE).match(path)
    if found is None:
        return None
    if found["id"] is not None or method != "POST":
        return View("responses", path, state=found)
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    try:
        request = api.parse_create_request(content)
        history = runner.response_store.history(request.get("previous_response_id") or "")
        chat = api.to_chat_request(request, history=history)
    except api.ResponsesError as error:
        return View("responses", routes.CHAT_COMPLETIONS, model, upstream=True, state=(found, error))
    return View("responses", routes.CHAT_COMPLETIONS, request["model"], chat, upstream=True, state=(found, request))


def _json(status: int, value: Any) -> Answer:
    """DMR's ``sendJSON``: ``application/json``, Go's encoder (HTML-safe, trailing newline)."""
    return Answer(status, (("content-type", encoding.JSON_CONTENT_TYPE),), api.json_body(value))


def answer(runner: MockState, call: Call) -> Answer:
    state = call.view.state
    if not isinstance(state, tuple):  # GET or DELETE by ID, or a method DMR does not route
        return _by_id(runner, call, state)
    found, parsed = state
    if isinstance(parsed, api.ResponsesError):
        return _json(parsed.status, parsed.body())
    return _create(runner, call, found["backend"], parsed)


def _by_id(runner: MockState, call: Call, found: Any) -> Answer:
    method, id = call.recorded.method, found["id"]
    store = runner.response_store
    if id is None:
        return method_not_allowed("POST")
    if found["items"] is not None:
        return _json(*store.input_items(id)) if method in ("GET", "HEAD") else method_not_allowed("GET, HEAD")
    if method not in ("GET", "HEAD", "DELETE"):
        return method_not_allowed("DELETE, GET, HEAD")
    return _json(*(store.delete_body(id) if method == "DELETE" else store.get_body(id)))


def _make_ids(seed: bytes) -> api.MakeId:
    counter = itertools.count()

    def make_id(prefix: str) -> str:
        digest = hashlib.sha256(seed + f"\0{prefix}\0{next(counter)}".encode()).hexdigest()
        return prefix + digest[:_ID_LENGTH]

    return make_id


def _create(runner: MockState, call: Call, backend: str | None, request: Mapping[str, Any]) -> Answer:
    chat = call.view.chat or {}
    make_id = _make_ids(f"{runner.next_sequence()}\0".encode() + call.recorded.content)
    base = api.new_response(request, id=make_id("resp_"), created_at=int(runner.clock.now()))
    store = request.get("store") is not False
    url = api.chat_path(backend)
    upstream = admit(runner, call, backend=backend, endpoint=routes.CHAT_COMPLETIONS, body=chat, size=len(encoding.dumps(chat)))
    if upstream is None:
        outcome = generate_chat(runner, call, chat)
        runner.log_exchange(
            call.recorded, url=url, model=chat["model"], body=encoding.dumps(chat), answer=openai_chat_answer(outcome),
            origin="", user_agent="",
        )  # fmt: skip
        upstream = outcome.error
        if upstream is None:
            return _stream(runner, outcome, base, make_id, store) if outcome.chunks is not None else _plain(runner, outcome, base, make_id, store)
    return _failed(runner, call, upstream, base, make_id, store)


def _save(runner: MockState, response: Mapping[str, Any], store: bool) -> None:
    if store:
        runner.response_store.save(response)


def _plain(runner: MockState, outcome: ChatOutcome, base: Mapping[str, Any], make_id: api.MakeId, store: bool) -> Answer:
    response = api.completed_response(base, outcome.completion, make_id)
    _save(runner, response, store)
    return _json(200, response)


def _stream(runner: MockState, outcome: ChatOutcome, base: Mapping[str, Any], make_id: api.MakeId, store: bool) -> Answer:
    writer = api.ResponseStream(base, make_id)
    events, delivery = translated_stream(
        outcome,
        [api.encode_event(event) for event in writer.start()],
        lambda chunk: [api.encode_event(event) for event in writer.feed(chunk)],
        lambda: [api.encode_event(event) for event in writer.finish()],
    )
    if delivery.cut_after is None:  # a stream cut off never reaches response.completed: nothing is stored
        _save(runner, writer.final(), store)
    headers = [*((name.lower(), value) for name, value in api.STREAM_HEADERS), *responses.UPSTREAM_STREAM_HEADERS]
    return Answer(200, headers, chunks=events, delivery=delivery)


def _failed(runner: MockState, call: Call, upstream: Answer, base: Mapping[str, Any], make_id: api.MakeId, store: bool) -> Answer:
    """The upstream refused (a DMR check, llama.cpp, or a rule's fault): a ``failed`` Response with
    its status, or, streamed, ``error`` and ``response.failed`` events sent with status 200 and the
    upstream's headers (DMR writes them before the status)."""
    body = upstream.body if upstream.chunks is None else b"".join(upstream.chunks)
    if call.recorded.stream:
        writer = api.ResponseStream(base, make_id)
        events = writer.upstream_failed(upstream.status)
        _save(runner, writer.final(), store)
        headers = [(name, value) for name, value in upstream.headers if name != "content-length"]
        return Answer(200, headers, chunks=[api.encode_event(event) for event in events])  # streamed: no content-length
    response = api.failed_response(base, body.decode(errors="replace"))
    _save(runner, response, store)
    return _json(upstream.status, response)
