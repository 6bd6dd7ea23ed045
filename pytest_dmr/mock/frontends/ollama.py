"""Ollama's ``/api/*`` as DMR serves it (``pkg/ollama``): chat and generate over the chat core,
the model store for tags, show, pull and delete, the loaded runners for ps.

``created_at`` is the mock's clock. Content types are DMR's, quirks included: streams are
``application/json``; an unload's ``{}`` and a failed chat's body are sniffed by Go as
``text/plain; charset=utf-8`` (DMR sets the header after the status).
"""

from __future__ import annotations

from typing import Any

from pytest_dmr.protocol import encoding, engines_api, error_bodies, model_names, request_log, routes
from pytest_dmr.protocol import ollama_api as api
from pytest_dmr.mock import management, responses
from pytest_dmr.mock.frontends import Call, View, admit, generate_chat, method_not_allowed, preload_only, translated_stream
from pytest_dmr.mock.inference import openai_chat_answer
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.state import MockState


_PREFIX = "/api/"
_PATHS = {path: method for method, path in api.ROUTES}
_NAME_FIELDS = {"name": "string", "model": "string"}
_JSON = (("content-type", encoding.JSON_CONTENT_TYPE),)
_SNIFFED = (("content-type", encoding.TEXT_PLAIN),)


def view(runner: MockState, method: str, path: str, body: Any, content: bytes) -> View | None:
    if not path.startswith(_PREFIX):
        return None
    model = api.model_name(body) or None if isinstance(body, dict) else None
    if method != _PATHS.get(path) or path not in ("/api/chat", "/api/generate"):
        return View("ollama", path, model if isinstance(model, str) else None)
    try:
        if path == "/api/chat":
            request = api.parse_request(content, "ollama.ChatRequest", api._CHAT_FIELDS)
            plan = api.chat_plan(request)
        else:
            request = api.parse_request(content, "ollama.GenerateRequest", api._GENERATE_FIELDS)
            if api.classify_generate(request) != "generate":
                return View("ollama", path, api.model_name(request), state=request)
            plan = api.generate_plan(request)
    except api.OllamaRequestError as error:
        return View("ollama", path, state=error)
    return View("ollama", routes.CHAT_COMPLETIONS, plan.model, plan.chat_body, upstream=True, state=plan)


def answer(runner: MockState, call: Call) -> Answer:
    path, method = call.path, call.recorded.method
    if path not in _PATHS:
        return responses.plain_error(404, error_bodies.PAGE_NOT_FOUND)
    if method != _PATHS[path] and (method, _PATHS[path]) != ("HEAD", "GET"):
        return method_not_allowed("GET, HEAD" if _PATHS[path] == "GET" else _PATHS[path])
    state = call.view.state
    if isinstance(state, api.OllamaRequestError):
        return responses.plain_error(400, state.message)
    if isinstance(state, api.ChatPlan):
        return _chat(runner, call, state, generate=path == "/api/generate")
    if path == "/api/version":
        return Answer(200, _JSON, api.json_body(api.VERSION_BODY))
    if path == "/api/tags":
        return Answer(200, _JSON, api.json_body(api.tags_body(runner.models)))
    if path == "/api/ps":
        return Answer(200, _JSON, api.json_body(api.ps_body(_running(runner))))
    if path == "/api/generate":
        return _preload_or_unload(runner, state)
    try:
        request = api.parse_request(call.recorded.content, "ollama.NamedRequest", _NAME_FIELDS)
    except api.OllamaRequestError as error:
        return responses.plain_error(400, error.message)
    name = api.model_name(request)
    if path == "/api/show":
        info = runner.store.find(name)
        if info is None:
            return responses.plain_error(404, api.show_not_found_message(name))
        return Answer(200, _JSON, api.json_body(api.show_body(info)))
    if path == "/api/pull":
        return _pull(runner, call, name)
    return _delete(runner, name)


def _running(runner: MockState) -> list[api.PsModel]:
    """The loaded runners, named by their model's first tag, each expiring its keep-alive after its
    last use on the mock's clock (``mock.clock.advance`` moves it; a runner past it is unloaded)."""
    models = []
    runner.unload_idle_runners()
    with runner.lock:
        for name, mode in runner.loaded_runners:
            info = runner.store.find(name)
            if info is None:
                models.append(api.PsModel(name, name))
                continue
            config = runner.runner_configs.get(runner.config_key(engines_api.LLAMACPP_BACKEND, name, mode))
            keep_alive = None if config is None or config.keep_alive is None else config.keep_alive / 1e9
            expires = api.expires_at(last_used=runner.last_used.get((name, mode)), in_use=False, keep_alive_seconds=keep_alive)
            models.append(api.PsModel(info.tags[0] if info.tags else name, info.id, expires))
    return models


