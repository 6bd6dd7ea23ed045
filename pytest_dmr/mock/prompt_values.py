"""Values a prompt mentions (names, places, numbers, e-mail addresses, dates, quoted text), for JSON
answers and tool arguments that reuse them as a real model does; and a JSON schema given in the
messages themselves (instructor's JSON mode, pydantic-ai's ``PromptedOutput``).

Names are capitalised words that do not start a sentence (one or two in a row, ``Maria``,
``Ada Lovelace``), or two that do; places are those after ``in``, ``at``, ``from``, ``to``, ``near``. Each kind is
handed out in the order the prompt gives it, cycling, so two name fields get two names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]\d)")
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"")
_CAPITALISED = re.compile(r"(?<![.!?:]\s)(?<!^)(?<!\n)(?<![\w'])([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)\b")
_OPENING_NAME = re.compile(r"(?:^|(?<=[.!?:]\s)|(?<=\n))([A-Z][a-z]+\s[A-Z][a-z]+)\b")
"""A two-word name that starts a sentence (``Maria Santos paid...``); one word there is too often not a name."""
_PLACE = re.compile(r"\b(?:in|at|from|to|near|of)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)")
_NOT_NAMES = frozenset(
    "I The A An This That These Those It Its Is Are What Which Who How Why When Where Can Could Would Should Will "
    "Please Yes No Hi Hello Thanks Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February "
    "March April May June July August September October November December JSON Python".split()
)


class PromptValues:
    """What a conversation mentions, handed out kind by kind in order (cycling)."""

    def __init__(self, text: str) -> None:
        places = [match.group(1) for match in _PLACE.finditer(text)]
        matches = sorted([*_CAPITALISED.finditer(text), *_OPENING_NAME.finditer(text)], key=lambda match: match.start())
        names = [
            match.group(1) for match in matches
            if match.group(1).split()[0] not in _NOT_NAMES and match.group(1) not in places
        ]  # fmt: skip
        self.found: dict[str, list[Any]] = {
            "name": list(dict.fromkeys(names)),
            "place": list(dict.fromkeys(place for place in places if place.split()[0] not in _NOT_NAMES)),
            "email": list(dict.fromkeys(_EMAIL.findall(text))),
            "date": list(dict.fromkeys(_DATE.findall(text))),
            "number": [float(number) if "." in number else int(number) for number in _NUMBER.findall(_EMAIL.sub("", _DATE.sub("", text)))],
            "quoted": list(dict.fromkeys(_QUOTED.findall(text))),
        }
        self._next: dict[str, int] = {}
        self._lowered = text.lower()

    def __bool__(self) -> bool:
        return any(self.found.values())

    def take(self, kind: str, accept: Any = None) -> Any:
        """The next value of ``kind`` that ``accept`` (a predicate) allows, ``None`` when there is none."""
        values = self.found.get(kind) or []
        start = self._next.get(kind, 0)
        for offset in range(len(values)):
            index = (start + offset) % len(values)
            if accept is None or accept(values[index]):
                self._next[kind] = index + 1
                return values[index]
        return None

    def mentioned(self, options: list[Any]) -> Any:
        """The first of ``options`` (an ``enum``'s strings) the prompt names as a word, else ``None``."""
        for option in options:
            if isinstance(option, str) and option and re.search(rf"(?<!\w){re.escape(option.lower())}(?!\w)", self._lowered):
                return option
        return None


_SCHEMA_KEYS = ("properties", "$defs", "definitions", "anyOf", "oneOf", "allOf")


def _looks_like_schema(value: Any) -> bool:
    return isinstance(value, Mapping) and (
        any(key in value for key in _SCHEMA_KEYS) or (value.get("type") == "object" and "title" in value)
    )


def schema_in_text(text: str) -> tuple[Any, str]:
    """The first JSON schema written in ``text`` (an object with ``properties``, ``$defs``...), else
    ``None``; and ``text`` without it (the prompt's own values are not the schema's)."""
    decoder = json.JSONDecoder()
    at = text.find("{")
    while at >= 0:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        found = value if _looks_like_schema(value) else None
        for nested in value.values() if found is None and isinstance(value, Mapping) else ():
            found = nested if found is None and _looks_like_schema(nested) else found
        if found is not None:
            return found, text[:at] + text[end:]
        at = text.find("{", end)
    return None, text
