"""Extension points, second look: the mock hook's order whatever loads a plugin or wraps the hook,
a runner URL hook that raises, a dmr_mock marker that takes effect through getfixturevalue, the
default model's pull (moved into dmr_adapter_factory) under xdist, dmr_config's odd values."""

from __future__ import annotations

import pytest
from plugin_helpers import make_ini
from plugin_standin import LIVE_ANSWER, StandIn


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error", *args)


ANSWERS = """
import pytest

@pytest.mark.asyncio
async def test_answers(dmr_adapter):
    assert (await dmr_adapter.generate("hello"), await dmr_adapter.generate("other")) == ({hello!r}, "plugin")
"""
PLUGIN_RULE = "def pytest_dmr_configure_mock(mock):\n    mock.reply('plugin')\n"
ROOT_RULE = "def pytest_dmr_configure_mock(mock):\n    mock.reply('root', contains='hello')\n"
SUB_RULE = "def pytest_dmr_configure_mock(mock):\n    mock.reply('sub', contains='hello')\n"


def test_a_plugin_the_root_conftest_loads_is_broader_than_that_conftest(pytester: pytest.Pytester) -> None:
    """pytest registers a conftest's ``pytest_plugins`` right after the conftest: registration order
    alone would make the plugin's catch-all rule beat the conftest's."""
    make_ini(pytester)
    pytester.syspathinsert()
    pytester.makepyfile(team_mock=PLUGIN_RULE)
    pytester.makeconftest("pytest_plugins = ['team_mock']\n\n" + ROOT_RULE)
    pytester.makepyfile(test_top=ANSWERS.format(hello="root"))
    run(pytester, "--dmr=mock").assert_outcomes(passed=1)


WRAPPERS = {
    "wrapper": """
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_dmr_configure_mock(item):
    item.user_properties.append(("wrapped", True))
    return (yield)
""",
    "hookwrapper": """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_dmr_configure_mock(item):
    item.user_properties.append(("wrapped", True))
    yield
""",
}


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_a_hook_wrapper_does_not_change_whose_rules_win(pytester: pytest.Pytester, kind: str) -> None:
    make_ini(pytester)
    pytester.syspathinsert()
    pytester.makepyfile(team_mock=PLUGIN_RULE, timing=WRAPPERS[kind])
    pytester.makeconftest(ROOT_RULE)
    pytester.mkdir("sub")
    pytester.makepyfile(**{"sub/conftest": SUB_RULE})
    wrapped = "\ndef test_wrapped(request, dmr_mock):\n    assert dict(request.node.user_properties)['wrapped']\n"
    pytester.makepyfile(**{"test_top": ANSWERS.format(hello="root") + wrapped, "sub/test_sub": ANSWERS.format(hello="sub")})
    run(pytester, "--dmr=mock", "-p", "team_mock", "-p", "timing").assert_outcomes(passed=3)


def test_an_error_in_the_mock_hook_shows_the_users_code(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makeconftest("def pytest_dmr_configure_mock(mock):\n    mock.reply(answer_for_everything)\n")
    pytester.makepyfile(test_it="def test_it(dmr_adapter):\n    pass\n")
    result = run(pytester, "--dmr=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([">       mock.reply(answer_for_everything)", "E       NameError: *", "conftest.py:2: NameError"])
    assert "pytest_dmr/hooks.py" not in result.stdout.str()


def test_an_exception_in_the_runner_url_hook_is_the_users_error(pytester: pytest.Pytester) -> None:
    """Not pytest's INTERNALERROR (which blames the plugin, after pages of pluggy frames): a usage
    error naming the implementation, with its traceback."""
    make_ini(pytester)
    pytester.makeconftest("""
        import os

        def pytest_dmr_runner_url(config):
            return os.environ["TEAM_RUNNER_URL"]
    """)
    pytester.makepyfile(test_it="def test_it(dmr_client):\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-dmr: pytest_dmr_runner_url in conftest.py raised an exception, so the run stops:",
        "Traceback (most recent call last):",
        '  File "*conftest.py", line 4, in pytest_dmr_runner_url',
        '    return os.environ["TEAM_RUNNER_URL"]',
        "KeyError: 'TEAM_RUNNER_URL'",
    ])
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "pytest_dmr" not in output.replace("pytest_dmr_runner_url", "")  # no frame of the plugin's


def test_a_dmr_mock_marker_used_through_getfixturevalue_is_not_warned(pytester: pytest.Pytester,
                                                                      standin: StandIn) -> None:
    """The marker takes effect (the mock, on a run with a live runner), so no warning that it has none."""
    make_ini(pytester)
    pytester.makepyfile(test_indirect=f"""
        import pytest

        @pytest.fixture
        def llm(request):
            return request.getfixturevalue(request.param)

        @pytest.mark.dmr_mock
        @pytest.mark.parametrize("llm", ["dmr_adapter"], indirect=True)
        @pytest.mark.asyncio
        async def test_marked(llm):
            assert await llm.generate("hello") != {LIVE_ANSWER!r}

        @pytest.mark.asyncio
        async def test_unmarked(request):
            assert await request.getfixturevalue("dmr_adapter").generate("hello") == {LIVE_ANSWER!r}
    """)
    result = run(pytester, f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["dmr: tests run 1 live, 1 on the mock"])


ADAPTER_TEST = "def test_{name}(dmr_adapter):\n    pass\n"


@pytest.mark.parametrize("pull_error", [None, "registry said no"])
def test_xdist_workers_pull_the_default_model_once(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                   pull_error: str | None) -> None:
    """dmr_adapter_factory makes sure of the default model under --dmr-pull: one pull for the run (the
    stand-in holds it until the other worker looks the model up), one failure both workers report."""
    make_ini(pytester)
    for name in ("first", "second"):
        pytester.makepyfile(**{f"test_{name}": ADAPTER_TEST.format(name=name)})
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))
    with StandIn(models=("docker.io/ai/other:latest",), hold_pulls=2.0, pull_error=pull_error) as standin:
        result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", f"--dmr-url={standin.url}",
                                               "--dmr-pull", "-p", "no:cacheprovider", "-rs")
    assert standin.count("POST", "/models/create") == 1
    if pull_error is None:
        result.assert_outcomes(passed=2)
        return
    # As for a dmr_model test whose model cannot be pulled: skipped, with the reason.
    result.assert_outcomes(skipped=2)
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert len(skips) == 2, result.stdout.str()
    assert all("pulling ai/smollm2 failed: " in line and "registry said no" in line for line in skips), skips


def test_a_session_scoped_read_only_dmr_config(pytester: pytest.Pytester) -> None:
    """Any scope, any mapping; a short model name is the same model as the default's full one."""
    make_ini(pytester)
    pytester.makepyfile(test_proxy="""
        import types
        import pytest

        @pytest.fixture(scope="session")
        def dmr_config():
            return types.MappingProxyType({"model": "smollm2", "timeout": 30, "seed": 1})

        def test_it(dmr_adapter, dmr_client):
            assert (dmr_adapter.model, dmr_adapter.timeout, dmr_adapter.default_options) == ("smollm2", 30, {"seed": 1})
            assert [model.name for model in dmr_client.list_models()] == ["docker.io/ai/smollm2:latest"]
    """)
    run(pytester, "--dmr=mock").assert_outcomes(passed=1)
