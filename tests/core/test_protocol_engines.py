"""Wire rules of DMR's engines API that come from Go: ``time.ParseDuration``, ``Duration.String()``,
DMR's ``ParseKeepAlive`` (DMR-PROTOCOL.md section 5) and go-shellwords (``raw-runtime-flags``).

Expected values are what Go gives, written out here, not computed with Python's arithmetic: Go adds
a duration's fraction in float64, so a long fraction can round up to the next nanosecond.
"""

from __future__ import annotations

import pytest

from pytest_dmr.protocol import durations, encoding, engines_api

SECOND = 1_000_000_000
MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [("1h30m", 5400 * SECOND), ("1.5h", 5400 * SECOND), ("2h45m", 9900 * SECOND), ("0", 0), ("+0", 0), ("-0", 0),
     ("0s", 0), ("300ms", 300_000_000), ("1µs", 1_000), ("1μs", 1_000), ("1us", 1_000), ("7ns", 7), ("+5m", 300 * SECOND),
     ("-5m", -300 * SECOND), (".5s", 500_000_000), ("5.s", 5 * SECOND), ("1m1m", 120 * SECOND), ("00001s", SECOND),
     ("0.1ns", 0), ("1.0000000001s", SECOND), ("1.9999999999999999999s", 2 * SECOND),
     ("0.3333333333333333333333h", 1_200_000_000_000), ("4424.39528672023055548h", 15927823032192830),
     ("9223372036854775807ns", MAX), ("2562047h47m16.854775807s", MAX), ("-9223372036854775808ns", -MAX - 1)],
)  # fmt: skip
def test_parse_go_duration_as_go(text: str, nanoseconds: int) -> None:
    assert durations.parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [("-1", 'time: missing unit in duration "-1"'), ("5", 'time: missing unit in duration "5"'),
     ("", 'time: invalid duration ""'), ("-", 'time: invalid duration "-"'), ("+", 'time: invalid duration "+"'),
     (".s", 'time: invalid duration ".s"'), (" 1s", 'time: invalid duration " 1s"'),
     ("1 s", 'time: unknown unit " s" in duration "1 s"'), ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
     ("1S", 'time: unknown unit "S" in duration "1S"'), ("1h-1m", 'time: unknown unit "h-" in duration "1h-1m"'),
     ("1µ", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
     ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
     ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
     ("2562048h", 'time: invalid duration "2562048h"'),
     ("99999999999999999999x", 'time: invalid duration "99999999999999999999x"'),
     ("99999999999999999999", 'time: invalid duration "99999999999999999999"')],
)  # fmt: skip
def test_parse_go_duration_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        durations.parse_go_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [(0, "0s"), (1, "1ns"), (999, "999ns"), (1_000, "1µs"), (1_500, "1.5µs"), (500_000_000, "500ms"),
     (999_999_999, "999.999999ms"), (SECOND, "1s"), (1_500_000_000, "1.5s"), (60 * SECOND, "1m0s"), (90 * SECOND, "1m30s"),
     (61 * SECOND + 1, "1m1.000000001s"), (3600 * SECOND, "1h0m0s"), (5400 * SECOND, "1h30m0s"), (-1, "-1ns"),
     (-1_500_000_000, "-1.5s"), (MAX, "2562047h47m16.854775807s"), (-MAX - 1, "-2562047h47m16.854775808s")],
)  # fmt: skip
def test_format_go_duration_as_duration_string(nanoseconds: int, text: str) -> None:
    assert durations.format_go_duration(nanoseconds) == text


@pytest.mark.parametrize(
    ("text", "nanoseconds", "shown"),
    [("-1", -1, "-1"), ("-1ns", -1, "-1"), ("-5m", -1, "-1"), ("0", 0, "0s"), ("-0", 0, "0s"), ("10m", 600 * SECOND, "10m0s"),
     ("1.9999999999999999999s", 2 * SECOND, "2s")],
)  # fmt: skip
def test_keep_alive_as_dmr_reads_and_writes_it(text: str, nanoseconds: int, shown: str) -> None:
    assert durations.parse_keep_alive(text) == nanoseconds
    assert durations.format_keep_alive(nanoseconds) == shown


@pytest.mark.parametrize(
    ("line", "words"),
    [("", ()), ("   ", ()), ('""', ("",)), ("''", ("",)), ("--threads 2", ("--threads", "2")),
     ("--alias=\"my model\"", ("--alias=my model",)), ('--"bar baz"', ("--bar baz",)), ("a ' b '", ("a", " b ")),
     ("a 'b\\c'", ("a", "b\\c")), ('a "b\\"c"', ("a", 'b"c')), ("a\\ b", ("a b",)), ("a\\tb \\n", ("a\tb", "\n")),
     ("x \\&", ("x", "&")), ("--threads 2; rm -rf /", ("--threads", "2")), ("a | b", ("a",)), ("a&&b", ("a",)),
     ("a b>out", ("a", "b")), ("a 2>out", ("a",)), ("a '2>out'", ("a", "2>out")), ("--seed $(date) x", ("--seed", "$(date)", "x")),
     ("`a b` c", ("`a b`", "c")), ("\t--a\r\n--b", ("--a", "--b"))],
)  # fmt: skip
def test_raw_runtime_flags_are_split_as_go_shellwords_does(line: str, words: tuple[str, ...]) -> None:
    assert engines_api.split_raw_runtime_flags(line) == words


@pytest.mark.parametrize("line", ["a '", 'a "', "a `", "a \\", "a (b)", "a )", "$(a(b))", "--x $(a"])
def test_raw_runtime_flags_go_shellwords_refuses(line: str) -> None:
    with pytest.raises(ValueError, match="^invalid command line string$"):
        engines_api.split_raw_runtime_flags(line)
    request = engines_api.parse_configure_request(f'{{"model":"m","raw-runtime-flags":{encoding.dumps(line)}}}'.encode())
    with pytest.raises(ValueError, match="^invalid runtime flags: invalid command line string$"):
        request.resolve()
