"""Extension points: the hooks pytest_dmr_configure_mock and pytest_dmr_runner_url, the dmr_config
fixture and its precedence, and the warning for a dmr_mock marker that does nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_helpers import make_ini
from plugin_standin import LIVE_ANSWER, StandIn


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner run in which any warning (ours included) is an error: normal use must emit none."""
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error", *args)


def dmr_header(result: pytest.RunResult) -> str:
    (line,) = [line for line in result.stdout.lines if line.startswith("dmr: ") and "tests run" not in line and "asked for a runner" not in line]
    return line


# --------------------------------------------------------------------------------------------
# pytest_dmr_configure_mock
# --------------------------------------------------------------------------------------------

MOCK_HOOK_CONFTEST = """
from pytest_dmr import Fault

def pytest_dmr_configure_mock(config, mock, item):
    item.user_properties.append(("configured", id(mock)))
    mock.reply("the suite's answer")
    if item.name == "test_scripted_by_name":
        mock.fail(Fault.model_not_found())
"""

MOCK_HOOK_TESTS = """
import pytest
from pytest_dmr import ModelNotFoundError

def configured(request):
    return [value for name, value in request.node.user_properties if name == "configured"]

@pytest.mark.asyncio
async def test_the_suite_rule_reaches_the_adapter(request, dmr_adapter):
    assert await dmr_adapter.generate("hello") == "the suite's answer"
    assert len(configured(request)) == 1

@pytest.mark.asyncio
async def test_scripted_by_name(dmr_adapter):
    with pytest.raises(ModelNotFoundError):
        await dmr_adapter.generate("hello")

@pytest.mark.asyncio
async def test_one_configured_mock_for_every_fixture(request, dmr_mock, dmr_adapter, dmr_adapter_factory, dmr_client):
    assert configured(request) == [id(dmr_mock)]
    assert await dmr_adapter_factory().generate("hello") == "the suite's answer"
    dmr_client.list_models()
    assert len(dmr_mock.requests) == 2  # the factory's adapter and the client talk to this mock
    dmr_mock.reply("the test's own answer")  # the test's rules come after the hook's: they win
    assert await dmr_adapter.generate("hello") == "the test's own answer"

def test_without_plugin_fixtures_nothing_is_configured(request):
    assert configured(request) == []
"""


