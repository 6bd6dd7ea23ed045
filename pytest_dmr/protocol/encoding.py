"""Content types, JSON as llama.cpp and Go write it, Go-style quoting and times."""

from __future__ import annotations

import json
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


def parse_go_time(text: str) -> datetime.datetime | None:
    """A Go ``time.Time`` as JSON writes it (RFC 3339, up to nanoseconds); ``None`` for the zero time
    (a runner in use or loading) or a value that does not parse."""
    import datetime  # local: most runs never read a time

    found = compiled(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$").match(text)
    if found is None or text == GO_ZERO_TIME:
        return None
    stamp, fraction, zone = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime.datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return parsed.replace(microsecond=micro)
