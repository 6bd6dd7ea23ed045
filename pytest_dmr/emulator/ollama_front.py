"""Ollama's ``/api/*`` on the emulator, as DMR serves it (``pkg/ollama/http_handler.go``).

Plans and bodies come from :mod:`pytest_dmr.protocol.ollama_api`; this module does DMR's I/O around
them: ``/api/chat`` and ``/api/generate`` become a chat completion sent to the scheduler with the
client's headers and ``X-Request-Origin: ollama/completion`` (after a ``_configure`` when the request
sets ``num_ctx``, ``keep_alive`` or ``think``), their streams turned into NDJSON line by line as
llama.cpp's chunks arrive; ``/api/pull`` streams the catalogue pull in Ollama's form; ``/api/delete``
unloads, then deletes. Every other path under ``/api/`` is Go's ``404 page not found``, another
method on a known path Go's ``405``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol import encoding, engines_api, model_names, ollama_api, pull_stream, request_log, routes
from pytest_dmr.emulator.inference import Answer, Reply, with_headers
from pytest_dmr.emulator.store import DeleteRefused, PullRefused

if TYPE_CHECKING:
    from pytest_dmr.emulator.server import EmulatorServer

API_PREFIX = "/api"
JSON = "application/json"
SNIFFED = encoding.TEXT_PLAIN
"""What Go sends when DMR sets the content type after the status: it sniffs the body (JSON included)."""
_NAME_FIELDS = {"name": "string", "model": "string"}
_ALLOWED = {path: ("GET, HEAD" if method == "GET" else method) for method, path in ollama_api.ROUTES}


def _now() -> str:
    return encoding.go_time(time.time())


class OllamaFrontend:
    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self._routes: dict[tuple[str, str], Callable[[Reply, bytes], None]] = {
            ("GET", "/api/version"): lambda reply, body: reply.send_body(200, ollama_api.json_body(ollama_api.VERSION_BODY), JSON),
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/pull"): self._pull,
            ("DELETE", "/api/delete"): self._delete,
        }

    def handle(self, reply: Reply, method: str, path: str, body: bytes | None) -> None:
        route = self._routes.get(("GET" if method == "HEAD" else method, path))
        if route is not None:
            route(reply, body or b"")
        elif path in _ALLOWED:
            reply.method_not_allowed(_ALLOWED[path])
        else:
            reply.send_plain_error(404, "404 page not found")

    # ------------------------------------------------------------------ listing

    def _tags(self, reply: Reply, body: bytes) -> None:
        reply.send_body(200, ollama_api.json_body(ollama_api.tags_body(self.emulator.store.models())), JSON)

    def _ps(self, reply: Reply, body: bytes) -> None:
        emulator = self.emulator
        models = []
        for runner in emulator.scheduler.runners():
            model = emulator.store.find(runner.model_name)
            if model is None:
                models.append(ollama_api.PsModel(runner.model_name, runner.model_name))
                continue
            config = emulator.scheduler.settings(runner)
            keep_alive = None if config is None or config.keep_alive is None else config.keep_alive / 1e9
            busy = runner.loading or runner.claimed
            expires = ollama_api.expires_at(last_used=None if busy else runner.last_used, in_use=busy, keep_alive_seconds=keep_alive)
            models.append(ollama_api.PsModel(model.tags[0] if model.tags else runner.model_name, model.id, expires))
        reply.send_body(200, ollama_api.json_body(ollama_api.ps_body(models)), JSON)

    def _show(self, reply: Reply, body: bytes) -> None:
        request = self._parse(reply, body, "ollama.ShowRequest", _NAME_FIELDS)
        if request is None:
            return
        name = ollama_api.model_name(request)
        model = self.emulator.store.find(name)
        if model is None:
            reply.send_plain_error(404, ollama_api.show_not_found_message(name))
        else:
            reply.send_body(200, ollama_api.json_body(ollama_api.show_body(model.info())), JSON)

    @staticmethod
    def _parse(reply: Reply, body: bytes, struct: str, fields: Mapping[str, str]) -> dict[str, Any] | None:
        try:
            return ollama_api.parse_request(body, struct, fields)
        except ollama_api.OllamaRequestError as error:
            reply.send_plain_error(error.status, error.message)
            return None

    # ------------------------------------------------------------------ chat and generate

    def _configure(self, configure: dict[str, Any] | None) -> None:
        """DMR's ``configureModel``: ``ConfigureRunner`` directly (no preload), errors ignored, and a
        ``keep_alive`` it cannot parse dropped."""
        if configure is None:
            return
        status, _ = self.emulator.configure(engines_api.LLAMACPP_BACKEND, encoding.dumps(configure).encode())
        if status == 400 and "keep_alive" in configure:
            retry = {key: value for key, value in configure.items() if key != "keep_alive"}
            self.emulator.configure(engines_api.LLAMACPP_BACKEND, encoding.dumps(retry).encode())

    def _chat(self, reply: Reply, body: bytes) -> None:
        request = self._parse(reply, body, "ollama.ChatRequest", ollama_api._CHAT_FIELDS)
        if request is not None:
            plan = ollama_api.chat_plan(request)
            self._configure(plan.configure)
            self._complete(reply, plan, ollama_api.chat_chunk, ollama_api.done_chunk, ollama_api.chat_response)

    def _generate(self, reply: Reply, body: bytes) -> None:
        request = self._parse(reply, body, "ollama.GenerateRequest", ollama_api._GENERATE_FIELDS)
        if request is None:
            return
        kind = ollama_api.classify_generate(request)
        if kind == "unload":
            self.emulator.unload(engines_api.UnloadRequest(models=(ollama_api.model_name(request),)))
            reply.send_body(200, ollama_api.EMPTY_OBJECT, SNIFFED)  # Content-Type set after the status
            return
        plan = ollama_api.generate_plan(request)
        self._configure(plan.configure)
        if kind == "preload":  # DMR answers at once: the model loads on the first generation
            reply.send_body(200, ollama_api.EMPTY_OBJECT, JSON)
            return
        self._complete(reply, plan, ollama_api.generate_chunk, ollama_api.generate_done, ollama_api.generate_response)

    def _complete(
        self,
        reply: Reply,
        plan: ollama_api.ChatPlan,
        line: Callable[..., dict[str, Any]],
        done: Callable[..., dict[str, Any]],
        whole: Callable[..., dict[str, Any]],
    ) -> None:
        headers = reply.forwarded_headers(
            ("Content-Type", JSON), (request_log.REQUEST_ORIGIN_HEADER, request_log.ORIGIN_OLLAMA_COMPLETION)
        )
        chat_path = routes.ENGINES_PREFIX + routes.CHAT_COMPLETIONS
        answer = self.emulator.inference.serve(chat_path, encoding.go_json(plan.chat_body).encode(), headers)
        with answer:
            if plan.stream:
                self._stream(reply, answer, plan.model, line, done)
                return
            text = answer.text()
        if answer.status != 200:
            reply.send_body(answer.status, ollama_api.upstream_error(text, stream=False), SNIFFED)
            return
        try:
            chat = json.loads(text)
        except ValueError:
            chat = None
        if not isinstance(chat, dict):
            reply.send_plain_error(500, "Failed to parse response")
            return
        reply.send_body(200, ollama_api.json_body(whole(chat, model=plan.model, created_at=_now())), JSON)

    @staticmethod
    def _stream(
        reply: Reply, answer: Answer, model: str, line: Callable[..., dict[str, Any]], done: Callable[..., dict[str, Any]]
    ) -> None:
        """DMR's streaming writers: an error status passes with the upstream's headers and no body;
        a 200 becomes ``application/json`` NDJSON, one line per ``data:`` chunk, flushed per upstream
        write; an upstream that writes nothing (``X-Preload-Only``) gets an empty 200."""
        if answer.status != 200:
            reply.send_head(answer.status, [*answer.headers, ("Content-Length", "0")])
            return
        started = False
        pending = b""
        for data in answer:
            if not data:
                continue
            if not started:  # Go's writer sets its headers at the upstream's first write
                reply.start_chunks(200, with_headers(answer.headers, [("Content-Type", ollama_api.CHAT_STREAM_CONTENT_TYPE)]))
                started = True
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            out = []
            for raw in lines:
                text = raw.strip().decode(errors="replace")
                if not text.startswith("data: "):
                    continue
                payload = text[len("data: ") :]
                if payload == "[DONE]":
                    out.append(ollama_api.json_bytes(done(model=model, created_at=_now())))
                    continue
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    continue  # DMR logs it and goes on
                if isinstance(chunk, dict):
                    out.append(ollama_api.json_bytes(line(chunk, model=model, created_at=_now())))
            if out:
                reply.chunk(b"".join(out))
        if started:
            reply.end_chunks()
        else:  # the upstream wrote nothing (X-Preload-Only): nor does DMR
            reply.send_head(200, [*answer.headers, ("Content-Length", "0")])

    # ------------------------------------------------------------------ pull and delete

    def _pull(self, reply: Reply, body: bytes) -> None:
        request = self._parse(reply, body, "ollama.PullRequest", _NAME_FIELDS)
        if request is None:
            return
        name = ollama_api.model_name(request)
        failure_headers = [("Cache-Control", "no-cache"), ("Connection", "keep-alive")]
        store = self.emulator.store
        try:
            tag, description = store.check_pull(name)
        except PullRefused as refused:
            normalized = model_names.normalize_model_name(name)
            failure = (
                ollama_api.pull_reference_failure(normalized)
                if refused.status == 400
                else ollama_api.pull_failure_line(f"failed to pull model {encoding.go_quote(normalized)}: MANIFEST_UNKNOWN - Model not found")
            )
            reply.send_body(500, ollama_api.json_body(failure), JSON, failure_headers)
            return
        lines = store.pull(tag, description)
        try:
            try:
                first = next(lines)  # waits for a pull slot, as DMR's does
            except OSError as exc:
                reply.send_body(500, ollama_api.json_body(ollama_api.pull_failure_line(str(exc))), JSON, failure_headers)
                return
            reply.start_chunks(200, [("Content-Type", ollama_api.PULL_CONTENT_TYPE), *failure_headers])
            try:
                for progress in itertools.chain([first], lines):
                    converted = ollama_api.pull_line(progress)
                    raw = pull_stream.encode_pull_line(progress, raw_json=True)
                    reply.chunk(raw if converted is None else ollama_api.json_bytes(converted))
            except OSError as exc:
                if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    raise
                reply.chunk(ollama_api.json_bytes(ollama_api.pull_failure_line(str(exc))))
            reply.end_chunks()
        finally:
            lines.close()

    def _delete(self, reply: Reply, body: bytes) -> None:
        request = self._parse(reply, body, "ollama.DeleteRequest", _NAME_FIELDS)
        if request is None:
            return
        name = ollama_api.model_name(request)
        self.emulator.unload(engines_api.UnloadRequest(models=(name,)))
        try:
            self.emulator.store.delete(name, force=False)
        except DeleteRefused as refused:
            reply.send_plain_error(500, ollama_api.delete_failure_message(error=refused.message))
            return
        reply.send_body(200, ollama_api.EMPTY_OBJECT, JSON)

