"""Markers dmr_live, dmr_model, dmr_mock: registration, validation (with and without xdist), skips,
--dmr-require-live, pulls."""

from __future__ import annotations

import pytest
from plugin_helpers import KEEP_WARNINGS, make_ini
from plugin_standin import StandIn

MARKED = """
import pytest

@pytest.mark.dmr_live
def test_live_only(dmr_runner):
    assert dmr_runner.live

@pytest.mark.dmr_model("ai/smollm2")
def test_present_model(dmr_client):
    pass

@pytest.mark.dmr_model("SmolLM2", "ai/qwen3:0.6B-Q4_0")
def test_missing_model(dmr_client):
    pass

@pytest.mark.dmr_mock
def test_always_mock(dmr_runner):
    pass
"""


@pytest.fixture
def marked(pytester: pytest.Pytester) -> pytest.Pytester:
    make_ini(pytester)
    pytester.makepyfile(test_marked=MARKED)
    return pytester


def test_markers_are_registered(marked: pytest.Pytester) -> None:
    result = marked.runpytest_inprocess("--strict-markers", "--dmr=mock")
    result.assert_outcomes(passed=3, skipped=1)
    result = marked.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.dmr_live:*", "@pytest.mark.dmr_model(*names):*", "@pytest.mark.dmr_mock:*"])


def test_on_the_mock_live_tests_skip_and_model_tests_run(marked: pytest.Pytester, refused_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_URL", refused_url)
    result = marked.runpytest_inprocess("-rs", *KEEP_WARNINGS)
    result.assert_outcomes(passed=3, skipped=1, warnings=1)
    result.stdout.fnmatch_lines([
        f"SKIPPED [[]1[]] test_marked.py:3: needs a live Docker Model Runner: no runner: "
        f"{refused_url.removeprefix('http://')} connection refused"
    ])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 3 on the mock, 1 skipped for want of a live runner"])


def test_require_live_turns_those_skips_into_failures(marked: pytest.Pytester, refused_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """And the tests that would run on the mock for want of a runner: only dmr_mock's run there."""
    monkeypatch.setenv("DMR_URL", refused_url)
    result = marked.runpytest_inprocess("--dmr-require-live")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines([
        f"*needs a live Docker Model Runner: no runner: {refused_url.removeprefix('http://')} connection refused "
        "(--dmr-require-live)"
    ])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 on the mock, 3 failed for want of a live runner"])


def test_on_a_live_runner_missing_models_skip_without_pull(marked: pytest.Pytester, standin: StandIn) -> None:
    result = marked.runpytest_inprocess(f"--dmr-url={standin.url}", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines([
        f"SKIPPED [[]1[]] test_marked.py:11: needs a live Docker Model Runner: model ai/qwen3:0.6B-Q4_0 is not on the "
        f"runner at {standin.url}: pull it with `docker model pull ai/qwen3:0.6B-Q4_0`, or run with --dmr-pull"
    ])
    # "SmolLM2" and "ai/smollm2" both name the runner's docker.io/ai/smollm2:latest once normalised.
    assert standin.count("POST", "/models/create") == 0


def test_with_pull_missing_models_are_pulled_once_with_progress(marked: pytest.Pytester, standin: StandIn) -> None:
    marked.makepyfile(test_again="""
        import pytest

        @pytest.mark.dmr_model("ai/qwen3:0.6B-Q4_0")
        def test_same_model_again(dmr_client):
            assert dmr_client.has_model("ai/qwen3:0.6B-Q4_0")
    """)
    result = marked.runpytest_inprocess(f"--dmr-url={standin.url}", "--dmr-pull")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["dmr: pulling ai/qwen3:0.6B-Q4_0: * of 1.00 KiB", "dmr: pulled ai/qwen3:0.6B-Q4_0: Model pulled successfully"])
    assert standin.count("POST", "/models/create") == 1
    result.stdout.fnmatch_lines(["dmr: tests run 4 live, 1 on the mock"])


def test_require_live_with_a_runner_passes(marked: pytest.Pytester, standin: StandIn) -> None:
    result = marked.runpytest_inprocess(f"--dmr-url={standin.url}", "--dmr-require-live", "--dmr-pull")
    result.assert_outcomes(passed=4)


def test_mock_mode_skips_live_tests_with_the_mode_as_reason(marked: pytest.Pytester) -> None:
    result = marked.runpytest_inprocess("--dmr=mock", "-rs")
    result.stdout.fnmatch_lines(["SKIPPED * needs a live Docker Model Runner: --dmr=mock"])


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        ("@pytest.mark.dmr_live(True)", "@pytest.mark.dmr_live takes no arguments; test_bad.py::test_it got args=(True,), kwargs={}"),
        ("@pytest.mark.dmr_mock(reason='x')", "@pytest.mark.dmr_mock takes no positional arguments and one keyword argument, "
         "assert_all_rules_used=True or False; test_bad.py::test_it got args=(), kwargs={'reason': 'x'}"),
        ("@pytest.mark.dmr_model", '@pytest.mark.dmr_model takes one or more model names as strings, e.g. '
         '@pytest.mark.dmr_model("ai/smollm2"); test_bad.py::test_it got args=(), kwargs={}'),
        ("@pytest.mark.dmr_model(['ai/smollm2'])", "@pytest.mark.dmr_model takes one or more model names as strings*"
         "got args=([[]'ai/smollm2'[]],), kwargs={}"),
        ("@pytest.mark.dmr_model('')", "@pytest.mark.dmr_model takes one or more model names*got args=('',), kwargs={}"),
        ("@pytest.mark.dmr_model(name='ai/smollm2')", "@pytest.mark.dmr_model takes*got args=(), kwargs={'name': 'ai/smollm2'}"),
        ("@pytest.mark.dmr_live\n@pytest.mark.dmr_mock", "test_bad.py::test_it is marked both dmr_live (needs a live runner) "
         "and dmr_mock (always the mock): keep one"),
        ("@pytest.mark.dmr_live", "test_bad.py::test_it is marked dmr_live but requests dmr_mock, which forces the mock: "
         "drop one of them"),
    ],
)
def test_bad_marker_arguments_are_a_collection_error(pytester: pytest.Pytester, decorator: str, message: str) -> None:
    make_ini(pytester)
    argument = "dmr_mock" if decorator == "@pytest.mark.dmr_live" else ""
    pytester.makepyfile(
        test_bad=f"import pytest\n\n{decorator}\ndef test_it({argument}):\n    pass\n\ndef test_fine():\n    pass\n"
    )
    result = pytester.runpytest_inprocess("--dmr=mock")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.py*", message, "*Interrupted: 1 error during collection*"])