def test_configure_mock_scripts_each_tests_mock_once(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makeconftest(MOCK_HOOK_CONFTEST)
    pytester.makepyfile(test_hooked=MOCK_HOOK_TESTS)
    result = run(pytester, "--dmr=mock")
    result.assert_outcomes(passed=4)


def test_configure_mock_goes_from_the_broadest_to_the_closest(pytester: pytest.Pytester) -> None:
    """A plugin, the rootdir's conftest.py, a directory's: the closest's rules are the newest and win;
    a directory without its own conftest.py gets the rootdir's rules only."""
    make_ini(pytester)
    pytester.syspathinsert()
    pytester.makepyfile(team_mock="def pytest_dmr_configure_mock(mock):\n    mock.reply('plugin')\n")
    pytester.makeconftest("def pytest_dmr_configure_mock(mock):\n    mock.reply('root', contains='hello')\n")
    pytester.mkdir("sub")
    pytester.makepyfile(**{"sub/conftest": "def pytest_dmr_configure_mock(mock):\n    mock.reply('sub', contains='hello')\n"})
    body = """
import pytest

@pytest.mark.asyncio
async def test_answers(dmr_adapter):
    assert (await dmr_adapter.generate("hello"), await dmr_adapter.generate("other")) == ({hello!r}, "plugin")
"""
    pytester.makepyfile(**{
        "test_top": body.format(hello="root"),
        "sub/test_sub": body.format(hello="sub"),
        "other/test_other": body.format(hello="root"),
    })
    result = run(pytester, "--dmr=mock", "-p", "team_mock")
    result.assert_outcomes(passed=3)


def test_on_a_live_runner_only_a_forced_mock_is_configured(pytester: pytest.Pytester, standin: StandIn) -> None:
    make_ini(pytester)
    pytester.makeconftest(MOCK_HOOK_CONFTEST)
    pytester.makepyfile(test_live=f"""
        import pytest

        @pytest.mark.asyncio
        async def test_live(request, dmr_adapter):
            assert await dmr_adapter.generate("hello") == {LIVE_ANSWER!r}
            assert [name for name, _ in request.node.user_properties if name == "configured"] == []

        @pytest.mark.asyncio
        async def test_forced_mock(request, dmr_mock, dmr_adapter):
            assert await dmr_adapter.generate("hello") == "the suite's answer"
            assert [value for name, value in request.node.user_properties if name == "configured"] == [id(dmr_mock)]
    """)
    result = run(pytester, f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["dmr: tests run 1 live, 1 on the mock"])


# --------------------------------------------------------------------------------------------
# pytest_dmr_runner_url
# --------------------------------------------------------------------------------------------

RUNNER_URL_CONFTEST = """
import pathlib

def pytest_dmr_runner_url(config):
    with open(pathlib.Path(str(config.rootpath)) / "hook-calls.txt", "a") as calls:
        calls.write(("worker" if hasattr(config, "workerinput") else "controller") + "\\n")
    return {url!r}
"""
RUNNER_TEST = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_runner(n, dmr_runner, dmr_client):
    print("SOURCE", dmr_runner.backend, dmr_runner.source)
    dmr_client.list_models()
"""


def hook_calls(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "hook-calls.txt"
    return path.read_text().split() if path.exists() else []


def with_runner_url_hook(pytester: pytest.Pytester, url: object, count: int = 1, ini: str = "") -> pytest.Pytester:
    make_ini(pytester, ini)
    pytester.makeconftest(RUNNER_URL_CONFTEST.format(url=url))
    pytester.makepyfile(test_runner=RUNNER_TEST.format(count=count))
    return pytester


def test_the_runner_url_hook_names_a_runner_probed_like_an_explicit_url(pytester: pytest.Pytester,
                                                                        standin: StandIn) -> None:
    authority = standin.url.removeprefix("http://")
    result = run(with_runner_url_hook(pytester, standin.url + "/engines/v1"), "-s")
    result.assert_outcomes(passed=1)
    assert dmr_header(result) == f"dmr: live at {standin.url}/engines/v1, 1 model (found: hook conftest.py {authority})"
    result.stdout.fnmatch_lines([f"*SOURCE live hook conftest.py {authority}"])
    assert hook_calls(pytester) == ["controller"]
    assert standin.count("GET", "/") == 1  # probed: it answered as a Docker Model Runner
    assert standin.count("GET", "/models") == 2  # the probe's model list, then the test's


@pytest.mark.parametrize("where", ["flag", "ini", "env", "mock mode"])
def test_an_explicit_url_wins_and_the_hook_is_not_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                        standin: StandIn, refused_url: str, where: str) -> None:
    ini = f"dmr_url = {standin.url}" if where == "ini" else ""
    with_runner_url_hook(pytester, refused_url, ini=ini)
    args = {"flag": [f"--dmr-url={standin.url}"], "mock mode": ["--dmr=mock"]}.get(where, [])
    if where == "env":
        monkeypatch.setenv("DMR_URL", standin.url)
    result = run(pytester, *args)
    result.assert_outcomes(passed=1)
    assert hook_calls(pytester) == []
    source = {"flag": "--dmr-url", "ini": "dmr_url (ini)", "env": "DMR_URL"}.get(where)
    if source is None:
        assert dmr_header(result) == "dmr: mock (--dmr=mock)"
    else:
        assert dmr_header(result).endswith(f"(found: {source} {standin.url.removeprefix('http://')})")


def test_a_dead_url_from_the_hook_does_what_a_dead_url_from_the_ini_does(pytester: pytest.Pytester, refused_url: str) -> None:
    """The project's configuration (hook, ini) asked for a runner: the mock, with a warning (an error here,
    under -W error). Typed on the command line, the URL stops the run instead (test_honest_runs.py)."""
    with_runner_url_hook(pytester, refused_url)
    from_hook = run(pytester, "-s")
    from_hook.assert_outcomes(errors=1)
    from_hook.stdout.fnmatch_lines([f"*PytestWarning: pytest-dmr: asked for a runner at {refused_url} (from hook conftest.py) "
                                    "but ran on the mock: no runner: * connection refused"])
    with_runner_url_hook(pytester, "not a runner: the ini's URL wins", ini=f"dmr_url = {refused_url}")
    from_ini = run(pytester, "-s")
    from_ini.assert_outcomes(errors=1)
    from_ini.stdout.fnmatch_lines([f"*PytestWarning: pytest-dmr: asked for a runner at {refused_url} (from dmr_url in the ini "
                                   "file) but ran on the mock: no runner: * connection refused"])
    assert dmr_header(from_hook) == dmr_header(from_ini) == (
        f"dmr: mock (no runner: {refused_url.removeprefix('http://')} connection refused)"
    )
    # Live mode: the same usage error before any test.
    with_runner_url_hook(pytester, refused_url)
    from_hook = run(pytester, "--dmr=live")
    explicit = run(pytester, "--dmr=live", f"--dmr-url={refused_url}")
    assert from_hook.ret == explicit.ret == pytest.ExitCode.USAGE_ERROR
    assert from_hook.stderr.lines == explicit.stderr.lines
    assert f"Probed: {refused_url.removeprefix('http://')} connection refused" in from_hook.stderr.str()
    assert hook_calls(pytester) == ["controller", "controller"]  # asked by each run without an explicit URL


def test_under_xdist_the_hook_is_asked_once_in_the_controller(pytester: pytest.Pytester, standin: StandIn) -> None:
    with_runner_url_hook(pytester, standin.url, count=4)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4)
    assert hook_calls(pytester) == ["controller"]
    result.stdout.fnmatch_lines([f"dmr: live at {standin.url}/engines/v1, 1 model (found: hook conftest.py *)"])
    result.stdout.fnmatch_lines(["dmr: tests run 4 live, 0 on the mock"])
    assert standin.count("GET", "/") == 1  # one probe, in the controller; workers were handed its result


def test_the_first_answer_wins_and_the_header_names_the_plugin(pytester: pytest.Pytester, standin: StandIn) -> None:
    make_ini(pytester)
    pytester.syspathinsert()
    asked = "import pathlib\n\ndef pytest_dmr_runner_url(config):\n    pathlib.Path('{name}.asked').write_text('')\n"
    pytester.makeconftest(asked.format(name="conftest") + "    return None\n")
    pytester.makepyfile(team_runner=asked.format(name="team_runner") + f"    return {standin.url!r}\n",
                        later_plugin=asked.format(name="later_plugin") + "    return 'http://127.0.0.1:9'\n")
    pytester.makepyfile(test_runner=RUNNER_TEST.format(count=1))
    # pytest asks the implementation registered last first: the conftest.py, then team_runner.
    result = run(pytester, "-p", "later_plugin", "-p", "team_runner")
    result.assert_outcomes(passed=1)
    assert dmr_header(result).endswith(f"(found: hook team_runner {standin.url.removeprefix('http://')})")
    assert sorted(path.name for path in pytester.path.glob("*.asked")) == ["conftest.asked", "team_runner.asked"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (42, "ERROR: pytest-dmr: pytest_dmr_runner_url in conftest.py returned 42: return a runner's URL as a string "
             "(http://127.0.0.1:12434, http://host:12434/engines/v1), or None to leave it to discovery"),
        ("ftp://runner", "ERROR: pytest-dmr: pytest_dmr_runner_url in conftest.py: 'ftp://runner' is not a usable "
                         "runner URL. Give an http(s) URL such as *"),
    ],
)
def test_an_answer_that_is_not_a_url_stops_the_run(pytester: pytest.Pytester, answer: object, message: str) -> None:
    result = run(with_runner_url_hook(pytester, answer))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str()  # no test ran


# --------------------------------------------------------------------------------------------
# dmr_config
# --------------------------------------------------------------------------------------------

CONFIG_CONFTEST = """
import pytest

