"""Modes (auto, live, mock, off), the header, the fixtures on each backend, the summary, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from plugin_helpers import KEEP_WARNINGS, make_ini
from plugin_standin import LIVE_ANSWER, StandIn

BACKEND_SUITE = """
import pytest

def test_runner(dmr_runner):
    print("BACKEND", dmr_runner.backend, dmr_runner.base_url, dmr_runner.source)

@pytest.mark.asyncio
async def test_adapter(dmr_adapter):
    text = await dmr_adapter.generate("Say hello", max_tokens=8)
    print("ANSWER", dmr_adapter.backend, repr(text))
    assert text

def test_client(dmr_client):
    print("MODELS", [model.name for model in dmr_client.list_models()])

def test_plain():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    make_ini(pytester)
    pytester.makepyfile(test_suite=BACKEND_SUITE)
    return pytester


def test_auto_with_nothing_listening_is_mock_and_says_why(suite: pytest.Pytester, refused_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMR_URL", refused_url)  # from the environment: the mock, with a warning (see test_honest_runs.py)
    result = suite.runpytest_inprocess("-s", *KEEP_WARNINGS)
    result.assert_outcomes(passed=4, warnings=1)
    authority = refused_url.removeprefix("http://")
    result.stdout.fnmatch_lines([f"dmr: mock (no runner: {authority} connection refused)"])
    result.stdout.fnmatch_lines(["*BACKEND mock http://dmr-mock.invalid/engines/v1 no runner"])
    result.stdout.fnmatch_lines(["*ANSWER mock *"])
    assert "MODELS ['docker.io/ai/smollm2:latest']" in result.stdout.str()
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 3 on the mock"])


def test_auto_with_a_runner_is_live(suite: pytest.Pytester, standin: StandIn) -> None:
    result = suite.runpytest_inprocess("-s", f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=4)
    authority = standin.url.removeprefix("http://")
    result.stdout.fnmatch_lines([f"dmr: live at {standin.url}/engines/v1, 1 model (found: --dmr-url {authority})"])
    result.stdout.fnmatch_lines([f"*BACKEND live {standin.url}/engines/v1 --dmr-url {authority}"])
    result.stdout.fnmatch_lines([f"*ANSWER live '{LIVE_ANSWER}'"])
    result.stdout.fnmatch_lines(["dmr: tests run 3 live, 0 on the mock"])
    assert standin.count("POST", "/engines/v1/chat/completions") == 1


def test_header_counts_models_and_names_an_openai_only_server(suite: pytest.Pytester) -> None:
    with StandIn(openai_only=True, models=("a", "b")) as server:
        result = suite.runpytest_inprocess(f"--dmr-url={server.url}/v1", "--dmr-model=a", "-k", "adapter")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"dmr: live at {server.url}/v1, 2 models, OpenAI-compatible server without model management "
        f"(found: --dmr-url {server.url.removeprefix('http://')})"
    ])


@pytest.mark.parametrize(
    ("args", "ini", "env", "header"),
    [
        (["--dmr=mock"], "", {}, "dmr: mock (--dmr=mock)"),
        ([], "dmr_mode = mock", {}, "dmr: mock (dmr_mode=mock in the ini file)"),
        ([], "", {"DMR_MODE": "mock"}, "dmr: mock (DMR_MODE=mock)"),
    ],
)
def test_mock_mode_never_touches_a_runner(suite: pytest.Pytester, standin: StandIn, monkeypatch: pytest.MonkeyPatch,
                                          args: list[str], ini: str, env: dict[str, str], header: str) -> None:
    make_ini(suite, ini)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = suite.runpytest_inprocess("-s", f"--dmr-url={standin.url}", *args)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([header])
    result.stdout.fnmatch_lines(["*ANSWER mock *"])
    assert standin.requests == []


def test_live_mode_with_a_runner(suite: pytest.Pytester, standin: StandIn) -> None:
    result = suite.runpytest_inprocess("--dmr=live", f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["dmr: live at *"])


