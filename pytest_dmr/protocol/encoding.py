"""Content types, JSON as llama.cpp and Go write it (and Go's errors for JSON it rejects), Go-style
quoting, times and IDs."""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol._regex import compiled

if TYPE_CHECKING:
    import datetime


JSON_CONTENT_TYPE = "application/json"
TEXT_PLAIN = "text/plain; charset=utf-8"
EVENT_STREAM = "text/event-stream"


def compact_encoder(*, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A compact JSON encoder (UTF-8 as is, no spaces), made once. ``JSONEncoder.encode`` builds
    json's C encoder anew at every call, which costs a small body's encoding twice over: this keeps
    one. It checks no circular reference (what it encodes comes from JSON, or from the mock)."""
    options = {"separators": (",", ":"), "ensure_ascii": False, "sort_keys": sort_keys, "default": default}
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # an interpreter without json's C speedups
        return json.JSONEncoder(**options).encode  # type: ignore[arg-type]
    encode = c_make_encoder(None, default or json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, True)
    return lambda value: "".join(encode(value, 0))


_compact = compact_encoder()


def dumps(value: Any) -> str:
    """Compact, key-order-preserving JSON, as llama.cpp writes it. Same input, same bytes."""
    return _compact(value)


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


# Go's encoding/json, for the front-ends' exact bodies and errors
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_json(value: Any) -> str:
    """``json.Marshal``: compact, ``<``, ``>``, ``&`` escaped as ``\\u003c``..., other text as UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_HTML_SAFE)


def go_json_line(value: Any) -> bytes:
    """``json.NewEncoder(w).Encode``: :func:`go_json` and a newline."""
    return (go_json(value) + "\n").encode()


_ID_CHARSET = "abcdefghijklmnopqrstuvwxyz0123456789"


def random_id(prefix: str, length: int = 24) -> str:
    """DMR's ``GenerateID``: ``prefix`` and ``length`` random lower-case letters and digits."""
    return prefix + "".join(_ID_CHARSET[byte % len(_ID_CHARSET)] for byte in secrets.token_bytes(length))


def _char(text: str, pos: int) -> str:
    char = text[pos]
    return "'\\''" if char == "'" else repr(char) if not char.isprintable() else f"'{char}'"


def syntax_error(text: str) -> str | None:
    """Go's message for text that is not one JSON value (``None`` when it is), the common cases exactly."""
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "unexpected end of JSON input"
        char = _char(text, exc.pos)
        context = {
            "Expecting value": "looking for beginning of value",
            "Expecting ':' delimiter": "after object key",
            "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
            "Extra data": "after top-level value",
        }.get(exc.msg)
        if context is None and exc.msg == "Expecting ',' delimiter":
            context = "after array element" if _innermost(text, exc.pos) == "[" else "after object key:value pair"
        return f"invalid character {char} {context or 'in string literal'}"
    except ValueError:  # NaN, Infinity: Python reads them, Go does not
        return "invalid character 'N' looking for beginning of value"
    return None


def _reject_constant(constant: str) -> Any:
    raise ValueError(constant)


class _NumberOverflow(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _double(literal: str) -> float:
    value = float(literal)
    if value in (math.inf, -math.inf):
        raise _NumberOverflow(literal)
    return value


def _integer(literal: str) -> int:
    """An integer literal, refused as nlohmann refuses one too large for a 64-bit integer or a double."""
    if len(literal) > 20 and math.isinf(float(literal)):  # float() of an int-literal gives inf, never raises
        raise _NumberOverflow(literal)
    return int(literal)


_AS_GO_READS = json.JSONDecoder(parse_constant=_reject_constant)
_AS_LLAMACPP_READS = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_double)
_WITH_LONG_INTEGERS = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_double, parse_int=_integer)
"""For a body with 21 digits in a row somewhere: only then is every integer looked at (a token list
as an embedding's input has thousands)."""


