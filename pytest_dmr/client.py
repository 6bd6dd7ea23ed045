"""Model management on a runner: is it there, which models it has, pull, inspect, delete; and its
engines: which models are loaded, disk usage, unloading, per-model settings (keep-alive).

:class:`ModelRunnerClient` (sync) and :class:`AsyncModelRunnerClient` (async) share everything but
the sending: each operation is written once, as a generator that yields the calls it needs and
receives their responses (``_Operations``); the two clients only drive those generators with
``httpx2.Client`` or ``httpx2.AsyncClient``. Pulls stream their progress lines through
``_PullReader``, also shared.

Bounds: ``timeout`` bounds each whole call (a pull's is ``pull(deadline=...)``, unbounded by
default: a large model takes as long as it takes, each read still waits at most ``timeout``); a
line of a pull's progress longer than ``max_line_bytes`` raises
:class:`~pytest_dmr.errors.ResponseTooLargeError`; a runner that stops accepting connections
after having answered opens the circuit breaker every client and adapter on its URL share
(:class:`~pytest_dmr.errors.RunnerUnavailableError` at once for 30 s). Model names go into paths
only when they are model references: a traversal (``ai/x/../../y``) is a
:class:`~pytest_dmr.errors.ConfigurationError`, never another model's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx2

from pytest_dmr import _http, errors
from pytest_dmr._http import Deadline
from pytest_dmr.protocol import _shapes, addresses, durations, encoding, engines_api, error_bodies, model_info, model_names, pull_stream, routes
from pytest_dmr.protocol.addresses import RunnerAddress
from pytest_dmr.protocol.engines_api import DiskUsage, RunningModel
from pytest_dmr.protocol.model_info import ModelInfo
from pytest_dmr.protocol.pull_stream import PullProgress
from pytest_dmr.redaction import redact_url

__all__ = ["AsyncModelRunnerClient", "DiskUsage", "ModelRunnerClient", "PullResult", "RunningModel"]

T = TypeVar("T")
ProgressCallback = Callable[[PullProgress], None]
KeepAlive = str | float | datetime.timedelta
"""A keep-alive: a Go duration string (``"10m"``, ``"1h30m"``, ``"0"``, ``"-1"``), seconds, or a timedelta."""


def keep_alive_text(value: KeepAlive) -> str:
    """The ``keep_alive`` string DMR takes: ``0`` unloads a model as soon as it is idle, a negative
    value keeps it loaded forever (``"-1"``). :class:`~pytest_dmr.errors.ConfigurationError` for a
    string that is not a Go duration."""
    if isinstance(value, str):
        try:
            durations.parse_keep_alive(value)
        except ValueError as exc:
            raise errors.ConfigurationError(
                f"keep_alive {value!r} is not a duration DMR understands ({exc})",
                hint='Give a Go duration such as "30s", "10m" or "1h30m", "0" to unload when idle, "-1" to never unload, '
                "or a number of seconds",
            ) from None
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, datetime.timedelta)):
        raise errors.ConfigurationError(
            f"keep_alive must be a duration string, a number of seconds or a timedelta, not {value!r}",
            hint='For example keep_alive="10m", keep_alive=600 or keep_alive=timedelta(minutes=10)',
        )
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if seconds < 0:
        return "-1"
    if not seconds * 1e9 < durations.MAX_GO_DURATION:  # NaN and infinity included
        raise errors.ConfigurationError(
            f"keep_alive {value!r} is not a duration DMR can hold (at most about 292 years)",
            hint='Give a number of seconds, or keep_alive="-1" to never unload the model when idle',
        )
    return "0" if seconds == 0 else durations.format_go_duration(round(seconds * 1e9))


_NOT_IN_A_REFERENCE = re.compile(r"[^A-Za-z0-9._:/@+-]")


def model_path(name: str) -> str:
    """``/models/{name}`` for a model reference (``ai/smollm2:latest``, ``hf.co/org/m``, an ID);
    :class:`~pytest_dmr.errors.ConfigurationError` naming the name for anything that would point
    the request elsewhere: ``.`` or ``..`` segments, backslashes, ``%`` escapes (an encoded slash),
    control characters, empty segments, or any other character no reference contains."""
    segments = name.split("/") if isinstance(name, str) else []
    if not isinstance(name, str) or not name:
        problem = "it is empty"
    elif any(segment in (".", "..") for segment in segments):
        problem = "it has a '.' or '..' segment (a path traversal)"
    elif "\\" in name:
        problem = "it has a backslash"
    elif "%" in name:
        problem = "it has a '%' (an encoded character, such as an encoded slash)"
    elif any(ord(char) < 32 or ord(char) == 127 for char in name):
        problem = "it has a control character"
    elif "" in segments:
        problem = "it has an empty segment (a doubled slash, or a slash at an end)"
    elif (found := _NOT_IN_A_REFERENCE.search(name)) is not None:
        problem = f"it has {found.group()!r}, which no model reference contains"
    else:
        return routes.management_model_path(name)
    raise errors.ConfigurationError(
        f"the model name {name!r} cannot be used in a request path: {problem}",
        hint="Give a model reference such as ai/smollm2, ai/smollm2:360M-Q4_K_M, hf.co/org/model or a model ID",
    )


@dataclass(frozen=True)
class PullResult:
    """How a pull ended: ``cached`` when the runner already had the model (no download)."""

    model: str
    cached: bool
    total: int
    message: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Call:
    """One request an operation needs, relative to the runner's root URL."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    model: str | None = None
    """The model the call is about, for errors."""


