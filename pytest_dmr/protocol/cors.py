"""DMR's CORS middleware (section 0): which paths are wrapped, which origins are allowed, what is answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple



ORIGIN_HEADER = "Origin"
ALLOW_ORIGIN_HEADER = "Access-Control-Allow-Origin"
ORIGIN_NOT_ALLOWED = "Origin not allowed"
PREFLIGHT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Credentials", "true"),
    ("Access-Control-Allow-Methods", "GET, POST, DELETE"),
    ("Access-Control-Allow-Headers", "*"),
)
"""What an ``OPTIONS`` preflight from an allowed origin gets, besides :data:`ALLOW_ORIGIN_HEADER`, with ``204``."""
DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = tuple(
    origin
    for host in ("localhost", "127.0.0.1", "0.0.0.0")
    for origin in (f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*")
)
"""The entries DMR always adds to ``DMR_ORIGINS``, in its order. Matching is exact, so the ``:*``
entries only match the literal string ``http://localhost:*``, not ``http://localhost:3000``."""
_CORS_WRAPPED_PREFIXES = ("/models/", "/engines/", "/v1/", "/api/", "/anthropic/", "/responses/")
_CORS_WRAPPED_PATHS = frozenset({"/models", "/rerank", "/score", "/responses"})


def allowed_origins(dmr_origins: str | None) -> tuple[str, ...]:
    """The list DMR's CORS checks: ``DMR_ORIGINS``'s comma-separated entries (trimmed, empty ones
    dropped), then :data:`DEFAULT_ALLOWED_ORIGINS`. A ``*`` entry here does **not** allow every
    origin (the list then has more than one entry): DMR allows all only for the list ``["*"]``."""
    given = [entry.strip() for entry in (dmr_origins or "").split(",")]
    return (*(entry for entry in given if entry), *DEFAULT_ALLOWED_ORIGINS)


def is_cors_wrapped(path: str) -> bool:
    """Whether DMR's CORS middleware sees requests for this (cleaned) path: ``/models*``,
    ``/engines/*``, ``/v1/*``, ``/rerank``, ``/score``, ``/api/*``, ``/anthropic/*``, ``/responses*``.
    ``/``, ``/version``, ``/metrics`` and unknown top-level paths are not wrapped."""
    return path in _CORS_WRAPPED_PATHS or path.startswith(_CORS_WRAPPED_PREFIXES)


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Exact string matching; only a list that is exactly ``["*"]`` allows every origin."""
    return (len(allowed) == 1 and allowed[0] == "*") or origin in allowed


class CorsAnswer(NamedTuple):
    """What the CORS middleware does with a request: answer at once (``status`` 403 with
    :data:`ORIGIN_NOT_ALLOWED` as a plain-text error, or 204 for a preflight), or let the handler
    answer (``status`` ``None``); ``headers`` go on whichever answer is sent."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()


_NOTHING_TO_DO = CorsAnswer(None)


def cors_answer(path: str, method: str, origin: str | None, allowed: Sequence[str]) -> CorsAnswer:
    """DMR's CORS middleware for one request. No ``Origin`` (or an empty one), or a path it does not
    wrap: nothing to do. An ``OPTIONS`` without an allowed origin goes on to the handler (a 404)."""
    if not origin or not is_cors_wrapped(path):
        return _NOTHING_TO_DO
    if not origin_allowed(origin, allowed):
        return CorsAnswer(403)
    headers = ((ALLOW_ORIGIN_HEADER, origin),)
    if method == "OPTIONS":
        return CorsAnswer(204, headers + PREFLIGHT_HEADERS)
    return CorsAnswer(None, headers)
