"""create_modelrunner_adapter: Ultra's environment variables, and clear errors for bad values."""

from __future__ import annotations

import pytest

from pytest_dmr import MockModelRunner, errors
from pytest_dmr.protocol import addresses
from pytest_dmr.adapter import DockerModelRunnerAdapter, create_modelrunner_adapter


def test_defaults_with_an_empty_environment() -> None:
    adapter = create_modelrunner_adapter(environ={})
    assert isinstance(adapter, DockerModelRunnerAdapter)
    assert adapter.base_url == addresses.DEFAULT_HOST_URL
    assert adapter.openai_base_url == addresses.DEFAULT_HOST_URL + "/engines/v1"
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


# -------------------------------------------------------------------------------------------
# Ultra's own calls (examples/ultra_compat runs them whole; these pin the edges)
# -------------------------------------------------------------------------------------------


def test_the_model_may_be_positional_as_ultra_passes_it() -> None:
    adapter = create_modelrunner_adapter("phi3:mini", environ={"DEFAULT_LOCAL_MODEL": "ai/other"})
    assert adapter.model == "phi3:mini"


def test_base_url_none_means_the_environments_runner() -> None:
    adapter = create_modelrunner_adapter(base_url=None, environ={"MODEL_RUNNER_URL": "http://127.0.0.1:4321"})
    assert adapter.base_url == "http://127.0.0.1:4321"


@pytest.mark.parametrize("given", ["http://127.0.0.1:8080", "localhost:12434", "http://127.0.0.1:12434/engines/llama.cpp/v1/"])
def test_base_url_comes_back_as_given_and_requests_use_the_normalised_one(given: str) -> None:
    adapter = DockerModelRunnerAdapter(api_key=None, model="phi3:mini", base_url=given, timeout=30)
    assert adapter.base_url == given
    assert adapter.openai_base_url.endswith(("/engines/v1", "/engines/llama.cpp/v1"))
    assert adapter.timeout == 30.0 and adapter.api_key is None


def test_a_password_in_the_given_url_stays_out_of_repr_and_capabilities() -> None:
    adapter = DockerModelRunnerAdapter(base_url="http://alice:s3cret@127.0.0.1:1")
    assert adapter.base_url == "http://alice:s3cret@127.0.0.1:1"  # the caller's own string
    shown = repr(adapter) + str(adapter.get_capabilities())
    assert "s3cret" not in shown and "alice:***@" in shown


@pytest.mark.asyncio
async def test_an_api_key_is_sent_as_a_bearer_token_and_none_sends_no_header() -> None:
    mock = MockModelRunner()
    async with DockerModelRunnerAdapter(api_key="sk-local", transport=mock) as keyed:
        await keyed.generate("hi")
    async with DockerModelRunnerAdapter(api_key=None, transport=mock) as plain:
        await plain.generate("hi")
    assert [request.headers.get("authorization") for request in mock.requests] == ["Bearer sk-local", None]


@pytest.mark.parametrize("api_key", ["sk-1\n", "clé-secrète", "sk 1", 42])
def test_an_api_key_that_cannot_be_a_header_is_refused_when_made_without_showing_it(api_key: object) -> None:
    with pytest.raises(errors.ConfigurationError, match="api_key") as raised:
        DockerModelRunnerAdapter(api_key=api_key, transport=MockModelRunner())  # type: ignore[arg-type]
    assert "secrète" not in str(raised.value) and "sk-1" not in str(raised.value)


@pytest.mark.asyncio
async def test_system_and_system_message_disagreeing_is_an_error_naming_both() -> None:
    adapter = DockerModelRunnerAdapter(transport=MockModelRunner())
    with pytest.raises(errors.ConfigurationError, match="both system= and system_message="):
        await adapter.generate("hi", system="a", system_message="b")
    await adapter.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize(("system", "system_message", "sent"), [("", "Be brief.", "Be brief."), ("Be brief.", "", "Be brief."), ("", "", None)])
async def test_an_empty_system_prompt_is_none_beside_the_other_name(system: str, system_message: str, sent: str | None) -> None:
    mock = MockModelRunner()
    adapter = DockerModelRunnerAdapter(transport=mock)
    await adapter.generate("hi", system=system, system_message=system_message)
    await adapter.aclose()
    messages = mock.requests[-1].json["messages"]
    assert [message["content"] for message in messages if message["role"] == "system"] == ([sent] if sent else [])
