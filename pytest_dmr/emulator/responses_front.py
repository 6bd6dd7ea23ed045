"""OpenAI Responses on the emulator, as DMR serves it (``pkg/responses``): translated, not forwarded.

A ``POST`` is checked and turned into a chat completion (:mod:`pytest_dmr.protocol.responses_api`),
sent to the scheduler (:class:`~.inference.Inference`) as a fresh request, and its answer turned
back: a Response object, or Responses events written as each upstream chunk arrives. Finished
responses are kept for an hour (``store: false`` skips it) for ``GET``/``DELETE`` by ID,
``input_items`` and ``previous_response_id``.

Routes, as DMR's router and its handler's own mux: under ``/responses`` and ``/v1/responses`` every
path is the handler's (``404 page not found`` and ``405`` from its mux); under ``/engines/responses``,
``/engines/v1/responses`` and ``/engines/{backend}/v1/responses`` only the collection, ``/{id}`` and
``/{id}/input_items`` are (anything deeper is the scheduler's ``404 not found``).
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol import encoding, error_bodies, responses_api
from pytest_dmr.protocol._regex import compiled
from pytest_dmr.emulator.inference import Answer, Reply, with_headers

if TYPE_CHECKING:
    from pytest_dmr.emulator.server import EmulatorServer

SWEEP_INTERVAL = 300.0
"""DMR drops expired responses every five minutes."""
_OWN_PREFIXES = r"^(?:/v1)?/responses(?P<rest>/.*)?$"
_ENGINES_PREFIXES = r"^/engines(?:/v1|/(?P<backend>[^/]+)/v1)?/responses(?P<rest>/[^/]+(?:/input_items)?)?$"
_ITEM = r"^/(?P<id>[^/]+)(?P<items>/input_items)?$"


def _json(reply: Reply, status: int, value: Any) -> None:
    """DMR's ``sendJSON``: ``application/json``, Go's encoder."""
    reply.send_body(status, responses_api.json_body(value), "application/json")


class ResponsesFrontend:
    """The Responses handler: its store, and its routes over the emulator's scheduler."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.store = responses_api.ResponseStore(clock=time.monotonic)
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    @staticmethod
    def _match(path: str) -> tuple[str | None, str] | None:
        """``(backend, rest)`` for a path this handler serves; ``rest`` is ``""`` or ``/{id}[/...]``."""
        found = compiled(_OWN_PREFIXES).match(path) or compiled(_ENGINES_PREFIXES).match(path)
        if found is None:
            return None
        return found.groupdict().get("backend"), found["rest"] or ""

    def handles(self, path: str) -> bool:
        return self._match(path) is not None

    def handle(self, reply: Reply, method: str, path: str, body: bytes | None) -> None:
        match = self._match(path)
        assert match is not None
        backend, rest = match
        if not rest:
            if method == "POST":
                self._create(reply, backend, body)
            else:
                reply.method_not_allowed("POST")
            return
        item = compiled(_ITEM).match(rest)
        if item is None:
            reply.send_plain_error(404, error_bodies.PAGE_NOT_FOUND)
        elif item["items"]:
            if method in ("GET", "HEAD"):
                _json(reply, *self._locked(self.store.input_items, item["id"]))
            else:
                reply.method_not_allowed("GET, HEAD")
        elif method in ("GET", "HEAD"):
            _json(reply, *self._locked(self.store.get_body, item["id"]))
        elif method == "DELETE":
            _json(reply, *self._locked(self.store.delete_body, item["id"]))
        else:
            reply.method_not_allowed("DELETE, GET, HEAD")

    def _locked(self, call: Any, id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            result: tuple[int, dict[str, Any]] = call(id)
            return result

    def _save(self, response: dict[str, Any]) -> None:
        with self._lock:
            self.store.save(response)
            if time.monotonic() - self._last_sweep >= SWEEP_INTERVAL:
                self.store.sweep()
                self._last_sweep = time.monotonic()

    def _create(self, reply: Reply, backend: str | None, body: bytes | None) -> None:
        try:
            if body is None:  # over the server's 10 MiB read limit
                raise responses_api.ResponsesError(
                    413, "request_too_large", f"Request body too large (max {responses_api.MAX_REQUEST_BYTES} bytes)"
                )
            request = responses_api.parse_create_request(body)
            with self._lock:
                history = self.store.history(request.get("previous_response_id") or "")
            chat = responses_api.to_chat_request(request, history=history)
        except responses_api.ResponsesError as error:
            _json(reply, error.status, error.body())
            return
        base = responses_api.new_response(request, id=encoding.random_id("resp_"), created_at=int(time.time()))
        store = request.get("store") is not False
        # A fresh request: only the content type and the client's Authorization go upstream.
        headers = [("Content-Type", "application/json")]
        if reply.headers.get("Authorization"):
            headers.append(("Authorization", reply.headers["Authorization"]))
        answer = self.emulator.inference.serve(responses_api.chat_path(backend), encoding.go_json(chat).encode(), headers)
        if request.get("stream") is True:
            self._stream(reply, answer, responses_api.ResponseStream(base), store)
        else:
            self._plain(reply, answer, base, store)

    def _plain(self, reply: Reply, answer: Answer, base: dict[str, Any], store: bool) -> None:
        with answer:
            text = answer.text()
        status = answer.status
        if status != 200:
            response = responses_api.failed_response(base, text)
        else:
            try:
                chat = json.loads(text)
            except ValueError:
                chat = None
            response = responses_api.completed_response(base, chat)
            if response["status"] == "failed":
                status = 500
        if store:
            self._save(response)
        _json(reply, status, response)

    def _stream(self, reply: Reply, answer: Answer, stream: responses_api.ResponseStream, store: bool) -> None:
        """DMR's ``StreamingResponseWriter``: events written before the status, so the client always
        gets 200, with the upstream's headers (an error's content type included)."""
        with answer:
            if answer.status != 200:
                reply.start_chunks(200, answer.headers)
                reply.chunk(_events(stream.upstream_failed(answer.status)))
                reply.end_chunks()
                if store:
                    self._save(stream.final())
                return
            reply.start_chunks(200, with_headers(answer.headers, responses_api.STREAM_HEADERS))
            reply.chunk(_events(stream.start()))
            pending = b""
            for data in answer:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                events: list[dict[str, Any]] = []
                for raw in lines:
                    line = raw.strip().decode(errors="replace")
                    if not line.startswith("data: ") or line == "data: ":
                        continue
                    payload = line[len("data: ") :]
                    if payload == "[DONE]":
                        events += stream.finish()
                        if store:
                            self._save(stream.final())
                        continue
                    problem = encoding.syntax_error(payload)
                    if problem is not None:  # DMR fails the response and skips the rest of this write
                        events += stream.malformed(problem)
                        if store:
                            self._save(stream.final())
                        break
                    chunk = json.loads(payload)
                    if isinstance(chunk, dict):
                        events += stream.feed(chunk)
                if events:
                    reply.chunk(_events(events))
            reply.end_chunks()


def _events(events: list[dict[str, Any]]) -> bytes:
    return b"".join(responses_api.encode_event(event) for event in events)
