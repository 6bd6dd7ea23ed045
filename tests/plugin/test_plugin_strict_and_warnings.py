"""The opt-in strict mock (``dmr_mock(assert_all_rules_used=True)``, ini ``dmr_assert_all_rules_used``) and the
configure-time warnings about settings that have no effect."""

from __future__ import annotations

from typing import Any

import pytest
from plugin_helpers import make_ini
from plugin_standin import StandIn

from pytest_dmr import errors
from pytest_dmr.settings import ineffective_settings, resolve

ASK = """
import httpx
import pytest


def ask(mock, text):
    with httpx.Client(transport=mock, base_url=mock.openai_base_url) as client:
        body = {"model": "ai/smollm2", "messages": [{"role": "user", "content": text}]}
        return client.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
"""

STRICT = ASK + """

@pytest.mark.dmr_mock(assert_all_rules_used=True)
def test_strict_unused(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
    dmr_mock.reply("Berlin.", contains="capital of Germany", times=2)
    assert ask(dmr_mock, "The capital of Germany?") == "Berlin."


@pytest.mark.dmr_mock(assert_all_rules_used=True)
def test_strict_used(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
    assert ask(dmr_mock, "The capital of France?") == "Paris."


def test_default_unused(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")


@pytest.mark.dmr_mock(assert_all_rules_used=False)
def test_turned_off_unused(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
"""

TEARDOWN_ERROR = [
    "*ERROR at teardown of test_strict_unused*",
    "",
    "E   AssertionError: The mock's rules were not all used:",
    "    - reply('Paris.', contains='capital of France'): never used",
    "    - reply('Berlin.', contains='capital of Germany', times=2): used 1 of 2 times",
    "    ",
    "    If a rule may go unused on purpose, add it in a pytest_dmr_configure_mock hook (or before "
    "mock.mark_background_rules()), or turn the check off with @pytest.mark.dmr_mock(assert_all_rules_used=False).",
]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--dmr=mock", *args)


# -- the strict mock ---------------------------------------------------------------------------------------


def test_the_marker_makes_a_passing_test_error_at_teardown(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_strict=STRICT)
    result = run(pytester)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(TEARDOWN_ERROR, consecutive=True)
    result.stdout.fnmatch_lines(["ERROR test_strict.py::test_strict_unused - AssertionError: The mock's rules*"])


