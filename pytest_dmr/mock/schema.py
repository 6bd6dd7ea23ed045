"""JSON values valid against a JSON schema, drawn deterministically (no jsonschema at runtime).

Supported: ``type`` (one or a list: the first non-null wins), ``properties`` (all of them, in
order), ``required``, ``additionalProperties``, ``min/maxProperties``, ``enum``, ``const``,
``items``/``prefixItems`` with ``min/maxItems`` and ``uniqueItems``, ``minimum``/``maximum`` (and
exclusive forms, draft 4 booleans included) and ``multipleOf``, ``min/maxLength``, string
``format`` (date, date-time, time, email, uri/url, uuid, hostname, ipv4, ipv6), local ``$ref``
(``#/$defs/...``, ``#/definitions/...``), ``allOf`` (merged), ``anyOf``/``oneOf`` (the first
option that is not ``null``). Not supported: ``pattern`` (the string ignores it), ``not``,
``if/then/else``, ``dependencies``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_dmr.mock.prose import sentence_words
from pytest_dmr.mock.seeded import SeededDraws, canonical_json

_MAX_DEPTH = 12
_FIRST_NAMES = ("Ada", "Grace", "Alan", "Margaret", "Linus", "Barbara", "Dennis", "Frances", "Ken", "Radia")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Hamilton", "Torvalds", "Liskov", "Ritchie", "Allen", "Thompson", "Perlman")
_CITIES = ("Lisbon", "Oslo", "Kyoto", "Toronto", "Nairobi", "Lyon", "Melbourne", "Porto", "Seville", "Tallinn")
_COUNTRIES = ("Portugal", "Norway", "Japan", "Canada", "Kenya", "France", "Australia", "Spain", "Estonia", "Chile")
_COLORS = ("red", "green", "blue", "amber", "teal", "violet", "black", "white")
_WORDS = (
    "river", "garden", "signal", "harbor", "lantern", "meadow", "summit", "orbit", "canvas", "pixel",
    "maple", "copper", "falcon", "ember", "glacier", "quartz", "willow", "beacon", "cedar", "delta",
)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class SchemaError(ValueError):
    """The schema cannot be satisfied or understood (an unknown ``$ref``, ``false``...)."""


def value_for_schema(schema: Any, draws: SeededDraws) -> Any:
    """A value valid against ``schema`` (a JSON schema as a dict)."""
    return _Generator(schema, draws).value(schema, None, 0)


class _Generator:
    def __init__(self, root: Any, draws: SeededDraws) -> None:
        self.root = root
        self.draws = draws

    # -- schema plumbing ---------------------------------------------------------------------

    def resolve(self, schema: Any, depth: int = 0) -> Any:
        """Follow ``$ref`` and merge ``allOf`` until a plain schema remains."""
        if not isinstance(schema, Mapping):
            return schema
        if "$ref" in schema and depth < _MAX_DEPTH:
            target = self.lookup(schema["$ref"])
            rest = {key: value for key, value in schema.items() if key != "$ref"}
            return self.resolve(_merge(target, rest) if rest else target, depth + 1)
        if "allOf" in schema and depth < _MAX_DEPTH:
            merged: Mapping[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part, depth + 1))
            return self.resolve(merged, depth + 1)
        return schema

    def lookup(self, ref: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"only local $ref are supported, got {ref!r}")
        node = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else ():
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points nowhere in the schema")
        return node

    # -- values ------------------------------------------------------------------------------

    def value(self, schema: Any, name: str | None, depth: int) -> Any:
        if schema is True or schema is None:
            schema = {}
        if schema is False:
            raise SchemaError("the schema `false` accepts no value")
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and schema["enum"]:
            return self.draws.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if options:
                chosen = next((option for option in options if not _is_null(self.resolve(option))), options[0])
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(rest, self.resolve(chosen)) if rest else chosen, name, depth)
        kind = _type_of(schema)
        if depth >= _MAX_DEPTH and kind in ("object", "array"):
            kind = "null" if "null" in _types(schema) else kind
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return self.draws.chance(0.5)
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = [key for key in schema.get("required") or () if isinstance(key, str)]
        keys = list(required) + [key for key in properties if key not in required]
        if "maxProperties" in schema:
            keys = keys[: max(len(required), int(schema["maxProperties"]))]
        result = {key: self.value(properties.get(key, {}), key, depth + 1) for key in keys}
        extra = schema.get("additionalProperties", True)
        minimum = int(schema.get("minProperties", 0))
        if not properties and not required and extra is not False and minimum == 0:
            minimum = 1  # a bare {"type": "object"} gets one plausible field rather than {}
        index = 1
        while len(result) < minimum and extra is not False:
            key = "answer" if index == 1 and "answer" not in result else f"field_{index}"
            index += 1
            if key not in result:
                result[key] = self.value(extra if isinstance(extra, Mapping) else {"type": "string"}, key, depth + 1)
        return result

    def array(self, schema: Mapping[str, Any], name: str | None, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
        items = schema.get("items") if isinstance(schema.get("items"), (Mapping, bool)) else schema.get("additionalItems", {})
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = max(low, min(high, self.draws.between(max(low, len(prefix), 1), max(low, 3))))
        if items is False:
            count = min(count, len(prefix))
        unique = bool(schema.get("uniqueItems"))
        result: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(result) < count and attempts < count * 8 + 8:
            attempts += 1
            position = len(result)
            item_schema = prefix[position] if position < len(prefix) else items
            value = self.value(item_schema, name, depth + 1)
            if unique:
                key = canonical_json(value)
                if key in seen:
                    continue
                seen.add(key)
            result.append(value)
        return result

    def integer(self, schema: Mapping[str, Any]) -> int:
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            return step * self.draws.between(first, max(first, last))
        return self.draws.between(low, max(low, high))

    def number(self, schema: Mapping[str, Any]) -> float | int:
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            low, high = _bounds(schema, integer=False)
            first, last = math.ceil(low / step), math.floor(high / step)
            multiple = self.draws.between(first, max(first, last)) * step
            return round(multiple, 10) if isinstance(multiple, float) else multiple
        low, high = _bounds(schema, integer=False)
        value = float(round(low + (high - low) * self.draws.unit(), 2))
        if value <= low and _exclusive(schema, "minimum"):
            value = low + (high - low) / 2
        if value >= high and _exclusive(schema, "maximum"):
            value = low + (high - low) / 2
        return value

    def string(self, schema: Mapping[str, Any], name: str | None) -> str:
        text_format = schema.get("format")
        text = self.formatted(text_format) if isinstance(text_format, str) and text_format else None
        if text is None:
            text = self.named(name or "")
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, len(text))))
        while len(text) < low:
            text += " " + self.draws.choice(_WORDS)
        if len(text) > high:
            cut = text[:high]
            text = cut.rstrip() if len(cut.rstrip()) >= low else cut
        return text

    def formatted(self, fmt: str) -> str | None:
        draws = self.draws
        if fmt == "date":
            return self.date()
        if fmt == "date-time":
            return f"{self.date()}T{self.time()}Z"
        if fmt == "time":
            return self.time() + "Z"
        if fmt in ("email", "idn-email"):
            return f"{draws.choice(_FIRST_NAMES).lower()}.{draws.choice(_LAST_NAMES).lower()}@example.com"
        if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
            return f"https://example.com/{draws.choice(_WORDS)}/{draws.choice(_WORDS)}"
        if fmt == "uuid":
            text = draws.hex(32)
            return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:32]}"
        if fmt in ("hostname", "idn-hostname"):
            return f"{draws.choice(_WORDS)}.example.com"
        if fmt == "ipv4":
            return f"192.0.2.{draws.between(1, 254)}"
        if fmt == "ipv6":
            return f"2001:db8::{draws.between(1, 0xFFFF):x}"
        return None

    def date(self) -> str:
        month = self.draws.between(1, 12)
        return f"{self.draws.between(2020, 2026)}-{month:02d}-{self.draws.between(1, _MONTH_DAYS[month - 1]):02d}"

    def time(self) -> str:
        return f"{self.draws.between(0, 23):02d}:{self.draws.between(0, 59):02d}:{self.draws.between(0, 59):02d}"

    def named(self, name: str) -> str:
        """A string that fits the property's name when it is a common one."""
        key = name.lower()
        draws = self.draws
        if key in ("name", "full_name", "fullname", "author", "person", "username", "user"):
            return f"{draws.choice(_FIRST_NAMES)} {draws.choice(_LAST_NAMES)}"
        if key in ("first_name", "firstname", "given_name"):
            return draws.choice(_FIRST_NAMES)
        if key in ("last_name", "lastname", "surname", "family_name"):
            return draws.choice(_LAST_NAMES)
        if key in ("email", "email_address"):
            return self.formatted("email") or ""
        if key in ("url", "uri", "link", "website", "homepage"):
            return self.formatted("url") or ""
        if key in ("city", "town", "location", "place"):
            return draws.choice(_CITIES)
        if key == "country":
            return draws.choice(_COUNTRIES)
        if key in ("color", "colour"):
            return draws.choice(_COLORS)
        if key in ("zip", "zipcode", "zip_code", "postcode", "postal_code", "phone", "phone_number"):
            return "".join(str(draws.below(10)) for _ in range(10 if key.startswith("phone") else 5))
        if key in ("id", "identifier", "code", "key", "slug", "tag"):
            return f"{draws.choice(_WORDS)}-{draws.between(100, 999)}"
        if key in ("title", "label", "topic", "subject", "category"):
            return f"{draws.choice(_WORDS).capitalize()} {draws.choice(_WORDS)}"
        return " ".join(sentence_words(draws))


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Combine two schemas as ``allOf`` does, for what the generator reads."""
    if not isinstance(extra, Mapping):
        return dict(base)
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif key == "required" and key in merged:
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key in ("minimum", "minLength", "minItems", "exclusiveMinimum") and key in merged:
            merged[key] = max(merged[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "exclusiveMaximum") and key in merged:
            merged[key] = min(merged[key], value)
        else:
            merged[key] = value
    return merged


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(item) for item in kind]
    return []


def _type_of(schema: Mapping[str, Any]) -> str:
    types = _types(schema)
    if types:
        return next((kind for kind in types if kind != "null"), types[0])
    if any(key in schema for key in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(key in schema for key in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and _types(schema) == ["null"]


def _exclusive(schema: Mapping[str, Any], side: str) -> bool:
    key = "exclusiveMinimum" if side == "minimum" else "exclusiveMaximum"
    return schema.get(key) is True or isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool)


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[Any, Any]:
    """The closed range a number must fall in; defaults keep values small and plausible."""
    low = schema.get("minimum")
    high = schema.get("maximum")
    exclusive_low = schema.get("exclusiveMinimum")
    exclusive_high = schema.get("exclusiveMaximum")
    nudge = 1 if integer else 0.01
    if isinstance(exclusive_low, bool):
        if exclusive_low and low is not None:
            low = low + nudge
    elif isinstance(exclusive_low, (int, float)):
        low = max(low, exclusive_low + nudge) if low is not None else exclusive_low + nudge
    if isinstance(exclusive_high, bool):
        if exclusive_high and high is not None:
            high = high - nudge
    elif isinstance(exclusive_high, (int, float)):
        high = min(high, exclusive_high - nudge) if high is not None else exclusive_high - nudge
    if low is None and high is None:
        low, high = (1, 100) if integer else (0, 100)
    elif low is None:
        assert high is not None
        low = high - 100
    elif high is None:
        high = low + 100
    assert low is not None and high is not None
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return low, max(low, high)
