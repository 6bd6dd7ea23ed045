"""The mock's JSON-schema generator: ``pattern``, ``not``, ``if/then/else`` and dependencies.

Every generated value is checked by an independent validator (jsonschema, which matches ``pattern``
with :func:`re.search`) over many seeds; the errors are checked as the user reads them.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner
from pytest_dmr.mock.regex_strings import PatternError, compile_pattern
from pytest_dmr.mock.schema import SchemaError, value_for_schema
from pytest_dmr.mock.seeded import SeededDraws

SEEDS = range(200)
CHAT = "/engines/v1/chat/completions"


def draw(schema: Any, seed: int, label: str = "") -> Any:
    return value_for_schema(schema, SeededDraws.from_text(f"{label}:{seed}"))


def python_regex(pattern: str) -> str:
    """The pattern in Python's syntax, for re.search as the oracle: only ``(?<name>`` differs."""
    return re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", pattern)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError, rather than hang, when the body runs past ``seconds`` (where SIGALRM exists)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def all_valid(schema: Any, validator: type[Any] = jsonschema.Draft202012Validator, label: str = "") -> list[Any]:
    """Draw the schema with every seed; each value must validate. Returns the values."""
    check = validator(schema)
    values = []
    for seed in SEEDS:
        value = draw(schema, seed, label)
        errors_found = [error.message for error in check.iter_errors(value)]
        assert not errors_found, f"seed {seed}: {value!r}: {errors_found}"
        values.append(value)
    return values


# -- pattern -----------------------------------------------------------------------------------------

REALISTIC_PATTERNS = [
    r"^[A-Z]{3}-\d{4}$",
    r"^\+?[1-9]\d{1,14}$",
    r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$",
    r"^(?:[01]\d|2[0-3]):[0-5]\d$",
    r"^#[0-9a-fA-F]{6}$",
    r"^(red|green|blue)$",
    r"^v\d+\.\d+\.\d+(-[a-z]+)?$",
    r"\d",
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
    r"^[A-Z]{2}\d{2}[A-Z0-9]{4}\d{7}([A-Z0-9]?){0,16}$",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    r"^https?://[\w.-]+(?:/[\w./-]*)?$",
]


@pytest.mark.parametrize("pattern", REALISTIC_PATTERNS)
def test_realistic_patterns_give_matching_strings_for_every_seed(pattern: str) -> None:
    values = all_valid({"type": "string", "pattern": pattern}, label=pattern)
    assert all(isinstance(value, str) and re.search(pattern, value) for value in values)
    assert len(set(values)) > 2  # drawn, not one fixed answer


def test_alternatives_and_optional_parts_are_all_reached() -> None:
    colors = all_valid({"type": "string", "pattern": "^(red|green|blue)$"})
    assert set(colors) == {"red", "green", "blue"}
    versions = all_valid({"type": "string", "pattern": r"^v\d+\.\d+\.\d+(-[a-z]+)?$"})
    assert any("-" in value for value in versions) and any("-" not in value for value in versions)


SYNTAX = [
    r"^\d\w\s\D\W\S$",
    r"^a\.b\-c\\d\/e$",
    r"^x\ty\nz$",
    r"^caf\u00e9 \u4e2d$",
    r"^\x41\x42[\x30-\x32]$",
    r"^.{3}$",
    r"^[A-Z0-9_-]{5}$",
    r"^[^,]+,[^,]+$",
    r"^[^\d\s]{4}$",
    r"^[\w.-]+@[\w-]+$",
    r"^[a-c\d]{2}[+*?.]$",
    r"^a?b*c+d{2}e{1,}f{1,3}$",
    r"^a??b*?c+?d{2}?e{1,}?f{1,3}?$",
    r"^(ab|cd)(?:ef|gh)(?<year>\d{4})(?P<month>\d\d)$",
    r"^((a|b)(c|d)){2,3}$",
    r"^$",
    r"^\bword\b$",
    r"\bcat\b",
    r"x\By",
    r"(^|,)item(,|$)",
    r"a(^|b)c",
    r"(,|$)x",
    r"^.\b.\B.$",
    r"start",
    r"a{,2}",
    r"^\{\}\[\]\(\)\|\^\$$",
    r"^\0?a$",
]


