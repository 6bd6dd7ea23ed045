"""Record and replay in the plugin: --dmr-record's modes, the dmr_cassette marker, the replay backend in the
summary and the user property, unmatched requests, verify's drift, xdist, and `pytest-dmr cassettes`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_helpers import make_ini
from plugin_standin import LIVE_ANSWER, StandIn

from pytest_dmr import cli

SUITE = f"""
import asyncio

import pytest

LIVE_ANSWER = {LIVE_ANSWER!r}


def test_chat(request, dmr_adapter, dmr_openai, dmr_client):
    assert dmr_adapter.backend == dict(request.node.user_properties)["dmr_backend"]  # live, then replay
    assert asyncio.run(dmr_adapter.generate("Say hi", temperature=0)) == LIVE_ANSWER
    answer = dmr_openai.chat.completions.create(model="ai/smollm2", messages=[{{"role": "user", "content": "Hello"}}])
    assert answer.choices[0].message.content == LIVE_ANSWER
    assert dmr_client.pull("ai/smollm2").message
    assert [model.name for model in dmr_client.list_models()]


@pytest.mark.dmr_live
def test_live_only(dmr_adapter):
    assert asyncio.run(dmr_adapter.generate("Live?")) == LIVE_ANSWER


def test_on_the_mock(dmr_mock, dmr_adapter):
    dmr_mock.reply("scripted")
    assert asyncio.run(dmr_adapter.generate("anything")) == "scripted"
"""


def httpx2_client(transport: object) -> object:
    import httpx2

    return httpx2.Client(transport=transport)  # type: ignore[arg-type]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def backends(report: Path) -> dict[str, str]:
    """Each test's dmr_backend user property, from a JUnit XML report."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == "dmr_backend":
                found[case.get("name", "")] = prop.get("value", "")
    return found


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    make_ini(pytester)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_record_once_then_replay_with_no_runner(suite: pytest.Pytester, standin: StandIn, refused_url: str) -> None:
    recorded = run(suite, f"--dmr-url={standin.url}", "--dmr-record=once", "-W", "error")
    recorded.assert_outcomes(passed=3)
    recorded.stdout.fnmatch_lines(["dmr: live at *; cassettes: record mode once (--dmr-record)",
                                   "dmr: tests run 2 live, 1 on the mock"])
    folder = suite.path / "cassettes" / "test_suite"
    assert sorted(path.name for path in folder.iterdir()) == ["test_chat.json", "test_live_only.json"]
    cassette = json.loads((folder / "test_chat.json").read_text())
    paths = [exchange["request"]["path"] for exchange in cassette["exchanges"]]
    assert paths == ["/engines/v1/chat/completions", "/engines/v1/chat/completions", "/models/create", "/models"]
    requests_live = len(standin.requests)

    replayed = run(suite, "--dmr-discovery=url", "-W", "error", "--junitxml=report.xml")
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["dmr: mock (no runner: *)", "dmr: tests run 0 live, 2 replayed, 1 on the mock"])
    assert backends(suite.path / "report.xml") == {"test_chat": "replay", "test_live_only": "replay", "test_on_the_mock": "mock"}
    assert len(standin.requests) == requests_live  # nothing reached the runner


def test_a_live_test_replays_unless_a_runner_is_required(suite: pytest.Pytester, standin: StandIn, refused_url: str) -> None:
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=once", "-k", "live_only").assert_outcomes(passed=1)
    required = run(suite, "--dmr-discovery=url", "--dmr-require-live", "-k", "live_only")
    required.assert_outcomes(errors=1)
    required.stdout.fnmatch_lines(["*needs a live Docker Model Runner*(--dmr-require-live)*"])


def test_recording_without_a_runner_skips_as_a_live_test(suite: pytest.Pytester, refused_url: str) -> None:
    result = run(suite, "--dmr-discovery=url", "--dmr-record=once", "-k", "test_chat", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a live Docker Model Runner: --dmr-record=once records or verifies "
                                 "*test_chat.json from a live runner; no runner*"])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 0 on the mock, 1 skipped for want of a live runner"])
    assert not (suite.path / "cassettes").exists()


UNMATCHED = """
import asyncio

def test_chat(dmr_adapter):
    assert asyncio.run(dmr_adapter.generate("Say hi", temperature=0)).strip()
    assert asyncio.run(dmr_adapter.generate("A question nobody recorded"))
"""


