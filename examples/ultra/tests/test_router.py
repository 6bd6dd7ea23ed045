import pytest
from pytest_dmr import Fault
from ultra_app import ModelRouter, NoModelAvailable


@pytest.fixture
def router(dmr_adapter_factory):
    return ModelRouter(
        {
            "summarize": [dmr_adapter_factory(model="ai/smollm2", max_retries=0)],
            "classify": [
                dmr_adapter_factory(model="ai/qwen3", max_retries=0),
                dmr_adapter_factory(model="ai/smollm2", max_retries=0),
            ],
        }
    )


@pytest.mark.dmr_model("ai/qwen3", "ai/smollm2")  # live: both models on the runner (pulled with --dmr-pull)
async def test_each_task_goes_to_its_first_model(router):
    assert await router.generate("classify", "Route me")
    assert await router.generate("summarize", "Summarise me")
    assert router.served_by == ["ai/qwen3", "ai/smollm2"]


async def test_a_missing_model_falls_back_to_the_next(dmr_mock, router):
    dmr_mock.fail(Fault.model_not_found(), model="ai/qwen3")
    assert await router.generate("classify", "Route me")
    assert router.served_by == ["ai/smollm2"]
    assert [request.model for request in dmr_mock.requests] == ["ai/qwen3", "ai/smollm2"]


async def test_when_every_model_fails_the_error_says_why(dmr_mock, router):
    dmr_mock.fail(Fault.load_failure("out of memory"))
    with pytest.raises(NoModelAvailable) as caught:
        await router.generate("classify", "Route me")
    message = str(caught.value)
    assert message.startswith("no model could answer task 'classify': ai/qwen3: the runner could not load the model")
    assert "; ai/smollm2: " in message and "out of memory" in message


async def test_an_unknown_task_names_the_known_ones(router):
    with pytest.raises(KeyError, match="known tasks: classify, summarize"):
        await router.generate("translate", "Bonjour")


async def test_streaming_through_the_adapter(dmr_mock, dmr_adapter):
    dmr_mock.add_rule(stream=["Hel", "lo ", "there"])
    pieces = [piece async for piece in dmr_adapter.stream_generate("Say hello")]
    assert pieces == ["Hel", "lo ", "there"]