def test_live_mode_without_a_runner_stops_the_session_with_one_message(suite: pytest.Pytester, refused_url: str) -> None:
    result = suite.runpytest_inprocess("--dmr=live", f"--dmr-url={refused_url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --dmr=live needs a Docker Model Runner, and none could be used.",
        f"Probed: {refused_url.removeprefix('http://')} connection refused",
        "Start one: Docker Desktop: `docker desktop enable model-runner --tcp 12434`; Docker Engine: "
        "`docker model install-runner`. Or point at one with --dmr-url=URL*",
    ])
    assert "passed" not in result.stdout.str() and "collected" not in result.stdout.str()


def test_live_mode_whose_provisioning_failed_does_not_advise_provisioning(suite: pytest.Pytester, refused_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_dmr.provision
    from pytest_dmr import errors

    def no_docker(settings, config, models, run_dir):  # noqa: ANN001, ANN202
        raise errors.ProvisioningError("no Docker engine answered")

    monkeypatch.setattr(pytest_dmr.provision, "acquire_runner", no_docker)
    result = suite.runpytest_inprocess("--dmr=live", "--dmr-discovery=url", "--dmr-provision=testcontainers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --dmr=live needs a Docker Model Runner, and none could be used.",
        "Probed: nothing to probe; provisioning failed: no Docker engine answered",
        "Start one: * Or point at one with --dmr-url=URL (DMR_URL), or use --dmr=auto to fall back to the mock.",
    ])
    assert "--dmr-provision=testcontainers, or use" not in result.stderr.str()


def test_off_mode_fixtures_fail_clearly_and_markers_are_inert(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest

        def test_adapter(dmr_adapter):
            pass

        @pytest.mark.dmr_live
        def test_marked_live_runs_anyway():
            pass

        @pytest.mark.dmr_model(42)
        def test_bad_marker_is_not_even_checked():
            pass
        """
    )
    result = pytester.runpytest_inprocess("--dmr=off", "--strict-markers")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["dmr: off"])
    result.stdout.fnmatch_lines([
        "*pytest-dmr is off (--dmr=off): its fixtures are unavailable. Run with --dmr=auto (or mock, live) to use "
        "dmr_runner, dmr_adapter, dmr_adapter_factory, dmr_mock and dmr_client."
    ])
    assert "dmr: tests run" not in result.stdout.str()


def test_failed_provisioning_falls_back_to_the_mock_with_the_reason(suite: pytest.Pytester, refused_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_dmr.provision
    from pytest_dmr import errors

    asked: list[list[str]] = []

    def no_docker(settings, config, models, run_dir):
        asked.append(list(models))
        raise errors.RunnerUnavailableError("no Docker engine answered")

    monkeypatch.setattr(pytest_dmr.provision, "acquire_runner", no_docker)
    suite.makepyfile(test_model="import pytest\n\n@pytest.mark.dmr_model('ai/qwen3')\ndef test_m(dmr_runner):\n"
                                "    print('REASON', dmr_runner.reason)\n")
    monkeypatch.setenv("DMR_URL", refused_url)
    result = suite.runpytest_inprocess("-s", "--dmr-provision=testcontainers", "-k", "runner or test_m", *KEEP_WARNINGS)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["dmr: auto, no runner found (*); a runner will be provisioned with testcontainers when a test needs one"])
    result.stdout.fnmatch_lines(["*BACKEND mock *"])
    result.stdout.fnmatch_lines(["*REASON no runner: * connection refused; provisioning failed: no Docker engine answered"])
    result.stdout.fnmatch_lines([f"dmr: asked for a runner at {refused_url} (from DMR_URL) but ran on the mock: no runner: "
                                 "* connection refused; provisioning failed: no Docker engine answered (2 tests)"])
    # Asked once per run, with the default model and every collected dmr_model model.
    assert asked == [["ai/qwen3", "ai/smollm2"]]


def test_a_provisioned_runner_is_live_and_pulls_by_default(suite: pytest.Pytester, refused_url: str, standin: StandIn,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_dmr.provision
    from pytest_dmr.protocol import addresses

    monkeypatch.setattr(pytest_dmr.provision, "acquire_runner",
                        lambda settings, config, models, run_dir: addresses.parse_runner_url(standin.url))
    suite.makepyfile(test_model="import pytest\n\n@pytest.mark.dmr_model('ai/qwen3')\ndef test_m(dmr_runner):\n"
                                "    assert dmr_runner.provisioned and dmr_runner.pull and dmr_runner.source == 'testcontainers'\n")
    monkeypatch.setenv("DMR_URL", refused_url)
    result = suite.runpytest_inprocess("--dmr-provision=testcontainers")
    result.assert_outcomes(passed=5)
    assert standin.count("POST", "/models/create") == 1


def test_dmr_backend_user_property_reaches_junit_xml(suite: pytest.Pytester, standin: StandIn) -> None:
    xml_path = suite.path / "report.xml"
    result = suite.runpytest_inprocess(f"--dmr-url={standin.url}", f"--junitxml={xml_path}")
    result.assert_outcomes(passed=4)
    cases = {case.get("name"): case for case in ET.parse(xml_path).getroot().iter("testcase")}
    properties = {
        name: [(p.get("name"), p.get("value")) for p in case.iter("property")] for name, case in cases.items()
    }
    assert properties == {
        "test_runner": [("dmr_backend", "live")],
        "test_adapter": [("dmr_backend", "live")],
        "test_client": [("dmr_backend", "live")],
        "test_plain": [],
    }


def test_factory_makes_adapters_for_other_models_with_options(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_factory(dmr_adapter_factory, dmr_mock):
            adapter = dmr_adapter_factory(model="ai/qwen3", max_retries=0, temperature=0, seed=7)
            assert adapter.model == "ai/qwen3" and adapter.backend == "mock"
            await adapter.generate("hi")
            body = dmr_mock.requests[-1].json
            assert (body["model"], body["temperature"], body["seed"]) == ("ai/qwen3", 0, 7)
            assert adapter.retry.max_retries == 0

        @pytest.mark.asyncio
        async def test_default_model_and_timeout(dmr_adapter):
            assert (dmr_adapter.model, dmr_adapter.timeout) == ("ai/other", 9.0)
        """
    )
    result = pytester.runpytest_inprocess("--dmr=mock", "--dmr-model=ai/other", "--dmr-timeout=9")
    result.assert_outcomes(passed=2)


