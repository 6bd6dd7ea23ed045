import pytest
from ultra_app.classifier import LABELS, ClassificationError


async def test_the_answer_fits_the_schema(classifier):
    result = await classifier.classify("I was charged twice for my subscription.")
    assert result.label in LABELS
    assert 0 <= result.confidence <= 1


async def test_the_request_asks_for_json_with_the_schema(dmr_mock, classifier):
    await classifier.classify("The export button crashes the app.")
    response_format = dmr_mock.requests[-1].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["properties"]["label"]["enum"] == list(LABELS)
    assert (dmr_mock.requests[-1].json["temperature"], dmr_mock.requests[-1].json["seed"]) == (0, 42)  # conftest's dmr_config


async def test_an_overshooting_confidence_is_clamped(dmr_mock, classifier):
    dmr_mock.reply('{"label": "billing", "confidence": 1000000}')
    assert (await classifier.classify("I was charged twice.")).confidence == 1.0


async def test_a_scripted_answer_is_parsed(dmr_mock, classifier):
    dmr_mock.reply('{"label": "bug", "confidence": 0.9}', contains="crashes")
    result = await classifier.classify("The export button crashes the app.")
    assert (result.label, result.confidence) == ("bug", 0.9)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("Sure! It is a bug.", "did not answer JSON"),
        ('{"label": "spam", "confidence": 0.5}', "unknown label"),
        ('{"label": "bug", "confidence": "high"}', "confidence that is not a number"),
    ],
)
async def test_malformed_answers_are_errors(dmr_mock, classifier, answer, message):
    dmr_mock.reply(answer)
    with pytest.raises(ClassificationError, match=message):
        await classifier.classify("anything")


@pytest.mark.dmr_live
async def test_a_live_model_follows_the_schema(classifier):
    # Only on a real runner: llama.cpp's grammar-constrained JSON output.
    result = await classifier.classify("Please add a dark mode.")
    assert result.label in LABELS
