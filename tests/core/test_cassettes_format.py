"""The cassette file: readable in a diff, exact on replay, versioned; and where cassettes live."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dmr.cassettes import Cassette, Chunk, Exchange, RecordedRequest, RecordedResponse, cassette_for_nodeid
from pytest_dmr.cassettes import cassette_path, list_cassettes, save
from pytest_dmr.cassettes.format import parse
from pytest_dmr.errors import CassetteError, ConfigurationError

REQUEST = RecordedRequest("POST", "/engines/v1/chat/completions", [("a", "1")], {"accept": "*/*"},
                          b'{"model":"ai/smollm2","messages":[{"role":"user","content":"hi"}],"stream":true}')


def one(response: RecordedResponse, request: RecordedRequest = REQUEST) -> Cassette:
    return Cassette([Exchange(request, response)])


def round_trip(cassette: Cassette) -> RecordedResponse:
    return parse(cassette.dumps())[0].response


def test_the_layout_spreads_nested_values_and_keeps_flat_ones_on_a_line() -> None:
    chunks = [Chunk(b'data: {"a":1}\n\n', 0), Chunk(b"data: [DONE]\n\n", 12)]
    text = one(RecordedResponse(200, [("content-type", "text/event-stream")], chunks=chunks)).dumps()
    assert text == (
        '{\n'
        '  "pytest_dmr_cassette": 1,\n'
        '  "exchanges": [\n'
        '    {\n'
        '      "request": {\n'
        '        "method": "POST",\n'
        '        "path": "/engines/v1/chat/completions",\n'
        '        "query": [\n'
        '          ["a", "1"]\n'
        '        ],\n'
        '        "headers": {"accept": "*/*"},\n'
        '        "json": {\n'
        '          "model": "ai/smollm2",\n'
        '          "messages": [\n'
        '            {"role": "user", "content": "hi"}\n'
        '          ],\n'
        '          "stream": true\n'
        '        }\n'
        '      },\n'
        '      "response": {\n'
        '        "status": 200,\n'
        '        "headers": [\n'
        '          ["content-type", "text/event-stream"]\n'
        '        ],\n'
        '        "chunks": [\n'
        '          {"ms": 0, "text": "data: {\\"a\\":1}\\n\\n"},\n'
        '          {"ms": 12, "text": "data: [DONE]\\n\\n"}\n'
        '        ]\n'
        '      }\n'
        '    }\n'
        '  ]\n'
        '}\n'
    )
    assert round_trip(one(RecordedResponse(200, chunks=chunks))).chunks == chunks


@pytest.mark.parametrize("body", [
    b'{"object":"list","data":[{"id":"ai/x"}]}\n',  # Go's encoder: compact, a trailing newline
    b'{"error": "<b>&amp;</b>"}',  # Python's default spacing
    b'{"msg":"\\u003cb\\u003e \\u0026"}\n',  # Go's HTML escaping
    b'{"text":"caf\\u00e9"}',  # ASCII-only escaping
], ids=["go", "spaced", "go-html", "ascii"])
def test_json_bodies_are_stored_parsed_and_replay_byte_for_byte(body: bytes) -> None:
    cassette = one(RecordedResponse(200, body=body))
    assert '"json": {' in cassette.dumps() and round_trip(cassette).body == body


@pytest.mark.parametrize("body", [b'{"a":1.0E5}', b'{"a":1,"a":2}', b"{ }", b'{"a":1} '], ids=["exponent", "duplicate", "gap", "trailing"])
def test_json_no_encoder_writes_that_way_is_stored_as_text(body: bytes) -> None:
    cassette = one(RecordedResponse(200, body=body))
    assert '"json"' not in cassette.dumps().split('"response"')[1] and round_trip(cassette).body == body


def test_bytes_that_are_not_utf8_are_stored_in_base64() -> None:
    chunks = [Chunk("caf\u00e9".encode()[:4]), Chunk("caf\u00e9".encode()[4:])]  # a character split across two chunks
    cassette = one(RecordedResponse(200, chunks=chunks, complete=False))
    assert '{"ms": 0, "base64": "Y2Fmww=="},' in cassette.dumps()
    back = round_trip(cassette)
    assert back.chunks == chunks and not back.complete


def test_files_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="format version 2; this pytest-dmr reads version 1"):
        parse('{"pytest_dmr_cassette": 2, "exchanges": []}', "c.json")
    with pytest.raises(CassetteError, match=r"c.json is not a pytest-dmr cassette"):
        parse('{"interactions": []}', "c.json")
    with pytest.raises(CassetteError, match=r"c.json exchange 1: not a recorded exchange \(KeyError"):
        parse('{"pytest_dmr_cassette": 1, "exchanges": [{"request": {}}]}', "c.json")
    with pytest.raises(CassetteError, match=r"cannot read cassette"):
        Cassette.load(tmp_path / "missing.json")


# -- where cassettes live --------------------------------------------------------------------------

def test_a_tests_cassette_lives_beside_its_module(tmp_path: Path) -> None:
    assert cassette_for_nodeid("tests/test_chat.py::TestChat::test_hi[short-1]", tmp_path) == (
        tmp_path / "tests" / "cassettes" / "test_chat" / "TestChat.test_hi[short-1].json")
    assert cassette_for_nodeid("tests/test_chat.py::test_hi", tmp_path, "shared/greeting") == (
        tmp_path / "tests" / "cassettes" / "test_chat" / "shared" / "greeting.json")
    odd = cassette_path(tmp_path / "test_m.py", "test_x[a b/c:d]").name
    assert odd == "test_x[a_b_c_d].json"
    long = cassette_path(tmp_path / "test_m.py", "test_" + "x" * 300).name
    assert len(long) == 120 + len(".json") and long != cassette_path(tmp_path / "test_m.py", "test_" + "x" * 301).name
    for bad in ("../escape", "a//b", "", "/"):
        with pytest.raises(ConfigurationError, match="a cassette name is a plain name"):
            cassette_path(tmp_path / "test_m.py", "test_x", bad)


def test_listing_splits_used_and_unused_cassettes(tmp_path: Path) -> None:
    used = cassette_for_nodeid("tests/test_a.py::test_kept", tmp_path)
    gone = cassette_for_nodeid("tests/test_a.py::test_removed", tmp_path)
    for path in (used, gone):
        save(one(RecordedResponse(200)), path)
    other = tmp_path / "tests" / "cassettes" / "test_a" / "notes.json"
    other.write_text('{"not": "a cassette"}')
    listing = list_cassettes([tmp_path / "tests"], used=[used, tmp_path / "tests" / "cassettes" / "never_recorded.json"])
    assert (listing.used, listing.unused, listing.leftovers) == ([used.resolve()], [gone.resolve()], [])
    assert listing.lines(relative_to=tmp_path.resolve()) == [
        "used     tests/cassettes/test_a/test_kept.json",
        "unused   tests/cassettes/test_a/test_removed.json",
    ]
    assert listing.lines(unused_only=True, relative_to=tmp_path.resolve()) == ["unused   tests/cassettes/test_a/test_removed.json"]
