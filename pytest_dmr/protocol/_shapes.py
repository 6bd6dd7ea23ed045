"""Reading decoded JSON whose shape a runner decides: each helper returns the type it names, or
raises :class:`~pytest_dmr.errors.MalformedResponseError` saying what was wrong (never a raw
``TypeError`` or ``OverflowError``). Callers add the runner and model (``error.naming(...)``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_dmr import errors

HINT = "Check that the URL points at Docker Model Runner or an OpenAI-compatible server"


def malformed(what: str) -> errors.MalformedResponseError:
    return errors.MalformedResponseError(f"the runner's answer cannot be read: {what}", hint=HINT)


def kind(value: object) -> str:
    """How JSON would name a value's type, for messages: ``a number``, ``a list``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def json_object(value: object, what: str) -> Mapping[str, Any]:
    """``value`` when it is an object with text keys."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise malformed(f"{what} is {kind(value)}, not an object")
    return value


def text(value: object, what: str, default: str = "") -> str:
    """A string field; ``default`` when absent (``None``)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise malformed(f"{what} is {kind(value)}, not a string")
    return value


def optional_text(value: object, what: str) -> str | None:
    return None if value is None else text(value, what)


def integer(value: object, what: str, default: int | None = 0) -> int:
    """A whole number (an integral float too: JSON does not tell them apart); ``default`` when absent."""
    if value is None and default is not None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise malformed(f"{what} is {kind(value)}, not a whole number")


def texts(value: object, what: str) -> tuple[str, ...]:
    """A list of strings; ``()`` when absent."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise malformed(f"{what} is {kind(value)}, not a list of strings")
    return tuple(value)


def plain(value: object) -> str | None:
    """A scalar as text (a string, a number, a boolean), ``None`` for anything else: never ``str()``
    of a nested value, which can be deep enough to exhaust the stack."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, float)):
        return str(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 14_000 else None  # str() refuses over 4300 digits
    return None


def is_number(value: object) -> bool:
    """A finite JSON number (not a boolean), one a float can hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False