def test_the_factory_refuses_a_base_url_with_the_reason(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile("def test_other_runner(dmr_adapter_factory):\n    dmr_adapter_factory(base_url='http://127.0.0.1:1')\n")
    result = pytester.runpytest_inprocess("--dmr=mock")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*TypeError: dmr_adapter_factory() takes no base_url: its adapters talk to this "
                                 "test's runner (live or mock); for another runner, build a DockerModelRunnerAdapter yourself"])


def test_dmr_mock_forces_the_mock_and_is_shared_with_the_adapter_and_client(pytester: pytest.Pytester,
                                                                             standin: StandIn) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_scripted(dmr_mock, dmr_adapter, dmr_client):
            dmr_mock.reply("scripted answer", contains="weather")
            assert dmr_adapter.backend == "mock"
            assert await dmr_adapter.generate("How is the weather?") == "scripted answer"
            assert dmr_mock.requests[-1].last_user_message == "How is the weather?"
            dmr_mock.add_model("ai/extra")
            assert "docker.io/ai/extra:latest" in [model.name for model in dmr_client.list_models()]

        @pytest.mark.asyncio
        async def test_each_test_gets_a_fresh_mock(dmr_mock):
            assert dmr_mock.requests == []

        @pytest.mark.dmr_mock
        @pytest.mark.asyncio
        async def test_marker_forces_mock(dmr_adapter):
            assert dmr_adapter.backend == "mock"

        @pytest.mark.asyncio
        async def test_unmarked_is_live(dmr_adapter):
            assert dmr_adapter.backend == "live"
        """
    )
    result = pytester.runpytest_inprocess(f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["dmr: tests run 1 live, 3 on the mock"])
    assert standin.count("POST", "/engines/v1/chat/completions") == 0


def test_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    result = pytester.runpytest_inprocess("--fixtures", "--dmr=mock")
    for name in ("dmr_runner", "dmr_adapter", "dmr_adapter_factory", "dmr_mock", "dmr_client"):
        result.stdout.fnmatch_lines([f"{name}*"])
