"""What the client and the adapter share about talking HTTP to a runner.

Mapping httpx2's exceptions (and httpx's, where a caller's transport raises them) to
:mod:`pytest_dmr.errors` (so no raw HTTP-stack error reaches a user), the retry policy (which
failures are worth another try, and how long to wait), the bounds on a call (:class:`Deadline`
for its whole duration, :class:`LineSplitter` for the length of a streamed line), the circuit
breaker that fails calls to a runner that went away at once (:func:`breaker_for`), and small
helpers for reading bodies. No I/O happens here: the callers send, this module decides.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, encoding, error_bodies

START_RUNNER_HINT = (
    "Start Docker Model Runner (Docker Desktop: `docker desktop enable model-runner --tcp 12434`; "
    "Docker Engine: `docker model install-runner`), or point --dmr-url / MODEL_RUNNER_URL at a running one"
)
TIMEOUT_HINT = "Raise the timeout (--dmr-timeout, or LOCAL_MODEL_TIMEOUT in milliseconds), or use a smaller model"
STREAM_HINT = "The runner may have crashed or restarted: check `docker model logs`, then retry"

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection, whatever the request timeout: a runner answers a connect in
milliseconds, so waiting longer only delays the error (and each retry) when its host is down."""


def timeouts(seconds: float) -> httpx2.Timeout:
    """The request timeout for reading and writing, with connecting capped at :data:`CONNECT_TIMEOUT`."""
    return httpx2.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


def stack_errors(*names: str) -> tuple[type[Exception], ...]:
    """The exception classes ``names`` of httpx2 and, once it is loaded (only then can it raise them), of httpx."""
    httpx = sys.modules.get("httpx")
    modules = (httpx2,) if httpx is None or httpx is httpx2 else (httpx2, httpx)
    return tuple(getattr(module, name) for module in modules for name in names)


def http_errors() -> tuple[type[Exception], ...]:
    """Everything either stack raises while sending or reading (``InvalidURL``/``StreamError`` are not
    ``HTTPError``): what ``except`` clauses around a request catch."""
    return stack_errors("HTTPError", "InvalidURL", "StreamError")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def transport_error(
    exc: BaseException, *, runner_url: str, model: str | None = None, timeout: float | None = None
) -> errors.DMRError:
    """The :class:`~pytest_dmr.errors.DMRError` a user should see for an httpx2 or httpx exception.

    Refused connections and names that do not resolve become
    :class:`~pytest_dmr.errors.RunnerUnavailableError` (with how to start a runner), timeouts
    :class:`~pytest_dmr.errors.RunnerTimeoutError`, a connection closed before any answer
    :class:`~pytest_dmr.errors.RunnerUnavailableError`. Raise the result ``from exc``.
    """
    context: dict[str, Any] = {"runner_url": runner_url, "model": model}
    if isinstance(exc, stack_errors("TimeoutException")):
        within = f" within {timeout:g} s" if timeout is not None else ""
        if isinstance(exc, stack_errors("ConnectTimeout")):
            connect_within = f" within {min(timeout, CONNECT_TIMEOUT):g} s" if timeout is not None else ""
            return errors.RunnerTimeoutError(
                f"the runner did not accept the connection{connect_within}", hint=START_RUNNER_HINT, **context
            )
        if isinstance(exc, stack_errors("PoolTimeout")):
            return errors.RunnerTimeoutError(
                f"no connection to the runner became free{within}",
                hint="Send fewer requests at once, or raise the timeout",
                **context,
            )
        return errors.RunnerTimeoutError(f"the runner did not answer{within}", hint=TIMEOUT_HINT, **context)
    if isinstance(exc, stack_errors("ConnectError")):
        return errors.RunnerUnavailableError(
            f"cannot connect to the runner ({_reason(exc)})", hint=START_RUNNER_HINT, **context
        )
    if isinstance(exc, stack_errors("RemoteProtocolError", "ReadError", "WriteError")):
        return errors.RunnerUnavailableError(
            f"the runner closed the connection before a complete answer ({_reason(exc)})",
            hint="Check that the URL points at Docker Model Runner and that it is healthy (`docker model status`)",
            **context,
        )
    if isinstance(exc, stack_errors("UnsupportedProtocol", "InvalidURL")):
        return errors.ConfigurationError(
            f"the runner URL cannot be used ({_reason(exc)})",
            hint="Give an http(s) URL such as http://localhost:12434",
            **context,
        )
    return errors.DMRError(
        f"talking to the runner failed ({type(exc).__name__}: {_reason(exc)})",
        hint="Check that the URL points at Docker Model Runner and that it is healthy (`docker model status`)",
        **context,
    )