@pytest.fixture
def dmr_config():
    return {"model": "ai/from-config", "temperature": 0.5, "seed": 7, "timeout": 30}
"""
CONFIG_TESTS = """
import json, pathlib
import pytest

def record(name, adapter):
    seen = {"model": adapter.model, "timeout": adapter.timeout, "options": adapter.default_options}
    pathlib.Path(name + ".json").write_text(json.dumps(seen))

def test_adapter(dmr_adapter):
    record("adapter", dmr_adapter)

def test_factory_call(dmr_adapter_factory):
    record("call", dmr_adapter_factory(model="ai/from-call", temperature=0, timeout=5))

@pytest.mark.dmr_model("ai/from-marker")
def test_marker(dmr_adapter):
    record("marker", dmr_adapter)
"""
CONFIG_OPTIONS = {"temperature": 0.5, "seed": 7}
CALL = {"model": "ai/from-call", "timeout": 5.0, "options": {"temperature": 0, "seed": 7}}

# (case, dmr_config overridden?, flags, ini lines, environment, what dmr_adapter gets, what the factory call gets)
PRECEDENCE = [
    ("dmr_config over the defaults", True, [], "", {},
     {"model": "ai/from-config", "timeout": 30.0, "options": CONFIG_OPTIONS}, CALL),
    ("dmr_config over ini and environment", True, [], "dmr_model = ai/from-ini\ndmr_timeout = 77\n",
     {"DMR_MODEL": "ai/from-env", "DMR_TIMEOUT": "88"},
     {"model": "ai/from-config", "timeout": 30.0, "options": CONFIG_OPTIONS}, CALL),
    ("the command line over dmr_config", True, ["--dmr-model=ai/from-flag", "--dmr-timeout=99"], "", {},
     {"model": "ai/from-flag", "timeout": 99.0, "options": CONFIG_OPTIONS}, CALL),
    ("without dmr_config, the run's settings", False, [], "dmr_model = ai/from-ini\ndmr_timeout = 77\n", {},
     {"model": "ai/from-ini", "timeout": 77.0, "options": {}},
     {"model": "ai/from-call", "timeout": 5.0, "options": {"temperature": 0}}),
]


@pytest.mark.parametrize(("case", "overridden", "flags", "ini", "environ", "adapter", "call"), PRECEDENCE,
                         ids=[row[0] for row in PRECEDENCE])
def test_dmr_config_precedence(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: str, overridden: bool,
                               flags: list[str], ini: str, environ: dict[str, str], adapter: dict, call: dict) -> None:
    """factory call > command line > dmr_config > environment > ini > default; the dmr_model marker
    names models a test needs and does not choose the adapter's model."""
    make_ini(pytester, ini)
    if overridden:
        pytester.makeconftest(CONFIG_CONFTEST)
    pytester.makepyfile(test_config=CONFIG_TESTS)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    run(pytester, "--dmr=mock", *flags).assert_outcomes(passed=3)

    def seen(name: str) -> dict:
        return json.loads((pytester.path / f"{name}.json").read_text())

    assert seen("adapter") == adapter
    assert seen("call") == call
    assert seen("marker") == adapter


