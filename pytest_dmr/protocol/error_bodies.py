"""DMR's error bodies (what a runner sends) and their mapping to :mod:`pytest_dmr.errors` (what a client raises)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_dmr import errors
from pytest_dmr.protocol._shapes import plain
from pytest_dmr.protocol.encoding import go_quote, loads


MODEL_REQUIRED = "model is required"
INVALID_REQUEST = "invalid request"
NOT_FOUND = "not found"
PAGE_NOT_FOUND = "404 page not found"
MODEL_NOT_FOUND = "model not found"
BACKEND_NOT_FOUND = "backend not found"
REQUEST_TOO_LARGE = "request too large"
INVALID_REQUEST_BODY = "invalid request body"
INVALID_MODEL_REFERENCE = "Invalid model reference"
PULL_MODEL_NOT_FOUND = "Model not found"
DELETE_MODEL_NOT_FOUND = "error while deleting model: model not found"


def plain_error_body(message: str) -> bytes:
    """Go's ``http.Error``: the message and a newline, sent as ``text/plain; charset=utf-8``."""
    return (message + "\n").encode()


def model_not_found_message(requested: str) -> str:
    """The inference 404: ``error while getting model: get model '"X"': model not found``."""
    return f"error while getting model: get model '{go_quote(requested[:100])}': {MODEL_NOT_FOUND}"


def unable_to_load_message(cause: str) -> str:
    return f"unable to load runner: {cause}"


def delete_conflict_message(ref: str) -> str:
    """The 409 of ``DELETE /models/{id}`` when the model has several tags and ``force`` is unset."""
    return (
        f"error while deleting model: unable to delete {go_quote(ref)} (must be forced) "
        "due to multiple tag references: resource conflict"
    )


def _error_text(body: str) -> str:
    """The human part of an error body: plain text as is, or the message of a JSON error
    (``{"error": {"message": ...}}``, ``{"error": "..."}``, ``{"message": ...}``); the whole body when
    that message is missing or not text."""
    text = body.strip()
    if text.startswith("{"):
        try:
            data = loads(text)
        except ValueError:
            return text
        if isinstance(data, Mapping):
            error = data.get("error", data)
            if isinstance(error, Mapping):
                return plain(error.get("message")) or text
            if isinstance(error, str):
                return error
            return plain(data.get("message")) or text
    return text


def is_loading_response(status: int, body: str) -> bool:
    """llama.cpp's ``503 Loading model`` (older runners, or a bare llama.cpp server)."""
    return status == 503 and "loading model" in _error_text(body).lower()


RETRYABLE_STATUSES = frozenset({502, 503, 504})


def is_retryable_status(status: int) -> bool:
    """502, 503 (loading, backend installing) and 504 are worth retrying with backoff."""
    return status in RETRYABLE_STATUSES


def error_from_response(
    status: int, body: str, *, runner_url: str | None, model: str | None
) -> errors.RunnerHTTPError:
    """Map an error status and body to the right :class:`~pytest_dmr.errors.RunnerHTTPError`."""
    text = _error_text(body)
    context: dict[str, Any] = {"status_code": status, "body": body, "runner_url": runner_url, "model": model}
    lowered = text.lower()
    if status == 404 and MODEL_NOT_FOUND in lowered:
        return errors.ModelNotFoundError(
            f"the runner does not have this model (404: {text})",
            hint=f"Pull it first: `docker model pull {model or 'NAME'}`, or run pytest with --dmr-pull",
            **context,
        )
    if status == 404 and BACKEND_NOT_FOUND in lowered:
        return errors.BackendUnavailableError(
            f"the runner has no such inference backend (404: {text})",
            hint="Use /engines/v1 or /engines/llama.cpp/v1 in the URL",
            **context,
        )
    if status == 404:
        return errors.RunnerHTTPError(
            f"the runner has no such endpoint (404: {text})",
            hint="Check that the URL points at a Docker Model Runner or an OpenAI-compatible server",
            **context,
        )
    if status == 400:
        hint = "Pass a model name (model=... or --dmr-model)" if MODEL_REQUIRED in lowered else "Check the request options"
        return errors.BadRequestError(f"the runner rejected the request (400: {text})", hint=hint, **context)
    if status == 412 or (status == 503 and not is_loading_response(status, body)):
        return errors.BackendUnavailableError(
            f"the runner's inference backend is not available ({status}: {text})",
            hint="Install or start the backend: `docker model install-runner`, then retry",
            **context,
        )
    if status == 503:
        return errors.ModelLoadingError(
            "the model was still loading when the retries ran out (503: Loading model)",
            hint="Raise the timeout (--dmr-timeout) or preload the model before the tests",
            **context,
        )
    if status == 500 and "unable to load runner" in lowered:
        return errors.ModelLoadError(
            f"the runner could not load the model (500: {text})",
            hint="Check the runner's logs (`docker model logs`) and that the model fits in memory",
            **context,
        )
    return errors.RunnerHTTPError(
        f"the runner answered {status}: {text or '(empty body)'}",
        hint="Retry; if it persists, check the runner's logs (`docker model logs`)",
        **context,
    )
