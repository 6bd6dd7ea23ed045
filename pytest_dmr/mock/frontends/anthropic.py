"""Anthropic Messages: DMR's ``/anthropic/v1/messages[/count_tokens]`` checks (Anthropic JSON errors),
and the scheduler routes ``/engines[/{backend}]/v1/messages[/count_tokens]`` and ``/v1/messages``
(DMR's plain-text errors), answered as llama.cpp's own Messages API does, from the chat core.

Token counts: ``count_tokens`` and ``usage.input_tokens`` are the chat core's prompt estimate of the
translated request; ``output_tokens`` the answer's pieces.
"""

from __future__ import annotations

from typing import Any

from pytest_dmr.protocol import anthropic_api as api
from pytest_dmr.protocol import encoding, error_bodies, openai_api, request_log, routes
from pytest_dmr.mock import responses
from pytest_dmr.mock.frontends import Call, View, admit, generate_chat, method_not_allowed, preload_only, translated_stream
from pytest_dmr.mock.inference import ChatOutcome, prompt_tokens
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.state import MockState


_MESSAGES = "/messages"
_COUNT = "/messages/count_tokens"
_ANTHROPIC_PREFIX = "/anthropic"


def view(runner: MockState, method: str, path: str, body: Any, content: bytes) -> View | None:
    if path.startswith(_ANTHROPIC_PREFIX + "/"):
        endpoint = path[len(_ANTHROPIC_PREFIX + routes.ALIAS_PREFIX) :] if path in api.ROUTES else path
        state: tuple[bool, str | None] = (True, None)
    else:
        route = routes.match_inference_path(path)
        if route is None or route.endpoint not in (_MESSAGES, _COUNT):
            return None
        endpoint, state = route.endpoint, (False, route.backend)
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    chat = None
    if isinstance(body, dict):
        try:
            chat = api.to_chat_request(body)
        except ValueError:
            pass
    return View("anthropic", endpoint, model, chat, upstream=endpoint in (_MESSAGES, _COUNT), state=state)


def answer(runner: MockState, call: Call) -> Answer:
    own_route, backend = call.view.state
    endpoint = call.view.endpoint
    origin = None
    if own_route:
        if endpoint not in (_MESSAGES, _COUNT):
            return responses.plain_error(404, error_bodies.PAGE_NOT_FOUND)
        if call.recorded.method != "POST":
            return method_not_allowed("POST")
        try:
            api.check_request(call.recorded.content, model_exists=runner.knows_model)
        except api.AnthropicError as error:
            return Answer(error.status, (("content-type", encoding.JSON_CONTENT_TYPE),), encoding.go_json_line(error.body()))
        origin = request_log.ORIGIN_ANTHROPIC_MESSAGES
    elif call.recorded.method != "POST":
        return responses.plain_error(404, error_bodies.NOT_FOUND)
    body = call.recorded.json
    refusal = admit(runner, call, backend=backend, endpoint=routes.CHAT_COMPLETIONS, body=body, size=len(call.recorded.content))
    if refusal is not None:
        return refusal
    if preload_only(call):
        return responses.empty(200)
    found = _backend_answer(runner, call)
    url = f"/engines/{backend}/v1{endpoint}" if backend else routes.ENGINES_PREFIX + endpoint
    runner.log_exchange(call.recorded, url=url, model=body["model"], body=call.recorded.content, answer=found, origin=origin)
    return found


def _backend_answer(runner: MockState, call: Call) -> Answer:
    """llama.cpp's Messages endpoints, over the chat core."""
    chat = call.view.chat
    if chat is None:  # llama.cpp's conversion failed
        return responses.backend_json(openai_api.backend_error_body(500, "'messages' is required", "server_error"), 500)
    if call.view.endpoint == _COUNT:
        return responses.backend_json(api.count_tokens_body(prompt_tokens(chat.get("messages"), str(chat.get("model") or ""))))
    outcome = generate_chat(runner, call, chat)
    if outcome.error is not None:
        return outcome.error
    if outcome.chunks is None:
        return responses.backend_json(api.message_response(outcome.completion or {}))
    return _stream(outcome, call.recorded.model or "")


def _stream(outcome: ChatOutcome, model: str) -> Answer:
    chunks = outcome.chunks or []
    writer = api.MessageStream(id=chunks[0]["id"] if chunks else "", model=model, input_tokens=outcome.prompt_tokens)
    events, delivery = translated_stream(
        outcome,
        [api.encode_event(event) for event in writer.start()],
        lambda chunk: [api.encode_event(event) for event in writer.feed(chunk)],
        lambda: [api.encode_event(event) for event in writer.finish(outcome.completion_tokens)],
    )
    return responses.event_stream(events, delivery=delivery)
