"""DMR's request log (``GET /engines/requests``, ``pkg/metrics/openai_recorder.go``): record shapes,
the ten-record ring, ``?model=``, streamed answers reassembled, errors, media truncation, and the
event stream's framing. Expected bytes are what DMR's Go code writes, spelled out here."""

from __future__ import annotations

import json
import threading

import pytest

from pytest_dmr.protocol import request_log
from pytest_dmr.protocol.request_log import RequestLog, go_marshal, outcome, truncate_media

ID = "sha256:" + "ab" * 32
OTHER_ID = "sha256:" + "cd" * 32
NAMES = {"ai/smollm2": ID, "ai/smollm2:latest": ID, "docker.io/ai/smollm2:latest": ID, "ai/other": OTHER_ID}
SECOND = 1_000_000_000
NOW = 1_753_000_000 * SECOND + 123_456_789

# Field names and order of DMR's Go structs (their json tags)
RECORD_FIELDS = ["id", "model", "method", "url", "request", "response", "error", "timestamp", "status_code", "user_agent", "origin"]
ENTRY_FIELDS = ["count", "model", "config", "records"]
CHAT = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = '{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"Hello"}}]}'


def resolve(name: str) -> str:
    return NAMES.get(name, name)


def make_log() -> RequestLog:
    return RequestLog(resolve)


def chat(log: RequestLog, n: int, *, model: str = "ai/smollm2", **extra: str) -> str:
    body = json.dumps({**CHAT, "model": model, "seed": n})
    return log.record(model, url="/engines/v1/chat/completions", body=body, now_ns=NOW + n, status_code=200, response=ANSWER, **extra)


def test_record_fields_in_dmr_order_and_empty_ones_left_out() -> None:
    log = make_log()
    log.set_config("ai/smollm2", {"context-size": 4096})
    record_id = chat(log, 0, user_agent="docker-model-cli/v1.2.6", origin="ollama/completion")
    (entry,) = log.records()
    assert list(entry) == ENTRY_FIELDS
    assert entry["count"] == 1 and entry["model"] == ID and entry["config"] == {"context-size": 4096}
    (record,) = entry["records"]
    assert list(record) == [f for f in RECORD_FIELDS if f != "error"]
    assert record_id == record["id"] == f"{ID}_{NOW}"
    assert record["model"] == "ai/smollm2" and record["method"] == "POST" and record["url"] == "/engines/v1/chat/completions"
    assert record["timestamp"] == 1_753_000_000  # Unix seconds, not nanoseconds
    assert record["status_code"] == 200 and record["response"] == ANSWER
    assert record["user_agent"] == "docker-model-cli/v1.2.6" and record["origin"] == "ollama/completion"

    chat(log, 1)  # no user agent, no origin: left out (omitempty)
    assert list(log.records()[0]["records"][1]) == ["id", "model", "method", "url", "request", "response", "timestamp", "status_code"]


def test_a_request_in_flight_has_status_0_and_no_answer_until_completed() -> None:
    log = make_log()
    record_id = log.record_request("ai/smollm2", url="/engines/v1/chat/completions", body=json.dumps(CHAT), now_ns=NOW)
    (record,) = log.records()[0]["records"]
    assert record["status_code"] == 0 and "response" not in record and "error" not in record
    assert log.record_response(record_id, "ai/smollm2", status_code=200, body=ANSWER)
    assert log.records()[0]["records"][0]["response"] == ANSWER
    assert not log.record_response("sha256:gone_1", "ai/smollm2", status_code=200, body=ANSWER)


def test_ten_records_per_model_oldest_dropped_first() -> None:
    log = make_log()
    for n in range(13):
        chat(log, n)
    chat(log, 100, model="ai/other")
    smollm, other = log.records()
    assert smollm["count"] == len(smollm["records"]) == request_log.MAX_RECORDS_PER_MODEL == 10
    assert [r["id"] for r in smollm["records"]] == [f"{ID}_{NOW + n}" for n in range(3, 13)]
    assert other["count"] == 1 and other["model"] == OTHER_ID


