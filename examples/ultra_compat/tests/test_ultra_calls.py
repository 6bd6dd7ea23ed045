"""Ultra's calls, unchanged, on pytest-dmr's adapter over the test's mock (served on 127.0.0.1).

``dmr_mock`` forces the mock and scripts it; ``dmr_environment`` points Ultra's ``MODEL_RUNNER_URL``
at it, so Ultra's code builds its adapters exactly as in production.
"""

import inspect

import pytest

from pytest_dmr import Fault

from ultra_models.docker_modelrunner_adapter import DockerModelRunnerAdapter, create_modelrunner_adapter, get_available_models
from ultra_models.llm_adapter import LLMAdapter, create_adapter
from ultra_models.local_models import analyze, register_local_model, try_model_runner_response

ULTRA_KEYS = {"name", "supports_streaming", "max_tokens", "supports_functions", "supports_vision"}


def test_the_adapter_is_an_ultra_llm_adapter_with_every_method_ultra_calls():
    assert issubclass(DockerModelRunnerAdapter, LLMAdapter)
    for name in ("generate", "stream_generate", "check_availability", "get_capabilities"):
        ultra, ours = getattr(LLMAdapter, name), getattr(DockerModelRunnerAdapter, name)
        assert inspect.iscoroutinefunction(ultra) == inspect.iscoroutinefunction(ours), name
        assert inspect.isasyncgenfunction(ultra) == inspect.isasyncgenfunction(ours), name
        ours_takes = inspect.signature(ours).parameters
        for parameter in inspect.signature(ultra).parameters:
            assert parameter in ours_takes, f"{name}() lacks Ultra's {parameter!r}"


@pytest.mark.asyncio
async def test_create_modelrunner_adapter_with_a_positional_model(dmr_mock, dmr_environment):
    dmr_mock.reply("Docker Model Runner serves local models.", contains="Explain")
    adapter = create_modelrunner_adapter("phi3:mini")
    answer = await adapter.generate("Explain what Docker Model Runner is in one sentence")
    assert answer == "Docker Model Runner serves local models."
    assert adapter.model == "phi3:mini" and dmr_mock.last_request.model == "phi3:mini"
    assert adapter.base_url == dmr_environment.variables["MODEL_RUNNER_URL"]  # as Ultra's environment gave it
    await adapter.aclose()


@pytest.mark.asyncio
async def test_ultras_constructor_call_keeps_what_it_was_given(dmr_mock, dmr_environment):
    registry = {}
    adapter = register_local_model(registry, "ai/smollm2")
    assert isinstance(adapter, LLMAdapter) and isinstance(adapter, DockerModelRunnerAdapter)
    assert adapter.api_key is None and adapter.timeout == 30.0
    assert adapter.base_url == dmr_environment.root_url
    assert adapter.openai_base_url == dmr_environment.root_url + "/engines/v1"
    assert list(registry) == ["local-ai/smollm2"]  # Ultra's orchestrator keys local models so
    assert registry["local-ai/smollm2"]["streaming"] is True
    assert await adapter.check_availability() is True
    assert dmr_mock.last_request.headers.get("authorization") is None  # api_key=None: no header
    await adapter.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream_generate"])
async def test_system_message_goes_upstream_as_a_system_message(dmr_mock, dmr_environment, stream):
    dmr_mock.reply("Prices rose because demand grew.", contains="prices")
    adapter = create_adapter("docker_modelrunner", api_key=None, model="ai/smollm2")
    assert await analyze(adapter, "Why did prices rise?", stream=stream) == "Prices rose because demand grew."
    body = dmr_mock.last_request.json
    assert "system_message" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are an analyst. Answer in one sentence."},
        {"role": "user", "content": "Why did prices rise?"},
    ]
    assert body["temperature"] == 0.7 and body["max_tokens"] == 256 and body.get("stream", False) is stream
    await adapter.aclose()


@pytest.mark.asyncio
async def test_capabilities_carry_ultras_keys_beside_ours_and_say_true(dmr_mock, dmr_environment):
    adapter = create_modelrunner_adapter("ai/smollm2")
    capabilities = adapter.get_capabilities()
    assert ULTRA_KEYS <= set(capabilities)
    assert {"provider", "model", "backend", "tools", "embeddings"} <= set(capabilities)
    assert capabilities["name"] == "local-ai/smollm2"
    assert capabilities["max_tokens"] == 4096 and capabilities["supports_vision"] is False

    # supports_streaming: the answer arrives in pieces
    pieces = [piece async for piece in adapter.stream_generate("Tell me a story", max_tokens=40)]
    assert capabilities["supports_streaming"] and len(pieces) > 1
    # supports_functions: a tool the request offers is called
    weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    result = await adapter.chat([{"role": "user", "content": "What is the weather in Paris?"}], tools=[weather])
    assert capabilities["supports_functions"] and [call["function"]["name"] for call in result.tool_calls] == ["get_weather"]
    await adapter.aclose()


@pytest.mark.asyncio
async def test_the_mock_service_falls_back_when_the_runner_fails(dmr_mock, dmr_environment):
    dmr_mock.fail(Fault.model_not_found(), model="phi3:mini")
    assert await try_model_runner_response("Hello", "phi3:mini") is None
    dmr_mock.reply("Hi there.")
    assert await try_model_runner_response("Hello", "ai/smollm2") == "Hi there."


@pytest.mark.asyncio
async def test_get_available_models_lists_the_runners_ids(dmr_mock, dmr_environment):
    models = await get_available_models()
    assert models and all(isinstance(model, str) for model in models)
    assert dmr_mock.last_request.endpoint == "/models"