def test_a_request_the_cassette_lacks_fails_or_goes_to_the_mock(suite: pytest.Pytester, standin: StandIn,
                                                                  refused_url: str) -> None:
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=once", "-k", "test_chat").assert_outcomes(passed=1)
    suite.makepyfile(test_suite=UNMATCHED)
    failed = run(suite, "--dmr-discovery=url")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*CassetteMismatchError*", "*closest*"])
    failed.stdout.fnmatch_lines(["*A question nobody recorded*"])
    make_ini(suite, "dmr_replay_unmatched = mock\n")
    mocked = run(suite, "--dmr-discovery=url", "-W", "error")
    mocked.assert_outcomes(passed=1)
    mocked.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 replayed, 0 on the mock"])


def test_verify_fails_a_test_whose_answers_drifted_showing_both(suite: pytest.Pytester, standin: StandIn) -> None:
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=once", "-k", "live_only").assert_outcomes(passed=1)
    path = suite.path / "cassettes" / "test_suite" / "test_live_only.json"
    same = run(suite, f"--dmr-url={standin.url}", "--dmr-record=verify", "-k", "live_only")
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["dmr: tests run 1 live, 0 on the mock"])
    path.write_text(path.read_text().replace(LIVE_ANSWER, "what the runner said last year"))
    before = path.read_text()
    drifted = run(suite, f"--dmr-url={standin.url}", "--dmr-record=verify", "-k", "live_only")
    drifted.assert_outcomes(failed=1)
    drifted.stdout.fnmatch_lines(["*CassetteDriftError: 1 answer from the live runner differ*", "*recorded:*",
                                  "*what the runner said last year*", "*live:*", f"*{LIVE_ANSWER}*",
                                  "*record the cassette again with --dmr-record=all*"])
    assert path.read_text() == before  # verify writes nothing


def test_new_adds_what_the_cassette_lacks_and_all_records_again(suite: pytest.Pytester, standin: StandIn) -> None:
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=once", "-k", "test_chat").assert_outcomes(passed=1)
    path = suite.path / "cassettes" / "test_suite" / "test_chat.json"
    suite.makepyfile(test_suite=UNMATCHED)
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=new").assert_outcomes(passed=1)
    prompts = [json.dumps(exchange["request"].get("json")) for exchange in json.loads(path.read_text())["exchanges"]]
    assert len(prompts) == 5 and "A question nobody recorded" in prompts[-1]
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=all").assert_outcomes(passed=1)
    assert len(json.loads(path.read_text())["exchanges"]) == 2


SHARED = """
import asyncio
import pytest

pytestmark = pytest.mark.dmr_cassette("shared/greetings")

@pytest.mark.parametrize("index", range(6))
def test_greet(dmr_adapter, index):
    assert asyncio.run(dmr_adapter.generate(f"Greet person {index}"))
"""


def test_workers_share_one_cassette_safely(pytester: pytest.Pytester, standin: StandIn, refused_url: str) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_shared=SHARED)
    recorded = run(pytester, "-n", "2", f"--dmr-url={standin.url}", "--dmr-record=new", "-W", "error")
    recorded.assert_outcomes(passed=6)
    folder = pytester.path / "cassettes" / "test_shared" / "shared"
    assert [path.name for path in folder.iterdir()] == ["greetings.json"]  # no temporary file left
    prompts = sorted(exchange["request"]["json"]["messages"][0]["content"]
                     for exchange in json.loads((folder / "greetings.json").read_text())["exchanges"])
    assert prompts == [f"Greet person {index}" for index in range(6)]
    replayed = run(pytester, "-n", "2", "--dmr-discovery=url", "-W", "error")
    replayed.assert_outcomes(passed=6)
    replayed.stdout.fnmatch_lines(["dmr: tests run 0 live, 6 replayed, 0 on the mock"])


