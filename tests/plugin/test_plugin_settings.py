"""settings.resolve(): every setting from flag, ini and environment, precedence, and bad values."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dmr import errors
from pytest_dmr.settings import DISCOVERY_GROUPS, Settings, resolve

# (field, flag, ini key, environment variables in order, a value, another value, the parsed value of the first)
STRING_SETTINGS = [
    ("url", "--dmr-url", "dmr_url", ("DMR_URL", "MODEL_RUNNER_URL", "MODEL_RUNNER_HOST"),
     "http://127.0.0.1:1111", "http://127.0.0.1:2222", "http://127.0.0.1:1111"),
    ("model", "--dmr-model", "dmr_model", ("DMR_MODEL", "DEFAULT_LOCAL_MODEL"), "ai/qwen3", "ai/llama3.2", "ai/qwen3"),
    ("mode", "--dmr", "dmr_mode", ("DMR_MODE",), "mock", "off", "mock"),
    ("provision", "--dmr-provision", "dmr_provision", ("DMR_PROVISION",), "testcontainers", "never", "testcontainers"),
    ("image", "--dmr-image", "dmr_image", ("DMR_IMAGE",), "me/runner:1", "me/runner:2", "me/runner:1"),
    ("pull", "--dmr-pull", "dmr_pull", ("DMR_PULL",), True, "false", True),
    ("reuse", "--dmr-reuse", "dmr_reuse", ("DMR_REUSE",), True, "no", True),
    ("require_live", "--dmr-require-live", "dmr_require_live", ("DMR_REQUIRE_LIVE",), True, "0", True),
    ("replay_pacing", "--dmr-replay-pacing", "dmr_replay_pacing", ("DMR_REPLAY_PACING",), True, "no", True),
    ("discovery", "--dmr-discovery", "dmr_discovery", ("DMR_DISCOVERY",), "host,url", "desktop", ("host", "url")),
    ("timeout", "--dmr-timeout", "dmr_timeout", ("DMR_TIMEOUT",), "7.5", "9", 7.5),
]


def _env_text(value: Any) -> str:
    return {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else str(value)


def test_defaults() -> None:
    settings = resolve({}, {}, {})
    assert settings == Settings()
    assert (settings.mode, settings.model, settings.provision, settings.image) == (
        "auto", "ai/smollm2", "never", "docker/model-runner:latest")
    assert settings.url is None and settings.pull is None and not settings.reuse and not settings.require_live
    assert settings.discovery == DISCOVERY_GROUPS and settings.timeout == 120.0
    assert settings.compose_refs == ("LLM", "AI_RUNNER")


@pytest.mark.parametrize(("field", "flag", "ini", "envs", "value", "other", "parsed"), STRING_SETTINGS,
                         ids=[row[0] for row in STRING_SETTINGS])
def test_each_source_and_precedence(field: str, flag: str, ini: str, envs: tuple[str, ...], value: Any,
                                    other: Any, parsed: Any) -> None:
    other_text = _env_text(other)
    # Each source alone.
    assert getattr(resolve({flag: value}, {}, {}), field) == parsed
    assert getattr(resolve({}, {ini: _env_text(value)}, {}), field) == parsed
    for env in envs:
        assert getattr(resolve({}, {}, {env: _env_text(value)}), field) == parsed, env
    # flag > environment > ini.
    assert getattr(resolve({flag: value}, {ini: other_text}, {envs[0]: other_text}), field) == parsed
    assert getattr(resolve({}, {ini: other_text}, {envs[0]: _env_text(value)}), field) == parsed
    # Earlier environment variables win over later ones.
    if len(envs) > 1:
        environ = {env: other_text for env in envs[1:]} | {envs[0]: _env_text(value)}
        assert getattr(resolve({}, {}, environ), field) == parsed


def test_empty_values_count_as_unset() -> None:
    settings = resolve({"--dmr": None, "--dmr-model": ""}, {"dmr_model": ""}, {"DMR_MODEL": " ", "DEFAULT_LOCAL_MODEL": "ai/x"})
    assert settings.model == "ai/x"
    assert settings.mode == "auto"


def test_sources_are_recorded() -> None:
    assert resolve({"--dmr": "mock"}, {}, {}).mode_source == "--dmr"
    assert resolve({}, {"dmr_mode": "mock"}, {}).mode_source == "dmr_mode (ini)"
    assert resolve({}, {}, {"DMR_MODE": "MOCK"}).mode == "mock"
    assert resolve({}, {}, {"MODEL_RUNNER_HOST": "127.0.0.1:5"}).url_source == "MODEL_RUNNER_HOST"


def test_timeout_from_ultra_milliseconds_and_seconds_win() -> None:
    assert resolve({}, {}, {"LOCAL_MODEL_TIMEOUT": "2500"}).timeout == 2.5
    assert resolve({}, {}, {"LOCAL_MODEL_TIMEOUT": "2500", "DMR_TIMEOUT": "4"}).timeout == 4.0


def test_pull_default_depends_on_who_owns_the_runner() -> None:
    settings = resolve({}, {}, {})
    assert settings.pull_for(provisioned=True) is True
    assert settings.pull_for(provisioned=False) is False
    assert resolve({"--dmr-pull": False}, {}, {}).pull_for(provisioned=True) is False
    assert resolve({}, {}, {"DMR_PULL": "yes"}).pull_for(provisioned=False) is True


def test_compose_variables_give_the_model_after_explicit_ones() -> None:
    environ = {"LLM_URL": "http://127.0.0.1:9", "LLM_MODEL": "ai/qwen3", "AI_RUNNER_MODEL": "ai/other"}
    assert resolve({}, {}, environ).model == "ai/qwen3"
    assert resolve({}, {}, environ).model_source == "LLM_MODEL"
    assert resolve({}, {}, environ | {"DEFAULT_LOCAL_MODEL": "ai/mine"}).model == "ai/mine"
    # Only a ref whose URL is injected counts; the ini picks the refs.
    assert resolve({}, {"dmr_compose_refs": ["AI_RUNNER"]}, environ).model == "ai/smollm2"
    assert resolve({}, {"dmr_compose_refs": ["AI_RUNNER"]}, environ | {"AI_RUNNER_URL": "http://127.0.0.1:9"}).model == "ai/other"


@pytest.mark.parametrize(
    ("options", "ini", "environ", "expected"),
    [
        ({"--dmr": "sometimes"}, {}, {}, "--dmr='sometimes' is not valid. Use one of: auto, live, mock, off"),
        ({}, {"dmr_mode": "yes"}, {}, "dmr_mode (ini)='yes' is not valid. Use one of: auto, live, mock, off"),
        ({}, {}, {"DMR_PROVISION": "docker"}, "DMR_PROVISION='docker' is not valid. Use one of: never, testcontainers"),
        ({}, {}, {"DMR_PULL": "maybe"}, "DMR_PULL='maybe' is not a yes/no value"),
        ({"--dmr-discovery": "host,lan"}, {}, {}, "--dmr-discovery='host,lan': unknown discovery group 'lan'. "
         "Give a comma list of: url, compose, host, container, desktop"),
        ({}, {}, {"DMR_DISCOVERY": ","}, "DMR_DISCOVERY=',' names no valid discovery group"),
        ({"--dmr-timeout": "soon"}, {}, {}, "--dmr-timeout='soon' is not a positive number of seconds. "
         "Give a timeout such as 30 or 2.5"),
        ({}, {}, {"DMR_TIMEOUT": "-1"}, "DMR_TIMEOUT='-1' is not a positive number of seconds"),
        ({}, {}, {"LOCAL_MODEL_TIMEOUT": "0"}, "LOCAL_MODEL_TIMEOUT='0' is not a positive number of milliseconds. "
         "Give a timeout such as 30000"),
        ({"--dmr-url": "ftp://x"}, {}, {}, "--dmr-url: 'ftp://x' is not a usable runner URL"),
        ({"--dmr-model": "../../etc"}, {}, {}, "--dmr-model='../../etc' is not a model reference"),
        ({}, {"dmr_model": "ai/x/../y"}, {}, "dmr_model (ini)='ai/x/../y' is not a model reference"),
        ({}, {}, {"DEFAULT_LOCAL_MODEL": "ai/a b"}, "DEFAULT_LOCAL_MODEL='ai/a b' is not a model reference"),
        ({}, {}, {"LLM_URL": "http://127.0.0.1:9", "LLM_MODEL": "ai/x%2Fy"}, "LLM_MODEL='ai/x%2Fy' is not a model reference"),
    ],
)
def test_bad_values_name_the_source_and_the_allowed_values(options: dict, ini: dict, environ: dict, expected: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        resolve(options, ini, environ)
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize("name", ["smollm2", "ai/SmolLM2:360M-Q4_K_M", "hf.co/Org/Model-GGUF:Q4_K_M", "e1216eb2b219",
                                  "localhost:5000/team/model:v1", "phi3:mini"])
def test_model_references_are_taken_as_given(name: str) -> None:
    assert resolve({"--dmr-model": name}, {}, {}).model == name


def test_settings_survive_json() -> None:
    settings = resolve({"--dmr-discovery": "host"}, {}, {"DMR_TIMEOUT": "3"})
    assert Settings.from_json(settings.to_json()) == settings
