"""Record modes (none, once, new, all, verify) as ``CassetteSession`` decides and carries them out,
with the mock standing in for the live runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from pytest_dmr.cassettes import Cassette, CassetteSession, plan
from pytest_dmr.cassettes.format import RecordedResponse
from pytest_dmr.cassettes.session import answer_view
from pytest_dmr.errors import CassetteDriftError, CassetteError, CassetteMismatchError, ConfigurationError
from pytest_dmr.mock import MockModelRunner

CHAT = "/engines/v1/chat/completions"


def ask(transport: Any, *contents: str) -> list[str]:
    with httpx2.Client(transport=transport, base_url=MockModelRunner.base_url) as client:
        return [
            client.post(CHAT, json={"model": "ai/smollm2", "messages": [{"role": "user", "content": c}]}).json()
            ["choices"][0]["message"]["content"]
            for c in contents
        ]


def live(reply: str | None = None) -> MockModelRunner:
    mock = MockModelRunner()
    if reply is not None:
        mock.reply(reply)
    return mock


def test_plan_follows_the_table() -> None:
    table = {mode: (plan(mode, True), plan(mode, False)) for mode in ("none", "once", "new", "all", "verify")}
    assert table == {
        "none": ("replay", "off"), "once": ("replay", "record"), "new": ("append", "record"),
        "all": ("rerecord", "rerecord"), "verify": ("verify", "off"),
    }
    with pytest.raises(ConfigurationError, match="'sometimes' is not a record mode; use one of none, once, new, all, verify"):
        plan("sometimes", True)


def test_once_records_then_replays_without_a_runner(tmp_path: Path) -> None:
    path = tmp_path / "cassettes" / "test_x" / "test_y.json"
    with CassetteSession(path, "once") as session:
        assert session.action == "record" and session.needs_live
        recorded = ask(session.transport(live=live("recorded answer")), "a")
    assert path.exists() and recorded == ["recorded answer"]

    session = CassetteSession(path, "once")
    assert session.start() == "replay" and not session.needs_live
    assert ask(session.transport(), "a") == recorded
    result = session.finish()
    assert (result.written, result.replayed, result.replayed_any) == (False, 1, True)


def test_none_without_a_cassette_is_off_and_with_one_replays_or_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with CassetteSession(path, "none") as session:
        assert session.transport(live=live()) is None and session.action == "off"
    with CassetteSession(path, "once") as session:
        ask(session.transport(live=live("old")), "a")

    session = CassetteSession(path, "none")
    replaying = session.transport(fallback=live("mock"))
    assert ask(replaying, "a", "b") == ["old", "mock"]
    result = session.finish()
    assert (result.action, result.replayed, result.passed_on, result.written) == ("replay", 1, 1, False)

    strict = CassetteSession(path, "none")
    with pytest.raises(CassetteMismatchError):
        ask(strict.transport(), "b")
    assert len(strict.finish().mismatches) == 1


def test_new_adds_only_what_the_cassette_lacks(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with CassetteSession(path, "once") as session:
        ask(session.transport(live=live("first")), "a")
    with CassetteSession(path, "new") as session:
        assert session.action == "append"
        assert ask(session.transport(live=live("second")), "a", "b") == ["first", "second"]
    assert [x.request.body for x in Cassette.load(path).exchanges] == [
        b'{"model":"ai/smollm2","messages":[{"role":"user","content":"a"}]}',
        b'{"model":"ai/smollm2","messages":[{"role":"user","content":"b"}]}',
    ]
    before = path.read_text()
    with CassetteSession(path, "new") as session:
        ask(session.transport(live=live("third")), "b")
    assert path.read_text() == before  # nothing new: not rewritten


def test_all_records_again_and_tests_of_one_run_sharing_a_cassette_add_to_it(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with CassetteSession(path, "once") as session:
        ask(session.transport(live=live("old")), "a", "b")
    for reply, content in (("new a", "a"), ("new c", "c")):
        with CassetteSession(path, "all", run_id="run-1", lock_dir=tmp_path / "locks") as session:
            ask(session.transport(live=live(reply)), content)
    replayed = CassetteSession(path, "none")
    assert ask(replayed.transport(), "a", "c") == ["new a", "new c"]
    with pytest.raises(CassetteMismatchError):  # "b" was not requested again: gone
        ask(CassetteSession(path, "none").transport(), "b")
    with CassetteSession(path, "all", run_id="run-2", lock_dir=tmp_path / "locks") as session:
        ask(session.transport(live=live("newest")), "c")
    assert len(Cassette.load(path).exchanges) == 1  # a new run replaces


def test_a_failed_test_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with pytest.raises(AssertionError), CassetteSession(path, "once") as session:
        ask(session.transport(live=live()), "a")
        raise AssertionError("the test failed")
    assert not path.exists()


def test_recording_without_a_live_runner_says_what_to_do(tmp_path: Path) -> None:
    session = CassetteSession(tmp_path / "c.json", "once")
    with pytest.raises(CassetteError, match=r"is to be recorded or verified \('once' mode\), which needs a live runner"):
        session.transport()
    session.finish()


def test_verify_reports_each_drifted_answer_with_both_answers(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with CassetteSession(path, "once") as session:
        ask(session.transport(live=live("The harbour is calm.")), "a", "b")
    before = path.read_text()

    same = CassetteSession(path, "verify")
    ask(same.transport(live=live("The harbour is calm.")), "a", "b")
    same.finish().raise_for_drift()

    drifting = CassetteSession(path, "verify")
    mock = live("The harbour is calm.")
    mock.reply("The harbour is stormy.", contains="b")
    ask(drifting.transport(live=mock), "a", "b", "c")
    result = drifting.finish()
    assert [drift.request for drift in result.drift] == [f"POST {CHAT}", f"POST {CHAT}"]
    with pytest.raises(CassetteDriftError) as caught:
        result.raise_for_drift()
    message = str(caught.value)
    assert message.startswith(f"2 answers from the live runner differ from cassette {path}:")
    recorded_part, live_part = message.split("  live:\n", 1)
    assert '"content": "The harbour is calm."' in recorded_part and '"content": "The harbour is stormy."' in live_part
    assert "(nothing recorded for this request)" in message  # "c" is not in the cassette
    assert path.read_text() == before


def test_verify_ignores_what_differs_between_runs_by_design() -> None:
    def answer(identifier: str, created: int, text: str) -> RecordedResponse:
        body = (f'{{"id":"{identifier}","object":"chat.completion","created":{created},"system_fingerprint":"b{created}",'
                f'"choices":[{{"message":{{"content":"{text}","tool_calls":[{{"id":"call_{created}","type":"function"}}]}}}}],'
                f'"timings":{{"predicted_ms":{created}}}}}')
        return RecordedResponse(200, [("content-type", "application/json")], body=body.encode())

    assert answer_view(answer("chatcmpl-1", 1, "hi")) == answer_view(answer("chatcmpl-2", 2, "hi"))
    assert answer_view(answer("chatcmpl-1", 1, "hi")) != answer_view(answer("chatcmpl-1", 1, "ho"))
    models = RecordedResponse(200, [("content-type", "application/json")], body=b'{"object":"list","data":[{"id":"ai/a","object":"model"}]}')
    renamed = RecordedResponse(200, [("content-type", "application/json")], body=b'{"object":"list","data":[{"id":"ai/b","object":"model"}]}')
    assert answer_view(models) != answer_view(renamed)  # a model's id is not volatile


def test_verify_ignores_how_much_of_the_prompt_the_runner_had_cached() -> None:
    def answer(usage: str) -> RecordedResponse:
        body = f'{{"object":"chat.completion","choices":[{{"message":{{"content":"hi"}}}}],"usage":{usage}}}'
        return RecordedResponse(200, [("content-type", "application/json")], body=body.encode())

    openai_cold, openai_warm = ('{"prompt_tokens":33,"prompt_tokens_details":{"cached_tokens":%d}}' % n for n in (0, 24))
    assert answer_view(answer(openai_cold)) == answer_view(answer(openai_warm))
    anthropic_cold = '{"input_tokens":33,"cache_read_input_tokens":0,"output_tokens":5}'
    anthropic_warm = '{"input_tokens":9,"cache_read_input_tokens":24,"output_tokens":5}'  # DMR: input_tokens less the cached
    assert answer_view(answer(anthropic_cold)) == answer_view(answer(anthropic_warm))
    longer_prompt = '{"input_tokens":34,"cache_read_input_tokens":0,"output_tokens":5}'
    assert answer_view(answer(anthropic_cold)) != answer_view(answer(longer_prompt))
