"""DMR's own endpoints: banner, version, engines, the model store and pulls (DMR-PROTOCOL.md 1, 2, 5, 6, 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_dmr.protocol import addresses, durations, encoding, engines_api, error_bodies, model_info, model_names, proxying, pull_stream, request_log
from pytest_dmr.mock import responses
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.catalog import describe_model, model_size_bytes, pull_lines, stored_tag
from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.rules import RecordedRequest
from pytest_dmr.mock.state import MockState
from pytest_dmr.mock.streams import Delivery

if TYPE_CHECKING:
    from pytest_dmr.mock.stacks import AnyRequest

MOCK_VERSION = "v1.2.6"
"""The runner release whose behaviour the mock follows (DMR-PROTOCOL.md's snapshot)."""
LLAMACPP_VERSION = "mock"
"""What ``/engines/status`` says after ``Running: llama.cpp``: this runner's llama.cpp is the mock."""
_DISK_USAGE_LLAMACPP = 45_678_901


def root() -> Answer:
    """Go sniffs the Content-Type here (no ``http.Error``, so no ``nosniff``); no trailing newline."""
    return Answer(200, (("content-type", encoding.TEXT_PLAIN),), addresses.ROOT_BANNER.encode())


def version() -> Answer:
    return responses.management_json({"version": MOCK_VERSION})


def engines_status() -> Answer:
    statuses = {**engines_api.OTHER_BACKENDS_STATUS, engines_api.LLAMACPP_BACKEND: engines_api.llamacpp_status(LLAMACPP_VERSION)}
    return responses.raw(200, engines_api.engines_status_body(statuses), encoding.JSON_CONTENT_TYPE)


def engines_ps(runner: MockState) -> Answer:
    """Each loaded runner, its ``last_used`` on the mock's clock (never in use: a mock request is
    instant), ``keep_alive`` as configured."""
    entries = []
    runner.unload_idle_runners()
    with runner.lock:
        for name, mode in runner.loaded_runners:
            config = runner.runner_configs.get(runner.config_key(engines_api.LLAMACPP_BACKEND, name, mode))
            keep_alive = config.keep_alive if config is not None else None
            used = runner.last_used.get((name, mode))
            entries.append(engines_api.ps_entry(
                backend=engines_api.LLAMACPP_BACKEND, model_name=name, mode=mode,
                last_used=encoding.GO_ZERO_TIME if used is None else encoding.go_time(used),
                keep_alive=None if keep_alive is None else durations.format_keep_alive(keep_alive),
            ))  # fmt: skip
    return responses.management_json(entries)


def engines_df(runner: MockState) -> Answer:
    models = sum(model_size_bytes(model) for model in runner.models)
    return responses.management_json({"models_disk_usage": models, "default_backend_disk_usage": _DISK_USAGE_LLAMACPP})


def engines_unload(runner: MockState, content: bytes) -> Answer:
    """All: every runner and every stored setting go. Models: their runners go when ``backend`` is empty
    or ``llama.cpp`` (the mock's only one); their settings only when ``backend`` matches exactly."""
    if len(content) > proxying.MAX_INFERENCE_BODY:
        return responses.plain_error(400, error_bodies.REQUEST_TOO_LARGE)
    try:
        request = engines_api.parse_unload_request(content)
    except ValueError:
        return responses.plain_error(400, error_bodies.INVALID_REQUEST)
    with runner.lock:
        count = 0
        if request.all:
            count = runner.unload_runners(lambda name, mode: True)
            runner.runner_configs.clear()
        else:
            ids = {runner.resolve_id(name) for name in request.models}
            for key in [key for key in runner.runner_configs if key[0] == request.backend and key[1] in ids]:
                del runner.runner_configs[key]
            if request.backend in ("", engines_api.LLAMACPP_BACKEND):
                count = runner.unload_runners(lambda name, mode: runner.resolve_id(name) in ids)
    return responses.management_json({"unloaded_runners": count})


def configure(runner: MockState, backend: str | None, content: bytes) -> Answer:
    """``POST /engines[/{backend}]/_configure``: DMR's checks in its order, ``202``, then the preload.

    A runner of the model loaded with other settings is unloaded (the mock's runners are never busy
    between requests, so it never answers ``409 runner already active``). The preload loads the
    completion runner, as DMR's does, when inference could use the model; with a keep-alive of ``0``
    it is unloaded at once, so nothing stays in ``/engines/ps``.
    """
    backend = backend or engines_api.LLAMACPP_BACKEND
    if backend not in engines_api.KNOWN_BACKENDS:
        return responses.plain_error(404, error_bodies.BACKEND_NOT_FOUND)
    if len(content) > proxying.MAX_INFERENCE_BODY:
        return responses.plain_error(400, error_bodies.REQUEST_TOO_LARGE)
    try:
        request = engines_api.parse_configure_request(content)
    except ValueError:
        return responses.plain_error(400, error_bodies.INVALID_REQUEST)
    try:
        mode, config = request.resolve()
    except ValueError as exc:
        return responses.plain_error(500, str(exc))
    with runner.lock:
        key = runner.config_key(backend, request.model, mode)
        if runner.runner_configs.get(key) != config:
            if backend == engines_api.LLAMACPP_BACKEND:
                runner.unload_runners(lambda name, loaded: (runner.resolve_id(name), loaded) == (key[1], mode))
            runner.runner_configs[key] = config
        usable = runner.serve_any_model or runner.store.find(request.model) is not None
        if backend == engines_api.LLAMACPP_BACKEND and request.model and usable:
            runner.mark_loaded(request.model, engines_api.COMPLETION_MODE)
    return responses.empty(202)


def configurations(runner: MockState, wanted: str) -> Answer:
    """``GET /engines/_configure[?model=]``: settings of stored models only, ``Model`` their first tag."""
    wanted_id = runner.resolve_id(wanted) if wanted else None
    entries = []
    with runner.lock:
        for (backend, model_id, mode), config in runner.runner_configs.items():
            model = runner.store.find(model_id)
            if model is None or (wanted_id is not None and model_id != wanted_id):
                continue
            first_tag = model.tags[0] if model.tags else ""
            entries.append(engines_api.configure_entry(backend=backend, model=first_tag, model_id=model_id, mode=mode, config=config))
    return responses.management_json(entries)


def metrics() -> Answer:
    return responses.raw(200, proxying.NO_ACTIVE_RUNNERS_BODY, proxying.METRICS_CONTENT_TYPE)


def list_models(runner: MockState) -> Answer:
    return responses.management_json([model.to_json() for model in runner.models])


def inspect_model(runner: MockState, ref: str, *, remote: bool) -> Answer:
    if remote:  # the registry's answer (every model exists there): no tags, no partial matching
        body = (runner.store.find(ref) or describe_model(ref)).to_json()
        body.pop("tags", None)
        return responses.management_json(body)
    model = runner.store.find(ref) or runner.store.find_partial(ref)
    if model is None:
        return responses.plain_error(404, error_bodies.MODEL_NOT_FOUND)
    return responses.management_json(model.to_json())


def openai_models(runner: MockState) -> Answer:
    return responses.management_json(model_info.openai_model_list(runner.models))


def openai_model(runner: MockState, name: str) -> Answer:
    model = runner.store.find(name)
    if model is None:
        return responses.plain_error(404, error_bodies.model_not_found_message(name))
    return responses.management_json(model.to_openai())


def delete_model(runner: MockState, ref: str, *, force: bool) -> Answer:
    status, result = runner.store.delete(ref, force=force)
    if status != 200:
        return responses.plain_error(status, result)
    return responses.management_json(result)


def purge(runner: MockState) -> Answer:
    runner.store.models.clear()
    return responses.empty(200)


def pull(runner: MockState, recorded: RecordedRequest, *, fault: Fault | None, delivery: Delivery) -> Answer:
    """``POST /models/create``: progress lines and success, or one cached line, or a mid-stream error."""
    body = recorded.json
    source = body.get("from") if isinstance(body, dict) else None
    if not isinstance(body, dict) or (source is not None and not isinstance(source, str)):
        return responses.plain_error(400, error_bodies.INVALID_REQUEST_BODY)  # Go cannot decode it
    normalized = model_names.normalize_model_name(source or "")
    if not model_names.is_valid_reference(normalized):
        return responses.plain_error(400, error_bodies.INVALID_MODEL_REFERENCE)
    accept = recorded.headers.get("accept")
    raw_json = pull_stream.pull_wants_raw_json(accept)
    progress, failure = pull_progress(runner, normalized, fault=fault, delivery=delivery)
    lines = [pull_stream.encode_pull_line(line, raw_json=raw_json) for line in progress]
    if failure is not None:
        lines.append(error_bodies.plain_error_body(pull_stream.pull_failure_text(failure)))
    return responses.line_stream(lines, content_type=pull_stream.pull_content_type(accept), delivery=delivery)


def pull_progress(
    runner: MockState, normalized: str, *, fault: Fault | None, delivery: Delivery
) -> tuple[list[pull_stream.PullProgress], str | None]:
    """A pull of a valid reference: its progress lines (every layer, or one cached line, or some then
    an error line), and the error a ``Fault.pull_error`` makes it fail with (``None``: success). The
    model is stored unless the pull fails or is cut off."""
    existing = runner.store.find(normalized)
    if fault is not None and fault.kind == "pull_error":
        info = existing or describe_model(normalized)
        progress = pull_lines(info)[: fault.after] if existing is None else []
        return [*progress, pull_stream.pull_error_progress(fault.message)], fault.message
    if existing is not None:
        runner.store.attach_tag(existing, stored_tag(normalized))
        return [pull_stream.PullProgress(type="success", message=pull_stream.cached_model_message(existing.size or ""))], None
    info = describe_model(normalized)
    if delivery.cut_after is None:  # a pull cut off mid-stream stores nothing
        runner.store.add(info)
    return pull_lines(info), None


def requests_log(runner: MockState, request: AnyRequest) -> Answer:
    """``GET /engines/requests[?model=]``: the request log as JSON, or, for ``Accept:
    text/event-stream``, its event stream. The mock's stream is a snapshot: the stored records (with
    ``include_existing=true``) and ``connected``, then it ends, as no later request can reach a
    transport's reader while it reads."""
    runner.unload_idle_runners()  # DMR forgets an unloaded runner's records
    log = runner.flush_request_log()
    model = request.url.params.get("model") or None
    if not request_log.wants_event_stream(request.headers.get("accept")):
        return responses.raw(200, request_log.records_body(log.records(model)), encoding.JSON_CONTENT_TYPE)
    include = request.url.params.get("include_existing") == "true"
    headers = [(name.lower(), value) for name, value in request_log.EVENT_STREAM_HEADERS]
    return Answer(200, headers, chunks=[log.stream_start(model, include_existing=include)])
