"""No false green, and pytest citizenship: a run that asked for a runner and did not use one says so
where CI sees it, and the plugin never ends a run in INTERNALERROR.

The rule (README, "Modes and options"): intent stated on the command line (a ``--dmr-url``, ``--dmr=live``,
``--dmr-require-live``) or ``DMR_MODE=live`` gives a non-zero exit with the reason; intent from the project's
configuration or the environment (a URL from ``DMR_URL``, the ini file or the ``pytest_dmr_runner_url``
hook; provisioning) that ends on the mock gives a ``PytestWarning`` (an error under ``-W error``), a
summary line and a ``dmr_fallback`` JUnit property.
"""

from __future__ import annotations

import gc
import sys
import xml.etree.ElementTree as ET

import pytest
from plugin_helpers import KEEP_WARNINGS, make_ini
from plugin_standin import StandIn

ADAPTER_TESTS = """
def test_one(dmr_adapter):
    assert dmr_adapter.model

def test_two(dmr_adapter):
    assert dmr_adapter.model
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    make_ini(pytester)
    pytester.makepyfile(test_suite=ADAPTER_TESTS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


# -- intent on the command line: a non-zero exit with the reason -----------------------------------------


@pytest.mark.parametrize("url", ["refused", "notaurl"])
def test_a_typed_url_where_no_runner_answers_stops_the_run(suite: pytest.Pytester, refused_url: str, url: str) -> None:
    typed = refused_url if url == "refused" else url
    result = run(suite, f"--dmr-url={typed}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: pytest-dmr: --dmr-url={typed} names a runner, and none could be used there: *",
        "Start that runner or correct the URL; to run on the mock, drop --dmr-url (or add --dmr=mock).",
    ])
    assert "passed" not in result.stdout.str() and "INTERNALERROR" not in output(result)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_live_mode_without_a_runner_stops_the_run(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    args = ["--dmr-discovery=url"]  # nothing to probe: no runner, whatever this machine runs
    if how == "flag":
        args.append("--dmr=live")
    else:
        monkeypatch.setenv("DMR_MODE", "live")
    result = run(suite, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    source = "--dmr=live" if how == "flag" else "DMR_MODE=live"
    result.stderr.fnmatch_lines([f"ERROR: {source} needs a Docker Model Runner, and none could be used."])


def test_require_live_fails_the_tests_that_would_run_on_the_mock(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_forced="import pytest\n\n@pytest.mark.dmr_mock\ndef test_forced(dmr_adapter):\n    pass\n")
    result = run(suite, "--dmr-discovery=url", "--dmr-require-live")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=2)  # the dmr_mock test asked for the mock: it runs there
    result.stdout.fnmatch_lines(["*needs a live Docker Model Runner: no runner: nothing to probe (--dmr-require-live)"])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 on the mock, 2 failed for want of a live runner"])


# -- intent from the environment, the ini file, the hook, provisioning: warning, summary line, JUnit -----------


def test_a_url_from_the_environment_that_ends_on_the_mock_warns_and_says_so(suite: pytest.Pytester, refused_url: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_URL", refused_url.replace("http://", "http://me:hunter2@"))
    xml_path = suite.path / "report.xml"
    result = run(suite, f"--junitxml={xml_path}", *KEEP_WARNINGS)
    result.assert_outcomes(passed=2, warnings=1)
    authority = refused_url.removeprefix("http://")
    message = (f"asked for a runner at http://me:***@{authority} (from DMR_URL) but ran on the mock: "
               f"no runner: {authority} connection refused")
    result.stdout.fnmatch_lines([f"*PytestWarning: pytest-dmr: {message}"])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 2 on the mock", f"dmr: {message} (2 tests)"])
    properties = [(p.get("name"), p.get("value")) for p in ET.parse(xml_path).getroot().iter("property")]
    assert properties.count(("dmr_fallback", message)) == 2
    assert "hunter2" not in output(result) + xml_path.read_text()


def test_under_warnings_as_errors_the_fallback_is_an_error_not_an_internal_error(suite: pytest.Pytester, refused_url: str,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    make_ini(suite, "filterwarnings = error\n")
    monkeypatch.setenv("DMR_URL", refused_url)
    result = run(suite, "-W", "error")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=1)  # warned once per process: the first test errors
    assert "INTERNALERROR" not in output(result)
    result.stdout.fnmatch_lines(["*PytestWarning: pytest-dmr: asked for a runner at * (from DMR_URL) but ran on the mock*"])


def test_failed_provisioning_from_the_ini_warns_and_says_so(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_dmr.provision
    from pytest_dmr import errors

    def no_docker(settings, config, models, run_dir):  # noqa: ANN001, ANN202
        raise errors.RunnerUnavailableError("no Docker engine answered")

    monkeypatch.setattr(pytest_dmr.provision, "acquire_runner", no_docker)
    make_ini(suite, "dmr_provision = testcontainers\n")
    result = run(suite, "--dmr-discovery=url", *KEEP_WARNINGS)
    result.assert_outcomes(passed=2, warnings=1)
    message = ("asked for a runner to be provisioned (dmr_provision = testcontainers in the ini file) but ran on the mock: "
               "no runner: nothing to probe; provisioning failed: no Docker engine answered")
    result.stdout.fnmatch_lines([f"*PytestWarning: pytest-dmr: {message}"])
    result.stdout.fnmatch_lines([f"dmr: {message} (2 tests)"])


def test_discovery_alone_finding_nothing_is_the_documented_mock_without_a_warning(suite: pytest.Pytester) -> None:
    result = run(suite, "--dmr-discovery=url", "-W", "error")
    result.assert_outcomes(passed=2, warnings=0)
    assert "asked for a runner" not in output(result)


# -- provisioning that cannot work ------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["testcontainers", "docker"])
def test_provisioning_without_the_containers_extra_is_a_usage_error(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                                   missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # not importable (importlib.util.find_spec says None)
    result = run(suite, "--dmr-provision=testcontainers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: pytest-dmr: --dmr-provision=testcontainers needs testcontainers and docker, and {missing} cannot be "
        "imported here: pip install 'pytest-dmr[containers]' (or set provisioning to never)"
    ])
    assert "container" not in result.stdout.str()  # no "could not remove" line about a container that never was


def test_provisioning_without_a_docker_engine_says_nothing_of_removing_a_container(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("docker")
    pytest.importorskip("testcontainers")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")  # nothing listens there
    result = run(suite, "--dmr-provision=testcontainers", "--dmr-discovery=url", *KEEP_WARNINGS)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["dmr: asked for a runner to be provisioned * provisioning failed: cannot provision "
                                 "a runner: no Docker engine answers at unix://*no-engine.sock*"])
    assert "could not remove" not in output(result)  # the run started no container: nothing to remove
    gc.collect()  # a socket to the missing engine left unclosed fails this test here (ResourceWarning, made an error)


# -- pytest citizenship -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["-W error", "filterwarnings = error"])
def test_a_configure_time_warning_under_warnings_as_errors_is_a_usage_error(suite: pytest.Pytester, where: str) -> None:
    make_ini(suite, "filterwarnings = error\n" if where.startswith("filterwarnings") else "")
    result = run(suite, "--dmr-reuse", *(["-W", "error"] if where == "-W error" else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-dmr: --dmr-reuse has no effect: *",
        "(a warning, made an error by this run's warning filters: -W or filterwarnings)",
    ])
    assert "INTERNALERROR" not in output(result)


@pytest.mark.parametrize("key", ["dmr_discovery", "dmr_model"])
def test_a_toml_list_for_a_string_key_under_warnings_as_errors_is_a_usage_error(pytester: pytest.Pytester, key: str) -> None:
    pytester.makepyfile(test_suite=ADAPTER_TESTS)
    pytester.makepyprojecttoml(f'[tool.pytest.ini_options]\n{key} = ["url", "host"]\n')
    result = run(pytester, "-W", "error")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f'ERROR: pytest-dmr: the ini key {key} takes one string: write its value in quotes *'])
    assert "INTERNALERROR" not in output(result)


DISABLED_SUITE = """
import pytest