BAD_MODEL_MARKER = """
import pytest

@pytest.mark.dmr_model(42)
def test_it():
    pass

def test_fine():
    pass
"""
BAD_MODEL_MESSAGE = (
    '@pytest.mark.dmr_model takes one or more model names as strings, e.g. @pytest.mark.dmr_model("ai/smollm2"); '
    "test_bad.py::test_it got args=(42,), kwargs={}"
)


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_bad_marker_is_one_clear_error_with_or_without_xdist(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_bad=BAD_MODEL_MARKER)
    result = pytester.runpytest_subprocess("--dmr=mock", "-p", "no:cacheprovider", *workers)
    assert result.ret != pytest.ExitCode.OK
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.py*", BAD_MODEL_MESSAGE])
    output = result.stdout.lines + result.stderr.lines
    assert output.count(BAD_MODEL_MESSAGE) == 1  # each worker found it; the run shows it once
    assert not [line for line in output if "INTERNALERROR" in line or "crashed" in line or "Traceback" in line]


def test_a_bad_marker_on_an_item_no_python_collector_made_errors_at_its_setup(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makeconftest("""
        import pytest

        class Spec(pytest.Item):
            def runtest(self):
                pass

        class SpecFile(pytest.File):
            def collect(self):
                item = Spec.from_parent(self, name="spec")
                item.add_marker(pytest.mark.dmr_model(42))
                yield item

        def pytest_collect_file(file_path, parent):
            if file_path.suffix == ".spec":
                return SpecFile.from_parent(parent, path=file_path)
    """)
    pytester.makefile(".spec", check="anything")
    pytester.makepyfile(test_fine="def test_fine():\n    pass\n")
    result = pytester.runpytest_inprocess("--dmr=mock")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of*",
        "*@pytest.mark.dmr_model takes one or more model names as strings*check.spec::spec got args=(42,), kwargs={}",
        "*short test summary info*",
        "ERROR check.spec::spec - Failed: @pytest.mark.dmr_model takes*",
    ])


def test_module_level_markers_apply(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_module="""
        import pytest
        pytestmark = pytest.mark.dmr_live

        def test_one():
            pass
    """)
    result = pytester.runpytest_inprocess("--dmr=mock")
    result.assert_outcomes(skipped=1)