@pytest.mark.parametrize("pattern", SYNTAX)
def test_each_supported_construct_gives_strings_re_search_accepts(pattern: str) -> None:
    oracle = re.compile(python_regex(pattern))
    mine = compile_pattern(pattern)
    for seed in SEEDS:
        value = draw({"type": "string", "pattern": pattern}, seed, pattern)
        assert oracle.search(value), f"seed {seed}: {value!r} does not match {pattern!r}"
        assert mine.search(value)


def test_negated_classes_and_dot_draw_printable_ascii() -> None:
    for pattern in (r"^[^,]{5}$", r"^.{5}$", r"^\W{5}$", r"^\S{5}$"):
        for seed in range(50):
            value = draw({"type": "string", "pattern": pattern}, seed)
            assert all(0x20 <= ord(char) < 0x7F for char in value), (pattern, value)


def test_unbounded_quantifiers_repeat_at_most_three_times_past_their_minimum() -> None:
    lengths = {len(draw({"type": "string", "pattern": "^a+b*$"}, seed)) for seed in SEEDS}
    assert min(lengths) == 1 and max(lengths) == 7  # a{1,4} then b{0,3}


@pytest.mark.parametrize(
    ("pattern", "texts"),
    [
        (r"^abc$", ["abc", "abcd", "xabc", ""]),
        (r"b", ["abc", "ac", ""]),
        (r"^a|b$", ["ax", "xb", "xa", "bx"]),
        (r"^(a|ab)(c|bcd)$", ["abcd", "ac", "abc", "abd"]),
        (r"\bfoo\b", ["a foo b", "afoo", "foo_", "foo."]),
        (r"x\B", ["xy", "x ", "x"]),
        (r"^[^a-c]+$", ["xyz", "xaz", ""]),
        (r"^(?:ab){2,3}$", ["ab", "abab", "ababab", "abababab"]),
        (r"^a*?$", ["", "aaa", "ab"]),
        (r"^\s*\S+\s*$", ["  word ", "two words", "\tx\n"]),
    ],
)
def test_the_own_matcher_agrees_with_re_search(pattern: str, texts: list[str]) -> None:
    for text in texts:
        assert compile_pattern(pattern).search(text) == bool(re.search(pattern, text)), text