def read_request_body(data: bytes) -> tuple[Any, str | None]:
    """A request body as DMR's Go decoder reads it, and llama.cpp's JSON parser's (nlohmann's)
    refusal of it, else ``None``: a number too large for a double (``1e400``: Go reads past it), a
    ``\\uXXXX`` escape of a lone UTF-16 surrogate (Go reads U+FFFD). :class:`ValueError` for what Go
    refuses: not JSON, ``NaN`` or ``Infinity`` (which Python's json reads), nesting too deep to
    decode, bytes that do not decode."""
    try:
        text = data.decode(json.detect_encoding(data))
        lone = _lone_surrogate(text) if "\\u" in text else None
        if lone is not None:
            return _without_surrogates(_AS_GO_READS.decode(text)), lone
        try:
            decoder = _WITH_LONG_INTEGERS if compiled(r"[0-9]{21}").search(text) else _AS_LLAMACPP_READS
            return decoder.decode(text), None
        except _NumberOverflow as overflow:
            return _AS_GO_READS.decode(text), f"[json.exception.out_of_range.406] number overflow parsing '{overflow.literal}'"
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _without_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings made U+FFFD, as Go decodes them."""
    if isinstance(value, str):
        return compiled("[\ud800-\udfff]").sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    return value


def _lone_surrogate(text: str) -> str | None:
    """nlohmann's parse error at the first ``\\uXXXX`` escape of a lone surrogate in ``text``'s strings."""
    for string in compiled(r'"(?:[^"\\]|\\.)*"').finditer(text):
        high = None  # where a high surrogate's escape ends, its low half expected there
        problem = ""
        for escape in compiled(r"\\(?:u([0-9a-fA-F]{4})|.)").finditer(string.group()):
            code = int(escape.group(1), 16) if escape.group(1) else -1
            if high is not None:
                if escape.start() == high and 0xDC00 <= code <= 0xDFFF:
                    high = None
                    continue
                end = escape.end() if escape.start() == high else high + 1
                problem = "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"
                break
            if 0xD800 <= code <= 0xDBFF:
                high = escape.end()
            elif 0xDC00 <= code <= 0xDFFF:
                end, problem = escape.end(), "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"
                break
        if high is not None and not problem:  # the closing quote came instead of the low half
            end, problem = high + 1, "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"
        if problem:
            at = string.start() + end
            column = len(text[text.rfind("\n", 0, at) + 1 : at].encode())
            key = text[string.end() :].lstrip().startswith(":")
            return (f"[json.exception.parse_error.101] parse error at line {text.count(chr(10), 0, at) + 1}, column {column}: "
                    f"syntax error while parsing {'object key' if key else 'value'} - invalid string: {problem}; "
                    f"last read: '{text[string.start() : at]}'{'; expected string literal' if key else ''}")  # fmt: skip
    return None


def _innermost(text: str, pos: int) -> str:
    """The innermost open bracket before ``pos`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


_JSON_KIND = {str: "string", bool: "bool", dict: "object", list: "array"}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}" if isinstance(value, float) and not value.is_integer() else "number"
    return _JSON_KIND.get(type(value), "value")


def _fits(value: Any, go_type: str) -> bool:
    if value is None:
        return True  # null leaves a Go field as it was
    if go_type == "string":
        return isinstance(value, str)
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type == "float64":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if go_type == "int":
        return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
    if go_type.startswith("[]"):
        return isinstance(value, list) and (go_type != "[]string" or all(item is None or isinstance(item, str) for item in value))
    if go_type.startswith("map["):
        return isinstance(value, dict) and (go_type != "map[string]string" or all(v is None or isinstance(v, str) for v in value.values()))
    return True  # interface{} and raw JSON take anything


def decode_struct(text: str, struct: str, fields: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """Decode ``text`` as Go's ``json.Unmarshal`` into a struct named ``struct`` with ``fields``
    (JSON name -> Go type: ``string``, ``bool``, ``int``, ``float64``, ``[]string``, ``[]T``,
    ``map[string]string``, ``any``). Returns the object (``{}`` for ``null``) and Go's error text or ``None``.
    Field names match exactly (Go also matches them case-insensitively: not modelled)."""
    problem = syntax_error(text)
    if problem is not None:
        return {}, problem
    value = json.loads(text)
    if "\\u" in text:  # Go decodes an escaped lone surrogate as U+FFFD
        value = _without_surrogates(value)
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"json: cannot unmarshal {_kind_of(value).split()[0]} into Go value of type {struct}"
    for key, item in value.items():
        go_type = fields.get(key)
        if go_type is not None and not _fits(item, go_type):
            kind = _kind_of(item)
            elements = item if go_type.startswith("[]") and isinstance(item, list) else (
                list(item.values()) if go_type.startswith("map[") and isinstance(item, dict) else None)
            if elements is not None:  # the container fits, an element does not
                go_type = go_type.removeprefix("[]").removeprefix("map[string]")
                kind = next(_kind_of(element) for element in elements if not _fits(element, go_type))
            short = struct.rpartition(".")[2]
            return value, f"json: cannot unmarshal {kind} into Go struct field {short}.{key} of type {go_type}"
    return value, None