Operation = Generator[_Call, httpx2.Response, T]
"""Yields calls, receives their (read) responses, returns the result. Transport failures are
thrown into the generator as :class:`~pytest_dmr.errors.DMRError` at the ``yield``."""


class _Operations:
    """Request building and response interpretation for every management call, sync or async."""

    def __init__(self, address: RunnerAddress) -> None:
        self.address = address

    @property
    def runner_url(self) -> str:
        return self.address.root

    def _status_error(self, response: httpx2.Response, model: str | None = None) -> errors.RunnerHTTPError:
        return _http.status_error(response, runner_url=self.runner_url, model=model)

    def _json(self, response: httpx2.Response, what: str, model: str | None = None) -> Any:
        return _http.decode_json(response, what=what, runner_url=self.runner_url, model=model)

    def _read(self, reader: Callable[[Any], T], value: Any, model: str | None = None) -> T:
        """``reader(value)`` (a protocol reader), its errors naming the runner and the model."""
        try:
            return reader(value)
        except errors.MalformedResponseError as exc:
            raise _http.naming(exc, runner_url=self.runner_url, model=model) from exc

    def _texts(self, value: Mapping[str, Any], what: str, model: str | None = None) -> dict[str, str]:
        """An object of strings (``/engines/status``, a delete's actions), else a malformed answer."""
        return self._read(lambda body: {key: _shapes.text(item, what) for key, item in body.items()}, value, model)

    def is_model_runner(self) -> Operation[bool]:
        try:
            response = yield _Call("GET", routes.ROOT_PATH)
        except errors.DMRError:
            return False
        return response.status_code == 200 and response.text.startswith(addresses.ROOT_BANNER)

    def is_running(self) -> Operation[bool]:
        if (yield from self.is_model_runner()):
            return True
        try:
            response = yield _Call("GET", self.address.api_prefix + routes.MODELS)
        except errors.DMRError:
            return False
        if response.status_code != 200:
            return False
        try:
            body = encoding.loads(response.content)
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("data"), list)

    def engines_status(self) -> Operation[dict[str, str]]:
        response = yield _Call("GET", routes.ENGINES_STATUS_PATH)
        if response.is_error:
            raise self._status_error(response)
        body = self._json(response, "GET /engines/status")
        if not isinstance(body, dict):
            raise self._not_a_model_runner("GET /engines/status", response)
        return self._texts(body, "a backend's status")

    def list_models(self) -> Operation[list[ModelInfo]]:
        response = yield _Call("GET", routes.MANAGEMENT_MODELS_PATH)
        if response.status_code in (404, 405):
            raise self._not_a_model_runner("GET /models", response)
        if response.is_error:
            raise self._status_error(response)
        try:
            body = encoding.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, list):
            raise self._not_a_model_runner("GET /models", response)
        return [self._read(ModelInfo.from_json, entry) for entry in body]

    def _not_a_model_runner(
        self, what: str, response: httpx2.Response, model: str | None = None
    ) -> errors.NotAModelRunnerError:
        preview = _http.preview(response.content, 200).strip()[:80]
        return errors.NotAModelRunnerError(
            f"the server answered {what} with {response.status_code} {preview!r}: it is not a Docker Model Runner "
            "(no model management API)",
            runner_url=self.runner_url,
            model=model,
            hint="Point the URL at Docker Model Runner (e.g. http://localhost:12434); a bare llama.cpp or other "
            "OpenAI-compatible server only supports inference and list_openai_models()",
        )

    def list_openai_models(self) -> Operation[list[str]]:
        response = yield _Call("GET", self.address.api_prefix + routes.MODELS)
        if response.is_error:
            raise self._status_error(response)
        body = self._json(response, f"GET {self.address.api_prefix}/models")
        return self._read(model_info.model_ids_from_openai_list, body)

    def inspect(self, name: str) -> Operation[ModelInfo]:
        response = yield _Call("GET", model_path(name), model=name)
        if response.status_code == 404:
            error = self._status_error(response, model=name)
            if not isinstance(error, errors.ModelNotFoundError):
                error = errors.ModelNotFoundError(
                    f"the runner does not have this model (404: {error.body.strip()})",
                    status_code=404,
                    body=error.body,
                    runner_url=self.runner_url,
                    model=name,
                    hint=f"Pull it first: `docker model pull {name}`, or run pytest with --dmr-pull",
                )
            raise error
        if response.is_error:
            raise self._status_error(response, model=name)
        body = self._json(response, f"GET /models/{name}", model=name)
        if not isinstance(body, Mapping):
            raise self._not_a_model_runner(f"GET /models/{name}", response, model=name)
        return self._read(ModelInfo.from_json, body, model=name)

    def has_model(self, name: str) -> Operation[bool]:
        """Compares canonical names, so ``smollm2`` matches ``docker.io/ai/smollm2:latest`` and ``ai/smollm2:latest``."""
        try:
            models = yield from self.list_models()
        except errors.NotAModelRunnerError:
            ids = yield from self.list_openai_models()
            return any(model_names.same_model(model_id, name) for model_id in ids)
        return any(model.matches(name) for model in models)

    def _engines_json(self, response: httpx2.Response, what: str, model: str | None = None) -> Any:
        """The JSON body of an answer from DMR's own API; a 404/405 that is not DMR's own error means the
        server has no such API (a bare llama.cpp or another OpenAI-compatible server)."""
        if response.status_code in (404, 405) and error_bodies.BACKEND_NOT_FOUND not in response.text:
            raise self._not_a_model_runner(what, response, model)
        if response.is_error:
            raise self._status_error(response, model=model)
        try:
            return encoding.loads(response.content)
        except ValueError:
            raise self._not_a_model_runner(what, response, model) from None

    def version(self) -> Operation[str]:
        response = yield _Call("GET", routes.VERSION_PATH)
        body = self._engines_json(response, "GET /version")
        if not isinstance(body, Mapping) or not isinstance(body.get("version"), str):
            raise self._not_a_model_runner("GET /version", response)
        return str(body["version"])

    def running_models(self) -> Operation[list[RunningModel]]:
        response = yield _Call("GET", routes.ENGINES_PS_PATH)
        body = self._engines_json(response, "GET /engines/ps")
        if not isinstance(body, list):
            raise self._not_a_model_runner("GET /engines/ps", response)
        return [self._read(RunningModel.from_json, entry) for entry in body]

    def disk_usage(self) -> Operation[DiskUsage]:
        response = yield _Call("GET", routes.ENGINES_DF_PATH)
        body = self._engines_json(response, "GET /engines/df")
        try:
            return DiskUsage.from_json(body)
        except (KeyError, TypeError, ValueError):
            raise self._not_a_model_runner("GET /engines/df", response) from None

    def unload(self, request: engines_api.UnloadRequest) -> Operation[int]:
        response = yield _Call("POST", routes.ENGINES_UNLOAD_PATH, json=request.to_json())
        body = self._engines_json(response, "POST /engines/unload")
        count = body.get("unloaded_runners") if isinstance(body, Mapping) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise self._not_a_model_runner("POST /engines/unload", response)
        return count

    def configure(self, request: engines_api.ConfigureRequest, backend: str | None) -> Operation[None]:
        path = routes.engines_configure_path(backend)
        response = yield _Call("POST", path, json=request.to_json(), model=request.model)
        if response.status_code == 409:
            raise errors.RunnerHTTPError(
                f"the runner refused the new settings (409: {_http.preview(response.content, 500).strip()})",
                status_code=409,
                body=response.text,
                runner_url=self.runner_url,
                model=request.model,
                hint="A request is using the model with its current settings: configure it before using it, "
                "or retry once that request has finished",
            )
        if response.status_code == 404 and error_bodies.BACKEND_NOT_FOUND in response.text:
            raise errors.BackendUnavailableError(
                f"the runner has no backend {backend!r} (404: {_http.preview(response.content, 500).strip()})",
                status_code=404,
                body=response.text,
                runner_url=self.runner_url,
                model=request.model,
                hint=f"Use one of {', '.join(engines_api.KNOWN_BACKENDS)}, or leave backend out for llama.cpp",
            )
        if response.is_error and response.status_code not in (404, 405):
            raise self._status_error(response, model=request.model)
        if response.status_code != 202:  # DMR's only success; a 404/405 or a 200 page: another server
            raise self._not_a_model_runner(f"POST {path}", response, request.model)

    def delete(self, name: str, force: bool) -> Operation[list[dict[str, str]]]:
        params = {"force": "true"} if force else None
        response = yield _Call("DELETE", model_path(name), params=params, model=name)
        if response.status_code == 409:
            raise errors.RunnerHTTPError(
                f"the runner refused to delete the model (409: {_http.preview(response.content, 500).strip()})",
                status_code=409,
                body=response.text,
                runner_url=self.runner_url,
                model=name,
                hint="The model has several tags: delete them one by one, or pass force=True",
            )
        if response.is_error:
            raise self._status_error(response, model=name)
        if not response.content.strip():
            return []
        body = self._json(response, f"DELETE /models/{name}", model=name)
        if not isinstance(body, list):
            return []
        return [self._texts(entry, "a delete's action", model=name) for entry in body if isinstance(entry, Mapping)]