LENGTHS = [
    ({"pattern": r"^[a-z]+$", "minLength": 10, "maxLength": 12}),
    ({"pattern": r"^[a-z]+@[a-z]+\.com$", "minLength": 20, "maxLength": 20}),
    ({"pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "minLength": 15, "maxLength": 18}),
    ({"pattern": r"^[A-Z]{2,10}$", "maxLength": 3}),
    ({"pattern": r"^\d{3}(\d{3})?$", "minLength": 5}),
    ({"pattern": r"^(short|a much longer option)$", "minLength": 8}),
    ({"pattern": r"x", "minLength": 30}),
    ({"pattern": r"x$", "minLength": 7, "maxLength": 7}),
    ({"pattern": r"\bcat\b", "minLength": 12}),
]


@pytest.mark.parametrize("constraints", LENGTHS, ids=[item["pattern"] for item in LENGTHS])
def test_min_and_max_length_hold_together_with_the_pattern(constraints: dict[str, Any]) -> None:
    all_valid({"type": "string", **constraints}, label=constraints["pattern"])


def test_when_the_lengths_cannot_hold_the_pattern_wins() -> None:
    for seed in range(20):
        value = draw({"type": "string", "pattern": r"^\d{3}$", "minLength": 5}, seed)
        assert re.fullmatch(r"\d{3}", value)


def test_a_plausible_string_is_kept_when_it_already_matches() -> None:
    schema = {
        "type": "object",
        "properties": {"email": {"type": "string", "pattern": r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"}},
        "required": ["email"],
    }
    values = all_valid(schema)
    assert all(value["email"].endswith("@example.com") for value in values)


def test_a_pattern_schema_through_the_chat_endpoint(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "ticket": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "time": {"type": "string", "pattern": r"^(?:[01]\d|2[0-3]):[0-5]\d$"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": r"^#[a-z]{3,8}$"}, "minItems": 1},
        },
        "required": ["ticket", "time", "tags"],
        "additionalProperties": False,
    }
    contents = set()
    for seed in range(10):
        response = client.post(CHAT, json={"model": "m", "seed": seed, "messages": [{"role": "user", "content": "File it."}],
                                           "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}})
        assert response.status_code == 200, response.text
        content = response.json()["choices"][0]["message"]["content"]
        jsonschema.Draft202012Validator(schema).validate(json.loads(content))
        contents.add(content)
    assert len(contents) == 10


def test_same_pattern_request_gives_the_same_bytes(client: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Code?"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"}}}}
    first = client.post(CHAT, json=body).content
    assert client.post(CHAT, json=body).content == first
    assert client.post(CHAT, json={**body, "seed": 1}).content != first


UNSUPPORTED = [
    (r"^(?=.*\d)\w+$", "lookahead '(?=' at position 1"),
    (r"^(?!admin)\w+$", "lookahead '(?!' at position 1"),
    (r"(?<=\$)\d+", "lookbehind '(?<=' at position 0"),
    (r"(?<!-)\d+", "lookbehind '(?<!' at position 0"),
    (r"^(a)\1$", "backreference '\\1' at position 4"),
    (r"^(?<q>['\"]).*\k<q>$", "backreference '\\k' at position 14"),
    (r"^\p{Lu}+$", "unicode property escape '\\p' at position 1"),
    (r"(?i)^abc$", "group syntax '(?i' (inline flags?) at position 0"),
    (r"^\q$", "unknown escape '\\q' at position 1"),
]


@pytest.mark.parametrize(("pattern", "construct"), UNSUPPORTED)
def test_unsupported_constructs_leave_the_string_unconstrained_as_llama_cpp_does(pattern: str, construct: str) -> None:
    """llama.cpp logs "pattern ... is not supported, accepting any string" and answers 200: so does the mock."""
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    assert caught.value.unsupported and str(caught.value) == construct
    constrained = draw({"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}, "required": ["code"]}, 0)
    assert constrained == draw({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}, 0)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"^(ab$", "unbalanced parenthesis at position 1"),
        (r"^ab)$", "unbalanced parenthesis at position 3"),
        (r"*a", "nothing to repeat at position 0"),
        (r"a{3,1}", "numbers out of order in {} quantifier at position 1"),
        (r"[a-", "unterminated character class at position 0"),
        (r"[z-a]", "range out of order in character class at position 0"),
        ("a\\", "trailing backslash"),
        (r"a^b", "no string satisfies its anchors (^, $, \\b) where they stand (256 drafts tried)"),
    ],
)
def test_invalid_patterns_are_a_schema_error(pattern: str, reason: str) -> None:
    with pytest.raises(SchemaError) as caught:
        draw({"type": "string", "pattern": pattern}, 0)
    assert str(caught.value) == f"invalid pattern {pattern!r}: {reason}"


@pytest.mark.asyncio
async def test_through_the_adapter_an_unsupported_pattern_answers_and_an_invalid_one_is_a_bad_request() -> None:
    adapter = DockerModelRunnerAdapter(transport=MockModelRunner(), model="ai/smollm2")

    def response_format(pattern: str) -> dict[str, Any]:
        schema = {"type": "object", "properties": {"password": {"type": "string", "pattern": pattern}}, "required": ["password"]}
        return {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}

    answer = json.loads(await adapter.generate("Make a password", response_format=response_format(r"^(?=.*\d).{8,}$")))
    assert isinstance(answer["password"], str) and answer["password"]
    with pytest.raises(errors.BadRequestError) as caught:
        await adapter.generate("Make a password", response_format=response_format(r"^(ab$"))
    assert str(caught.value) == (
        "the runner rejected the request (400: invalid JSON schema: invalid pattern '^(ab$' (property 'password'): "
        f"unbalanced parenthesis at position 1) (runner {addresses.MOCK_BASE_URL}, model ai/smollm2). Check the request options"
    )


# -- not ---------------------------------------------------------------------------------------------

NOT_SCHEMAS = {
    "not-type": {"not": {"type": "string"}},
    "not-types": {"not": {"type": ["string", "integer", "number"]}},
    "not-type-of-a-list": {"type": ["string", "null"], "not": {"type": "string"}},
    "not-number-excludes-integers": {"type": ["number", "boolean"], "not": {"type": "number"}},
    "not-integer-keeps-numbers": {"type": "number", "minimum": 0, "maximum": 3, "not": {"type": "integer"}},
    "not-enum": {"type": "string", "enum": ["draft", "published", "deleted"], "not": {"enum": ["deleted"]}},
    "not-const-string": {"type": "object", "properties": {"color": {"type": "string", "not": {"const": "red"}}}, "required": ["color"]},
    "not-const-boolean": {"type": "boolean", "not": {"const": True}},
    "not-const-integer": {"type": "integer", "minimum": 1, "maximum": 3, "not": {"const": 2}},
    "not-pattern": {"type": "string", "pattern": "^[a-c]{2}$", "not": {"pattern": "a"}},
    "not-next-to-properties": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "role": {"enum": ["user", "admin"]}},
        "required": ["name", "role"],
        "not": {"properties": {"role": {"const": "admin"}}},
    },
    "not-inside-allof": {"allOf": [{"type": "integer", "minimum": 1, "maximum": 4}, {"not": {"const": 1}}, {"not": {"const": 4}}]},
    "not-ref": {"$defs": {"Empty": {"type": "string", "maxLength": 0}}, "type": "string", "not": {"$ref": "#/$defs/Empty"}},
}