@pytest.mark.dmr_live
def test_marked_live():
    pass

@pytest.mark.dmr_model("ai/smollm2")
@pytest.mark.dmr_mock
def test_marked_model():
    pass
"""


def test_a_suite_with_markers_and_ini_keys_runs_clean_with_the_plugin_disabled(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "filterwarnings = error\ndmr_mode = mock\ndmr_compose_refs = LLM\ndmr_assert_all_rules_used = true\n")
    pytester.makepyfile(test_disabled=DISABLED_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:dmr", "-p", "no:cacheprovider", "--strict-markers")
    assert result.ret == pytest.ExitCode.OK, output(result)
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in output(result) and "dmr:" not in result.stdout.str()
    markers = pytester.runpytest_subprocess("-p", "no:dmr", "--markers").stdout.str()
    assert "@pytest.mark.dmr_live: the test needs a live Docker Model Runner" in markers and "disabled in this run: inert" in markers


def test_with_the_plugin_enabled_the_shim_registers_nothing(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "pytest-dmr: default for --dmr-url" in help_text and "disabled in this run" not in help_text


MISSING_DEFAULT = """
def test_one(dmr_adapter):
    pass

def test_two(dmr_adapter):
    pass
"""


@pytest.mark.parametrize(
    ("args", "outcome"),
    [([], {"skipped": 2}), (["--dmr-require-live"], {"errors": 2}), (["--dmr-pull"], {"passed": 2})],
    ids=["skip", "require-live", "pull"],
)
def test_a_missing_default_model_is_handled_as_a_dmr_model_test(pytester: pytest.Pytester, args: list[str],
                                                                outcome: dict[str, int]) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_default=MISSING_DEFAULT)
    with StandIn(models=("docker.io/ai/other:latest",)) as standin:
        result = run(pytester, f"--dmr-url={standin.url}", "-rs", *args)
    result.assert_outcomes(**outcome)
    if "passed" not in outcome:
        result.stdout.fnmatch_lines([
            f"*needs a live Docker Model Runner: model ai/smollm2 is not on the runner at {standin.url}: pull it with "
            "`docker model pull ai/smollm2`, or run with --dmr-pull (the run's default model)*"
        ])
    assert "Traceback" not in result.stdout.str()


def test_a_password_in_the_runner_url_is_never_shown(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_secret="""
        import pytest

        @pytest.mark.dmr_model("ai/absent")
        def test_absent(dmr_runner):
            pass

        def test_present(dmr_adapter):
            pass
    """)
    xml_path = pytester.path / "report.xml"
    with StandIn() as standin:
        url = standin.url.replace("http://", "http://me:hunter2@")
        result = run(pytester, f"--dmr-url={url}/engines/v1", "-rs", f"--junitxml={xml_path}")
    result.assert_outcomes(passed=1, skipped=1)
    masked = standin.url.replace("http://", "http://me:***@")
    result.stdout.fnmatch_lines([f"dmr: live at {masked}/engines/v1, 1 model (found: --dmr-url *)"])
    result.stdout.fnmatch_lines([f"SKIPPED * model ai/absent is not on the runner at {masked}: *"])
    assert "hunter2" not in output(result) + xml_path.read_text()
