"""Go durations and keep-alive values (section 5), parsed and written as DMR does."""

from __future__ import annotations


from pytest_dmr.protocol._regex import compiled
from pytest_dmr.protocol.encoding import go_quote


NANOSECONDS_PER_SECOND = 1_000_000_000
_DURATION_UNITS = {
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": NANOSECONDS_PER_SECOND, "m": 60 * NANOSECONDS_PER_SECOND, "h": 3600 * NANOSECONDS_PER_SECOND,
}  # fmt: skip
MAX_GO_DURATION = 2**63 - 1
"""The longest Go ``time.Duration``, in nanoseconds (about 292 years)."""
KEEP_ALIVE_FOREVER = -1
"""A keep-alive in nanoseconds that means "never unload when idle" (any negative duration becomes this)."""


def _time_quote(text: str) -> str:
    """How Go's ``time`` package quotes a value in its errors: ``\\xNN`` for each byte of a non-ASCII
    or control character (unlike ``%q``), a backslash before ``"`` and ``\\``."""
    out: list[str] = []
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    return '"' + "".join(out) + '"'


def _go_fraction(digits: str, unit: int) -> int:
    """Nanoseconds a duration's fraction adds, computed as Go does: from the leading digits that fit
    in 63 bits, in float64 arithmetic, truncated (so ``"1.9999999999999999999s"`` is exactly 2 s)."""
    value, scale = 0, 1.0
    for digit in digits:
        following = value * 10 + int(digit)
        if value > (MAX_GO_DURATION // 10) or following > MAX_GO_DURATION + 1:
            break  # Go stops taking digits into account here
        value, scale = following, scale * 10
    return int(value * (unit / scale)) if value else 0


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds: ``"1h30m"``, ``"90s"``, ``"1.5h"``, ``"300ms"``,
    ``"-2m"``, ``"0"``. Raises :class:`ValueError` with Go's message (``time: invalid duration "x"``)."""
    invalid = ValueError(f"time: invalid duration {_time_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        number = compiled(r"^([0-9]*)(?:\.([0-9]*))?").match(rest)
        assert number is not None  # the pattern matches the empty string
        digits, fraction = number.group(1), number.group(2) or ""
        if not digits and not fraction or len(digits) > 20:  # 20 digits: past any duration, short for int()
            raise invalid
        whole = int(digits or "0")
        if whole > MAX_GO_DURATION + 1:
            raise invalid
        rest = rest[number.end() :]
        unit = compiled(r"^[^0-9.]*").match(rest).group(0)  # type: ignore[union-attr]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_time_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_time_quote(unit)} in duration {_time_quote(text)}")
        rest = rest[len(unit) :]
        scale = _DURATION_UNITS[unit]
        if whole > (MAX_GO_DURATION + 1) // scale:
            raise invalid
        value = whole * scale + _go_fraction(fraction, scale)
        total += value
        if value > MAX_GO_DURATION + 1 or total > MAX_GO_DURATION + 1:
            raise invalid
    if total > MAX_GO_DURATION + (1 if negative else 0):
        raise invalid
    return -total if negative else total


def _with_fraction(value: int, digits: int) -> str:
    whole, fraction = divmod(value, 10**digits)
    decimals = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{decimals}" if decimals else str(whole)


def format_go_duration(nanoseconds: int) -> str:
    """Go's ``Duration.String()``: ``"0s"``, ``"300ms"``, ``"1.5s"``, ``"1m30s"``, ``"10m0s"``, ``"1h30m0s"``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    size = abs(nanoseconds)
    if size < NANOSECONDS_PER_SECOND:
        if size < 1_000:
            return f"{sign}{size}ns"
        if size < 1_000_000:
            return f"{sign}{_with_fraction(size, 3)}\u00b5s"
        return f"{sign}{_with_fraction(size, 6)}ms"
    seconds = _with_fraction(size % (60 * NANOSECONDS_PER_SECOND), 9) + "s"
    minutes = size // (60 * NANOSECONDS_PER_SECOND)
    if minutes == 0:
        return sign + seconds
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes}m{seconds}" if hours else f"{sign}{minutes}m{seconds}"


def parse_keep_alive(text: str) -> int:
    """A ``keep_alive`` string as DMR reads it, in nanoseconds: a Go duration, ``"0"`` (unload as soon
    as idle), ``"-1"`` or any negative duration (:data:`KEEP_ALIVE_FOREVER`). :class:`ValueError` otherwise."""
    if text == "-1":
        return KEEP_ALIVE_FOREVER
    try:
        duration = parse_go_duration(text)
    except ValueError as exc:
        raise ValueError(f"invalid keep_alive duration {go_quote(text)}: {exc}") from None
    return KEEP_ALIVE_FOREVER if duration < 0 else duration


def format_keep_alive(nanoseconds: int) -> str:
    """How DMR writes a keep-alive back (``/engines/ps``, ``_configure``): ``"-1"`` or ``Duration.String()``."""
    return "-1" if nanoseconds < 0 else format_go_duration(nanoseconds)