def _configure(runner: MockState, body: dict[str, Any] | None) -> None:
    """DMR's ``configureModel``: errors ignored, a ``keep_alive`` it cannot parse dropped."""
    if body is None:
        return
    if management.configure(runner, None, encoding.dumps(body).encode()).status != 202 and "keep_alive" in body:
        _configure(runner, {key: value for key, value in body.items() if key != "keep_alive"} if len(body) > 2 else None)


def _chat(runner: MockState, call: Call, plan: api.ChatPlan, *, generate: bool) -> Answer:
    _configure(runner, plan.configure)
    chat = plan.chat_body
    created_at = encoding.go_time(runner.clock.now())
    refusal = admit(runner, call, backend=None, endpoint=routes.CHAT_COMPLETIONS, body=chat, size=len(encoding.dumps(chat)))
    if refusal is not None:
        return _failed(refusal, stream=plan.stream)
    if preload_only(call):  # the scheduler wrote nothing: an empty stream, or a body DMR cannot parse
        return responses.empty(200) if plan.stream else responses.plain_error(500, "Failed to parse response")
    outcome = generate_chat(runner, call, chat)
    runner.log_exchange(
        call.recorded, url=routes.ENGINES_PREFIX + routes.CHAT_COMPLETIONS, model=plan.model, body=encoding.dumps(chat),
        answer=openai_chat_answer(outcome), origin=request_log.ORIGIN_OLLAMA_COMPLETION,
    )  # fmt: skip
    if outcome.error is not None:
        return _failed(outcome.error, stream=plan.stream)
    model = plan.model
    if outcome.chunks is None:
        completion = outcome.completion or {}
        whole = api.generate_response if generate else api.chat_response
        return Answer(200, _JSON, api.json_body(whole(completion, model=model, created_at=created_at)))
    line = api.generate_chunk if generate else api.chat_chunk
    done = api.generate_done if generate else api.done_chunk
    lines, delivery = translated_stream(
        outcome,
        [],
        lambda chunk: [api.json_bytes(line(chunk, model=model, created_at=created_at))],
        lambda: [api.json_bytes(done(model=model, created_at=created_at))],
    )
    headers = (("content-type", api.CHAT_STREAM_CONTENT_TYPE), *responses.UPSTREAM_STREAM_HEADERS)
    return Answer(200, headers, chunks=lines, delivery=delivery)


def _failed(upstream: Answer, *, stream: bool) -> Answer:
    """The upstream refused: streamed, its status and headers and no body; else its status and
    ``{"error": message}`` (or its body), sniffed as plain text."""
    if stream:
        return Answer(upstream.status, [(name, value) for name, value in upstream.headers if name != "content-length"])
    body = api.upstream_error((upstream.body or b"".join(upstream.chunks or ())).decode(errors="replace"), stream=False)
    return Answer(upstream.status, _SNIFFED if body else (), body)


def _preload_or_unload(runner: MockState, request: dict[str, Any]) -> Answer:
    name = api.model_name(request)
    if api.classify_generate(request) == "unload":
        unloaded = management.engines_unload(runner, encoding.dumps({"models": [name]}).encode())
        return Answer(unloaded.status, _SNIFFED, api.EMPTY_OBJECT if unloaded.status == 200 else unloaded.body)
    _configure(runner, api.configure_body(request))
    return Answer(200, _JSON, api.EMPTY_OBJECT)


def _pull(runner: MockState, call: Call, name: str) -> Answer:
    normalized = model_names.normalize_model_name(name)
    if not model_names.is_valid_reference(normalized):
        return Answer(500, _JSON, api.json_body(api.pull_reference_failure(normalized)))
    progress, failure_text = management.pull_progress(runner, normalized, fault=call.fault, delivery=call.delivery)
    lines = []
    for item in progress:
        line = api.pull_line(item)
        lines.append(api.json_bytes(line) if line is not None else encoding.json_line(item.to_json()))
    if failure_text is not None:
        lines.append(api.json_bytes(api.pull_failure_line(failure_text)))
    return responses.line_stream(lines, content_type=api.PULL_CONTENT_TYPE, delivery=call.delivery)


def _delete(runner: MockState, name: str) -> Answer:
    unloaded = management.engines_unload(runner, encoding.dumps({"models": [name]}).encode())
    if not 200 <= unloaded.status < 300:
        return responses.plain_error(unloaded.status, api.delete_failure_message(unload_status=unloaded.status))
    status, result = runner.store.delete(name, force=False)
    if status != 200:
        return responses.plain_error(500, api.delete_failure_message(error=str(result)))
    return Answer(200, _JSON, api.EMPTY_OBJECT)