@pytest.mark.parametrize("name", list(NOT_SCHEMAS))
def test_not_is_escaped_for_every_seed(name: str) -> None:
    values = all_valid(NOT_SCHEMAS[name], label=name)
    assert values


def test_not_type_chooses_another_type() -> None:
    assert {type(draw({"not": {"type": "string"}}, seed)) for seed in range(20)} == {int}
    assert {draw({"type": ["string", "null"], "not": {"type": "string"}}, seed) for seed in range(20)} == {None}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "boolean", "not": {"type": "boolean"}}, 'the schema allows, in {"not":{"type":"boolean"},"type":"boolean"}'),
        ({"enum": ["a", "b"], "not": {"enum": ["a", "b"]}}, '`not` excludes every value the schema allows, in {"enum":["a","b"],"not":{"enum":["a","b"]}}'),
        ({"const": 3, "not": {"type": "integer"}}, 'the `const` is what `not` excludes, in {"const":3,"not":{"type":"integer"}}'),
        ({"type": "string", "not": {}}, '`not: {}` excludes every value, in {"not":{},"type":"string"}'),
        ({"type": "string", "maxLength": 1, "not": {"minLength": 0}}, 'no value found outside `not` in 16 draws, in {"maxLength":1,"not":{"minLength":0},"type":"string"}'),
    ],
)
def test_an_inescapable_not_is_a_schema_error_naming_the_schema(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        draw(schema, 0)
    assert str(caught.value).endswith(message)


# -- if / then / else ----------------------------------------------------------------------------------

ADDRESS = {
    "type": "object",
    "properties": {"country": {"enum": ["US", "CA"]}, "postal_code": {"type": "string"}},
    "required": ["country", "postal_code"],
    "if": {"properties": {"country": {"const": "US"}}},
    "then": {"properties": {"postal_code": {"pattern": r"^\d{5}(-\d{4})?$"}}},
    "else": {"properties": {"postal_code": {"pattern": r"^[A-Z]\d[A-Z] \d[A-Z]\d$"}}},
}
TWO_CONDITIONS = {
    "type": "object",
    "properties": {"member": {"type": "boolean"}, "adult": {"type": "boolean"}, "card": {"type": "string"}, "price": {"type": "integer"}},
    "required": ["member", "adult", "price"],
    "allOf": [
        {"if": {"properties": {"member": {"const": True}}}, "then": {"required": ["card"], "properties": {"card": {"pattern": r"^M-\d{6}$"}}}},
        {
            "if": {"properties": {"adult": {"const": True}}},
            "then": {"properties": {"price": {"minimum": 20, "maximum": 30}}},
            "else": {"properties": {"price": {"minimum": 5, "maximum": 10}}},
        },
    ],
}
IF_SCHEMAS = {
    "address": ADDRESS,
    "two-conditions": TWO_CONDITIONS,
    "if-without-else": {"type": "integer", "minimum": 0, "maximum": 20, "if": {"minimum": 10}, "then": {"multipleOf": 5}},
    "if-on-type": {"type": ["string", "integer"], "if": {"type": "string"}, "then": {"pattern": "^id-[0-9]{3}$"}, "else": {"minimum": 1000}},
    "nested-in-property": {"type": "object", "properties": {"shipping": ADDRESS}, "required": ["shipping"]},
}


@pytest.mark.parametrize("name", list(IF_SCHEMAS))
def test_if_then_else_values_are_valid_for_every_seed(name: str) -> None:
    all_valid(IF_SCHEMAS[name], label=name)


def test_both_branches_are_taken() -> None:
    values = all_valid(ADDRESS)
    assert {value["country"] for value in values} == {"US", "CA"}
    for value in values:
        expected = r"\d{5}(-\d{4})?" if value["country"] == "US" else r"[A-Z]\d[A-Z] \d[A-Z]\d"
        assert re.fullmatch(expected, value["postal_code"]), value
    both = all_valid(TWO_CONDITIONS)
    assert {(value["member"], value["adult"]) for value in both} == {(True, True), (True, False), (False, True), (False, False)}


def test_a_draft7_schema_with_if_then_else() -> None:
    schema = {**ADDRESS, "$schema": "http://json-schema.org/draft-07/schema#"}
    all_valid(schema, jsonschema.Draft7Validator)


# -- dependentRequired / dependentSchemas / dependencies ----------------------------------------------------


def test_dependent_required_emits_what_an_emitted_property_needs() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "credit_card": {"type": "string", "pattern": r"^\d{16}$"}},
        "required": ["name", "credit_card"],
        "dependentRequired": {"credit_card": ["billing_address"], "billing_address": ["country"]},
    }
    values = all_valid(schema)
    assert all({"billing_address", "country"} <= set(value) for value in values)