MAX_ERROR_BODY = 4096
"""Characters of an error answer's body kept in the error (``body`` and the message): a runner's
errors are one line; a longer body is not one of them."""


def preview(content: bytes, limit: int = 120) -> str:
    """The start of a body as text, for messages (never the whole of a large body)."""
    return content[: limit * 4].decode("utf-8", "replace")[:limit]


def status_error(response: httpx2.Response, *, runner_url: str, model: str | None) -> errors.RunnerHTTPError:
    """The error for a response with an error status; its body must have been read."""
    body = preview(response.content, MAX_ERROR_BODY)
    return error_bodies.error_from_response(response.status_code, body, runner_url=runner_url, model=model)


def decode_json(response: httpx2.Response, *, what: str, runner_url: str, model: str | None = None) -> Any:
    """The JSON body of a successful response, or a :class:`~pytest_dmr.errors.MalformedResponseError`
    saying what came instead (nesting too deep and bytes not in UTF-8 included)."""
    try:
        return encoding.loads(response.content)
    except ValueError as exc:
        raise errors.MalformedResponseError(
            f"the runner's answer to {what} is not JSON: {preview(response.content)!r}",
            runner_url=runner_url,
            model=model,
            hint="Check that the URL points at Docker Model Runner or an OpenAI-compatible server",
        ) from exc


def naming(exc: errors.MalformedResponseError, *, runner_url: str, model: str | None) -> errors.MalformedResponseError:
    """A protocol parser's error, naming the runner and the model (raise it ``from exc``)."""
    return exc.naming(runner_url=runner_url, model=model)


# -------------------------------------------------------------------------------------------
# Bounds: a whole call's deadline, a streamed line's length
# -------------------------------------------------------------------------------------------


@dataclass
class Deadline:
    """The end of a whole call (retries, waits and every byte of a stream included), on the
    monotonic clock: ``keep-alive`` comments or a trickle of bytes do not extend it."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = self.clock() + self.seconds

    def remaining(self) -> float:
        return max(self.end - self.clock(), 0.0)

    def expired(self) -> bool:
        return self.clock() >= self.end

    def timeouts(self, per_read: float = float("inf")) -> httpx2.Timeout:
        """httpx2's timeouts for the next send: no wait may outlast the deadline, nor ``per_read``."""
        return timeouts(max(min(self.remaining(), per_read), 0.001))

    def error(self, what: str, *, runner_url: str, model: str | None, detail: str = "") -> errors.RunnerTimeoutError:
        """``{what} within {seconds} s{detail}``: the call's timeout passed."""
        return errors.RunnerTimeoutError(
            f"{what} within {self.seconds:g} s{detail}",
            runner_url=runner_url,
            model=model,
            hint=TIMEOUT_HINT,
        )


MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line of a streamed answer (an SSE field, a pull's progress line) read before giving up."""


class LineSplitter:
    """Bytes in, complete lines out (``\n``, ``\r\n`` or ``\r``, decoded as UTF-8), holding at most
    ``limit`` bytes of an unfinished line: past that, :class:`~pytest_dmr.errors.ResponseTooLargeError`."""

    def __init__(self, limit: int, *, runner_url: str, model: str | None) -> None:
        self.limit = limit
        self._context: dict[str, Any] = {"runner_url": runner_url, "model": model}
        self._pending: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[str]:
        if b"\n" not in chunk and b"\r" not in chunk:
            self._hold(chunk)
            return []
        data = b"".join([*self._pending, chunk])
        self._pending, self._size = [], 0
        lines = data.splitlines(keepends=True)
        last = lines[-1]
        if not last.endswith(b"\n"):  # unfinished, or a "\r" whose "\n" may come next
            lines.pop()
            self._hold(last)
        return [line.rstrip(b"\r\n").decode("utf-8", "replace") for line in lines]

    def flush(self) -> list[str]:
        """The last line, when the answer ended without a newline after it."""
        data = b"".join(self._pending)
        self._pending, self._size = [], 0
        return [line.decode("utf-8", "replace") for line in data.splitlines()]

    def _hold(self, part: bytes) -> None:
        self._pending.append(part)
        self._size += len(part)
        if self._size > self.limit:
            raise errors.ResponseTooLargeError(
                f"the runner sent a line longer than {self.limit} bytes without ending it",
                hint="Check that the URL points at Docker Model Runner; raise max_line_bytes if such lines are expected",
                **self._context,
            )


def check_limit(value: object, name: str) -> int:
    """A positive whole number of bytes (``max_line_bytes``), else :class:`~pytest_dmr.errors.ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise errors.ConfigurationError(f"{name} must be a positive number of bytes, got {value!r}",
                                        hint=f"Pass e.g. {name}={MAX_LINE_BYTES}")
    return value


def check_seconds(value: object, name: str) -> float:
    """A positive, finite number of seconds, else :class:`~pytest_dmr.errors.ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise errors.ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}",
                                        hint=f"Pass e.g. {name}=30")
    return float(value)


# -------------------------------------------------------------------------------------------
# The circuit breaker: a runner that went away fails the rest of the session at once
# -------------------------------------------------------------------------------------------

BREAKER_THRESHOLD = 3
"""Connection failures in a row, after the runner had answered, that open its breaker."""
BREAKER_COOLDOWN = 30.0
"""Seconds an open breaker fails calls at once; then one call at a time may try again (half-open)."""


def is_connection_failure(exc: BaseException) -> bool:
    """Refused, reset, or closed before an answer: the runner is not there (a slow one times out instead)."""
    return isinstance(exc, stack_errors("ConnectError", "ConnectTimeout", "ReadError", "WriteError", "RemoteProtocolError"))


@dataclass
class Breaker:
    """One runner's circuit: closed while it answers; open once it failed :data:`BREAKER_THRESHOLD`
    connections in a row after having answered (a runner never reached is discovery's business);
    after :data:`BREAKER_COOLDOWN` seconds, calls go through again and the first answer closes it."""

    runner_url: str
    threshold: int = BREAKER_THRESHOLD
    cooldown: float = BREAKER_COOLDOWN
    clock: Callable[[], float] = time.monotonic
    answered: bool = False
    failures: int = 0
    opened_at: float | None = None
    went_away: str = ""
    reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.opened_at is not None and self.clock() - self.opened_at < self.cooldown

    def check(self, model: str | None = None) -> None:
        """Raise :class:`~pytest_dmr.errors.RunnerUnavailableError` at once while the circuit is open."""
        if self.is_open:
            raise errors.RunnerUnavailableError(
                f"the runner went away at {self.went_away} ({self.failures} connections in a row failed after it "
                f"had answered: {self.reason}); calls to it fail at once for {self.cooldown:g} s instead of retrying",
                runner_url=self.runner_url,
                model=model,
                hint="Restart the runner or its container (`docker model status`, `docker model logs`, `docker ps`); "
                "calls try it again after the cool-down",
            )

    def succeeded(self) -> None:
        with self._lock:
            self.answered, self.failures, self.opened_at = True, 0, None

    def failed(self, exc: BaseException) -> None:
        if not is_connection_failure(exc):
            return
        with self._lock:
            if self.failures == 0:
                self.went_away = datetime.datetime.now().astimezone().strftime("%H:%M:%S")
            self.failures += 1
            self.reason = _reason(exc)
            if self.answered and self.failures >= self.threshold:
                self.opened_at = self.clock()


_BREAKERS: dict[str, Breaker] = {}
_TRANSPORT_BREAKERS: weakref.WeakKeyDictionary[object, dict[str, Breaker]] = weakref.WeakKeyDictionary()
_BREAKERS_LOCK = threading.Lock()


def breaker_for(runner_url: str, transport: object | None = None) -> Breaker:
    """The breaker every client and adapter of this process shares for ``runner_url`` (over the
    network), or for ``runner_url`` through ``transport`` (a mock's faults are its own)."""
    with _BREAKERS_LOCK:
        if transport is None:
            table = _BREAKERS
        else:
            try:
                table = _TRANSPORT_BREAKERS.setdefault(transport, {})
            except TypeError:  # not weakly referenceable: its own breaker
                return Breaker(runner_url)
        return table.setdefault(runner_url, Breaker(runner_url))


def reset_breakers() -> None:
    """Close every breaker (for tests that restart a runner on the same URL)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()
        _TRANSPORT_BREAKERS.clear()


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 502/503/504 and failed connections with exponential backoff, at most ``max_retries`` times.

    The wait before retry ``n`` (0-based) is ``backoff * 2**n``, capped at ``max_delay``; a
    ``Retry-After`` header in seconds is honoured up to the same cap. So the total wait is bounded
    by ``max_retries * max_delay``. 4xx answers are never retried.
    """

    max_retries: int = 4
    backoff: float = 0.25
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise errors.ConfigurationError(
                f"max_retries must be 0 or more, got {self.max_retries}", hint="Pass max_retries=0 to turn retries off"
            )
        if self.backoff < 0:
            raise errors.ConfigurationError(f"backoff must be 0 or more seconds, got {self.backoff}")

    def retries_status(self, status: int) -> bool:
        return error_bodies.is_retryable_status(status)

    def retries_error(self, exc: BaseException) -> bool:
        """Connection failures (nothing was sent, so trying again is safe)."""
        return isinstance(exc, stack_errors("ConnectError", "ConnectTimeout"))

    def delay(self, attempt: int, response: httpx2.Response | None = None) -> float:
        wait = float(self.backoff * (2**attempt))
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            try:
                wait = max(wait, float(retry_after))
            except ValueError:
                pass
        return min(wait, self.max_delay)


def default_base_url(transport: object | None) -> str:
    """A transport that knows its own base URL (the mock) gives it; otherwise DMR's host URL."""
    base_url = getattr(transport, "base_url", None)
    return base_url if isinstance(base_url, str) and base_url else addresses.DEFAULT_HOST_URL


def trusts_environment(address: addresses.RunnerAddress) -> bool:
    """Whether httpx2 may take proxy settings (``HTTP_PROXY``, ``ALL_PROXY``...) from the environment.

    Not for a loopback runner: a proxy cannot reach this machine's 127.0.0.1, so a corporate
    ``HTTP_PROXY`` without a matching ``NO_PROXY`` would break every local request. Go's
    ``http.ProxyFromEnvironment``, which DMR's own CLI uses, never proxies loopback either.
    """
    host = (urlsplit(address.root).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: the environment decides (NO_PROXY)
        return True


def client_options(address: addresses.RunnerAddress, timeout: float, headers: dict[str, str]) -> dict[str, Any]:
    """The httpx2 client arguments the client and the adapter share: timeouts, headers, and proxies
    from the environment only for a runner that is not on this machine."""
    return {"timeout": timeouts(timeout), "headers": headers, "trust_env": trusts_environment(address)}


def user_agent() -> str:
    from pytest_dmr import __version__

    return f"pytest-dmr/{__version__}"
