"""Content types, JSON as llama.cpp and Go write it, Go-style quoting and times."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol._regex import compiled

if TYPE_CHECKING:
    import datetime


JSON_CONTENT_TYPE = "application/json"
TEXT_PLAIN = "text/plain; charset=utf-8"
EVENT_STREAM = "text/event-stream"


def dumps(value: Any) -> str:
    """Compact, key-order-preserving JSON, as llama.cpp writes it. Same input, same bytes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(data: str | bytes, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads`` for bodies a runner sends: :class:`ValueError` for anything that is not JSON,
    nesting too deep to decode (a ``RecursionError`` from ``json``) and bytes not in UTF-8 included."""
    try:
        return json.loads(data, parse_constant=parse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def go_quote(text: str) -> str:
    """Go's ``%q``: double quotes, backslash escapes for quotes, backslashes and control characters."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def json_line(value: Any) -> bytes:
    """A JSON body as Go's streaming encoder writes it: compact, then ``\\n``."""
    return (dumps(value) + "\n").encode()


def go_time(seconds: float) -> str:
    """A Unix time as Go's ``time.Time`` marshals it (RFC 3339, nanoseconds, UTC ``Z``)."""
    import datetime as _dt  # local: only stand-in servers need it

    whole = int(seconds)
    nanos = int(round((seconds - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = _dt.datetime.fromtimestamp(whole, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


def parse_go_time(text: object) -> datetime.datetime | None:
    """A Go ``time.Time`` as JSON writes it (RFC 3339, up to nanoseconds); ``None`` for the zero time
    (a runner in use or loading), or anything that does not parse (not a string included)."""
    import datetime  # local: most runs never read a time

    if not isinstance(text, str) or text == GO_ZERO_TIME:
        return None
    found = compiled(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})").fullmatch(text)
    if found is None:
        return None
    stamp, fraction, zone = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime.datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return parsed.replace(microsecond=micro)