_PULL_STATUS_HINTS = {
    400: "Check the model reference: e.g. ai/smollm2 or ai/smollm2:360M-Q4_K_M",
    401: "The registry refused access: the model may not exist, or it needs a login (`docker login`)",
    404: "Check the name: Docker Hub's models live under ai/ (https://hub.docker.com/u/ai)",
}


@dataclass
class _PullReader:
    """Reads a pull's response line by line: progress to the callback, errors and the outcome kept."""

    name: str
    runner_url: str
    progress: ProgressCallback | None = None
    escaped: bool = False
    lines: int = 0
    total: int = 0
    message: str = ""
    cached: bool = False
    succeeded: bool = False
    error: str | None = None
    error_details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return model_names.normalize_model_name(self.name) or self.name

    def call(self) -> _Call:
        return _Call(
            "POST",
            routes.MODELS_CREATE_PATH,
            json={"from": self.name},
            headers={"Accept": encoding.JSON_CONTENT_TYPE},
            model=self.model,
        )

    def start(self, response: httpx2.Response) -> None:
        """Check the status (the body must have been read when it is an error) and the content type."""
        if response.is_error:
            text = _http.preview(response.content, 500).strip()
            raise errors.PullError(
                f"the runner refused to pull the model ({response.status_code}: {text or '(empty body)'})",
                runner_url=self.runner_url,
                model=self.model,
                hint=_PULL_STATUS_HINTS.get(
                    response.status_code, "Check the runner's logs (`docker model logs`) and its network access"
                ),
            )
        content_type = response.headers.get("content-type", "")
        self.escaped = not content_type.startswith(encoding.JSON_CONTENT_TYPE)

    def feed(self, line: str) -> None:
        progress = pull_stream.parse_pull_line(line, escaped=self.escaped)
        if progress is None:
            if self.error is not None and line.strip():
                self.error_details.append(pull_stream.html_unescape(line.strip()) if self.escaped else line.strip())
            return
        self.lines += 1
        self.total = max(self.total, progress.total)
        if self.progress is not None:
            self.progress(progress)
        if progress.type == "error":
            self.error = progress.message or "unknown error"
        elif progress.type == "warning":
            self.warnings.append(progress.message)
        elif progress.type == "success":
            self.succeeded = True
            self.message = progress.message
            self.cached = progress.message.startswith(pull_stream.cached_model_message(""))

    def interrupted(self, exc: BaseException, timeout: float | None = None) -> errors.DMRError:
        """A transport failure: mid-pull, a :class:`PullError`; before any line, the usual mapping."""
        if self.lines == 0:
            return _http.transport_error(exc, runner_url=self.runner_url, model=self.model, timeout=timeout)
        return errors.PullError(
            f"the pull stopped after {self.lines} progress lines: the connection was lost ({type(exc).__name__})",
            runner_url=self.runner_url,
            model=self.model,
            hint="Retry the pull; the runner keeps the layers it already downloaded",
        )

    def lines_of(self, max_line_bytes: int) -> _http.LineSplitter:
        return _http.LineSplitter(max_line_bytes, runner_url=self.runner_url, model=self.model)

    def timed_out(self, deadline: Deadline) -> errors.RunnerTimeoutError:
        return deadline.error("the pull did not finish", runner_url=self.runner_url, model=self.model,
                              detail=f" ({self.lines} progress lines received)")

    def finish(self) -> PullResult:
        if self.error is not None:
            detail = f" ({'; '.join(self.error_details)})" if self.error_details else ""
            raise errors.PullError(
                f"the runner reported an error while pulling: {self.error}{detail}",
                runner_url=self.runner_url,
                model=self.model,
                hint="Check the runner's disk space and network access, then retry",
            )
        if not self.succeeded:
            raise errors.PullError(
                f"the pull ended after {self.lines} progress lines without the runner reporting success",
                runner_url=self.runner_url,
                model=self.model,
                hint="Retry the pull; check the runner's logs (`docker model logs`) if it happens again",
            )
        return PullResult(self.model, self.cached, self.total, self.message, tuple(self.warnings))


