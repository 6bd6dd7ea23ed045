"""What the client and the adapter share about talking HTTP to a runner.

Mapping httpx2's exceptions (and httpx's, where a caller's transport raises them) to
:mod:`pytest_dmr.errors` (so no raw HTTP-stack error reaches a user),
the retry policy (which failures are worth another try, and how long to wait), and small helpers
for reading bodies. No I/O happens here: the callers send, this module decides.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from pytest_dmr import errors
from pytest_dmr.protocol import addresses, error_bodies

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


def status_error(response: httpx2.Response, *, runner_url: str, model: str | None) -> errors.RunnerHTTPError:
    """The error for a response with an error status; its body must have been read."""
    return error_bodies.error_from_response(response.status_code, response.text, runner_url=runner_url, model=model)


def decode_json(response: httpx2.Response, *, what: str, runner_url: str, model: str | None = None) -> Any:
    """The JSON body of a successful response, or a :class:`~pytest_dmr.errors.DMRError` saying what came instead."""
    try:
        return json.loads(response.content)
    except ValueError as exc:
        preview = response.text[:120]
        raise errors.DMRError(
            f"the runner's answer to {what} is not JSON: {preview!r}",
            runner_url=runner_url,
            model=model,
            hint="Check that the URL points at Docker Model Runner or an OpenAI-compatible server",
        ) from exc


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
