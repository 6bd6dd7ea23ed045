"""Model management on a runner: is it there, which models it has, pull, inspect, delete; and its
engines: which models are loaded, disk usage, unloading, per-model settings (keep-alive).

:class:`ModelRunnerClient` (sync) and :class:`AsyncModelRunnerClient` (async) share everything but
the sending: each operation is written once, as a generator that yields the calls it needs and
receives their responses (``_Operations``); the two clients only drive those generators with
``httpx2.Client`` or ``httpx2.AsyncClient``. Pulls stream their progress lines through
``_PullReader``, also shared.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx2

from pytest_dmr import _http, errors
from pytest_dmr.protocol import addresses, durations, encoding, engines_api, error_bodies, model_info, model_names, pull_stream, routes
from pytest_dmr.protocol.addresses import RunnerAddress
from pytest_dmr.protocol.engines_api import DiskUsage, RunningModel
from pytest_dmr.protocol.model_info import ModelInfo
from pytest_dmr.protocol.pull_stream import PullProgress

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
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("data"), list)

    def engines_status(self) -> Operation[dict[str, str]]:
        response = yield _Call("GET", routes.ENGINES_STATUS_PATH)
        if response.is_error:
            raise self._status_error(response)
        body = _http.decode_json(response, what="GET /engines/status", runner_url=self.runner_url)
        if not isinstance(body, dict):
            raise self._not_a_model_runner("GET /engines/status", response)
        return {str(name): str(status) for name, status in body.items()}

    def list_models(self) -> Operation[list[ModelInfo]]:
        response = yield _Call("GET", routes.MANAGEMENT_MODELS_PATH)
        if response.status_code in (404, 405):
            raise self._not_a_model_runner("GET /models", response)
        if response.is_error:
            raise self._status_error(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, list):
            raise self._not_a_model_runner("GET /models", response)
        return [ModelInfo.from_json(entry) for entry in body if isinstance(entry, Mapping)]

    def _not_a_model_runner(self, what: str, response: httpx2.Response) -> errors.NotAModelRunnerError:
        preview = response.text.strip()[:80]
        return errors.NotAModelRunnerError(
            f"the server answered {what} with {response.status_code} {preview!r}: it is not a Docker Model Runner "
            "(no model management API)",
            runner_url=self.runner_url,
            hint="Point the URL at Docker Model Runner (e.g. http://localhost:12434); a bare llama.cpp or other "
            "OpenAI-compatible server only supports inference and list_openai_models()",
        )

    def list_openai_models(self) -> Operation[list[str]]:
        response = yield _Call("GET", self.address.api_prefix + routes.MODELS)
        if response.is_error:
            raise self._status_error(response)
        body = _http.decode_json(response, what=f"GET {self.address.api_prefix}/models", runner_url=self.runner_url)
        if not isinstance(body, Mapping):
            raise errors.DMRError(
                f"the runner's model list is not an OpenAI list object: {response.text[:80]!r}",
                runner_url=self.runner_url,
                hint="Check that the URL points at Docker Model Runner or an OpenAI-compatible server",
            )
        return model_info.model_ids_from_openai_list(body)

    def inspect(self, name: str) -> Operation[ModelInfo]:
        response = yield _Call("GET", routes.management_model_path(name))
        if response.status_code == 404:
            error = self._status_error(response, model=name)
            if not isinstance(error, errors.ModelNotFoundError):
                error = errors.ModelNotFoundError(
                    f"the runner does not have this model (404: {response.text.strip()})",
                    status_code=404,
                    body=response.text,
                    runner_url=self.runner_url,
                    model=name,
                    hint=f"Pull it first: `docker model pull {name}`, or run pytest with --dmr-pull",
                )
            raise error
        if response.is_error:
            raise self._status_error(response, model=name)
        body = _http.decode_json(response, what=f"GET /models/{name}", runner_url=self.runner_url, model=name)
        if not isinstance(body, Mapping):
            raise self._not_a_model_runner(f"GET /models/{name}", response)
        return ModelInfo.from_json(body)

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
            raise self._not_a_model_runner(what, response)
        if response.is_error:
            raise self._status_error(response, model=model)
        try:
            return response.json()
        except ValueError:
            raise self._not_a_model_runner(what, response) from None

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
        return [RunningModel.from_json(entry) for entry in body if isinstance(entry, Mapping)]

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
        if not isinstance(count, int):
            raise self._not_a_model_runner("POST /engines/unload", response)
        return count

    def configure(self, request: engines_api.ConfigureRequest, backend: str | None) -> Operation[None]:
        path = routes.engines_configure_path(backend)
        response = yield _Call("POST", path, json=request.to_json())
        if response.status_code == 409:
            raise errors.RunnerHTTPError(
                f"the runner refused the new settings (409: {response.text.strip()})",
                status_code=409,
                body=response.text,
                runner_url=self.runner_url,
                model=request.model,
                hint="A request is using the model with its current settings: configure it before using it, "
                "or retry once that request has finished",
            )
        if response.status_code == 404 and error_bodies.BACKEND_NOT_FOUND in response.text:
            raise errors.BackendUnavailableError(
                f"the runner has no backend {backend!r} (404: {response.text.strip()})",
                status_code=404,
                body=response.text,
                runner_url=self.runner_url,
                model=request.model,
                hint=f"Use one of {', '.join(engines_api.KNOWN_BACKENDS)}, or leave backend out for llama.cpp",
            )
        if response.is_error and response.status_code not in (404, 405):
            raise self._status_error(response, model=request.model)
        if response.status_code != 202:  # DMR's only success; a 404/405 or a 200 page: another server
            raise self._not_a_model_runner(f"POST {path}", response)

    def delete(self, name: str, force: bool) -> Operation[list[dict[str, str]]]:
        params = {"force": "true"} if force else None
        response = yield _Call("DELETE", routes.management_model_path(name), params=params)
        if response.status_code == 409:
            raise errors.RunnerHTTPError(
                f"the runner refused to delete the model (409: {response.text.strip()})",
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
        body = _http.decode_json(response, what=f"DELETE /models/{name}", runner_url=self.runner_url, model=name)
        if not isinstance(body, list):
            return []
        return [{str(k): str(v) for k, v in entry.items()} for entry in body if isinstance(entry, Mapping)]


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
        )

    def start(self, response: httpx2.Response) -> None:
        """Check the status (the body must have been read when it is an error) and the content type."""
        if response.is_error:
            text = response.text.strip()
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

    def interrupted(self, exc: BaseException) -> errors.DMRError:
        """A transport failure: mid-pull, a :class:`PullError`; before any line, the usual mapping."""
        if self.lines == 0:
            return _http.transport_error(exc, runner_url=self.runner_url, model=self.model)
        return errors.PullError(
            f"the pull stopped after {self.lines} progress lines: the connection was lost ({type(exc).__name__})",
            runner_url=self.runner_url,
            model=self.model,
            hint="Retry the pull; the runner keeps the layers it already downloaded",
        )

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


class _ClientBase:
    def __init__(
        self,
        base_url: str | None,
        timeout: float,
        headers: Mapping[str, str] | None,
        transport: object | None,
    ) -> None:
        self.address = addresses.parse_runner_url(base_url or _http.default_base_url(transport))
        self.timeout = timeout
        self._operations = _Operations(self.address)
        self._headers = {"User-Agent": _http.user_agent(), **(headers or {})}

    @property
    def base_url(self) -> str:
        return self.address.root

    def _url(self, call: _Call) -> str:
        return self.address.root + call.path

    def _mapped(self, exc: BaseException) -> errors.DMRError:
        return _http.transport_error(exc, runner_url=self.address.root, timeout=self.timeout)

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
        return f"{type(self).__name__}({self.address.root!r})"


class ModelRunnerClient(_ClientBase):
    """Model management on a runner, synchronously. Use it as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx2.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, timeout, headers, transport)
        self._http = httpx2.Client(transport=transport, **_http.client_options(self.address, timeout, self._headers))

    def _send(self, call: _Call, *, stream: bool = False) -> httpx2.Response:
        request = self._http.build_request(
            call.method, self._url(call), json=call.json, params=call.params, headers=call.headers
        )
        try:
            return self._http.send(request, stream=stream)
        except _http.http_errors() as exc:
            raise self._mapped(exc) from exc

    def _run(self, operation: Operation[T]) -> T:
        response: httpx2.Response | None = None
        failure: errors.DMRError | None = None
        while True:
            try:
                call = operation.throw(failure) if failure is not None else operation.send(response)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                response, failure = self._send(call), None
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

    def pull(self, name: str, *, progress: ProgressCallback | None = None) -> PullResult:
        """Pull a model, calling ``progress`` for every line the runner sends; :class:`PullError` on failure."""
        reader = _PullReader(name, self.address.root, progress)
        response = self._send(reader.call(), stream=True)
        try:
            if response.is_error:
                response.read()
            reader.start(response)
            for line in response.iter_lines():
                reader.feed(line)
        except _http.http_errors() as exc:
            raise reader.interrupted(exc) from exc
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
    ) -> None:
        super().__init__(base_url, timeout, headers, transport)
        self._http = httpx2.AsyncClient(transport=transport, **_http.client_options(self.address, timeout, self._headers))

    async def _send(self, call: _Call, *, stream: bool = False) -> httpx2.Response:
        request = self._http.build_request(
            call.method, self._url(call), json=call.json, params=call.params, headers=call.headers
        )
        try:
            return await self._http.send(request, stream=stream)
        except _http.http_errors() as exc:
            raise self._mapped(exc) from exc

    async def _run(self, operation: Operation[T]) -> T:
        response: httpx2.Response | None = None
        failure: errors.DMRError | None = None
        while True:
            try:
                call = operation.throw(failure) if failure is not None else operation.send(response)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                response, failure = await self._send(call), None
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

    async def pull(self, name: str, *, progress: ProgressCallback | None = None) -> PullResult:
        reader = _PullReader(name, self.address.root, progress)
        response = await self._send(reader.call(), stream=True)
        try:
            if response.is_error:
                await response.aread()
            reader.start(response)
            async for line in response.aiter_lines():
                reader.feed(line)
        except _http.http_errors() as exc:
            raise reader.interrupted(exc) from exc
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
