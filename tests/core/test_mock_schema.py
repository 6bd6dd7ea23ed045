"""The mock's JSON-schema generator: ``pattern``, ``not``, ``if/then/else`` and dependencies.

Every generated value is checked by an independent validator (jsonschema, which matches ``pattern``
with :func:`re.search`) over many seeds; the errors are checked as the user reads them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import pytest

from pytest_dmr import errors, protocol
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
        (r"a^b", "no string satisfies its anchors (^, $, \\b) where they stand"),
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
        f"unbalanced parenthesis at position 1) (runner {protocol.MOCK_BASE_URL}, model ai/smollm2). Check the request options"
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
        ({"enum": ["a", "b"], "not": {"enum": ["a", "b"]}}, '`not` excludes every `enum` value, in {"enum":["a","b"],"not":{"enum":["a","b"]}}'),
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