def test_dependent_schemas_are_merged_in_when_their_property_is_emitted() -> None:
    schema = {
        "type": "object",
        "properties": {"credit_card": {"type": "string"}, "billing_address": {"type": "string"}},
        "required": ["credit_card"],
        "dependentSchemas": {
            "credit_card": {
                "properties": {"billing_address": {"pattern": r"^\d{1,4} [A-Z][a-z]+ (St|Ave)$"}, "cvv": {"type": "string", "pattern": r"^\d{3}$"}},
                "required": ["billing_address", "cvv"],
            }
        },
    }
    values = all_valid(schema)
    assert all(re.fullmatch(r"\d{3}", value["cvv"]) for value in values)


def test_dependent_required_past_max_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
        "required": ["a"],
        "maxProperties": 2,
        "dependentRequired": {"a": ["c"]},
    }
    values = all_valid(schema)
    assert all(set(value) == {"a", "c"} for value in values)


def test_draft4_dependencies_with_lists_and_schemas() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"name": {"type": "string"}, "card": {"type": "integer"}},
        "required": ["name", "card"],
        "dependencies": {"card": ["billing_address"], "name": {"properties": {"nick": {"type": "string", "maxLength": 3}}, "required": ["nick"]}},
    }
    values = all_valid(schema, jsonschema.Draft4Validator)
    values += all_valid(schema, jsonschema.Draft7Validator)
    assert all({"billing_address", "nick"} <= set(value) for value in values)


# -- patterns from real structured-output schemas, against both engines ------------------------------------

STRUCTURED_OUTPUT_PATTERNS = [
    r"^\d{4}-\d{2}-\d{2}$",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    r"^\(?\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}$",
    r"^(\+\d{1,2}\s)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}$",
    r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$",
    r"^\d{5}(-\d{4})?$",
    r"^[A-Z]{3}$",
    r"^#(?:[0-9a-fA-F]{3}){1,2}$",
    r"^((25[0-5]|(2[0-4]|1\d|[1-9]|)\d)\.?\b){4}$",
    r"^(?:(?:25[0-5]|2[0-4]\d|[01]?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d?\d)$",
    r"^[^\s@]+@[^\s@]+\.[^\s@]+$",
    r"^[\w.+-]+@[\w-]+\.[\w.-]+$",
    r"^https?:\/\/[^\s/$.?#].[^\s]*$",
    r"^https?://(www\.)?[-a-zA-Z0-9@:%._\+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b([-a-zA-Z0-9()@:%_\+.~#?&//=]*)$",
    r"^([01]\d|2[0-3]):([0-5]\d)(:([0-5]\d))?$",
    r"[\w.-]+",
    r"\d{2,}",
    r"^[\[\]\\\-\^]+$",
    r"^\$\d+(\.\d{2})?$",
    r"^-?\d+(\.\d+)?$",
    r"^[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?$",
    r"^P(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?$",
    r"^\/[a-z0-9\/_-]*$",
    r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
    r"^\w+\b.\b\w+$",
    r"^(\w+\s?){1,5}$",
    r"^.*\S.*$",
    r"^[\u4e00-\u9fa5]{2,4}$",
    r"^[^\x00-\x7F]+$",
    r"^[^\x00-\x7F\d\s\w]+$",
    r"^\W+$",
    r"^[\s\S]{3}$",
]
FEASIBLE_LENGTHS = [{}, {"minLength": 1}, {"maxLength": 40}, {"minLength": 12}]