_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _read_response(response: httpx2.Response, body: bytes) -> httpx2.Response:
    """A closed, read copy of a streamed ``response`` holding its (decoded) ``body``."""
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _BODY_HEADERS]
    return httpx2.Response(response.status_code, headers=headers, content=body, request=response.request)


class _ClientBase:
    def __init__(
        self,
        base_url: str | None,
        timeout: float,
        headers: Mapping[str, str] | None,
        transport: object | None,
        max_line_bytes: int,
    ) -> None:
        self.address = addresses.parse_runner_url(base_url or _http.default_base_url(transport))
        self.timeout = _http.check_seconds(timeout, "timeout")
        self.max_line_bytes = _http.check_limit(max_line_bytes, "max_line_bytes")
        self._operations = _Operations(self.address)
        self._headers = {"User-Agent": _http.user_agent(), **(headers or {})}
        self._breaker = _http.breaker_for(self.address.root, transport)

    @property
    def base_url(self) -> str:
        return self.address.root

    def _url(self, call: _Call) -> str:
        return self.address.root + call.path

    def _mapped(self, exc: BaseException, call: _Call) -> errors.DMRError:
        """The error for a failed send; counted by the breaker, which may now be open (then its error)."""
        self._breaker.failed(exc)
        try:
            self._breaker.check(call.model)
        except errors.RunnerUnavailableError as gone:
            return gone
        return _http.transport_error(exc, runner_url=self.address.root, model=call.model, timeout=self.timeout)

    def _request(self, client: httpx2.Client | httpx2.AsyncClient, call: _Call, deadline: Deadline) -> httpx2.Request:
        self._breaker.check(call.model)
        return client.build_request(call.method, self._url(call), json=call.json, params=call.params,
                                    headers=call.headers, timeout=deadline.timeouts(self.timeout))

    def _too_slow(self, call: _Call, deadline: Deadline) -> errors.RunnerTimeoutError:
        return deadline.error("the runner did not answer", runner_url=self.address.root, model=call.model)

    @staticmethod
    def _deadline(seconds: float | None) -> Deadline | None:
        return None if seconds is None else Deadline(_http.check_seconds(seconds, "deadline"))

    @staticmethod
    def _unload_request(models: str | Iterable[str] | None, everything: bool, backend: str) -> engines_api.UnloadRequest:
        names = (models,) if isinstance(models, str) else tuple(models or ())
        if not names and not everything:
            raise errors.ConfigurationError(
                "unload() was given no model to unload", hint="Pass the models (unload(['ai/smollm2'])) or all=True"
            )
        return engines_api.UnloadRequest(all=everything, backend=backend, models=names)

    @staticmethod
    def _configure_request(
        model: str,
        keep_alive: KeepAlive | None,
        context_size: int | None,
        mode: str | None,
        runtime_flags: Sequence[str] | None,
    ) -> engines_api.ConfigureRequest:
        if not isinstance(model, str) or not model.strip():
            raise errors.ConfigurationError("configure() needs a model name", hint="For example configure('ai/smollm2', ...)")
        if context_size is not None and (isinstance(context_size, bool) or not isinstance(context_size, int)
                                         or not 0 < context_size < 2**31):  # fmt: skip
            raise errors.ConfigurationError(
                f"context_size must be a positive number of tokens, not {context_size!r}", model=model,
                hint="For example context_size=4096",
            )  # fmt: skip
        if mode is not None and mode not in engines_api.BACKEND_MODES:
            raise errors.ConfigurationError(
                f"mode {mode!r} is not one of DMR's runner modes", model=model,
                hint=f"Use one of {', '.join(engines_api.BACKEND_MODES)}",
            )  # fmt: skip
        if isinstance(runtime_flags, str):
            raise errors.ConfigurationError(
                "runtime_flags must be a list of flags, not one string", model=model,
                hint=f"For example runtime_flags={runtime_flags.split()!r}",
            )  # fmt: skip
        config = engines_api.RunnerConfig(
            context_size=context_size,
            runtime_flags=tuple(runtime_flags or ()),
            keep_alive=None if keep_alive is None else durations.parse_keep_alive(keep_alive_text(keep_alive)),
        )
        return engines_api.ConfigureRequest(model=model, mode=mode, config=config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.address.root)!r})"


