"""Faults a rule can inject: what goes wrong, and how a real runner would show it on the wire."""

from __future__ import annotations

import http
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from pytest_dmr.protocol import encoding, engines_api, error_bodies, openai_api, routes

FaultBody = Union[str, bytes, Mapping[str, Any], None]

DEFAULT_LOAD_FAILURE = "error waiting for runner to be ready: inference backend took too long to initialize"


@dataclass(frozen=True)
class Fault:
    """One failure. Build it with a factory (``Fault.http(503)``, ``Fault.cut_stream(after=3)``...).

    ``kind`` is one of ``http``, ``timeout``, ``disconnect``, ``cut_stream``,
    ``slow_first_token``, ``pull_error``. ``times``, when set, is how many requests the fault
    hits before normal answers resume (a rule made with it uses it as its own ``times``).
    """

    kind: str
    status: int = 0
    body: FaultBody = None
    after: int = 0
    seconds: float = 0.0
    message: str = ""
    times: int | None = None

    # -- HTTP statuses with DMR's own bodies -----------------------------------------------------

    @classmethod
    def http(cls, status: int, body: FaultBody = None, *, times: int | None = None) -> Fault:
        """Answer ``status`` with ``body``: a str is sent as plain text (``\\n`` added, as Go's
        ``http.Error`` does) unless it starts with ``{`` (then as llama.cpp JSON, like a dict),
        bytes as they are. ``None`` gives DMR's own body for the status: 400 ``model is
        required``, 404 the model-not-found text of the endpoint, 412 the backend-not-installed
        text, 500 ``unable to load runner: ...``, 502 an empty body, 503 llama.cpp's ``Loading
        model`` JSON, otherwise the HTTP reason phrase."""
        if not 100 <= status <= 599:
            raise ValueError(f"Fault.http needs an HTTP status between 100 and 599, got {status!r}")
        return cls("http", status=status, body=body, times=times)

    @classmethod
    def model_not_found(cls) -> Fault:
        """404 with DMR's text for the endpoint (``error while getting model: ...`` for inference)."""
        return cls.http(404)

    @classmethod
    def loading(cls, times: int = 1) -> Fault:
        """503 ``{"error":{"code":503,"message":"Loading model",...}}`` for ``times`` requests, then
        normal answers: what an older runner or a bare llama.cpp sends while a model loads."""
        if times < 1:
            raise ValueError(f"Fault.loading(times=...) must be at least 1, got {times!r}")
        return cls.http(503, times=times)

    @classmethod
    def load_failure(cls, cause: str = DEFAULT_LOAD_FAILURE) -> Fault:
        """500 ``unable to load runner: <cause>``."""
        return cls.http(500, error_bodies.unable_to_load_message(cause))

    # -- transport-level failures ---------------------------------------------------------------

    @classmethod
    def timeout(cls) -> Fault:
        """Raise ``httpx.ReadTimeout`` (the request attached), as a read that never answers does."""
        return cls("timeout")

    @classmethod
    def disconnect(cls) -> Fault:
        """Raise ``httpx.RemoteProtocolError`` before any byte: the server closed the connection."""
        return cls("disconnect")

    @classmethod
    def cut_stream(cls, after: int) -> Fault:
        """Send ``after`` content pieces (stream) or pull lines, then raise
        ``httpx.RemoteProtocolError``: no final chunk, no ``data: [DONE]``. A non-streamed answer
        is cut after its first bytes."""
        if after < 0:
            raise ValueError(f"Fault.cut_stream(after=...) must be 0 or more, got {after!r}")
        return cls("cut_stream", after=after)

    @classmethod
    def slow_first_token(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before the first byte of the body (``time.sleep`` on a sync client,
        ``asyncio.sleep`` on an async one). Past the client's read timeout, the read times out
        (``httpx.ReadTimeout``) as it would against a real runner."""
        if seconds < 0:
            raise ValueError(f"Fault.slow_first_token(seconds) must be 0 or more, got {seconds!r}")
        return cls("slow_first_token", seconds=float(seconds))

    @classmethod
    def pull_error(cls, message: str, *, after: int = 1) -> Fault:
        """Make a pull fail mid-stream (status 200): ``after`` progress lines, then the
        ``{"type":"error","message":"Error: <message>",...}`` line and DMR's plain-text line."""
        return cls("pull_error", message=message, after=after)

    def describe(self) -> str:
        """The factory call that makes this fault, as a user wrote it: ``Fault.loading(times=2)``,
        ``Fault.cut_stream(after=3)``, ``Fault.http(502, 'bad gateway')``."""
        if self.kind == "http":
            if self.status == 503 and self.body is None and self.times is not None:
                return "Fault.loading()" if self.times == 1 else f"Fault.loading(times={self.times})"
            if self.status == 404 and self.body is None and self.times is None:
                return "Fault.model_not_found()"
            if self.status == 500 and self.times is None and self.body == error_bodies.unable_to_load_message(DEFAULT_LOAD_FAILURE):
                return "Fault.load_failure()"
            arguments = [repr(self.status)] + ([repr(self.body)] if self.body is not None else [])
            arguments += [f"times={self.times}"] if self.times is not None else []
            return f"Fault.http({', '.join(arguments)})"
        if self.kind == "cut_stream":
            return f"Fault.cut_stream(after={self.after})"
        if self.kind == "slow_first_token":
            return f"Fault.slow_first_token({self.seconds:g})"
        if self.kind == "pull_error":
            after = "" if self.after == 1 else f", after={self.after}"
            return f"Fault.pull_error({self.message!r}{after})"
        return f"Fault.{self.kind}()"

    # -- how the transport uses it ---------------------------------------------------------------

    @property
    def replaces_answer(self) -> bool:
        """True when the fault is the whole answer (no reply is generated)."""
        return self.kind in ("http", "timeout", "disconnect")

    def response_body(self, *, method: str, endpoint: str | None, model: str | None) -> tuple[bytes, str]:
        """The body and Content-Type of an ``http`` fault."""
        body = self.body
        if body is None:
            return default_body(self.status, method=method, endpoint=endpoint, model=model)
        if isinstance(body, bytes):
            return body, encoding.TEXT_PLAIN
        if isinstance(body, Mapping):
            return encoding.dumps(dict(body)).encode(), openai_api.LLAMACPP_JSON_CONTENT_TYPE
        if body.lstrip().startswith("{"):
            return body.encode(), openai_api.LLAMACPP_JSON_CONTENT_TYPE
        return (body if body.endswith("\n") else body + "\n").encode(), encoding.TEXT_PLAIN


def default_body(status: int, *, method: str, endpoint: str | None, model: str | None) -> tuple[bytes, str]:
    """What DMR (or llama.cpp behind it) sends for ``status`` on ``endpoint``."""
    if status == 503:
        return encoding.dumps(openai_api.LOADING_MODEL_BODY).encode(), openai_api.LLAMACPP_JSON_CONTENT_TYPE
    if status == 502:
        return b"", encoding.TEXT_PLAIN
    if status == 400:
        text = error_bodies.INVALID_MODEL_REFERENCE if endpoint == routes.MODELS_CREATE_PATH else error_bodies.MODEL_REQUIRED
    elif status == 404:
        if endpoint in (*routes.INFERENCE_ENDPOINTS, "/messages") or (endpoint == routes.MODELS and model is not None):
            text = error_bodies.model_not_found_message(model or "")  # inference, or /engines/v1/models/{name}
        elif endpoint == routes.MODELS_CREATE_PATH:
            text = error_bodies.PULL_MODEL_NOT_FOUND
        elif method == "DELETE":
            text = error_bodies.DELETE_MODEL_NOT_FOUND
        else:
            text = error_bodies.MODEL_NOT_FOUND
    elif status == 412:
        backend = engines_api.LLAMACPP_BACKEND
        text = f"backend {encoding.go_quote(backend)} is not installed; run: docker model install-runner --backend {backend}"
    elif status == 500:
        text = error_bodies.unable_to_load_message(DEFAULT_LOAD_FAILURE)
    else:
        try:
            text = http.HTTPStatus(status).phrase
        except ValueError:
            text = f"status {status}"
    return error_bodies.plain_error_body(text), encoding.TEXT_PLAIN