@pytest.mark.parametrize("pattern", STRUCTURED_OUTPUT_PATTERNS)
def test_structured_output_patterns_match_in_ecma_262_and_in_python(pattern: str) -> None:
    """The own matcher has ECMA-262's meaning (\\d, \\w, \\s, \\b ASCII; $ only at the end); jsonschema uses re."""
    python, ecma = re.compile(pattern), compile_pattern(pattern)
    for lengths in FEASIBLE_LENGTHS:
        schema = {"type": "string", "pattern": pattern, **lengths}
        for seed in range(60):
            value = draw(schema, seed, pattern)
            assert python.search(value) and ecma.search(value), (lengths, seed, value)
            assert not value.endswith("\n") and "\r" not in value  # where Python's $ and . are looser than ECMA's


def test_a_class_without_ascii_draws_symbols_no_shorthand_of_either_engine_contains() -> None:
    """[^\\x00-\\x7F\\w] is every non-ASCII character in ECMA-262, and excludes é (a Python \\w) in Python."""
    values = all_valid({"type": "string", "pattern": r"^[^\x00-\x7F\d\s\w]{3}$"})
    assert all(not re.search(r"[\w\s\d]", value) and value.isprintable() for value in values)


@pytest.mark.parametrize(("pattern", "lengths"), [
    (r"^\d+(\.\d{1,2})?$", {"minLength": 3, "maxLength": 3}),
    (r"^-?\d+(\.\d+)?$", {"minLength": 3, "maxLength": 3}),
    (r"^v?\d+(\.\d+){0,2}$", {"minLength": 3, "maxLength": 3}),
    (r"^P(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?$", {"minLength": 3, "maxLength": 3}),
    (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", {"minLength": 3, "maxLength": 3}),
    (r"^((25[0-5]|(2[0-4]|1\d|[1-9]|)\d)\.?\b){4}$", {"minLength": 9, "maxLength": 12}),
])
def test_lengths_that_only_some_repetition_counts_reach_still_hold(pattern: str, lengths: dict[str, int]) -> None:
    """Lengths with gaps (an optional ``\\.\\d{1,2}`` adds 0, 2 or 3): drafts are drawn again until one fits."""
    all_valid({"type": "string", "pattern": pattern, **lengths}, label=pattern)


@pytest.mark.parametrize("pattern", [r"^a{²}$", r"^a{١٢}$", r"^x\_y$", r"^caf\é$"])
def test_unicode_digits_in_braces_and_identity_escapes_read_as_both_engines_read_them(pattern: str) -> None:
    """{²} and {١٢} are literal text (ASCII digits only make a quantifier); \\_ and \\é are _ and é."""
    values = all_valid({"type": "string", "pattern": pattern}, label=pattern)
    assert all(re.search(pattern, value) for value in values)


# -- limits: no pattern and no schema stalls a test --------------------------------------------------------

QUICK_DESPITE_THEIR_LOOKS = [
    r"^(a+)+$",
    r"(x*)*",
    r"^(a|aa)+$",
    r"^(\d+\s?)+$",
    r"^a{1000}$",
    r"^a{0,100000}$",
    r"^(?:a{0,1000}){0,1000}$",
    r"((a?){100}){100}",
    "^(" + "|".join(f"w{index}x" for index in range(2000)) + ")$",
]


@pytest.mark.parametrize("pattern", QUICK_DESPITE_THEIR_LOOKS, ids=lambda pattern: pattern[:24])
def test_nested_and_huge_quantifiers_draw_quickly(pattern: str) -> None:
    python = re.compile(pattern)
    with deadline(10):
        for lengths in ({}, {"minLength": 40}, {"maxLength": 3}):
            for seed in range(10):
                value = draw({"type": "string", "pattern": pattern, **lengths}, seed, pattern)
                assert python.search(value), (lengths, value)


def test_a_wide_bounded_quantifier_repeats_at_most_32_past_its_minimum() -> None:
    lengths = [len(draw({"type": "string", "pattern": r"^a{2,100000}$"}, seed)) for seed in SEEDS]
    assert min(lengths) == 2 and max(lengths) == 34


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"^a{100000}$", "a match can take 100000 characters and repetitions, more than the mock draws (10000)"),
        (r"^(a{1000}){1000}$", "a match can take 1000000 characters and repetitions, more than the mock draws (10000)"),
        (r"a{99999999999999999999}", "a match can take 99999999999999999999 characters and repetitions, more than the mock draws (10000)"),
        (r"(a?){99999999999}", "a match can take 99999999999 characters and repetitions, more than the mock draws (10000)"),
        ("(" * 40 + "a" + ")" * 40, "groups nest more than 32 deep at position 32"),
        ("(" * 1000 + "a" + ")" * 1000, "groups nest more than 32 deep at position 32"),
    ],
    ids=lambda value: value[:24],
)
def test_patterns_past_the_limits_are_a_clear_schema_error(pattern: str, reason: str) -> None:
    with deadline(10), pytest.raises(SchemaError) as caught:
        draw({"type": "string", "pattern": pattern}, 0)
    assert str(caught.value) == f"invalid pattern {pattern!r}: {reason}"