@pytest.mark.parametrize("flag", ["--dmr-record=sometimes", "-o=dmr_record=yes"])
def test_a_bad_record_mode_is_a_usage_error(suite: pytest.Pytester, flag: str) -> None:
    result = run(suite, flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is not valid*Use one of: none, once, new, all, verify*"])


def test_a_bad_replay_unmatched_value_is_a_usage_error(suite: pytest.Pytester) -> None:
    make_ini(suite, "dmr_replay_unmatched = ignore\n")
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dmr_replay_unmatched (ini)='ignore' is not valid*Use one of: fail, mock*"])


@pytest.mark.parametrize(("marker", "message"), [
    ("dmr_cassette", "*@pytest.mark.dmr_cassette takes one cassette name*got args=(), kwargs={}"),
    ("dmr_cassette('../elsewhere')", "*a cassette name is a plain name*"),
    ("dmr_cassette('a', 'b')", "*takes one cassette name*got args=('a', 'b')*"),
])
def test_a_bad_cassette_marker_is_a_collection_error(pytester: pytest.Pytester, marker: str, message: str) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(dmr_adapter):\n    pass\n")
    result = run(pytester, "--dmr=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_recording_with_the_mock_mode_is_warned(suite: pytest.Pytester) -> None:
    result = run(suite, "--dmr=mock", "--dmr-record=all", "-k", "on_the_mock")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*--dmr-record=all has no effect with --dmr=mock*"])


def test_the_cassettes_command_lists_used_and_unused(suite: pytest.Pytester, standin: StandIn,
                                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run(suite, f"--dmr-url={standin.url}", "--dmr-record=once").assert_outcomes(passed=3)
    suite.makepyfile(test_suite=SUITE.replace("def test_live_only", "def test_renamed"))
    leftover = suite.path / "cassettes" / "test_suite" / ".test_chat.json.123.0.tmp"
    leftover.write_text("{")
    monkeypatch.chdir(suite.path)
    capsys.readouterr()
    assert cli.main(["cassettes"]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["leftover cassettes/test_suite/.test_chat.json.123.0.tmp", "used     cassettes/test_suite/test_chat.json",
                     "unused   cassettes/test_suite/test_live_only.json"]
    assert cli.main(["cassettes", "--unused", "."]) == cli.EXIT_FAILED
    assert capsys.readouterr().out.splitlines() == lines[:1] + lines[2:]


def test_the_cassettes_command_refuses_a_path_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad argument is exit 2 (the CLI reference's code for a bad option), naming it; it was 1,
    with pytest's collection error."""
    assert cli.main(["cassettes", str(tmp_path / "nowhere")]) == cli.EXIT_USAGE == 2
    assert "no file or directory" in capsys.readouterr().err


PACED = """
import time


def test_paced(dmr_openai, monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the replay waits with time.sleep: record, do not wait
    stream = dmr_openai.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True)
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert "".join(pieces) == "Paced."
    print("SLEPT", slept)
"""


def test_replay_pacing_is_opt_in_by_flag_environment_or_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded stream replays at once, or with --dmr-replay-pacing (DMR_REPLAY_PACING, ini
    dmr_replay_pacing) each chunk after its recorded gap: the requested waits are the recorded ones."""
    import openai

    from pytest_dmr.cassettes import Cassette, RecordingTransport, save
    from pytest_dmr.mock import MockModelRunner

    mock = MockModelRunner()
    mock.reply("Paced.")
    cassette = Cassette(path=pytester.path / "cassettes" / "test_paced" / "test_paced.json")
    http = httpx2_client(RecordingTransport(mock, cassette))
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="k", http_client=http) as client:
        list(client.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True))
    chunks = cassette.exchanges[0].response.chunks or []
    for number, chunk in enumerate(chunks):  # gaps of 1, 2, 3... ms, as if recorded so
        chunks[number] = type(chunk)(chunk.data, number + 1)
    save(cassette)
    gaps = [(number + 1) / 1000 for number in range(len(chunks))]
    make_ini(pytester)
    pytester.makepyfile(test_paced=PACED)

    def slept(*args: str, env: str | None = None) -> list[float]:
        if env is not None:
            monkeypatch.setenv("DMR_REPLAY_PACING", env)
        result = run(pytester, "--dmr-discovery=url", "-s", "-W", "error", *args)
        monkeypatch.delenv("DMR_REPLAY_PACING", raising=False)
        result.assert_outcomes(passed=1)
        line = next(line for line in result.outlines if "SLEPT " in line)
        return list(json.loads(line.split("SLEPT ", 1)[1]))

    assert len(gaps) > 2
    assert slept() == []
    assert slept("--dmr-replay-pacing") == gaps
    assert slept(env="1") == gaps
    assert slept("-o", "dmr_replay_pacing=true") == gaps
    assert slept("-o", "dmr_replay_pacing=true", env="0") == []  # the environment wins over the ini
