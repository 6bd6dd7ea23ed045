"""With other plugins, in real subprocesses: pytest-xdist -n 2 (one discovery), -p no:dmr, compose variables."""

from __future__ import annotations

import pytest
from plugin_helpers import make_ini
from plugin_standin import StandIn

MANY = """
import os
import pytest

@pytest.mark.parametrize("n", range(6))
@pytest.mark.asyncio
async def test_many(n, dmr_adapter, dmr_runner):
    assert dmr_runner.backend == dmr_adapter.backend
    assert await dmr_adapter.generate("hello")
    print("WORKER", os.environ.get("PYTEST_XDIST_WORKER"), dmr_runner.backend)
"""


def test_xdist_workers_reuse_the_controllers_discovery(pytester: pytest.Pytester, standin: StandIn) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_many=MANY)
    result = pytester.runpytest_subprocess("-n", "2", f"--dmr-url={standin.url}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f"dmr: live at {standin.url}/engines/v1, 1 model (found: *)"])
    result.stdout.fnmatch_lines(["dmr: tests run 6 live, 0 on the mock"])
    # One probe for the whole run: the controller's; workers were handed its result.
    assert standin.count("GET", "/") == 1
    assert standin.count("POST", "/engines/v1/chat/completions") == 6


def test_xdist_on_the_mock(pytester: pytest.Pytester, refused_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_many=MANY)
    pytester.makepyfile(test_live="import pytest\n\n@pytest.mark.dmr_live\ndef test_live(dmr_runner):\n    pass\n")
    monkeypatch.setenv("DMR_URL", refused_url)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, skipped=1)
    result.stdout.fnmatch_lines(["dmr: mock (no runner: * connection refused)"])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 6 on the mock, 1 skipped for want of a live runner"])
    result.stdout.fnmatch_lines([f"dmr: asked for a runner at {refused_url} (from DMR_URL) but ran on the mock: * (6 tests)"])


def test_disabled_with_p_no_dmr(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest

        def test_plain():
            pass

        def test_wants_adapter(dmr_adapter):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:dmr", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'dmr_adapter' not found*"])
    assert "dmr:" not in result.stdout.str()
    assert "--dmr" not in pytester.runpytest_subprocess("-p", "no:dmr", "--help").stdout.str()


def test_compose_variables_are_discovered(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_ini(pytester)
    monkeypatch.setenv("AI_RUNNER_MODEL", "ai/compose-model")
    monkeypatch.setenv("DMR_DISCOVERY", "compose")
    pytester.makepyfile(
        """
        def test_runner(dmr_runner, dmr_adapter):
            assert dmr_runner.live and dmr_runner.source.startswith("AI_RUNNER_URL ")
            assert dmr_adapter.model == "ai/compose-model"
        """
    )
    with StandIn(models=("docker.io/ai/compose-model:latest",)) as standin:  # dmr_adapter's model is checked
        monkeypatch.setenv("AI_RUNNER_URL", standin.url + "/engines/v1")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"dmr: live at {standin.url}/engines/v1, 1 model (found: AI_RUNNER_URL *)"])


def test_environment_url_and_mode_in_a_subprocess(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                  standin: StandIn) -> None:
    make_ini(pytester)
    monkeypatch.setenv("MODEL_RUNNER_URL", standin.url)
    monkeypatch.setenv("DMR_MODE", "live")
    pytester.makepyfile("def test_runner(dmr_runner):\n    assert dmr_runner.live and dmr_runner.mode == 'live'\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*found: MODEL_RUNNER_URL*"])


NEEDS_QWEN = """
import os, pathlib, tempfile
import pytest

@pytest.mark.dmr_model("ai/qwen3:0.6B-Q4_0")
def test_{name}(dmr_runner, dmr_client):
    pathlib.Path("{name}.worker").write_text(os.environ["PYTEST_XDIST_WORKER"])
    (run_dir,) = pathlib.Path(tempfile.gettempdir()).glob("pytest-dmr-*")  # one directory for the whole run
    assert list(run_dir.glob("pull-*.lock"))  # the run's shared lock
    assert dmr_runner.live and dmr_client.has_model("ai/qwen3:0.6B-Q4_0")
"""


def run_two_workers_needing_one_model(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                      standin: StandIn, *args: str) -> pytest.RunResult:
    """Two files marking the same missing model, one per worker (--dist loadfile), pulling on."""
    make_ini(pytester)
    for name in ("first", "second"):
        pytester.makepyfile(**{f"test_{name}": NEEDS_QWEN.replace("{name}", name)})
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))  # where the run's shared directory goes
    return pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", f"--dmr-url={standin.url}", "--dmr-pull",
                                         "-p", "no:cacheprovider", *args)


def test_xdist_workers_pull_a_missing_model_once(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in holds the first pull until the other worker looks the model up: without the
    # run's lock, that worker would find the model missing and pull it a second time.
    with StandIn(hold_pulls=2.0) as standin:
        result = run_two_workers_needing_one_model(pytester, monkeypatch, standin)
    result.assert_outcomes(passed=2)
    assert {(pytester.path / f"{name}.worker").read_text() for name in ("first", "second")} == {"gw0", "gw1"}
    assert standin.count("POST", "/models/create") == 1
    result.stdout.fnmatch_lines(["dmr: tests run 2 live, 0 on the mock"])
    assert list((pytester.path / "tmp").glob("pytest-dmr-*")) == []  # the controller removed it at the end


def test_xdist_a_failed_pull_is_not_retried_by_the_other_worker(pytester: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with StandIn(hold_pulls=2.0, pull_error="registry said no") as standin:
        result = run_two_workers_needing_one_model(pytester, monkeypatch, standin, "-rs")
    result.assert_outcomes(skipped=2)
    assert standin.count("POST", "/models/create") == 1
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert len(skips) == 2, result.stdout.str()
    assert all("needs a live Docker Model Runner: pulling ai/qwen3:0.6B-Q4_0 failed: " in line
               and "registry said no" in line for line in skips), skips
