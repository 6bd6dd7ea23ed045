"""One error hierarchy, rooted at :class:`DMRError`.

Every error says what went wrong, on which runner and for which model, and what to do about it::

    DMRError
    ├── ConfigurationError          a bad option, flag or environment value
    │   └── UnknownOptionError      an adapter argument or request option nobody knows (also a TypeError)
    ├── RunnerUnavailableError      nothing answered at the runner's URL (or it went away: circuit open)
    │   ├── NotAModelRunnerError    something answered, but not DMR's management API
    │   └── ProvisioningError       no runner could be provisioned (no Docker, no image, no answer)
    ├── RunnerTimeoutError          the runner did not answer in time
    ├── StreamInterruptedError      a streamed answer stopped before its end
    ├── PullError                   a pull failed (an error line, or a refused request)
    ├── MalformedResponseError      an answer that cannot be read (not JSON, or JSON of another shape)
    │   └── ResponseTooLargeError   a line of a streamed answer longer than the bound
    ├── CassetteError               a cassette that cannot be used (unreadable, locked)
    │   ├── CassetteMismatchError   a request the cassette has no recorded answer for
    │   └── CassetteDriftError      ``verify``: live answers differ from the recorded ones
    └── RunnerHTTPError             the runner answered with an error status
        ├── BadRequestError         400: the request was malformed (no model, bad JSON)
        ├── ModelNotFoundError      404: the model is not on the runner
        ├── BackendUnavailableError 412/503: the inference backend is missing or installing
        ├── ModelLoadingError       503 "Loading model", still loading after every retry
        └── ModelLoadError          500 "unable to load runner": the model failed to load
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "BadRequestError",
    "CassetteDriftError",
    "CassetteError",
    "CassetteMismatchError",
    "ConfigurationError",
    "DMRError",
    "ModelLoadError",
    "ModelLoadingError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "NotAModelRunnerError",
    "ProvisioningError",
    "PullError",
    "ResponseTooLargeError",
    "RunnerHTTPError",
    "RunnerTimeoutError",
    "RunnerUnavailableError",
    "StreamInterruptedError",
    "UnknownOptionError",
]


class DMRError(Exception):
    """Base of every pytest-dmr error.

    ``str(error)`` reads as one paragraph: what happened, then ``(runner URL, model NAME)``, then
    what to do. The parts stay available as attributes for code that wants to branch on them.
    """

    def __init__(
        self,
        message: str,
        *,
        runner_url: str | None = None,
        model: str | None = None,
        hint: str | None = None,
    ) -> None:
        from pytest_dmr.redaction import redact_text, redact_url  # when an error is made, not when this module loads

        self.message = redact_text(message)
        self.runner_url = redact_url(runner_url) if runner_url else runner_url
        self.model = model
        self.hint = redact_text(hint) if hint else hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.runner_url:
            where.append(f"runner {self.runner_url}")
        if self.model:
            where.append(f"model {self.model}")
        text = self.message
        if where:
            text += f" ({', '.join(where)})"
        if self.hint:
            text += f". {self.hint}"
        return text


class ConfigurationError(DMRError):
    """A setting has a value that cannot be used; the message names the allowed values."""


class UnknownOptionError(ConfigurationError, TypeError):
    """A keyword argument that is neither an adapter argument nor a known request field (a typo such
    as ``max_retry``); the message names the closest known one. Also a ``TypeError``, as Python's own
    error for an unexpected keyword argument is."""


class RunnerUnavailableError(DMRError):
    """Nothing answered at the runner's URL (refused, unreachable, or the name does not resolve)."""


class NotAModelRunnerError(RunnerUnavailableError):
    """A server answered, but it has no DMR management API (for example a bare llama.cpp server)."""


class ProvisioningError(RunnerUnavailableError):
    """No runner could be provisioned: no Docker, no image, or the container never answered.

    The message is the reason a run's header shows when it falls back to the mock (``--dmr=auto``),
    or the one error a ``--dmr=live`` run stops with.
    """


class RunnerTimeoutError(DMRError):
    """The runner accepted the request but did not answer within the timeout."""


class StreamInterruptedError(DMRError):
    """A streamed answer ended before ``data: [DONE]`` (connection dropped, or malformed data)."""

    def __init__(self, message: str, *, received: str = "", **context: str | None) -> None:
        self.received = received
        super().__init__(message, **context)


class PullError(DMRError):
    """Pulling a model failed: the runner refused the request, or sent an ``error`` line."""


class MalformedResponseError(DMRError, ValueError):
    """An answer that cannot be read: not JSON, or JSON of another shape than DMR's (a field of the
    wrong type, a list where an object belongs). The protocol's parsers raise it without a runner or
    model; callers that know them raise a copy naming both (:meth:`naming`). Also a ``ValueError``,
    as ``json``'s own decoding error is, so code reading JSON under ``except ValueError`` catches it."""

    def naming(self, *, runner_url: str | None, model: str | None) -> MalformedResponseError:
        """The same error, naming the runner and the model (raise it ``from`` this one)."""
        return MalformedResponseError(self.message, runner_url=runner_url, model=model, hint=self.hint)


class CassetteError(DMRError):
    """A cassette that cannot be used: unreadable (not a cassette, a newer format), or locked by
    another process for longer than the wait allows. ``path`` is the cassette file."""

    def __init__(self, message: str, *, path: str | None = "", **context: str | None) -> None:
        self.path = path or ""
        super().__init__(message, **context)


class CassetteMismatchError(CassetteError):
    """A request the cassette has no recorded answer for. The message names the closest recorded
    request and the fields that differ; ``request`` and ``closest`` keep both descriptions."""

    def __init__(self, message: str, *, request: str = "", closest: str = "", **context: str | None) -> None:
        self.request = request
        self.closest = closest
        super().__init__(message, **context)


class CassetteDriftError(CassetteError):
    """``--dmr-record=verify``: answers from the live runner differ from the recorded ones; the
    message shows both answers of each drifted exchange."""


class ResponseTooLargeError(MalformedResponseError):
    """A line of a streamed answer (SSE, a pull's progress) longer than the bound, with no newline
    in sight: read no further rather than let memory grow without end."""


class RunnerHTTPError(DMRError):
    """The runner answered with an error status. ``status_code`` and ``body`` keep what it sent."""

    def __init__(self, message: str, *, status_code: int, body: str = "", **context: str | None) -> None:
        self.status_code = status_code
        self.body = body
        super().__init__(message, **context)


class BadRequestError(RunnerHTTPError):
    """400: the runner rejected the request (no model, invalid JSON, too large)."""


class ModelNotFoundError(RunnerHTTPError):
    """404: the model is not on the runner."""


class BackendUnavailableError(RunnerHTTPError):
    """412 or 503: the inference backend is not installed, or is still being installed."""


class ModelLoadingError(RunnerHTTPError):
    """503 ``Loading model``: the model was still loading when the retries ran out."""


class ModelLoadError(RunnerHTTPError):
    """500 ``unable to load runner``: the runner could not load the model."""