def test_the_ini_turns_it_on_for_every_test_and_the_marker_wins(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = true\n")
    pytester.makepyfile(test_strict=STRICT)
    result = run(pytester, "-rE")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(TEARDOWN_ERROR, consecutive=True)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_default_unused*"])
    errored = {line.split(" - ")[0] for line in result.stdout.lines if line.startswith("ERROR test_strict.py::")}
    assert errored == {"ERROR test_strict.py::test_strict_unused", "ERROR test_strict.py::test_default_unused"}


def test_the_ini_default_is_off(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = no\n")
    pytester.makepyfile(test_strict=STRICT.replace("assert_all_rules_used=True", "assert_all_rules_used=False"))
    run(pytester).assert_outcomes(passed=4)


def test_the_closest_marker_wins_and_a_bare_marker_keeps_a_broader_choice(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_layers=ASK + """
pytestmark = pytest.mark.dmr_mock(assert_all_rules_used=True)


@pytest.mark.dmr_mock(assert_all_rules_used=False)
def test_closest_turns_it_off(dmr_mock):
    dmr_mock.reply("unused")


@pytest.mark.dmr_mock
def test_bare_marker_keeps_the_module_choice(dmr_mock):
    dmr_mock.reply("unused")


class TestClass:
    pytestmark = pytest.mark.dmr_mock(assert_all_rules_used=False)

    @pytest.mark.dmr_mock(assert_all_rules_used=True)
    def test_method_marker_beats_the_class(self, dmr_mock):
        dmr_mock.reply("unused")

    def test_class_marker_beats_the_module(self, dmr_mock):
        dmr_mock.reply("unused")
""")
    result = run(pytester, "-rE")
    result.assert_outcomes(passed=4, errors=2)
    errored = {line.split(" - ")[0] for line in result.stdout.lines if line.startswith("ERROR test_layers.py::")}
    assert errored == {"ERROR test_layers.py::test_bare_marker_keeps_the_module_choice",
                       "ERROR test_layers.py::TestClass::test_method_marker_beats_the_class"}


def test_rules_of_the_configure_mock_hook_are_not_checked(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = true\n")
    pytester.makeconftest("""
from pytest_dmr.mock import Fault

def pytest_dmr_configure_mock(mock):
    mock.reply("canned answer", contains="a canned question")
    mock.fail(Fault.http(503), contains="a broken question")
""")
    pytester.makepyfile(test_hooked=ASK + """

def test_only_hook_rules(dmr_mock):
    pass


def test_own_rule_unused(dmr_mock):
    dmr_mock.reply("mine", contains="my question")


def test_own_rule_used_hook_rule_too(dmr_mock):
    dmr_mock.reply("mine", contains="my question")
    assert ask(dmr_mock, "my question") == "mine"
    assert ask(dmr_mock, "a canned question") == "canned answer"
""")
    result = run(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_own_rule_unused*",
        "",
        "E   AssertionError: The mock's rules were not all used:",
        "    - reply('mine', contains='my question'): never used",
        "    ",
    ], consecutive=True)
    assert "canned" not in result.stdout.str() and "503" not in result.stdout.str()


def test_a_failing_body_is_not_reported_twice(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = true\n")
    pytester.makepyfile(test_failing=ASK + """

def test_fails(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
    assert ask(dmr_mock, "capital of Spain?") == "Madrid."


def test_skips_in_its_body(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
    pytest.skip("not today")


@pytest.mark.xfail(reason="known bug")
def test_expected_to_fail(dmr_mock):
    dmr_mock.reply("Paris.", contains="capital of France")
    assert False
""")
    result = run(pytester)
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    assert "rules were not all used" not in result.stdout.str()


def test_under_xdist_each_worker_checks_its_tests(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_strict=STRICT, test_more=ASK + """

@pytest.mark.dmr_mock(assert_all_rules_used=True)
def test_more_unused(dmr_mock):
    dmr_mock.reply("never asked", model="ai/qwen3")
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--dmr=mock", "-rE")
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(TEARDOWN_ERROR[3:], consecutive=True)
    result.stdout.fnmatch_lines(["    - reply('never asked', model='ai/qwen3'): never used"])
    errored = {line.split(" - ")[0] for line in result.stdout.lines if line.startswith("ERROR test_")}
    assert errored == {"ERROR test_strict.py::test_strict_unused", "ERROR test_more.py::test_more_unused"}


def test_both_marker_forms_force_the_mock_on_a_live_runner(pytester: pytest.Pytester, standin: StandIn) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_forced="""
import pytest


@pytest.mark.dmr_mock
def test_bare(dmr_client):
    pass


@pytest.mark.dmr_mock(assert_all_rules_used=True)
def test_with_keyword(dmr_client):
    pass


def test_unmarked(dmr_client):
    pass
""")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--dmr-url={standin.url}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["dmr: tests run 1 live, 2 on the mock"])


def test_the_marker_is_documented_with_its_keyword(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--markers", "-p", "no:asyncio")
    result.stdout.fnmatch_lines(["@pytest.mark.dmr_mock: *dmr_mock(assert_all_rules_used=True)*ini dmr_assert_all_rules_used*"])


def test_a_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_assert_all_rules_used = maybe\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-dmr: dmr_assert_all_rules_used (ini)='maybe' is not a yes/no value. "
        "Use one of: 1, true, yes, on (on) or 0, false, no, off (off)"
    ])


@pytest.mark.parametrize(
    ("decorator", "got"),
    [
        ("@pytest.mark.dmr_mock(assert_all_rules=True)", "args=(), kwargs={'assert_all_rules': True}"),
        ("@pytest.mark.dmr_mock(assert_all_rules_used='yes')", "args=(), kwargs={'assert_all_rules_used': 'yes'}"),
        ("@pytest.mark.dmr_mock(True)", "args=(True,), kwargs={}"),
    ],
)
def test_bad_marker_arguments_name_the_allowed_keyword(pytester: pytest.Pytester, decorator: str, got: str) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n{decorator}\ndef test_it(dmr_mock):\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting test_bad.py*",
        "@pytest.mark.dmr_mock takes no positional arguments and one keyword argument, assert_all_rules_used=True "
        f"or False; test_bad.py::test_it got {got}",
    ])


# -- settings that have no effect ------------------------------------------------------------------------------

NEVER_DEFAULT = "provisioning is never (the default)"


def warnings_for(options: dict[str, Any] | None = None, ini: dict[str, Any] | None = None,
                 environ: dict[str, str] | None = None) -> list[str]:
    return ineffective_settings(resolve(options or {}, ini or {}, environ or {}))


def test_reuse_without_provisioning_is_warned_in_full() -> None:
    assert warnings_for({"--dmr-reuse": True}) == [
        "pytest-dmr: --dmr-reuse has no effect: it keeps a runner that pytest-dmr provisions alive for the next run, "
        "and provisioning is never (the default), so no runner is started. Add --dmr-provision=testcontainers "
        "(ini dmr_provision = testcontainers), or remove --dmr-reuse."
    ]


def test_an_image_without_provisioning_is_warned_in_full() -> None:
    assert warnings_for(ini={"dmr_image": "me/runner:1", "dmr_provision": "never"}) == [
        "pytest-dmr: dmr_image = me/runner:1 in the ini file has no effect: the image is only used to start a runner, "
        "and provisioning is never (dmr_provision = never in the ini file), so pytest-dmr starts none (tests get the "
        "runner discovery finds, or the mock). Add --dmr-provision=testcontainers (ini dmr_provision = testcontainers) "
        "to start runners from it, or remove dmr_image = me/runner:1 in the ini file."
    ]


@pytest.mark.parametrize(
    ("options", "ini", "environ", "expected"),
    [
        pytest.param({}, {"dmr_reuse": "yes"}, {}, ["dmr_reuse = true in the ini file has no effect", NEVER_DEFAULT],
                     id="reuse-ini"),
        pytest.param({"--dmr-image": "me/runner:1"}, {}, {}, ["--dmr-image=me/runner:1 has no effect", NEVER_DEFAULT],
                     id="image-flag"),
        pytest.param({"--dmr-reuse": True, "--dmr-image": "me/runner:1", "--dmr-provision": "never"}, {}, {},
                     ["--dmr-reuse has no effect", "--dmr-image=me/runner:1 has no effect",
                      "provisioning is never (--dmr-provision=never)"], id="reuse-and-image-flags"),
        pytest.param({"--dmr": "mock", "--dmr-provision": "testcontainers", "--dmr-pull": True}, {}, {},
                     ["--dmr-provision=testcontainers, --dmr-pull have no effect with --dmr=mock: the mock never touches "
                      "a runner, so nothing is provisioned or pulled. Remove them, or run with --dmr=auto"],
                     id="mock-flag-provision-and-pull-flags"),
        pytest.param({"--dmr-provision": "testcontainers", "--dmr-reuse": True}, {"dmr_mode": "mock"}, {},
                     ["--dmr-provision=testcontainers, --dmr-reuse have no effect with dmr_mode = mock in the ini file"],
                     id="mock-ini-provision-flags"),
        pytest.param({"--dmr": "mock", "--dmr-reuse": True}, {"dmr_provision": "testcontainers"}, {},
                     ["--dmr-reuse has no effect with --dmr=mock"], id="mock-flag-reuse-flag-provision-ini"),
        pytest.param({"--dmr": "mock", "--dmr-require-live": True}, {}, {},
                     ["--dmr-require-live with --dmr=mock fails every dmr_live and dmr_model test"], id="mock-require-live"),
        pytest.param({"--dmr-require-live": True, "--dmr-pull": True}, {}, {"DMR_MODE": "off"},
                     ["--dmr-pull, --dmr-require-live have no effect with DMR_MODE=off: pytest-dmr is off"],
                     id="off-env-flags"),
    ],
)
def test_each_setting_without_effect_is_warned(options: dict[str, Any], ini: dict[str, Any], environ: dict[str, str],
                                               expected: list[str]) -> None:
    found = warnings_for(options, ini, environ)
    text = "\n".join(found)
    for fragment in expected:
        assert fragment in text
    assert all(message.startswith("pytest-dmr: ") for message in found)


@pytest.mark.parametrize(
    ("options", "ini", "environ"),
    [
        pytest.param({}, {}, {}, id="defaults"),
        pytest.param({}, {}, {"DMR_DISCOVERY": "url,compose,host,desktop", "PYTEST_DMR_RUNNER_IMAGE": "pytest-dmr/runner:local",
                              "PYTEST_DMR_REQUIRE_TIERS": "live,container"}, id="our-ci-environment"),
        pytest.param({}, {}, {"DMR_IMAGE": "docker/model-runner:latest"}, id="compose-image-variable"),
        pytest.param({}, {}, {"DMR_REUSE": "1", "DMR_PULL": "1"}, id="machine-wide-variables"),
        pytest.param({"--dmr-reuse": True, "--dmr-image": "me/runner:1", "--dmr-provision": "testcontainers"}, {}, {},
                     id="provisioning-with-its-options"),
        pytest.param({}, {"dmr_reuse": "true", "dmr_image": "me/runner:1"}, {"DMR_PROVISION": "testcontainers"},
                     id="ini-options-env-provisioning"),
        pytest.param({"--dmr": "mock", "--dmr-url": "http://127.0.0.1:1001"}, {}, {}, id="mock-over-a-url"),
        pytest.param({"--dmr": "mock"}, {"dmr_provision": "testcontainers", "dmr_pull": "true", "dmr_require_live": "1"},
                     {}, id="mock-flag-overrides-the-ini"),
        pytest.param({"--dmr": "mock", "--dmr-pull": False}, {}, {},
                     id="mock-no-pull"),
        pytest.param({"--dmr": "live", "--dmr-require-live": True, "--dmr-pull": True}, {}, {}, id="live-require-live"),
        pytest.param({}, {"dmr_reuse": "false"}, {}, id="reuse-off-in-the-ini"),
    ],
)
def test_no_warning_for_defaults_or_settings_that_work(options: dict[str, Any], ini: dict[str, Any],
                                                       environ: dict[str, str]) -> None:
    assert warnings_for(options, ini, environ) == []


def test_the_ini_key_is_a_yes_no_setting() -> None:
    assert resolve({}, {}, {}).assert_all_rules_used is False
    assert resolve({}, {"dmr_assert_all_rules_used": "on"}, {}).assert_all_rules_used is True
    assert resolve({}, {}, {"DMR_ASSERT_ALL_RULES_USED": "1"}).assert_all_rules_used is False  # no variable
    with pytest.raises(errors.ConfigurationError, match=r"dmr_assert_all_rules_used \(ini\)='2' is not a yes/no value"):
        resolve({}, {"dmr_assert_all_rules_used": "2"}, {})


def test_the_warning_is_a_config_warning_of_the_run(pytester: pytest.Pytester) -> None:
    make_ini(pytester, "dmr_image = me/runner:1\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--dmr-reuse")
    result.assert_outcomes(passed=1, warnings=2)
    result.stdout.fnmatch_lines([
        "*PytestConfigWarning: pytest-dmr: --dmr-reuse has no effect: *",
        "*PytestConfigWarning: pytest-dmr: dmr_image = me/runner:1 in the ini file has no effect: *",
    ])


def test_under_xdist_the_warning_is_given_once(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_one="def test_one(): pass", test_two="def test_two(): pass")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--dmr=mock", "--dmr-pull")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("PytestConfigWarning: pytest-dmr: --dmr-pull has no effect with --dmr=mock") == 1


def test_no_warning_with_our_ci_environment_under_warnings_as_errors(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    make_ini(pytester, "dmr_discovery = url,compose,host,desktop\nfilterwarnings = error\n")
    for name, value in {"PYTEST_DMR_RUNNER_IMAGE": "pytest-dmr/runner:local", "PYTEST_DMR_REQUIRE_TIERS": "live,container",
                        "DMR_IMAGE": "pytest-dmr/runner:local", "TESTCONTAINERS_RYUK_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_nothing(dmr_runner): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--dmr=mock", "-W", "error")
    result.assert_outcomes(passed=1, warnings=0)
    assert "PytestConfigWarning" not in result.stdout.str() + result.stderr.str()