def test_the_closest_dmr_config_wins_and_the_mock_lists_its_model(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makeconftest(CONFIG_CONFTEST)
    pytester.makepyfile(test_module_config="""
        import pytest

        @pytest.fixture
        def dmr_config():
            return {"model": "ai/qwen3:0.6B-Q4_0", "max_tokens": 64}

        @pytest.mark.asyncio
        async def test_it(dmr_adapter, dmr_client, dmr_mock):
            assert dmr_adapter.model == "ai/qwen3:0.6B-Q4_0"
            assert dmr_adapter.default_options == {"max_tokens": 64}
            names = [model.name for model in dmr_client.list_models()]
            assert names == ["docker.io/ai/smollm2:latest", "docker.io/ai/qwen3:0.6B-Q4_0"]
            await dmr_adapter.generate("hello")
            assert dmr_mock.last_request.json["model"] == "ai/qwen3:0.6B-Q4_0"
            assert dmr_mock.last_request.json["max_tokens"] == 64
    """)
    run(pytester, "--dmr=mock").assert_outcomes(passed=1)


def test_dmr_config_keys_are_split_as_the_factorys_arguments(pytester: pytest.Pytester) -> None:
    """Adapter arguments configure the adapter; request fields are request options; a typo is an
    error naming the close match (issue 12), from the factory and from dmr_config alike."""
    make_ini(pytester)
    pytester.makepyfile(test_split="""
        import pytest
        from pytest_dmr import errors

        OPTIONS = {"max_retries": 1, "headers": {"X-Team": "a"}, "temperature": 1, "default_options": {"top_p": 0.9}}

        @pytest.fixture
        def dmr_config():
            return OPTIONS

        def test_it(dmr_adapter, dmr_adapter_factory):
            from_call = dmr_adapter_factory(**OPTIONS)
            assert dmr_adapter.default_options == from_call.default_options == {"top_p": 0.9, "temperature": 1}
            assert dmr_adapter.retry.max_retries == from_call.retry.max_retries == 1
            assert dmr_adapter._headers["X-Team"] == "a"
            with pytest.raises(errors.UnknownOptionError, match=r"^unknown dmr_adapter_factory[(][)] option 'temprature'.*did you mean 'temperature'"):
                dmr_adapter_factory(temprature=1)
            with pytest.raises(errors.UnknownOptionError, match="did you mean the adapter argument 'max_retries'"):
                dmr_adapter_factory(max_retry=0)
    """)
    run(pytester, "--dmr=mock").assert_outcomes(passed=1)


def test_a_typo_in_dmr_config_is_named_as_dmr_configs(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_typo="""
        import pytest

        @pytest.fixture
        def dmr_config():
            return {"temprature": 0}

        def test_it(dmr_adapter):
            pass
    """)
    result = run(pytester, "--dmr=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["E *UnknownOptionError: unknown dmr_config option 'temprature': *did you mean 'temperature'?*"])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("'ai/smollm2'", "dmr_config returned 'ai/smollm2': a str, not a mapping."),
        ("{'model': 42}", "dmr_config returned {'model': 42}: its model must be a model name (a non-empty string)."),
        ("{1: 2}", "dmr_config returned {1: 2}: its keys must be strings (option names)."),
        ("{'base_url': 'http://127.0.0.1:1'}", "dmr_config returned {'base_url': 'http://127.0.0.1:1'}: dmr_config takes "
         "no base_url: its adapters talk to this test's runner (live or mock); for another runner, build a "
         "DockerModelRunnerAdapter yourself."),
        ("{'default_options': 3}", "dmr_config returned {'default_options': 3}: its default_options must be a mapping "
         "of request options."),
        ("{'timeout': '30'}", "dmr_config returned {'timeout': '30'}: its timeout must be a positive number of "
         "seconds (30, not '30')."),
    ],
)
def test_a_wrong_dmr_config_fails_the_tests_setup(pytester: pytest.Pytester, value: str, problem: str) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_wrong=f"""
        import pytest

        @pytest.fixture
        def dmr_config():
            return {value}

        def test_it(dmr_adapter):
            pass

        def test_plain():
            pass
    """)
    result = run(pytester, "--dmr=mock")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        f"{problem} It must return a mapping of adapter options and default request options, e.g. "
        "{'model': 'ai/smollm2', 'temperature': 0, 'timeout': 30}"
    ])


