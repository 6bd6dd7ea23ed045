"""Reranking: ``/rerank``, ``/score`` and ``/engines[/{backend}]/rerank|score``, DMR's checks, then
a reranking-mode runner that scores as :func:`pytest_dmr.protocol.rerank_api.answer` does (word
overlap, SHA-256 tiebreaks: the same scores in every process)."""

from __future__ import annotations

from typing import Any

from pytest_dmr.protocol import error_bodies, rerank_api, routes
from pytest_dmr.mock import responses
from pytest_dmr.mock.frontends import Call, View, admit, preload_only
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.state import MockState


def view(runner: MockState, method: str, path: str, body: Any, content: bytes) -> View | None:
    if path.startswith(routes.ALIAS_PREFIX + "/"):  # DMR's /v1/ alias: /v1/score is /engines/v1/score, backend "v1"
        path = "/engines" + path
    route = rerank_api.match_rerank_path(path)
    if route is None:
        return None
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    return View("rerank", "/" + route.endpoint, model, upstream=True, state=route)


def answer(runner: MockState, call: Call) -> Answer:
    route: rerank_api.RerankRoute = call.view.state
    if call.recorded.method != "POST":
        return responses.plain_error(404, error_bodies.NOT_FOUND)
    body = call.recorded.json
    refusal = admit(
        runner, call, backend=route.backend, endpoint=call.view.endpoint, body=body, size=len(call.recorded.content),
        mode=rerank_api.RERANKING_MODE,
    )  # fmt: skip
    if refusal is not None:
        return refusal
    if preload_only(call):
        return responses.empty(200)
    status, value = rerank_api.answer(route.endpoint, body, model_name=body["model"])
    found = responses.backend_json(value, status)
    url = f"/engines/{route.backend}/{route.endpoint}" if route.backend else f"/engines/{route.endpoint}"
    runner.log_exchange(call.recorded, url=url, model=body["model"], body=call.recorded.content, answer=found)
    return found