class ModelRunnerClient(_ClientBase):
    """Model management on a runner, synchronously. Use it as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx2.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_line_bytes: int = _http.MAX_LINE_BYTES,
    ) -> None:
        super().__init__(base_url, timeout, headers, transport, max_line_bytes)
        self._http = httpx2.Client(transport=transport, **_http.client_options(self.address, self.timeout, self._headers))

    def _send(self, call: _Call, deadline: Deadline) -> httpx2.Response:
        """Send ``call`` and stream its answer in, checking ``deadline`` between reads (each read
        waits at most what was left of it when the request went out); the response is open."""
        request = self._request(self._http, call, deadline)
        try:
            response = self._http.send(request, stream=True)
        except _http.http_errors() as exc:
            raise self._mapped(exc, call) from exc
        self._breaker.succeeded()
        return response

    def _receive(self, call: _Call, deadline: Deadline) -> httpx2.Response:
        """The whole answer to ``call`` within ``deadline``."""
        response = self._send(call, deadline)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if deadline.expired():
                    raise self._too_slow(call, deadline)
        except _http.http_errors() as exc:
            raise _http.transport_error(exc, runner_url=self.address.root, model=call.model, timeout=self.timeout) from exc
        finally:
            response.close()
        return _read_response(response, bytes(body))

    def _run(self, operation: Operation[T]) -> T:
        deadline = Deadline(self.timeout)
        response: httpx2.Response | None = None
        failure: errors.DMRError | None = None
        while True:
            try:
                call = operation.throw(failure) if failure is not None else operation.send(response)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                response, failure = self._receive(call, deadline), None
            except errors.DMRError as exc:
                response, failure = None, exc

    def is_running(self) -> bool:
        """Whether a runner (or any OpenAI-compatible server) answers at the URL. Never raises."""
        return self._run(self._operations.is_running())

    def is_model_runner(self) -> bool:
        """Whether ``GET /`` answers with Docker Model Runner's banner. Never raises."""
        return self._run(self._operations.is_model_runner())

    def engines_status(self) -> dict[str, str]:
        """``GET /engines/status``: each backend's status line (``{"llama.cpp": "Running: ..."}``)."""
        return self._run(self._operations.engines_status())

    def list_models(self) -> list[ModelInfo]:
        """``GET /models``; :class:`~pytest_dmr.errors.NotAModelRunnerError` on a server without that API."""
        return self._run(self._operations.list_models())

    def list_openai_models(self) -> list[str]:
        """The ids of ``GET {api_prefix}/models`` (works on a bare llama.cpp server too)."""
        return self._run(self._operations.list_openai_models())

    def inspect(self, name: str) -> ModelInfo:
        """``GET /models/{name}``; :class:`~pytest_dmr.errors.ModelNotFoundError` when absent."""
        return self._run(self._operations.inspect(name))

    def has_model(self, name: str) -> bool:
        return self._run(self._operations.has_model(name))

    def delete(self, name: str, *, force: bool = False) -> list[dict[str, str]]:
        """``DELETE /models/{name}``: the actions taken, e.g. ``[{"Untagged": ...}, {"Deleted": ...}]``."""
        return self._run(self._operations.delete(name, force))

    def version(self) -> str:
        """``GET /version``: the runner's release, e.g. ``"v1.2.6"``."""
        return self._run(self._operations.version())

    def running_models(self) -> list[RunningModel]:
        """``GET /engines/ps``: the models loaded (or loading) now, one record per runner (model and mode)."""
        return self._run(self._operations.running_models())

    def disk_usage(self) -> DiskUsage:
        """``GET /engines/df``: bytes used by the model store and by the default backend."""
        return self._run(self._operations.disk_usage())

    def unload(self, models: str | Iterable[str] | None = None, *, all: bool = False, backend: str = "") -> int:  # noqa: A002
        """``POST /engines/unload``: unload these models (every mode), or ``all``; returns how many runners
        were unloaded (``0`` is normal: nothing was loaded, or it is serving a request). ``all`` also forgets
        every :meth:`configure` setting; for ``models``, their settings go only when ``backend`` names
        theirs exactly (``"llama.cpp"``), as DMR does."""
        return self._run(self._operations.unload(self._unload_request(models, all, backend)))

    def configure(
        self,
        model: str,
        *,
        keep_alive: KeepAlive | None = None,
        context_size: int | None = None,
        mode: str | None = None,
        runtime_flags: Sequence[str] | None = None,
        backend: str | None = None,
    ) -> None:
        """``POST /engines/_configure``: the settings the model's runner is loaded with, then a preload.

        ``keep_alive``: how long the model stays loaded when idle (``"10m"``, ``600``, a timedelta;
        ``0``: unloaded as soon as idle; negative or ``"-1"``: never). A runner with other settings
        that is serving a request makes the runner answer ``409``
        (:class:`~pytest_dmr.errors.RunnerHTTPError`).
        """
        request = self._configure_request(model, keep_alive, context_size, mode, runtime_flags)
        self._run(self._operations.configure(request, backend))

    def pull(
        self, name: str, *, progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> PullResult:
        """Pull a model, calling ``progress`` for every line the runner sends; :class:`PullError` on failure.

        ``deadline``: seconds the whole pull may take (unbounded by default: each read still waits
        at most ``timeout``); past it, :class:`~pytest_dmr.errors.RunnerTimeoutError`."""
        reader = _PullReader(name, self.address.root, progress)
        bound = self._deadline(deadline)
        call = reader.call()
        response = self._send(call, bound or Deadline(float("inf")))
        lines = reader.lines_of(self.max_line_bytes)
        try:
            if response.is_error:
                response.read()
            reader.start(response)
            for chunk in response.iter_bytes():
                for line in lines.feed(chunk):
                    reader.feed(line)
                if bound is not None and bound.expired():
                    raise reader.timed_out(bound)
            for line in lines.flush():
                reader.feed(line)
        except _http.http_errors() as exc:
            raise reader.interrupted(exc, self.timeout) from exc
        finally:
            response.close()
        return reader.finish()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelRunnerClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncModelRunnerClient(_ClientBase):
    """:class:`ModelRunnerClient` with ``async`` methods (``async with`` or :meth:`aclose`)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_line_bytes: int = _http.MAX_LINE_BYTES,
    ) -> None:
        super().__init__(base_url, timeout, headers, transport, max_line_bytes)
        self._http = httpx2.AsyncClient(transport=transport, **_http.client_options(self.address, self.timeout, self._headers))

    async def _send(self, call: _Call, deadline: Deadline, *, stream: bool = False) -> httpx2.Response:
        """Send ``call`` (and read its answer unless ``stream``) before ``deadline``."""
        request = self._request(self._http, call, deadline)
        try:
            async with asyncio.timeout(deadline.remaining() if deadline.seconds < float("inf") else None):
                response = await self._http.send(request, stream=stream)
        except TimeoutError as exc:  # asyncio's: the deadline passed
            raise self._too_slow(call, deadline) from exc
        except _http.http_errors() as exc:
            raise self._mapped(exc, call) from exc
        self._breaker.succeeded()
        return response

    async def _run(self, operation: Operation[T]) -> T:
        deadline = Deadline(self.timeout)
        response: httpx2.Response | None = None
        failure: errors.DMRError | None = None
        while True:
            try:
                call = operation.throw(failure) if failure is not None else operation.send(response)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                response, failure = await self._send(call, deadline), None
            except errors.DMRError as exc:
                response, failure = None, exc

    async def is_running(self) -> bool:
        return await self._run(self._operations.is_running())

    async def is_model_runner(self) -> bool:
        return await self._run(self._operations.is_model_runner())

    async def engines_status(self) -> dict[str, str]:
        return await self._run(self._operations.engines_status())

    async def list_models(self) -> list[ModelInfo]:
        return await self._run(self._operations.list_models())

    async def list_openai_models(self) -> list[str]:
        return await self._run(self._operations.list_openai_models())

    async def inspect(self, name: str) -> ModelInfo:
        return await self._run(self._operations.inspect(name))

    async def has_model(self, name: str) -> bool:
        return await self._run(self._operations.has_model(name))

    async def delete(self, name: str, *, force: bool = False) -> list[dict[str, str]]:
        return await self._run(self._operations.delete(name, force))

    async def version(self) -> str:
        return await self._run(self._operations.version())

    async def running_models(self) -> list[RunningModel]:
        return await self._run(self._operations.running_models())

    async def disk_usage(self) -> DiskUsage:
        return await self._run(self._operations.disk_usage())

    async def unload(self, models: str | Iterable[str] | None = None, *, all: bool = False, backend: str = "") -> int:  # noqa: A002
        return await self._run(self._operations.unload(self._unload_request(models, all, backend)))

    async def configure(
        self,
        model: str,
        *,
        keep_alive: KeepAlive | None = None,
        context_size: int | None = None,
        mode: str | None = None,
        runtime_flags: Sequence[str] | None = None,
        backend: str | None = None,
    ) -> None:
        request = self._configure_request(model, keep_alive, context_size, mode, runtime_flags)
        await self._run(self._operations.configure(request, backend))

    async def pull(
        self, name: str, *, progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> PullResult:
        reader = _PullReader(name, self.address.root, progress)
        bound = self._deadline(deadline) or Deadline(float("inf"))
        response = await self._send(reader.call(), bound, stream=True)
        lines = reader.lines_of(self.max_line_bytes)
        try:
            async with asyncio.timeout(bound.remaining() if bound.seconds < float("inf") else None):
                if response.is_error:
                    await response.aread()
                reader.start(response)
                async with contextlib.aclosing(response.aiter_bytes()) as chunks:
                    async for chunk in chunks:
                        for line in lines.feed(chunk):
                            reader.feed(line)
                for line in lines.flush():
                    reader.feed(line)
        except TimeoutError as exc:  # asyncio's: the deadline passed
            raise reader.timed_out(bound) from exc
        except _http.http_errors() as exc:
            raise reader.interrupted(exc, self.timeout) from exc
        finally:
            await response.aclose()
        return reader.finish()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncModelRunnerClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
