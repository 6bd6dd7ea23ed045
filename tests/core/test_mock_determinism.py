"""Same request, same bytes: in one process, across processes, under any PYTHONHASHSEED."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from pytest_dmr.mock import MockModelRunner

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "rating": {"type": "integer", "minimum": 1, "maximum": 5}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["title", "rating"],
}
PATTERN_SCHEMA = {
    "type": "object",
    "properties": {
        "ticket": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
        "hex": {"type": "string", "pattern": r"#[0-9a-f]{6}", "minLength": 12},
        "status": {"type": "string", "enum": ["open", "closed", "spam"], "not": {"const": "spam"}},
        "kind": {"enum": ["bug", "idea"]},
    },
    "required": ["ticket", "hex", "status", "kind"],
    "if": {"properties": {"kind": {"const": "bug"}}},
    "then": {"properties": {"severity": {"type": "string", "pattern": "^(low|high)$"}}, "required": ["severity"]},
    "dependentRequired": {"ticket": ["owner"]},
}
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Explain unit tests."}]

# (label, method, path, json body, headers)
REQUESTS = [
    ("chat", "POST", "/engines/v1/chat/completions", {"model": "ai/smollm2", "messages": MESSAGES}, {}),
    ("chat-seeded", "POST", "/v1/chat/completions", {"model": "ai/smollm2", "messages": MESSAGES, "seed": 3, "temperature": 0.7, "max_tokens": 300}, {}),
    ("chat-stream", "POST", "/engines/llama.cpp/v1/chat/completions", {"model": "smollm2", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}, {}),
    ("json", "POST", "/engines/v1/chat/completions", {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}}, {}),
    ("json-pattern", "POST", "/engines/v1/chat/completions", {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {"schema": PATTERN_SCHEMA}}}, {}),
    ("tool", "POST", "/engines/v1/chat/completions", {"model": "m", "messages": MESSAGES, "tools": [TOOL], "tool_choice": "required", "stream": True}, {}),
    ("completion", "POST", "/v1/completions", {"model": "m", "prompt": "Once upon a time", "max_tokens": 40}, {}),
    ("embeddings", "POST", "/v1/embeddings", {"model": "e", "input": ["alpha beta", "gamma"]}, {}),
    ("embeddings-family", "POST", "/v1/embeddings", {"model": "ai/smollm2", "input": "alpha beta"}, {}),
    ("code", "POST", "/engines/v1/chat/completions", {"model": "ai/smollm2", "messages": [{"role": "user", "content": "Write a Go function that adds two numbers."}], "temperature": 0, "stream": True}, {}),
    ("list", "POST", "/engines/v1/chat/completions", {"model": "ai/smollm2", "messages": [{"role": "user", "content": "List four rivers in Europe."}], "seed": 5, "temperature": 0}, {}),
    ("schema-in-prompt", "POST", "/engines/v1/chat/completions", {"model": "m", "response_format": {"type": "json_object"}, "messages": [
        {"role": "system", "content": "Answer in JSON matching this schema: " + json.dumps(SCHEMA)}, {"role": "user", "content": "Ada rated 'Dune' 4 of 5."}]}, {}),
    ("tool-values", "POST", "/engines/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "lookup Grace Hopper in Oslo"}], "tools": [TOOL]}, {}),
    ("pull", "POST", "/models/create", {"from": "ai/qwen3:0.6B-Q4_0"}, {"Accept": "application/json"}),
    ("models", "GET", "/models", None, {}),
    ("openai-models", "GET", "/engines/v1/models", None, {}),
    ("responses", "POST", "/v1/responses", {"model": "m", "input": "Explain unit tests.", "instructions": "Be brief."}, {}),
    ("responses-stream", "POST", "/v1/responses", {"model": "m", "input": "Explain unit tests.", "tools": [{"type": "function", "name": "lookup"}], "tool_choice": "required", "stream": True}, {}),
    ("messages", "POST", "/v1/messages", {"model": "m", "system": "Be brief.", "messages": MESSAGES[1:], "max_tokens": 30}, {}),
    ("messages-stream", "POST", "/anthropic/v1/messages", {"model": "ai/smollm2", "messages": MESSAGES[1:], "max_tokens": 30, "stream": True}, {}),
    ("ollama-chat", "POST", "/api/chat", {"model": "m", "messages": MESSAGES}, {}),
    ("ollama-generate", "POST", "/api/generate", {"model": "m", "prompt": "Once upon a time", "stream": False}, {}),
    ("ollama-pull", "POST", "/api/pull", {"model": "ai/qwen3"}, {}),
    ("rerank", "POST", "/rerank", {"model": "m", "query": "unit tests", "documents": ["tests", "cake", "unit tests pass"]}, {}),
    ("request-log", "GET", "/engines/requests", None, {"User-Agent": "determinism"}),
]


def run_requests() -> dict[str, str]:
    """Every response's status and body, as hex, keyed by label."""
    mock = MockModelRunner()
    results = {}
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        for label, method, path, body, headers in REQUESTS:
            response = client.request(method, path, json=body, headers=headers)
            results[label] = f"{response.status_code}:{response.content.hex()}"
    return results


