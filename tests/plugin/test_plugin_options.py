"""Every flag, ini key and environment variable reaches the settings, with flag > environment > ini."""

from __future__ import annotations

import pytest
from plugin_helpers import make_ini

FLAGS = [
    "--dmr=MODE", "--dmr-url=URL", "--dmr-model=NAME", "--dmr-provision=WHAT", "--dmr-image=REF", "--dmr-pull",
    "--dmr-no-pull", "--dmr-reuse", "--dmr-require-live", "--dmr-discovery=GROUPS", "--dmr-timeout=SECONDS",
]
INI_KEYS = ["dmr_mode", "dmr_url", "dmr_model", "dmr_provision", "dmr_image", "dmr_pull", "dmr_reuse",
            "dmr_require_live", "dmr_discovery", "dmr_timeout", "dmr_compose_refs"]

# One value per setting for each source: flag, ini, environment.
FLAG_ARGS = ["--dmr=mock", "--dmr-url=http://127.0.0.1:1001", "--dmr-model=ai/from-flag", "--dmr-provision=testcontainers",
             "--dmr-image=flag/image:1", "--dmr-pull", "--dmr-reuse", "--dmr-require-live", "--dmr-discovery=host",
             "--dmr-timeout=11"]
INI_LINES = """
[pytest]
dmr_mode = off
dmr_url = http://127.0.0.1:1002
dmr_model = ai/from-ini
dmr_provision = never
dmr_image = ini/image:2
dmr_pull = false
dmr_reuse = false
dmr_require_live = false
dmr_discovery = desktop
dmr_timeout = 22
"""
ENVIRONMENT = {"DMR_MODE": "mock", "DMR_URL": "http://127.0.0.1:1003", "DMR_MODEL": "ai/from-env",
               "DMR_PROVISION": "testcontainers", "DMR_IMAGE": "env/image:3", "DMR_PULL": "1", "DMR_REUSE": "yes",
               "DMR_REQUIRE_LIVE": "on", "DMR_DISCOVERY": "url,compose", "DMR_TIMEOUT": "33"}

FROM_FLAGS = {"mode": "mock", "url": "http://127.0.0.1:1001", "model": "ai/from-flag", "provision": "testcontainers",
              "image": "flag/image:1", "pull": True, "reuse": True, "require_live": True, "discovery": ["host"],
              "timeout": 11.0}
FROM_INI = {"mode": "off", "url": "http://127.0.0.1:1002", "model": "ai/from-ini", "provision": "never",
            "image": "ini/image:2", "pull": False, "reuse": False, "require_live": False, "discovery": ["desktop"],
            "timeout": 22.0}
FROM_ENV = {"mode": "mock", "url": "http://127.0.0.1:1003", "model": "ai/from-env", "provision": "testcontainers",
            "image": "env/image:3", "pull": True, "reuse": True, "require_live": True, "discovery": ["url", "compose"],
            "timeout": 33.0}


def subset(settings: dict, keys: dict) -> dict:
    return {key: settings[key] for key in keys}


def test_all_options_are_in_one_dmr_group_of_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--help", "-p", "no:asyncio")
    text = result.stdout.str()
    group = text[text.index("Docker Model Runner (pytest-dmr)") :]
    group = group[: group.index("\n\n")]
    for flag in FLAGS:
        assert f"  {flag}" in group, flag
    ini_section = text[text.index("[pytest] configuration options") :]
    for key in INI_KEYS:
        assert f"  {key} " in ini_section, key


def test_flags_reach_the_settings(resolved_settings) -> None:
    assert subset(resolved_settings(*FLAG_ARGS), FROM_FLAGS) == FROM_FLAGS


def test_ini_keys_reach_the_settings(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, resolved_settings) -> None:
    monkeypatch.delenv("DMR_DISCOVERY")  # the suite's safe default would win over the ini
    pytester.makeini(INI_LINES.replace("dmr_mode = off", "dmr_mode = auto"))
    assert subset(resolved_settings(), FROM_INI) == FROM_INI | {"mode": "auto"}


def test_environment_reaches_the_settings(monkeypatch: pytest.MonkeyPatch, resolved_settings) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert subset(resolved_settings(), FROM_ENV) == FROM_ENV


def test_flags_win_over_ini_and_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                            resolved_settings) -> None:
    pytester.makeini(INI_LINES)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert subset(resolved_settings(*FLAG_ARGS), FROM_FLAGS) == FROM_FLAGS


def test_environment_wins_over_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, resolved_settings) -> None:
    """A CI job's DMR_MODE=live beats a project's standing dmr_mode = mock (pytest-django's order)."""
    pytester.makeini(INI_LINES)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert subset(resolved_settings(), FROM_ENV) == FROM_ENV


def test_no_pull_flag_and_fallback_variables(monkeypatch: pytest.MonkeyPatch, resolved_settings) -> None:
    monkeypatch.setenv("DMR_PULL", "true")
    monkeypatch.setenv("MODEL_RUNNER_URL", "http://127.0.0.1:1004")
    monkeypatch.setenv("DEFAULT_LOCAL_MODEL", "ai/ultra-default")
    monkeypatch.setenv("LOCAL_MODEL_TIMEOUT", "1500")
    settings = resolved_settings("--dmr-no-pull", "--dmr=mock")
    assert (settings["pull"], settings["url"], settings["model"], settings["timeout"]) == (
        False, "http://127.0.0.1:1004", "ai/ultra-default", 1.5)
    monkeypatch.delenv("MODEL_RUNNER_URL")
    monkeypatch.setenv("MODEL_RUNNER_HOST", "127.0.0.1:1005")
    assert resolved_settings("--dmr=mock")["url"] == "127.0.0.1:1005"


def test_compose_refs_from_the_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, resolved_settings) -> None:
    monkeypatch.setenv("MY_LLM_URL", "http://127.0.0.1:1006")
    monkeypatch.setenv("MY_LLM_MODEL", "ai/compose-model")
    monkeypatch.setenv("LLM_MODEL", "ai/not-this-one")
    pytester.makeini("[pytest]\ndmr_compose_refs = MY_LLM OTHER\n")
    settings = resolved_settings("--dmr=mock")
    assert settings["compose_refs"] == ["MY_LLM", "OTHER"]
    assert settings["model"] == "ai/compose-model"


@pytest.mark.parametrize(
    ("args", "ini", "environment", "message"),
    [
        (["--dmr=sometimes"], "", {}, "ERROR: pytest-dmr: --dmr='sometimes' is not valid. Use one of: auto, live, mock, off"),
        ([], "dmr_provision = docker", {}, "ERROR: pytest-dmr: dmr_provision (ini)='docker' is not valid. "
         "Use one of: never, testcontainers"),
        ([], "", {"DMR_DISCOVERY": "host,lan"}, "ERROR: pytest-dmr: DMR_DISCOVERY='host,lan': unknown discovery group "
         "'lan'. Give a comma list of: url, compose, host, container, desktop"),
        (["--dmr-timeout=0"], "", {}, "ERROR: pytest-dmr: --dmr-timeout='0' is not a positive number of seconds*"),
        ([], "dmr_pull = perhaps", {}, "ERROR: pytest-dmr: dmr_pull (ini)='perhaps' is not a yes/no value*"),
    ],
)
def test_a_bad_value_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                      ini: str, environment: dict[str, str], message: str) -> None:
    make_ini(pytester, ini)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
