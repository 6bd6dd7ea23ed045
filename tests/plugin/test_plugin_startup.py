"""A near-free plugin: its import loads only the option table and the run's state, a run whose tests use
nothing of the plugin's loads no fixture machinery and registers no per-test hook, and a fixture requested
on the fly still gets the per-test hooks (the strict mock's check, the summary's count)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import make_ini

from pytest_dmr import discovery, options, plugin, settings
from pytest_dmr.protocol import addresses, routes


def test_the_plugin_import_loads_only_its_table_and_state(tmp_path: Path) -> None:
    code = "import sys, pytest, pytest_dmr.plugin; print(sorted(m for m in sys.modules if m.startswith('pytest_dmr')))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert output.strip() == str(sorted(["pytest_dmr", "pytest_dmr.options", "pytest_dmr.plugin", "pytest_dmr.session"]))


NOTHING_LISTENS = """
import sys

def test_one():
    loaded = sorted(m for m in sys.modules if m.startswith("pytest_dmr"))
    assert loaded == ["pytest_dmr", "pytest_dmr.discovery", "pytest_dmr.options",
                      "pytest_dmr.plugin", "pytest_dmr.session", "pytest_dmr.settings", "pytest_dmr.shim"], loaded
"""


def test_a_run_where_nothing_listens_loads_discovery_but_no_protocol_module(pytester: pytest.Pytester, refused_url: str) -> None:
    """Auto mode, the host probe refused: the header says so, and the run loaded neither the protocol
    package, nor the errors, nor the HTTP part of discovery, nor what tests of the plugin need."""
    port = refused_url.rsplit(":", 1)[1]
    make_ini(pytester)
    pytester.makeconftest(f"from pytest_dmr import discovery\ndiscovery.HOST_PORT = {port}\n")
    pytester.makepyfile(test_plain=NOTHING_LISTENS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=auto", "--dmr-discovery=host")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"dmr: mock (no runner: 127.0.0.1:{port} connection refused)"])


def test_the_spelled_out_defaults_agree_with_the_protocol() -> None:
    """options.py and discovery.py spell a few of the protocol's values so that a run where nothing
    listens loads no protocol module: they must stay the protocol's."""
    assert (options.DEFAULT_MODEL, options.DEFAULT_IMAGE) == (addresses.DEFAULT_MODEL, addresses.DEFAULT_IMAGE)
    assert f"http://{discovery.HOST_IP}:{discovery.HOST_PORT}" == addresses.DEFAULT_HOST_URL
    assert discovery.HOST_PORT == addresses.DEFAULT_PORT
    assert discovery.DESKTOP_SOCKET_ROOT == "http://localhost" + addresses.DESKTOP_SOCKET_PREFIX
    assert discovery.ROOT_BANNER == addresses.ROOT_BANNER
    assert (discovery.ROOT_PATH, discovery.MANAGEMENT_MODELS_PATH) == (routes.ROOT_PATH, routes.MANAGEMENT_MODELS_PATH)
    assert (discovery.ENGINES_PREFIX, discovery.ALIAS_PREFIX, discovery.MODELS) == (
        routes.ENGINES_PREFIX, routes.ALIAS_PREFIX, routes.MODELS)


PLAIN_TESTS = """
import sys

def test_one(pytestconfig):
    loaded = sorted(m for m in sys.modules if m.startswith("pytest_dmr."))
    assert "pytest_dmr.fixtures" not in loaded and "pytest_dmr.mock" not in loaded, loaded
    assert pytestconfig.pluginmanager.get_plugin("dmr-per-test") is None
    assert pytestconfig.pluginmanager.get_plugin("dmr-backend-counter") is None

def test_two():
    assert True
"""


@pytest.mark.parametrize("mode", ["auto", "mock"])
def test_plain_tests_load_no_fixture_machinery_and_no_per_test_hooks(pytester: pytest.Pytester, mode: str) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--dmr={mode}")
    result.assert_outcomes(passed=2)
    assert not [line for line in result.stdout.lines if line.startswith("dmr: tests run")]