def run_in_subprocess(hash_seed: str) -> dict[str, str]:
    code = "import json, tests.core.test_mock_determinism as t; print(json.dumps(t.run_requests()))"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    completed = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(completed.stdout)


def test_same_request_same_bytes_in_one_process() -> None:
    first = run_requests()
    assert all(value.startswith("200:") for value in first.values())
    assert first == run_requests()


def test_same_bytes_across_processes_and_hash_seeds() -> None:
    here = run_requests()
    one = run_in_subprocess("1")
    other = run_in_subprocess("4242")
    assert set(one) == {label for label, *_ in REQUESTS}
    for label in one:
        assert one[label] == other[label] == here[label], f"{label} differs between processes"


def test_key_order_of_the_request_does_not_matter() -> None:
    mock = MockModelRunner()
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        a = client.post("/v1/chat/completions", content=json.dumps({"model": "m", "messages": MESSAGES, "seed": 1}))
        b = client.post("/v1/chat/completions", content=json.dumps({"seed": 1, "messages": MESSAGES, "model": "m"}))
    assert a.content == b.content


PROSE_PROMPTS = [
    "Hi", "What is a unit test?", "Summarise the plot of Hamlet in one sentence.", "List 5 tips for sleeping well.",
    "Write a Python function that reverses a string.", "Explain recursion to a child.", "Translate 'good morning' to French.",
    "Give me three ideas for a birthday party.", "Why is the sky blue?", "Écris une phrase sur la mer.",
    "How do I read a file in Rust?", "Describe the water cycle in detail, step by step, for a school report.",
]


def pinned_corpus() -> str:
    """SHA-256 of the answers to :data:`REQUESTS` and of prose, code and lists at several lengths,
    streamed and not, as chat and as completions: what the mock writes, pinned."""
    import hashlib

    digest = hashlib.sha256(json.dumps(run_requests(), sort_keys=True).encode())
    mock = MockModelRunner()
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        for prompt in PROSE_PROMPTS:
            for max_tokens in (None, 7, 31, 120):
                sized = {"max_tokens": max_tokens} if max_tokens else {}
                chat = {"model": "ai/smollm2", "messages": [{"role": "user", "content": prompt}], "temperature": 0, **sized}
                for body in (chat, {**chat, "stream": True}):
                    digest.update(client.post("/engines/v1/chat/completions", json=body).content)
                digest.update(client.post("/engines/v1/completions", json={"model": "ai/smollm2", "prompt": prompt, **sized}).content)
    return digest.hexdigest()


PINNED = "c20169a77cab87f7ba7d5a6835626f79e06a7251e37329d22f26aff4fa425a8a"


def test_answers_are_the_pinned_ones() -> None:
    """The mock's answers are the same on every Python and platform CI runs, and from one version to
    the next unless on purpose (a faster mock must write the same bytes). Changed on purpose? Pin the
    new digest, and say why in the changelog."""
    assert pinned_corpus() == PINNED, "the mock's answers changed: if on purpose, set PINNED to the new digest"
