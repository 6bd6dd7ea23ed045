"""create_modelrunner_adapter: Ultra's environment variables, and clear errors for bad values."""

from __future__ import annotations

import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses
from pytest_dmr.adapter import DockerModelRunnerAdapter, create_modelrunner_adapter


def test_defaults_with_an_empty_environment() -> None:
    adapter = create_modelrunner_adapter(environ={})
    assert isinstance(adapter, DockerModelRunnerAdapter)
    assert adapter.base_url == addresses.DEFAULT_HOST_URL + "/engines/v1"
    assert adapter.model == addresses.DEFAULT_MODEL
    assert adapter.timeout == 120.0
    assert adapter.backend == "live"


def test_ultras_variables_are_read() -> None:
    adapter = create_modelrunner_adapter(
        environ={
            "MODEL_RUNNER_URL": "http://localhost:12434/engines/llama.cpp/v1",
            "MODEL_RUNNER_HOST": "tcp://127.0.0.1:9999",
            "DEFAULT_LOCAL_MODEL": "ai/qwen3:0.6B-Q4_0",
            "LOCAL_MODEL_TIMEOUT": "2500",
        }
    )
    assert adapter.base_url == "http://localhost:12434/engines/llama.cpp/v1"
    assert adapter.model == "ai/qwen3:0.6B-Q4_0"
    assert adapter.timeout == 2.5


def test_model_runner_host_is_the_fallback() -> None:
    adapter = create_modelrunner_adapter(environ={"MODEL_RUNNER_HOST": "tcp://127.0.0.1:9999", "MODEL_RUNNER_URL": ""})
    assert adapter.address.root == "http://127.0.0.1:9999"


def test_keyword_overrides_win_over_the_environment() -> None:
    adapter = create_modelrunner_adapter(
        environ={"MODEL_RUNNER_URL": "http://localhost:1", "DEFAULT_LOCAL_MODEL": "ai/a", "LOCAL_MODEL_TIMEOUT": "bad"},
        base_url="http://127.0.0.1:2", model="ai/b", timeout=3,
    )
    assert (adapter.address.root, adapter.model, adapter.timeout) == ("http://127.0.0.1:2", "ai/b", 3.0)


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_RUNNER_URL", "http://127.0.0.1:4321")
    monkeypatch.setenv("DEFAULT_LOCAL_MODEL", "ai/llama3.2:1B-Q4_0")
    monkeypatch.delenv("LOCAL_MODEL_TIMEOUT", raising=False)
    monkeypatch.delenv("USE_MOCK", raising=False)
    adapter = create_modelrunner_adapter()
    assert (adapter.address.root, adapter.model) == ("http://127.0.0.1:4321", "ai/llama3.2:1B-Q4_0")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LOCAL_MODEL_TIMEOUT": "30s"},
         "LOCAL_MODEL_TIMEOUT='30s' is not a timeout. Set LOCAL_MODEL_TIMEOUT to a positive number of milliseconds, "
         "e.g. 30000"),
        ({"LOCAL_MODEL_TIMEOUT": "-5"},
         "LOCAL_MODEL_TIMEOUT='-5' is not a timeout. Set LOCAL_MODEL_TIMEOUT to a positive number of milliseconds, "
         "e.g. 30000"),
        ({"USE_MOCK": "maybe"}, "USE_MOCK='maybe' is not a yes/no value. Set USE_MOCK to one of true, 1, yes or false, 0, no"),
        ({"MODEL_RUNNER_URL": "ftp://runner"},
         "MODEL_RUNNER_URL='ftp://runner' is not a usable runner URL ('ftp://runner' is not a usable runner URL). "
         "Set MODEL_RUNNER_URL to an http(s) URL such as http://localhost:12434 or http://localhost:12434/engines/v1"),
        ({"MODEL_RUNNER_HOST": "localhost:99999"},
         "MODEL_RUNNER_HOST='localhost:99999' is not a usable runner URL ('localhost:99999' has an invalid port). "
         "Set MODEL_RUNNER_HOST to an http(s) URL such as http://localhost:12434 or http://localhost:12434/engines/v1"),
    ],
    ids=["timeout-unit", "timeout-negative", "use-mock", "url-scheme", "host-port"],
)
def test_bad_values_name_the_variable_and_what_is_allowed(environ: dict[str, str], message: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        create_modelrunner_adapter(environ=environ)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", ["false", "0", "no", "", "OFF"])
def test_use_mock_false_values_keep_the_live_backend(value: str) -> None:
    assert create_modelrunner_adapter(environ={"USE_MOCK": value}).backend == "live"
