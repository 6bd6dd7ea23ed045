"""DMR's own endpoints: banner, version, engines, the model store and pulls (DMR-PROTOCOL.md 1, 2, 5, 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from pytest_dmr import protocol
from pytest_dmr.mock import responses
from pytest_dmr.mock.catalog import describe_model, model_size_bytes, pull_lines, stored_tag
from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.streams import Delivery

if TYPE_CHECKING:
    from pytest_dmr.mock.transport import MockModelRunner

MOCK_VERSION = "v1.2.6"
"""The runner release whose behaviour the mock follows (DMR-PROTOCOL.md's snapshot)."""
LLAMACPP_VERSION = "mock"
"""What ``/engines/status`` says after ``Running: llama.cpp``: this runner's llama.cpp is the mock."""
_DISK_USAGE_LLAMACPP = 45_678_901


def root() -> httpx.Response:
    """Go sniffs the Content-Type here (no ``http.Error``, so no ``nosniff``); no trailing newline."""
    return httpx.Response(200, headers=(("content-type", protocol.TEXT_PLAIN),), content=protocol.ROOT_BANNER.encode())


def version() -> httpx.Response:
    return responses.management_json({"version": MOCK_VERSION})


def engines_status() -> httpx.Response:
    statuses = {**protocol.OTHER_BACKENDS_STATUS, protocol.LLAMACPP_BACKEND: protocol.llamacpp_status(LLAMACPP_VERSION)}
    return responses.raw(200, protocol.engines_status_body(statuses), protocol.JSON_CONTENT_TYPE)


def engines_ps(runner: MockModelRunner) -> httpx.Response:
    entries = [
        protocol.ps_entry(backend=protocol.LLAMACPP_BACKEND, model_name=name, mode=mode, last_used=protocol.GO_ZERO_TIME)
        for name, mode in runner.loaded_runners
    ]
    return responses.management_json(entries)


def engines_df(runner: MockModelRunner) -> httpx.Response:
    models = sum(model_size_bytes(model) for model in runner.models)
    return responses.management_json({"models_disk_usage": models, "default_backend_disk_usage": _DISK_USAGE_LLAMACPP})


def engines_unload(runner: MockModelRunner, body: Any) -> httpx.Response:
    if not isinstance(body, dict):
        return responses.plain_error(400, protocol.INVALID_REQUEST)
    before = len(runner.loaded_runners)
    if body.get("all") is True:
        runner.loaded_runners.clear()
    else:
        wanted = [name for name in body.get("models") or () if isinstance(name, str)]
        runner.loaded_runners[:] = [
            (name, mode) for name, mode in runner.loaded_runners if not any(protocol.same_model(name, other) for other in wanted)
        ]
    return responses.management_json({"unloaded_runners": before - len(runner.loaded_runners)})


def metrics() -> httpx.Response:
    return responses.raw(200, protocol.NO_ACTIVE_RUNNERS_BODY, protocol.METRICS_CONTENT_TYPE)


def list_models(runner: MockModelRunner) -> httpx.Response:
    return responses.management_json([model.to_json() for model in runner.models])


def inspect_model(runner: MockModelRunner, ref: str, *, remote: bool) -> httpx.Response:
    if remote:  # the registry's answer (every model exists there): no tags, no partial matching
        body = (runner.store.find(ref) or describe_model(ref)).to_json()
        body.pop("tags", None)
        return responses.management_json(body)
    model = runner.store.find(ref) or runner.store.find_partial(ref)
    if model is None:
        return responses.plain_error(404, protocol.MODEL_NOT_FOUND)
    return responses.management_json(model.to_json())


def openai_models(runner: MockModelRunner) -> httpx.Response:
    return responses.management_json(protocol.openai_model_list(runner.models))


def openai_model(runner: MockModelRunner, name: str) -> httpx.Response:
    model = runner.store.find(name)
    if model is None:
        return responses.plain_error(404, protocol.model_not_found_message(name))
    return responses.management_json(model.to_openai())


def delete_model(runner: MockModelRunner, ref: str, *, force: bool) -> httpx.Response:
    status, result = runner.store.delete(ref, force=force)
    if status != 200:
        return responses.plain_error(status, result)
    return responses.management_json(result)


def purge(runner: MockModelRunner) -> httpx.Response:
    runner.store.models.clear()
    return httpx.Response(200)


def pull(runner: MockModelRunner, request: httpx.Request, body: Any, *, fault: Fault | None, delivery: Delivery) -> httpx.Response:
    """``POST /models/create``: progress lines and success, or one cached line, or a mid-stream error."""
    source = body.get("from") if isinstance(body, dict) else None
    if not isinstance(body, dict) or (source is not None and not isinstance(source, str)):
        return responses.plain_error(400, protocol.INVALID_REQUEST_BODY)  # Go cannot decode it
    normalized = protocol.normalize_model_name(source or "")
    if not protocol.is_valid_reference(normalized):
        return responses.plain_error(400, protocol.INVALID_MODEL_REFERENCE)
    accept = request.headers.get("accept")
    raw_json = protocol.pull_wants_raw_json(accept)
    existing = runner.store.find(normalized)
    if fault is not None and fault.kind == "pull_error":
        info = existing or describe_model(normalized)
        progress = pull_lines(info)[: fault.after] if existing is None else []
        lines = [protocol.encode_pull_line(line, raw_json=raw_json) for line in progress]
        lines.append(protocol.encode_pull_line(protocol.pull_error_progress(fault.message), raw_json=raw_json))
        lines.append(protocol.plain_error_body(protocol.pull_failure_text(fault.message)))
    elif existing is not None:
        runner.store.attach_tag(existing, stored_tag(normalized))
        cached = protocol.PullProgress(type="success", message=protocol.cached_model_message(existing.size or ""))
        lines = [protocol.encode_pull_line(cached, raw_json=raw_json)]
    else:
        info = describe_model(normalized)
        lines = [protocol.encode_pull_line(line, raw_json=raw_json) for line in pull_lines(info)]
        if delivery.cut_after is None:  # a pull cut off mid-stream stores nothing
            runner.store.add(info)
    return responses.line_stream(lines, content_type=protocol.pull_content_type(accept), request=request, delivery=delivery)