ON_THE_FLY = """
import httpx
import pytest

def test_plain():
    pass

@pytest.fixture
def scripted(request):
    mock = request.getfixturevalue("dmr_mock")  # not in the test's fixturenames
    mock.reply("Paris.", contains="capital of France")
    return mock

def test_on_the_fly(scripted, pytestconfig):
    assert pytestconfig.pluginmanager.get_plugin("dmr-per-test") is not None
"""


def test_a_fixture_requested_on_the_fly_gets_the_per_test_hooks(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = true\n")
    pytester.makepyfile(test_fly=ON_THE_FLY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock")
    result.assert_outcomes(passed=2, errors=1)  # the body passed, so its unused rule errors at teardown
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_on_the_fly*", "*- reply('Paris.', contains='capital of France'): never used"])
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 on the mock"])


def test_the_option_table_names_every_setting_and_its_defaults() -> None:
    """Each row's setting is a field of Settings, and each flag and ini key appears once."""
    rows = options.OPTIONS
    assert {row["setting"] for row in rows} == set(settings.Settings.__slots__) - {
        name for name in settings.Settings.__slots__ if name.endswith("_source")
    }
    flags = [row["flag"] for row in rows if row.get("flag")]
    assert len(flags) == len(set(flags)) == 13
    assert options.INI_KEYS == tuple(dict.fromkeys(row["ini"] for row in rows))
    assert set(options.FLAG_DESTS) == set(flags) - {"--dmr-no-pull"}


def test_the_hooks_are_declared_once_something_implements_one(pytester: pytest.Pytester) -> None:
    """A run where nothing implements pytest-dmr's hooks never loads ``hooks.py``; a conftest.py found
    while collecting that implements one still has its arguments checked against the specification."""
    make_ini(pytester)
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text("def pytest_dmr_configure_mock(config, mock, surprise):\n    pass\n")
    (sub / "test_it.py").write_text("def test_it():\n    pass\n")
    pytester.makepyfile(test_top="def test_top(dmr_mock):\n    assert not dmr_mock.rules\n")  # a plugin registered after it
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, not an INTERNALERROR
    result.stdout.fnmatch_lines(["*Argument(s) {'surprise'} are declared in the hookimpl but can not be found in the hookspec*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_modules_imported_past_the_rewriting_hook_hold_no_assert() -> None:
    """``plugin.import_plainly`` loads the modules every run needs without pytest's assertion rewriting,
    which changes nothing in a module without an ``assert`` statement: each module it names has none."""
    package = Path(plugin.__file__).parent
    named = {name for source in ("plugin.py", "session.py")
             for name in re.findall(r'import_plainly\("pytest_dmr\.(\w+)"\)', (package / source).read_text())}
    assert named == {"session", "settings", "discovery"}
    for name in named:
        tree = ast.parse((package / f"{name}.py").read_text())
        asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not asserts, f"pytest_dmr/{name}.py has assert statements (lines {asserts}): import it normally, or drop them"


PAST_THE_HOOK = """
import sys

def test_one():
    for name in ("pytest_dmr.session", "pytest_dmr.settings", "pytest_dmr.discovery"):
        loader = type(sys.modules[name].__spec__.loader).__name__
        assert loader == "SourceFileLoader", (name, loader)
"""


def test_the_startup_modules_load_past_the_rewriting_hook(pytester: pytest.Pytester) -> None:
    """Even where pytest marks them for rewriting (as it marks an installed plugin's package), the
    modules every run loads after ``plugin.py`` load as Python loads them (discovery, at the header)."""
    make_ini(pytester)
    pytester.makeconftest("import pytest\n\npytest.register_assert_rewrite('pytest_dmr.discovery')\n")
    pytester.makepyfile(test_past=PAST_THE_HOOK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=auto", "--dmr-discovery=host")
    result.assert_outcomes(passed=1)