MISSING_MODEL = (
    "needs a live Docker Model Runner: model ai/qwen3:0.6B-Q4_0 is not on the runner at {url}: pull it with "
    "`docker model pull ai/qwen3:0.6B-Q4_0`, or run with --dmr-pull (the model dmr_config chooses)"
)


@pytest.mark.parametrize(
    ("args", "outcome", "pulls", "line"),
    [
        ([], {"skipped": 1}, 0, "SKIPPED [[]1[]] test_live_config.py:7: " + MISSING_MODEL),
        (["--dmr-pull"], {"passed": 1}, 1, "dmr: tests run 1 live, 0 on the mock"),
        (["--dmr-require-live"], {"errors": 1}, 0, MISSING_MODEL + " (--dmr-require-live)"),
        (["--dmr-model=ai/smollm2"], {"passed": 1}, 0, "dmr: tests run 1 live, 0 on the mock"),
    ],
    ids=["skip", "pull", "require-live", "command line model"],
)
def test_a_dmr_config_model_takes_the_dmr_model_markers_path_on_a_live_runner(
    pytester: pytest.Pytester, standin: StandIn, args: list[str], outcome: dict[str, int], pulls: int, line: str
) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_live_config="""
        import pytest

        @pytest.fixture
        def dmr_config():
            return {"model": "ai/qwen3:0.6B-Q4_0"}

        def test_it(dmr_adapter, dmr_runner):
            assert dmr_runner.live
    """)
    result = run(pytester, f"--dmr-url={standin.url}", "-rs", *args)
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([line.format(url=standin.url)])
    assert standin.count("POST", "/models/create") == pulls


