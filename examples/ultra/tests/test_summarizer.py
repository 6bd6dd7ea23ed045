import pytest
from ultra_app.summarizer import SYSTEM_PROMPT, Summarizer

CONVERSATION = """
Customer: My invoice for March charged me twice.
Agent: Sorry about that, I have refunded the duplicate charge; it will show in 3-5 days.
"""


async def test_summary_is_short_and_not_empty(summarizer):
    summary = await summarizer.summarize(CONVERSATION)
    assert summary
    assert len(summary.split()) <= 40


async def test_the_request_carries_the_system_prompt_and_greedy_decoding(dmr_mock, summarizer):
    await summarizer.summarize(CONVERSATION)
    request = dmr_mock.requests[-1]
    assert request.json["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert request.json["temperature"] == 0
    assert "invoice for March" in request.last_user_message


async def test_long_answers_are_trimmed(dmr_mock, dmr_adapter):
    dmr_mock.reply(" ".join(f"word{n}" for n in range(30)))
    summary = await Summarizer(dmr_adapter, max_words=5).summarize(CONVERSATION)
    assert summary == "word0 word1 word2 word3 word4…"


async def test_the_mock_is_deterministic(dmr_mock, dmr_adapter_factory):
    first = await Summarizer(dmr_adapter_factory()).summarize(CONVERSATION)
    second = await Summarizer(dmr_adapter_factory()).summarize(CONVERSATION)
    assert first == second


async def test_empty_conversation_is_refused_before_any_request(dmr_mock, summarizer):
    with pytest.raises(ValueError, match="conversation is empty"):
        await summarizer.summarize("   ")
    assert dmr_mock.requests == []


@pytest.mark.dmr_model("ai/smollm2")
async def test_a_real_model_summarises(summarizer, dmr_runner):
    # On the mock this runs too (the mock serves any model); live, it needs ai/smollm2 on the runner.
    assert await summarizer.summarize(CONVERSATION)
