"""MockModelRunner.assert_all_rules_used(): rules that answered nothing (or fewer than their times), how
they are described, and background rules (a suite's canned answers) left out."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from pytest_dmr.protocol import routes
from pytest_dmr.mock import Fault, MockModelRunner, RecordedRequest
from pytest_dmr.mock.transport import RULES_NOT_USED_HINT

CHAT = "/engines/v1/chat/completions"


def ask(client: httpx.Client, text: str, **body: Any) -> httpx.Response:
    return client.post(CHAT, json={"model": "ai/smollm2", "messages": [{"role": "user", "content": text}], **body})


def failure(mock: MockModelRunner) -> str:
    with pytest.raises(AssertionError) as caught:
        mock.assert_all_rules_used()
    return str(caught.value)


def test_no_rules_and_used_rules_pass(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.assert_all_rules_used()
    mock.reply("Paris.", contains="capital of France")
    ask(client, "What is the capital of France?")
    mock.assert_all_rules_used()


def test_an_unused_rule_is_listed_as_written_with_the_hint(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("Paris.", contains="capital of France")
    mock.reply("Berlin.", contains="capital of Germany")
    ask(client, "What is the capital of Germany?")
    assert failure(mock) == (
        "The mock's rules were not all used:\n"
        "- reply('Paris.', contains='capital of France'): never used\n"
        "\n" + RULES_NOT_USED_HINT
    )
    assert "@pytest.mark.dmr_mock(assert_all_rules_used=False)" in RULES_NOT_USED_HINT


def test_rules_with_times_must_be_used_that_many_times(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("three", contains="three", times=3)
    mock.fail(Fault.loading(times=2), contains="loading")
    mock.reply("once", contains="once", times=1)
    for text in ("three", "three", "loading", "once"):
        ask(client, text)
    assert failure(mock).splitlines()[1:3] == [
        "- reply('three', contains='three', times=3): used 2 of 3 times",
        "- fail(Fault.loading(times=2), contains='loading'): used 1 of 2 times",
    ]
    ask(client, "three")
    ask(client, "loading")
    mock.assert_all_rules_used()


def test_listed_oldest_first_and_only_those_short(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("a", contains="first")
    mock.reply("b", contains="second")
    mock.reply("c", contains="third")
    ask(client, "second")
    lines = [line for line in failure(mock).splitlines() if line.startswith("- ")]
    assert lines == ["- reply('a', contains='first'): never used", "- reply('c', contains='third'): never used"]


def test_a_preload_does_not_use_a_reply_rule(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("hello")
    preload = client.post(CHAT, json={"model": "ai/smollm2", "messages": []}, headers={routes.PRELOAD_HEADER: "true"})
    assert preload.status_code == 200
    assert "- reply('hello'): never used" in failure(mock)


def test_background_rules_are_not_checked(client: httpx.Client, mock: MockModelRunner) -> None:
    mock.reply("canned", contains="canned")
    mock.fail(Fault.http(503))
    mock.mark_background_rules()
    assert all(rule.background for rule in mock.rules)
    mock.assert_all_rules_used()
    own = mock.reply("mine", contains="mine")
    assert not own.background
    message = failure(mock)
    assert "- reply('mine', contains='mine'): never used" in message
    assert "canned" not in message and "503" not in message
    ask(client, "mine")
    mock.assert_all_rules_used()


def test_reset_forgets_unused_rules(mock: MockModelRunner) -> None:
    mock.reply("never")
    mock.reset()
    mock.assert_all_rules_used()


# -- descriptions: each one, run as code on a fresh mock, makes the same rule ----------------------------

DESCRIBED = [
    (dict(reply="Paris.", contains="capital of France"), "reply('Paris.', contains='capital of France')"),
    (dict(reply="hi", model="ai/qwen3", endpoint="/completions", times=2),
     "reply('hi', model='ai/qwen3', endpoint='/completions', times=2)"),
    (dict(reply="x", matches=re.compile("cap+", re.IGNORECASE)), "reply('x', matches=re.compile('cap+', re.IGNORECASE))"),
    (dict(reply="x", matches="^cap"), "reply('x', matches='^cap')"),
    (dict(fault=Fault.http(503)), "fail(Fault.http(503))"),
    (dict(fault=Fault.http(429, "slow down", times=2), model="ai/smollm2"),
     "fail(Fault.http(429, 'slow down', times=2), model='ai/smollm2')"),
    (dict(fault=Fault.loading()), "fail(Fault.loading())"),
    (dict(fault=Fault.model_not_found()), "fail(Fault.model_not_found())"),
    (dict(fault=Fault.load_failure()), "fail(Fault.load_failure())"),
    (dict(fault=Fault.load_failure("out of memory")), "fail(Fault.http(500, 'unable to load runner: out of memory'))"),
    (dict(fault=Fault.timeout(), contains="slow"), "fail(Fault.timeout(), contains='slow')"),
    (dict(fault=Fault.disconnect(), times=1), "fail(Fault.disconnect(), times=1)"),
    (dict(fault=Fault.pull_error("no space", after=2), endpoint=routes.MODELS_CREATE_PATH),
     "fail(Fault.pull_error('no space', after=2), endpoint='/models/create')"),
    (dict(stream=["Hel", "lo"], fault=Fault.cut_stream(after=1)), "add_rule(stream=['Hel', 'lo'], fault=Fault.cut_stream(after=1))"),
    (dict(reply="late", fault=Fault.slow_first_token(2)), "add_rule(reply='late', fault=Fault.slow_first_token(2))"),
    (dict(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}, contains="weather"),
     "add_rule(contains='weather', tool_call={'name': 'get_weather', 'arguments': {'city': 'Paris'}})"),
]


@pytest.mark.parametrize(("arguments", "described"), DESCRIBED, ids=[text for _, text in DESCRIBED])
def test_a_rule_is_described_as_written(mock: MockModelRunner, arguments: dict[str, Any], described: str) -> None:
    rule = mock.add_rule(**arguments)
    assert rule.describe() == described
    again = MockModelRunner()
    remade = eval(f"again.{described}", {"again": again, "Fault": Fault, "re": re})  # our own text, with only the mock's names in scope
    assert repr(remade) == repr(rule)
    assert (remade.fault, remade.times) == (rule.fault, rule.times)


def is_long(request: RecordedRequest) -> bool:
    return len(request.last_user_message) > 10


def test_a_when_callable_is_named_or_located(mock: MockModelRunner) -> None:
    assert mock.reply("long", when=is_long).describe() == "reply('long', when=is_long)"
    line = test_a_when_callable_is_named_or_located.__code__.co_firstlineno + 3
    assert mock.reply("short", when=lambda request: True).describe() == (
        f"reply('short', when=<lambda at test_mock_strict.py:{line}>)"
    )
