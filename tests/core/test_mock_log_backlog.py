"""The request log's queue: a long run of requests leaves the log DMR would have, whatever the queue skips."""

from __future__ import annotations

import httpx2
import pytest

import pytest_dmr.mock.state as state
from pytest_dmr.mock import MockModelRunner


def _logs_after_many_requests() -> list[bytes]:
    """The log (JSON, and as an event stream) read during and after 1,300 requests over four model
    names, with unloads and ``_configure`` calls among them: past the queue's backlog of 500."""
    mock = MockModelRunner(models=("ai/smollm2", "ai/qwen3"))
    client = httpx2.Client(transport=mock, base_url=mock.base_url)
    seen = []
    for index in range(1300):
        model = ("ai/smollm2", "qwen3", "smollm2", "other/x")[index % 4 if index % 7 else 1]
        if index % 97 == 0:
            client.post("/engines/unload", json={"models": ["ai/qwen3"]})
        if index % 333 == 0:
            client.post("/engines/llama.cpp/_configure", json={"model": "ai/smollm2", "context-size": 4096 + index})
        if index % 3 == 0:
            client.post("/v1/embeddings", json={"model": model, "input": f"x{index}", "dimensions": 4})
        else:
            client.post("/engines/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": f"q{index}"}], "max_tokens": 3})
        if index in (250, 777):
            seen.append(client.get("/engines/requests").content)
    seen.append(client.get("/engines/requests").content)
    seen.append(client.get("/engines/requests", headers={"accept": "text/event-stream"}, params={"include_existing": "true"}).content)
    return seen


def test_skipped_changes_leave_the_same_log(monkeypatch: pytest.MonkeyPatch) -> None:
    skipping = _logs_after_many_requests()
    monkeypatch.setattr(state, "lasting_changes", lambda changes, resolve_id: [change for _, _, change in changes])
    every_change = _logs_after_many_requests()
    assert skipping == every_change
    assert skipping[-2].count(b'"id":') > 20  # records of several models are there


def test_only_changes_that_outlast_the_queue_are_made() -> None:
    made: list[str] = []
    changes: list[state.LogChange] = [("config", "m", lambda: made.append("config m"))]
    changes += [("record", "m", lambda index=index: made.append(f"m{index}")) for index in range(12)]
    changes += [("record", "n", lambda: made.append("n0")), ("remove", "ai/n", lambda: made.append("remove n"))]
    for change in state.lasting_changes(changes, lambda name: name.removeprefix("ai/")):
        change()
    assert made == ["config m", *(f"m{index}" for index in range(2, 12)), "remove n"]