def test_a_search_too_long_for_the_mock_is_a_schema_error_not_a_stall() -> None:
    with deadline(10), pytest.raises(PatternError) as caught:  # the step limit ends it; the deadline bounds a hang
        compile_pattern(r"([\s\S]{100}){99}").search("x" * 5000)
    assert str(caught.value) == "matching it against a string of 5000 characters takes more than 2000000 steps"
    pattern = r"([\s\S]{100}){99}"
    schema = {"type": "object", "properties": {"essay": {"type": "string", "pattern": pattern, "minLength": 5000}}, "required": ["essay"]}
    with deadline(10), pytest.raises(SchemaError) as schema_error:
        draw(schema, 0)
    assert re.fullmatch(
        re.escape(f"invalid pattern {pattern!r} (property 'essay'): matching it against a string of ") + r"50\d\d characters takes more than 2000000 steps",
        str(schema_error.value),
    )


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "minItems": 10**9},
        {"type": "string", "minLength": 10**9},
        {"type": "string", "minLength": 10**9, "pattern": "^[a-z]+$"},
        {"type": "object", "minProperties": 10**9},
        {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000, "items": {"type": "integer"}}},
    ],
    ids=["minItems", "minLength", "minLength-pattern", "minProperties", "nested-arrays"],
)
def test_a_schema_asking_for_more_output_than_a_model_writes_is_a_schema_error(schema: dict[str, Any]) -> None:
    with deadline(10), pytest.raises(SchemaError) as caught:
        draw(schema, 0)
    assert str(caught.value) == (
        "the schema asks for more than the mock writes (about 200000 characters of JSON): check its minItems, minProperties and minLength"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string", "minLength": "3"}, '`minLength` must be a non-negative integer, got "3", in {"minLength":"3","type":"string"}'),
        ({"type": "array", "maxItems": -1}, '`maxItems` must be a non-negative integer, got -1, in {"maxItems":-1,"type":"array"}'),
        ({"type": "object", "minProperties": 1.5}, '`minProperties` must be a non-negative integer, got 1.5, in {"minProperties":1.5,"type":"object"}'),
    ],
)
def test_a_count_keyword_that_is_not_a_count_is_a_schema_error(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        draw(schema, 0)
    assert str(caught.value) == message


def test_through_the_chat_endpoint_a_pattern_past_the_limits_answers_400(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(" * 1000 + "a" + ")" * 1000}}, "required": ["code"]}
    response = client.post(CHAT, json={"model": "m", "messages": [{"role": "user", "content": "Code?"}],
                                       "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})
    assert response.status_code == 400
    assert "groups nest more than 32 deep at position 32" in response.text


# -- enum and const with the rest of the schema, several patterns -----------------------------------------


@pytest.mark.parametrize(
    ("schema", "allowed"),
    [
        ({"type": "string", "enum": ["a", "bb", "cc"], "pattern": "^b+$"}, ["bb"]),
        ({"type": "string", "enum": ["a", "bb", "ccc"], "minLength": 2}, ["bb", "ccc"]),
        ({"type": "string", "enum": ["a", 1, None]}, ["a"]),
        ({"type": "integer", "enum": [1, 2, 30, 40], "maximum": 10}, [1, 2]),
    ],
    ids=["pattern", "minLength", "type", "maximum"],
)
def test_enum_values_the_rest_of_the_schema_refuses_are_never_drawn(schema: dict[str, Any], allowed: list[Any]) -> None:
    values = all_valid(schema)
    assert sorted(set(values), key=json.dumps) == allowed


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"const": "abc", "pattern": "^x"}, 'the `const` does not satisfy the rest of the schema, in {"const":"abc","pattern":"^x"}'),
        ({"type": "string", "const": 5}, 'the `const` does not satisfy the rest of the schema, in {"const":5,"type":"string"}'),
        ({"type": "string", "enum": ["a", "b"], "minLength": 2}, 'no `enum` value satisfies the rest of the schema, in {"enum":["a","b"],"minLength":2,"type":"string"}'),
    ],
)
def test_a_const_or_enum_the_schema_refuses_is_a_schema_error(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        draw(schema, 0)
    assert str(caught.value) == message


SEVERAL_PATTERNS = {
    "allOf": {"allOf": [{"type": "string", "pattern": "^[a-z]+$"}, {"pattern": "^.{3,5}$"}]},
    "allOf-anchored-apart": {"allOf": [{"type": "string", "pattern": "^a"}, {"pattern": "b$"}]},
    "ref-and-pattern": {"$defs": {"Code": {"type": "string", "pattern": r"^[A-Z]{2}\d+$"}}, "allOf": [{"$ref": "#/$defs/Code"}], "pattern": "7$"},
    "if-then-else": {"type": "string", "pattern": r"^(a|b)\d$", "if": {"pattern": "^a"}, "then": {"pattern": "1$"}, "else": {"pattern": "2$"}},
}


@pytest.mark.parametrize("name", list(SEVERAL_PATTERNS))
def test_a_string_matches_every_pattern_that_allof_or_a_branch_adds(name: str) -> None:
    all_valid(SEVERAL_PATTERNS[name], label=name)


# -- not and if: values the bounded draws used to miss -----------------------------------------------------

REACHABLE = {
    "not-required": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "not": {"required": ["b"]}},
    "else-forbids-a-property": {
        "type": "object",
        "properties": {"kind": {"enum": ["a", "b"]}, "extra": {"type": "string", "pattern": r"^e\d$"}},
        "required": ["kind"],
        "if": {"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
        "then": {"required": ["extra"]},
        "else": {"not": {"required": ["extra"]}},
    },
    "not-nested-anyOf": {"type": "integer", "minimum": 0, "maximum": 10, "not": {"anyOf": [{"minimum": 5}, {"anyOf": [{"const": 0}, {"const": 1}]}]}},
    "not-not": {"type": "integer", "minimum": 0, "maximum": 5, "not": {"not": {"const": 3}}},
    "if-without-then-or-else": {"type": "integer", "if": {"minimum": 50}},
    "ref-inside-if": {
        "$defs": {"US": {"properties": {"country": {"const": "US"}}}},
        "type": "object",
        "properties": {"country": {"enum": ["US", "FR"]}, "zip": {"type": "string"}},
        "required": ["country", "zip"],
        "if": {"$ref": "#/$defs/US"},
        "then": {"properties": {"zip": {"pattern": r"^\d{5}$"}}},
        "else": {"properties": {"zip": {"pattern": r"^\d{2} \d{3}$"}}},
    },
    "type-list-with-not-pattern": {"type": ["string", "integer"], "not": {"pattern": "^[0-9]"}},
}


@pytest.mark.parametrize("name", list(REACHABLE))
def test_not_and_if_find_the_values_the_schema_allows_for_every_seed(name: str) -> None:
    values = all_valid(REACHABLE[name], label=name)
    if name == "not-not":
        assert set(values) == {3}
    if name == "else-forbids-a-property":
        assert {value["kind"] for value in values} == {"a", "b"}