def test_model_filter_resolves_names_to_the_id_and_unknown_is_an_empty_list() -> None:
    log = make_log()
    chat(log, 0, model="ai/smollm2")
    chat(log, 1, model="docker.io/ai/smollm2:latest")
    chat(log, 2, model="ai/other")
    for name in ("ai/smollm2", "ai/smollm2:latest", ID):
        (entry,) = log.records(name)
        assert entry["model"] == ID and entry["count"] == 2
        assert [r["model"] for r in entry["records"]] == ["ai/smollm2", "docker.io/ai/smollm2:latest"]
    assert log.records("ai/unknown") == []
    assert request_log.records_body(log.records("ai/unknown")) == b"[]\n"  # DMR: 200 and [], never 404
    assert [e["model"] for e in log.records("")] == [e["model"] for e in log.records()] == [ID, OTHER_ID]


def test_a_runner_start_makes_an_empty_entry_and_its_end_forgets_the_model() -> None:
    log = make_log()
    log.set_config("ai/smollm2", {})
    assert log.records() == [{"count": 0, "model": ID, "config": {}, "records": []}]
    assert request_log.records_body(log.records()) == (
        b'[{"count":0,"model":"' + ID.encode() + b'","config":{},"records":[]}]\n'
    )
    chat(log, 0)
    log.remove_model("ai/smollm2:latest")
    assert log.records() == []


def test_json_body_is_go_encoder_output() -> None:
    log = make_log()
    log.record("ai/smollm2", url="/engines/rerank", body='{"model":"ai/smollm2", "query":"a<b & c>d", "documents":["x"]}',
               now_ns=NOW, status_code=200, response='{"results":[]}')  # fmt: skip
    body = request_log.records_body(log.records())
    assert body.endswith(b"}]\n") and b"\n" not in body[:-1]
    assert b"\\u003c" in body and b"<" not in body and b"\\u0026" in body  # Go escapes <, >, & in strings
    record = json.loads(body)[0]["records"][0]
    assert record["request"] == '{"model":"ai/smollm2", "query":"a<b & c>d", "documents":["x"]}'  # no messages: kept as sent


# What a record's request holds


def test_request_with_messages_is_remarshalled_by_go() -> None:
    sent = '{"model": "m", "temperature": 1.0, "max_tokens": 20, "messages": [{"role": "user", "content": "<hi>"}], "big": 1e21}'
    assert truncate_media(sent) == (
        '{"big":1e+21,"max_tokens":20,"messages":[{"content":"\\u003chi\\u003e","role":"user"}],"model":"m","temperature":1}'
    )


@pytest.mark.parametrize("body", ['{"model": "m", "input": "x"}', "not json", '[{"messages": []}]', '{"messages": "x"}', '{"a": NaN, "messages": []}'])
def test_request_without_a_messages_array_is_kept_as_sent(body: str) -> None:
    assert truncate_media(body) == body


def test_base64_media_cut_to_100_characters() -> None:
    payload = "A" * 250
    audio = "B" * 101
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + payload}},
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/" + "c" * 200}},
        {"type": "image_url", "image_url": {"url": "data:short," + "d" * 100}},
    ]}]}  # fmt: skip
    parts = json.loads(truncate_media(json.dumps(body)))["messages"][0]["content"]
    assert parts[0]["image_url"]["url"] == "data:image/png;base64," + "A" * 100 + "...[truncated 150 chars]"
    assert parts[1]["input_audio"]["data"] == "B" * 100 + "...[truncated 1 chars]"
    # a data URL is cut only in its payload; other long URLs count as raw base64
    assert parts[2]["image_url"]["url"] == ("https://example.invalid/" + "c" * 200)[:100] + "...[truncated 124 chars]"
    assert parts[3]["image_url"]["url"] == "data:short," + "d" * 100


