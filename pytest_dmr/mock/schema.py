"""JSON values valid against a JSON schema, drawn deterministically (no jsonschema at runtime).

Supported: ``type`` (one or a list: the first non-null wins), ``properties`` (all of them, in
order), ``required``, ``additionalProperties``, ``min/maxProperties``, ``enum``, ``const``,
``items``/``prefixItems`` with ``min/maxItems`` and ``uniqueItems``, ``minimum``/``maximum`` (and
exclusive forms, draft 4 booleans included) and ``multipleOf``, ``min/maxLength``, string
``format`` (date, date-time, time, email, uri/url, uuid, hostname, ipv4, ipv6), local ``$ref``
(``#/$defs/...``, ``#/definitions/...``), ``allOf`` (merged), ``anyOf``/``oneOf`` (the first
option that is not ``null``), and:

* ``pattern``: the plausible string is kept if it matches, else :mod:`.regex_strings` draws one
  (``re.search`` semantics: unanchored patterns need only contain a match). With ``min/maxLength``
  it picks repetition counts that fit both, and pads an unanchored match with words; when no
  match can have such a length, the pattern wins over the lengths. Two patterns (``allOf``, an
  ``if`` branch) must both match: one's match the other accepts, or the two joined.
* ``enum`` and ``const`` values must satisfy the rest of the schema (``type``, ``pattern``...):
  an ``enum`` loses the values that do not, and nothing left is a :class:`SchemaError`.
* ``not``: ``{"not": {"type": ...}}`` picks another type, an ``enum`` (or a boolean, or an integer
  range of at most 256 values) loses the excluded values, ``not: {not: X}`` is ``X``, otherwise
  further draws (16 at most, each also tried without its optional properties) until the value
  escapes the ``not`` schema.
* ``if``/``then``/``else``: a value that breaks its branch is drawn again from the base merged
  with ``if`` and ``then`` (or with ``else`` and ``not: if``). Several conditions (``allOf`` of
  ``if`` blocks) nest.
* ``dependentRequired``, ``dependentSchemas`` and draft 4 ``dependencies``: an emitted property
  brings the properties it requires, and its schema is merged into the object's.

Not supported: ``patternProperties``, ``propertyNames``, ``contains``, ``oneOf``'s "exactly one"
(the first option is drawn), ``not``/``if`` inside ``dependentSchemas``. A valid ``pattern`` with
lookaround, backreferences, unicode property escapes or inline flags leaves the string
unconstrained, as llama.cpp's grammar conversion does ("not supported, accepting any string"), so
the mock accepts what a live runner accepts. An invalid pattern (llama.cpp answers 400 too), a
schema that no value satisfies, and a ``not`` the bounded draws cannot escape are a
:class:`SchemaError` naming the pattern or the schema (the mock answers 400 with it). So is a schema
that asks for more than about 200000 characters of JSON (``minItems``, ``minLength``...), and a
pattern past :mod:`.regex_strings`' limits: no user schema stalls a test.

``not`` and ``if`` need to know whether a value matches a subschema: :meth:`_Generator.matches`
is a small validator for the keywords above (``format`` and unknown keywords pass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_dmr.mock.prompt_values import PromptValues
from pytest_dmr.mock.sentences import sentence_words
from pytest_dmr.mock.regex_strings import Pattern, PatternError, compile_pattern
from pytest_dmr.mock.seeded import SeededDraws, canonical_json

_MAX_DEPTH = 12
_ATTEMPTS = 16
"""Draws tried before giving up on escaping a ``not`` (or matching an ``if`` branch, or several patterns)."""
_OUTPUT_LIMIT = 200_000
"""About how many characters of JSON one schema may ask for (a value counts 8, a string its minLength)."""
_ENUMERATED_INTEGERS = 256
"""An integer range this small is listed for ``not``, which then removes what it excludes."""
_MORE_PATTERNS = "pattern (merged)"
"""Where :func:`_merge` keeps a second ``pattern`` (``allOf``, ``then``): a string must match them all."""
_ANNOTATIONS = frozenset(("title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "$schema", "$id"))
_TYPE_ORDER = ("string", "integer", "number", "boolean", "object", "array", "null")
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


def value_for_schema(schema: Any, draws: SeededDraws, values: PromptValues | None = None) -> Any:
    """A value valid against ``schema`` (a JSON schema as a dict); where the schema allows, names,
    places, numbers, e-mail addresses, dates and ``enum`` options the prompt mentions (``values``)."""
    return _Generator(schema, draws, values).value(schema, None, 0)


_PERSON_KEYS = frozenset(
    "name full_name fullname author person username user customer recipient contact attendee participant "
    "people speaker owner assignee sender".split()
)
_PLACE_KEYS = frozenset("city town location place destination origin country region address where".split())


def _singular(key: str) -> str:
    """``names`` -> ``name``, ``cities`` -> ``city`` (an array passes its own name to its items)."""
    if key.endswith("ies"):
        return key[:-3] + "y"
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key


class _Generator:
    def __init__(self, root: Any, draws: SeededDraws, values: PromptValues | None = None) -> None:
        self.root = root
        self.draws = draws
        self.output_left = _OUTPUT_LIMIT
        self.values = values if values else None

    def spend(self, size: int) -> None:
        """Count ``size`` characters of output against the limit (minItems 10**9 must not hang the mock)."""
        self.output_left -= size
        if self.output_left < 0:
            raise SchemaError(
                f"the schema asks for more than the mock writes (about {_OUTPUT_LIMIT} characters of JSON): check its minItems, minProperties and minLength"
            )

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

    # -- validation (what ``not`` and ``if`` need) -------------------------------------------

    def matches(self, schema: Any, value: Any, depth: int = 0) -> bool:
        """Whether ``value`` is valid against ``schema``, for the keywords the generator knows."""
        if schema is True or schema is None or not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return schema is not False
        if "$ref" in schema and not self.matches(self.lookup(schema["$ref"]), value, depth + 1):
            return False
        types = _types(schema)
        if types and not any(_is_type(value, kind) for kind in types):
            return False
        if "const" in schema and not _equal(value, schema["const"]):
            return False
        if isinstance(schema.get("enum"), list) and not any(_equal(value, option) for option in schema["enum"]):
            return False
        if not all(self.matches(part, value, depth + 1) for part in schema.get("allOf") or ()):
            return False
        if schema.get("anyOf") and not any(self.matches(part, value, depth + 1) for part in schema["anyOf"]):
            return False
        if schema.get("oneOf") and sum(1 for part in schema["oneOf"] if self.matches(part, value, depth + 1)) != 1:
            return False
        if "not" in schema and self.matches(schema["not"], value, depth + 1):
            return False
        if "if" in schema:
            branch = "then" if self.matches(schema["if"], value, depth + 1) else "else"
            if not self.matches(schema.get(branch, True), value, depth + 1):
                return False
        if isinstance(value, str):
            return self.string_matches(schema, value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _number_matches(schema, value)
        if isinstance(value, list):
            return self.array_matches(schema, value, depth)
        if isinstance(value, Mapping):
            return self.object_matches(schema, value, depth)
        return True

    def string_matches(self, schema: Mapping[str, Any], value: str) -> bool:
        if not _size(schema, "minLength", 0) <= len(value) <= _size(schema, "maxLength", len(value)):
            return False
        return all(self.search(pattern, value, None) for pattern in self.patterns(schema, None))

    def array_matches(self, schema: Mapping[str, Any], value: list[Any], depth: int) -> bool:
        if not _size(schema, "minItems", 0) <= len(value) <= _size(schema, "maxItems", len(value)):
            return False
        if schema.get("uniqueItems") and any(_equal(a, b) for i, a in enumerate(value) for b in value[i + 1 :]):
            return False
        prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
        rest = schema.get("items") if isinstance(schema.get("items"), (Mapping, bool)) else schema.get("additionalItems", True)
        return all(self.matches(prefix[i] if i < len(prefix) else rest, item, depth + 1) for i, item in enumerate(value))

    def object_matches(self, schema: Mapping[str, Any], value: Mapping[str, Any], depth: int) -> bool:
        if not _size(schema, "minProperties", 0) <= len(value) <= _size(schema, "maxProperties", len(value)):
            return False
        if any(key not in value for key in schema.get("required") or () if isinstance(key, str)):
            return False
        properties: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if not self.matches(properties[key] if key in properties else extra, item, depth + 1):
                return False
        for key in value:
            for needs in _dependencies_of(schema, key):
                if isinstance(needs, list) and any(other not in value for other in needs):
                    return False
                if not isinstance(needs, list) and not self.matches(needs, value, depth + 1):
                    return False
        return True

    # -- values ------------------------------------------------------------------------------

    def value(self, schema: Any, name: str | None, depth: int) -> Any:
        if schema is True or schema is None:
            schema = {}
        if schema is False:
            raise SchemaError("the schema `false` accepts no value")
        schema = self.resolve(schema)
        self.spend(8)
        if "not" in schema:
            return self.negated(schema, name, depth)
        if "if" in schema:
            return self.conditional(schema, name, depth)
        if "const" in schema:
            if not self.constrains(schema, "const", schema["const"]):
                raise SchemaError(f"the `const` does not satisfy the rest of the schema, in {_brief(schema)}")
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = [option for option in schema["enum"] if self.constrains(schema, "enum", option)]
            if not options:
                raise SchemaError(f"no `enum` value satisfies the rest of the schema, in {_brief(schema)}")
            mentioned = self.values.mentioned(options) if self.values else None
            return mentioned if mentioned is not None else self.draws.choice(options)
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

    def constrains(self, schema: Mapping[str, Any], keyword: str, option: Any) -> bool:
        """Whether ``option`` (of ``const`` or ``enum``) is valid against the rest of the schema."""
        rest = {key: value for key, value in schema.items() if key != keyword and key not in _ANNOTATIONS}
        if set(rest) <= {"type"}:
            return not rest or any(_is_type(option, kind) for kind in _types(rest))
        return self.matches(rest, option)

    def negated(self, schema: Mapping[str, Any], name: str | None, depth: int) -> Any:
        """A value of the schema without ``not`` that the ``not`` schema does not match."""
        excluded = self.resolve(schema["not"])
        if excluded is True or excluded == {}:
            raise SchemaError(f"`not: {canonical_json(schema['not'])}` excludes every value, in {_brief(schema)}")
        base = {key: value for key, value in schema.items() if key != "not"}
        if isinstance(excluded, Mapping) and set(excluded) == {"not"}:  # not: {not: X} is X
            return self.value(_merge(base, _as_schema(self.resolve(excluded["not"]))), name, depth)
        excluded_types = _plain_types(excluded)
        if excluded_types:
            if "type" in base:
                kinds = _types(base)
            elif _type_of(base) in excluded_types:
                kinds = list(_TYPE_ORDER)
            else:
                kinds = []  # the type the generator would infer is not excluded: keep it
            allowed = [kind for kind in kinds if kind not in excluded_types and not (kind == "integer" and "number" in excluded_types)]
            if kinds and not allowed:
                raise SchemaError(f"`not` excludes every type the schema allows, in {_brief(schema)}")
            if allowed:
                base["type"] = allowed
        if "const" in base and self.matches(excluded, base["const"]):
            raise SchemaError(f"the `const` is what `not` excludes, in {_brief(schema)}")
        if "enum" not in base and "const" not in base:  # few values: filter them rather than hope for another one
            if _types(base) == ["boolean"]:
                base["enum"] = [False, True]
            elif _types(base) == ["integer"] and "multipleOf" not in base:
                low, high = _bounds(base, integer=True)
                if high - low < _ENUMERATED_INTEGERS:
                    base["enum"] = list(range(low, high + 1))
        if isinstance(base.get("enum"), list) and base["enum"]:
            base["enum"] = [option for option in base["enum"] if not self.matches(excluded, option)]
            if not base["enum"]:
                raise SchemaError(f"`not` excludes every value the schema allows, in {_brief(schema)}")
        for _ in range(_ATTEMPTS):
            value = self.value(base, name, depth)
            for candidate in (value, *self.without_optional_properties(base, value)):
                if not self.matches(excluded, candidate):
                    return candidate
        raise SchemaError(f"no value found outside `not` in {_ATTEMPTS} draws, in {_brief(schema)}")

    def without_optional_properties(self, base: Mapping[str, Any], value: Any) -> list[dict[str, Any]]:
        """The object ``value`` with one optional property left out (then all of them), where ``base`` allows it."""
        if not isinstance(value, dict):
            return []
        required = base.get("required") or ()
        optional = [key for key in value if key not in required]
        variants = [{key: item for key, item in value.items() if key != left_out} for left_out in optional]
        if len(optional) > 1:
            variants.append({key: item for key, item in value.items() if key in required})
        return [variant for variant in variants if self.matches(base, variant)]

    def conditional(self, schema: Mapping[str, Any], name: str | None, depth: int) -> Any:
        """A value of the base schema, drawn again with ``then`` (or ``else``) merged in when it breaks them."""
        condition = schema["if"]
        rule = {key: schema[key] for key in ("if", "then", "else") if key in schema}
        base = {key: value for key, value in schema.items() if key not in rule}
        value = self.value(base, name, depth)
        if self.matches(schema, value):
            return value
        holds = self.matches(condition, value)
        for branch in (holds, not holds):
            if branch:
                merged = _merge(_merge(base, _as_schema(self.resolve(condition))), _as_schema(self.resolve(schema.get("then", True))))
            else:
                merged = _merge(_merge(base, _as_schema(self.resolve(schema.get("else", True)))), {"not": condition})
            for _ in range(_ATTEMPTS // 4):
                value = self.value(merged, name, depth)
                if self.matches(schema, value):
                    return value
        raise SchemaError(f"no value found for either branch of `if` in {_ATTEMPTS // 2} draws, in {_brief(schema)}")

    def with_dependencies(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """The object schema with what its emitted properties depend on merged in (required keys, schemas)."""
        if not any(key in schema for key in ("dependentRequired", "dependentSchemas", "dependencies")):
            return schema
        applied: set[str] = set()
        while True:
            pending = [key for key in _planned_keys(schema) if key not in applied]
            if not pending:
                return schema
            for key in pending:
                applied.add(key)
                for needs in _dependencies_of(schema, key):
                    if isinstance(needs, list):
                        schema = _merge(schema, {"required": [item for item in needs if isinstance(item, str)]})
                    elif isinstance(needs, Mapping):
                        schema = _merge(schema, self.resolve(needs))

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        schema = self.with_dependencies(schema)
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = [key for key in schema.get("required") or () if isinstance(key, str)]
        result = {key: self.value(properties.get(key, {}), key, depth + 1) for key in _planned_keys(schema)}
        extra = schema.get("additionalProperties", True)
        minimum = _size(schema, "minProperties", 0)
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
        low = _size(schema, "minItems", 0)
        high = _size(schema, "maxItems", max(low, 3))
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

    def from_prompt(self, schema: Mapping[str, Any], *, integer: bool) -> float | int | None:
        """The next number the prompt mentions that the schema allows, ``None`` when none does."""
        if self.values is None:
            return None

        def allowed(number: float) -> bool:
            return (isinstance(number, int) or not integer) and _number_matches(schema, number)

        found: float | int | None = self.values.take("number", allowed)
        return found

    def integer(self, schema: Mapping[str, Any]) -> int:
        found = self.from_prompt(schema, integer=True)
        if isinstance(found, int):
            return found
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            return step * self.draws.between(first, max(first, last))
        return self.draws.between(low, max(low, high))

    def number(self, schema: Mapping[str, Any]) -> float | int:
        found = self.from_prompt(schema, integer=False)
        if found is not None:
            return found
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
        """A plausible string (for the format, or the property's name); one drawn from ``pattern`` when that fails it."""
        low = _size(schema, "minLength", 0)
        high = _size(schema, "maxLength", None)
        self.spend(low)
        text = self.plain_string(schema, name, low, high)
        patterns = self.patterns(schema, name)
        if all(self.search(pattern, text, name) for pattern in patterns):
            return text
        if len(patterns) == 1:
            return self.drawn(patterns[0], low, high, name)
        return self.matching_all(patterns, low, high, name, schema)

    def matching_all(self, patterns: list[Pattern], low: int, high: int | None, name: str | None, schema: Mapping[str, Any]) -> str:
        """A string that several patterns match (merged ``allOf`` parts): their matches joined, or one's match the others accept."""

        def all_match(text: str) -> bool:
            return all(self.search(pattern, text, name) for pattern in patterns)

        texts = [self.drawn(pattern, low, high, name) for pattern in patterns]
        for text in ("".join(texts), "".join(reversed(texts))):  # ^a and b$: "a" + "b"
            if all_match(text):
                return text
        for pattern in patterns:
            try:
                return pattern.draw(self.draws, low, high, accept=all_match)
            except PatternError:
                continue
        sources = ", ".join(repr(pattern.source) for pattern in patterns)
        raise SchemaError(f"no string found that matches all of the patterns {sources}, in {_brief(schema)}")

    def drawn(self, pattern: Pattern, low: int, high: int | None, name: str | None) -> str:
        """A match of ``pattern``, within the lengths when some match (or a match among words) can be."""
        try:
            text = pattern.draw(self.draws, low, high)
        except PatternError as exc:
            raise SchemaError(_pattern_problem(pattern.source, exc, name)) from None
        return self.padded(pattern, text, low, name) if len(text) < low else text

    def padded(self, pattern: Pattern, text: str, low: int, name: str | None) -> str:
        """A match lengthened to ``low`` with words after it, or before it (an unanchored pattern allows one)."""
        need = low - len(text)
        words = " " + " ".join(self.draws.choice(_WORDS) for _ in range(need // 4 + 1)) + " "
        for candidate in (text + words[:need], words[-need:] + text):
            if self.search(pattern, candidate, name):
                return candidate
        return text  # anchored at both ends: the pattern wins over minLength

    def search(self, pattern: Pattern, text: str, name: str | None) -> bool:
        """Whether ``pattern`` matches in ``text`` (a search too long for the mock is a :class:`SchemaError`)."""
        try:
            return pattern.search(text)
        except PatternError as exc:
            raise SchemaError(_pattern_problem(pattern.source, exc, name)) from None

    def patterns(self, schema: Mapping[str, Any], name: str | None) -> list[Pattern]:
        """The patterns a string must match (``pattern``, and those :func:`_merge` added), compiled."""
        if "pattern" not in schema:
            return []
        sources = [schema["pattern"], *schema.get(_MORE_PATTERNS, ())]
        return [pattern for pattern in (self.pattern(source, name) for source in sources) if pattern is not None]

    def pattern(self, source: Any, name: str | None) -> Pattern | None:
        """The compiled pattern, or ``None`` for a valid one the mock cannot draw from (no constraint)."""
        if not isinstance(source, str):
            raise SchemaError(f"`pattern` must be a string, got {canonical_json(source)}")
        try:
            return compile_pattern(source)
        except PatternError as exc:
            if exc.unsupported:
                return None
            raise SchemaError(_pattern_problem(source, exc, name)) from None

    def plain_string(self, schema: Mapping[str, Any], name: str | None, low: int, high: int | None) -> str:
        text_format = schema.get("format")
        text = self.formatted(text_format) if isinstance(text_format, str) and text_format else None
        if text is None:
            text = self.named(name or "")
        if len(text) < low:
            words = [text]
            size = len(text)
            while size < low:
                words.append(" " + self.draws.choice(_WORDS))
                size += len(words[-1])
            text = "".join(words)
        if high is not None and len(text) > high:
            cut = text[:high]
            text = cut.rstrip() if len(cut.rstrip()) >= low else cut
        return text

    def formatted(self, fmt: str) -> str | None:
        draws = self.draws
        if fmt in ("date", "email", "idn-email") and self.values is not None:
            found = self.values.take("date" if fmt == "date" else "email")
            if isinstance(found, str):
                return found
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
        if self.values is not None:
            single = _singular(key)
            kind = "name" if single in _PERSON_KEYS else "place" if single in _PLACE_KEYS else "email" if "email" in key else None
            found = self.values.take(kind) if kind else None
            if isinstance(found, str):
                return found
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
    conditions = {key: extra[key] for key in ("if", "then", "else") if key in extra}
    if "if" in base and "if" in extra:
        # (if1 ? then1 : else1) and (if2 ? ...): the second condition goes into both branches of the first
        merged["then"] = _merge(_as_schema(base.get("then", True)), conditions)
        merged["else"] = _merge(_as_schema(base.get("else", True)), conditions)
    elif "if" in extra:
        merged.update(conditions)
    for key, value in extra.items():
        current = merged.get(key)
        if key in ("if", "then", "else"):
            continue  # done above; then/else without an if mean nothing
        if key in ("properties", "dependentSchemas") and isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = {**current, **{name: _merge_part(current.get(name), part) for name, part in value.items()}}
        elif key == "pattern" and current is not None and current != value:
            merged[_MORE_PATTERNS] = [*merged.get(_MORE_PATTERNS, ()), value]
        elif key == _MORE_PATTERNS:
            merged[key] = [*merged.get(key, ()), *value]
        elif key == "required" and isinstance(current, list) and isinstance(value, list):
            merged[key] = list(dict.fromkeys([*current, *value]))
        elif key == "enum" and isinstance(current, list) and isinstance(value, list):
            merged[key] = [item for item in current if any(_equal(item, other) for other in value)]
        elif key == "type" and current is not None:
            merged[key] = _common_types(current, value)
        elif key == "not" and current is not None:
            merged[key] = {"anyOf": [current, value]}
        elif key in ("minimum", "minLength", "minItems", "exclusiveMinimum") and key in merged:
            merged[key] = max(merged[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "exclusiveMaximum") and key in merged:
            merged[key] = min(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_part(current: Any, part: Any) -> Any:
    """One property's schema when two schemas both describe it."""
    if isinstance(current, Mapping) and isinstance(part, Mapping):
        return _merge(current, part)
    return part if current is None or current is True else current if part is True else part


def _as_schema(schema: Any) -> Mapping[str, Any]:
    """A boolean schema as a mapping (``true`` is ``{}``, ``false`` is ``{"not": {}}``)."""
    if isinstance(schema, Mapping):
        return schema
    return {"not": {}} if schema is False else {}


def _common_types(first: Any, second: Any) -> Any:
    """The types both allow (an integer is a number), or the second when they share none."""
    a = [first] if isinstance(first, str) else list(first) if isinstance(first, list) else []
    b = [second] if isinstance(second, str) else list(second) if isinstance(second, list) else []
    common: list[str] = []
    for kind in a:
        if kind in b:
            common.append(kind)
        elif {kind, "integer", "number"} == {"integer", "number"} and ("integer" in b or "number" in b):
            common.append("integer")
    common = list(dict.fromkeys(common))
    if not common:
        return second
    return common[0] if len(common) == 1 else common


def _planned_keys(schema: Mapping[str, Any]) -> list[str]:
    """The properties the generator emits: required first, then the others, within maxProperties."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = [key for key in schema.get("required") or () if isinstance(key, str)]
    keys = list(dict.fromkeys(required)) + [key for key in properties if key not in required]
    if "maxProperties" in schema:
        keys = keys[: max(len(required), _size(schema, "maxProperties", 0))]
    return keys


def _dependencies_of(schema: Mapping[str, Any], key: str) -> list[Any]:
    """What the presence of ``key`` brings: lists of required names, and schemas the object must match."""
    found = []
    for keyword in ("dependentRequired", "dependentSchemas", "dependencies"):
        table = schema.get(keyword)
        if isinstance(table, Mapping) and key in table:
            found.append(table[key])
    return found


def _plain_types(schema: Any) -> set[str]:
    """The types a ``not`` schema excludes when it only names types (``{"type": ...}`` or an anyOf of those)."""
    if not isinstance(schema, Mapping):
        return set()
    if set(schema) == {"type"}:
        return set(_types(schema))
    if set(schema) == {"anyOf"} and isinstance(schema["anyOf"], list):
        parts = [_plain_types(part) for part in schema["anyOf"]]
        return set().union(*parts) if parts and all(parts) else set()
    return set()


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"string": str, "boolean": bool, "object": Mapping, "array": list}.get(kind)
    if expected is not None:
        return isinstance(value, expected)
    return value is None if kind == "null" else True


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    return bool(type(a) is type(b) or isinstance(a, (int, float)) and isinstance(b, (int, float))) and a == b


def _number_matches(schema: Mapping[str, Any], value: float) -> bool:
    for key, below in (("minimum", False), ("maximum", True)):
        limit = schema.get(key)
        exclusive = schema.get("exclusiveM" + key[1:])
        if isinstance(limit, (int, float)) and not isinstance(limit, bool):
            if (value > limit if below else value < limit) or (exclusive is True and value == limit):
                return False
        if isinstance(exclusive, (int, float)) and not isinstance(exclusive, bool):
            if value >= exclusive if below else value <= exclusive:
                return False
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
        if isinstance(step, float) or isinstance(value, float):
            quotient = value / step
            return math.isfinite(quotient) and int(quotient) == quotient
        return value % step == 0
    return True


def _size(schema: Mapping[str, Any], key: str, default: Any) -> Any:
    """A count keyword (``minLength``, ``maxItems``...) as an int; anything else is a :class:`SchemaError`."""
    if key not in schema:
        return default
    value = schema[key]
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 0:
        raise SchemaError(f"`{key}` must be a non-negative integer, got {canonical_json(value)}, in {_brief(schema)}")
    return int(value)


def _pattern_problem(source: str, error: PatternError, name: str | None) -> str:
    where = f" (property {name!r})" if name else ""
    return f"invalid pattern {source!r}{where}: {error}"


def _brief(schema: Any) -> str:
    """The schema as compact JSON, cut to a readable length for a message."""
    text = canonical_json(schema)
    return text if len(text) <= 200 else text[:197] + "..."


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