# --------------------------------------------------------------------------------------------
# The warning for a dmr_mock marker that does nothing
# --------------------------------------------------------------------------------------------

MARKED_MODULE = """
import pytest

@pytest.mark.dmr_mock
def test_marked_without_fixtures():
    pass

@pytest.mark.dmr_mock
def test_marked_with_a_fixture(dmr_client):
    pass

@pytest.mark.dmr_live
def test_live_without_fixtures():
    pass

@pytest.mark.dmr_model("ai/smollm2")
def test_model_without_fixtures():
    pass
"""
GROUP_MARKED_MODULE = """
import pytest

pytestmark = pytest.mark.dmr_mock

def test_plain_in_a_mock_module():
    pass
"""
UNUSED_MARKER_WARNING = (
    "*PytestWarning: test_marked.py::test_marked_without_fixtures is marked dmr_mock but requests none of "
    "pytest-dmr's fixtures (dmr_adapter, dmr_adapter_factory, dmr_anthropic, dmr_async_anthropic, dmr_async_ollama, "
    "dmr_async_openai, dmr_client, dmr_environment, dmr_mock, dmr_ollama, dmr_openai, dmr_runner), so the marker has "
    "no effect: the test talks to no runner or mock of the plugin's. Request dmr_adapter, dmr_adapter_factory, "
    "dmr_client or dmr_mock to run the test on the mock, or remove the marker."
)


@pytest.fixture
def marked(pytester: pytest.Pytester) -> pytest.Pytester:
    make_ini(pytester)
    pytester.makepyfile(test_marked=MARKED_MODULE, test_group=GROUP_MARKED_MODULE)
    return pytester


# In a subprocess: this process's own `filterwarnings = error` would reach an in-process run.


def test_a_dmr_mock_marker_without_fixtures_is_warned_once(marked: pytest.Pytester) -> None:
    result = marked.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock")
    # dmr_live and dmr_model have an effect without fixtures (a skip, a model check): not warned.
    result.assert_outcomes(passed=4, skipped=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "test_marked.py::test_marked_without_fixtures", UNUSED_MARKER_WARNING])
    # The plain test used nothing of the plugin's: it is not counted as run on the mock.
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 2 on the mock, 1 skipped for want of a live runner"])


def test_the_warning_fails_the_test_under_w_error(marked: pytest.Pytester) -> None:
    result = marked.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=3, skipped=1, failed=1)  # warned once the body has run: the test fails
    result.stdout.fnmatch_lines(["*_ test_marked_without_fixtures _*", UNUSED_MARKER_WARNING])


def test_plugin_import_stays_cheap(tmp_path: Path) -> None:
    """The hooks module adds nothing heavy to what every pytest run imports."""
    import subprocess
    import sys

    code = "import sys, pytest_dmr.plugin; print(sorted(m for m in ('httpx', 'httpx2', 'pytest_dmr.mock', 'pytest_dmr.adapter') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert output.strip() == "[]"