@pytest.mark.parametrize(
    ("number", "text"),
    [(0.1, "0.1"), (1.0, "1"), (100.0, "100"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e21, "1.5e+21"),
     (1e-6, "0.000001"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (-0.0, "-0"), (123456789012345678901, "123456789012345680000"),
     (2.5, "2.5"), (5e-324, "5e-324")],
)  # fmt: skip
def test_numbers_through_a_go_map_are_float64(number: float, text: str) -> None:
    assert go_marshal([number], maps=True) == f"[{text}]"


def test_struct_keys_keep_their_order_map_keys_are_sorted() -> None:
    assert go_marshal({"b": 1, "a": 2}) == '{"b":1,"a":2}'
    assert go_marshal({"b": 1, "a": 2}, maps=True) == '{"a":2,"b":1}'
    assert go_marshal({"é": "\u2028", "z": True, "n": None}, maps=True) == '{"n":null,"z":true,"é":"\\u2028"}'
    assert truncate_media('{"messages":[{"content":"\\ud800 \\ud83d\\ude00"}]}') == '{"messages":[{"content":"\ufffd \U0001f600"}]}'


# What a record's answer holds


def sse(*events: dict[str, object] | str) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1753000000, "model": "ai/smollm2",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip


def test_a_streamed_chat_answer_is_reassembled_into_one_completion() -> None:
    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1753000000, "model": "ai/smollm2",
             "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}  # fmt: skip
    body = sse(chunk({"role": "assistant", "content": None}), chunk({"reasoning_content": "hmm"}), chunk({"content": "Hel"}),
               chunk({"content": "lo"}), chunk({}, "length"), usage, "[DONE]")  # fmt: skip
    result = outcome(200, body)
    assert result.error == "" and result.status_code == 200
    assert result.response == (
        '{"choices":[{"finish_reason":"length","index":0,"message":{"content":"Hello","reasoning_content":"hmm","role":"assistant"}}],'
        '"created":1753000000,"id":"chatcmpl-1","model":"ai/smollm2","object":"chat.completion",'
        '"usage":{"completion_tokens":2,"prompt_tokens":5,"total_tokens":7}}'
    )


def test_a_reassembled_choice_without_finish_reason_gets_stop() -> None:
    body = "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "x"}}]}) + "\n\ndata: [DONE]\n\n"
    assert json.loads(outcome(200, body).response)["choices"][0] == {"finish_reason": "stop", "index": 0,
                                                                      "message": {"content": "x", "role": "assistant"}}  # fmt: skip


def test_a_streaming_error_line_is_recorded_as_error() -> None:
    line = '{"code":500,"message":"context overflow","type":"server_error"}'
    result = outcome(200, sse(chunk({"content": "a"})) + f"error: {line}\n\n")
    assert result.status_code == 200 and result.response == ""
    assert result.error == '{"status_code":500,"message":"context overflow","type":"server_error","details":' + json.dumps(line) + "}"
    assert outcome(200, "data: {}\n\nerror: oops\n\n").error == (
        '{"status_code":400,"message":"unparseable streaming error","details":"oops"}'
    )


def test_error_statuses_record_the_body_as_json() -> None:
    llama = '{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}'
    assert outcome(400, llama) == request_log.Outcome(400, error=llama)
    assert outcome(500, "unable to load runner: boom\n").error == '{"error": "unable to load runner: boom\\n"}'
    assert outcome(502, b"").error == '{"error": "unknown error"}'
    assert outcome(0, b"").status_code == 408


def test_an_anthropic_stream_is_reassembled_into_one_message() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                                "content": [], "model": "ai/smollm2", "stop_reason": None,
                                                                "usage": {"input_tokens": 5, "output_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    result = outcome(200, body, origin=request_log.ORIGIN_ANTHROPIC_MESSAGES)
    assert result.response == (
        '{"content":[{"text":"Hi!","type":"text"}],"id":"msg_1","model":"ai/smollm2","role":"assistant",'
        '"stop_reason":"max_tokens","type":"message","usage":{"output_tokens":2}}'
    )
    error = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    assert outcome(200, body + error, origin="anthropic/messages").error == (
        '{"status_code":400,"message":"busy","type":"overloaded_error","details":'
        + json.dumps('{"type":"error","error":{"type":"overloaded_error","message":"busy"}}') + "}"
    )
    assert json.loads(outcome(200, body).response)["object"] == "chat.completion"  # without the origin: read as chat


def test_origin_and_event_stream_negotiation() -> None:
    assert request_log.request_origin("/engines/v1/messages", None) == "anthropic/messages"
    assert request_log.request_origin("/engines/llama.cpp/v1/messages", "") == "anthropic/messages"
    assert request_log.request_origin("/engines/v1/messages/count_tokens", None) == ""
    assert request_log.request_origin("/engines/v1/chat/completions", "ollama/completion") == "ollama/completion"
    assert request_log.wants_event_stream("text/event-stream")
    for accept in (None, "", "text/event-stream, */*", "text/event-stream;q=1", "Text/Event-Stream"):
        assert not request_log.wants_event_stream(accept)


# The event stream


def test_connected_event_and_event_framing_are_dmr_bytes() -> None:
    assert request_log.CONNECTED_EVENT == b'event: connected\ndata: {"status": "connected"}\n\n'
    assert request_log.encode_event("new_request", [{"count": 1}]) == b'event: new_request\ndata: [{"count":1}]\n\n'
    assert dict(request_log.EVENT_STREAM_HEADERS) == {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                                      "Connection": "keep-alive"}  # fmt: skip


def test_include_existing_sends_one_event_per_record_before_connected() -> None:
    log = make_log()
    log.set_config("ai/smollm2", {"context-size": 2048})
    chat(log, 0)
    chat(log, 1)
    chat(log, 2, model="ai/other")
    assert log.stream_start() == request_log.CONNECTED_EVENT
    start = log.stream_start("ai/smollm2", include_existing=True)
    frames = start.decode().split("\n\n")
    assert frames[-2:] == ['event: connected\ndata: {"status": "connected"}', ""]
    assert [f.split("\n")[0] for f in frames[:-2]] == ["event: existing_request"] * 2
    payloads = [json.loads(f.split("\n")[1].removeprefix("data: ")) for f in frames[:-2]]
    assert [p[0]["count"] for p in payloads] == [1, 1]
    assert [p[0]["model"] for p in payloads] == [ID, ID]  # existing records: keyed by model ID
    assert [p[0]["records"][0]["id"] for p in payloads] == [f"{ID}_{NOW}", f"{ID}_{NOW + 1}"]
    assert payloads[0][0]["config"] == {"context-size": 2048}
    assert log.stream_start(include_existing=True).count(b"event: existing_request") == 3


def test_subscribers_get_each_completed_request_filtered_by_the_name_it_used() -> None:
    log = make_log()
    every, by_name = log.subscribe(), log.subscribe("ai/smollm2")
    record_id = log.record_request("ai/smollm2", url="/engines/v1/chat/completions", body=json.dumps(CHAT), now_ns=NOW)
    assert every.get(timeout=0) is None  # events come when the answer is complete
    log.record_response(record_id, "ai/smollm2", status_code=200, body=ANSWER)
    chat(log, 1, model="ai/smollm2:latest")  # same model ID, another name: not for by_name (DMR compares names)
    payload = every.get(timeout=0)
    assert payload is not None
    (entry,) = payload
    assert list(entry) == ENTRY_FIELDS and entry["count"] == 1 and entry["model"] == "ai/smollm2"
    assert entry["records"][0]["response"] == ANSWER
    assert (every.get(timeout=0) or [{}])[0]["model"] == "ai/smollm2:latest"
    assert by_name.get(timeout=0) == payload and by_name.get(timeout=0) is None
    log.unsubscribe(every)
    chat(log, 2)
    assert every.get(timeout=0) is None and by_name.get(timeout=0) is not None
    assert next(log.subscribe().events(timeout=0), None) is None


def test_a_subscriber_that_falls_behind_loses_events_beyond_its_buffer() -> None:
    log = RequestLog(resolve, max_records=1000)
    slow = log.subscribe()
    for n in range(request_log.SUBSCRIBER_BUFFER + 5):
        chat(log, n)
    events = list(slow.events(timeout=0))
    assert len(events) == request_log.SUBSCRIBER_BUFFER
    assert events[0].startswith(b"event: new_request\ndata: [{") and events[0].endswith(b"}]\n\n")


def test_make_id_and_concurrent_recording() -> None:
    counter = iter(range(10_000))
    log = RequestLog(resolve, make_id=lambda model_id, now_ns: f"{model_id}#{next(counter)}")
    threads = [threading.Thread(target=lambda: [chat(log, 0) for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (entry,) = log.records()
    assert entry["count"] == 10
    assert all(r["status_code"] == 200 and r["response"] == ANSWER for r in entry["records"])
    assert [r["id"] for r in entry["records"]] == sorted((r["id"] for r in entry["records"]), key=lambda i: int(i.split("#")[1]))
