"""The mock's shape like a real model's: natural lengths cut by max_tokens, usage consistent with the
streamed pieces, seed only when sampling, embedding widths by family, answers that follow the
request (schema in the prompt, values reused, code, lists), and an opt-in pace."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import openai
import pytest

from pytest_dmr.mock import MockModelRunner, Pace, tokens
from pytest_dmr.mock.prose import read_request

MODEL = "ai/smollm2"
CHAT = "/engines/v1/chat/completions"


@pytest.fixture
def client() -> httpx.Client:
    mock = MockModelRunner()
    return httpx.Client(transport=mock, base_url=mock.base_url)


def ask(client: httpx.Client, prompt: str, **body: Any) -> dict[str, Any]:
    response = client.post(CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": prompt}], **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def streamed(client: httpx.Client, prompt: str, **body: Any) -> tuple[list[str], str, dict[str, int]]:
    """The content pieces, finish reason and usage of a streamed answer."""
    payload = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True, "stream_options": {"include_usage": True}, **body}
    pieces: list[str] = []
    finish, usage = "", {}
    with client.stream("POST", CHAT, json=payload) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk["choices"]:
                pieces += [choice["delta"]["content"]] if choice["delta"].get("content") else []
                finish = choice["finish_reason"] or finish
    return pieces, finish, usage


PROMPTS = [f"Tell me about topic number {index}." for index in range(40)]


def test_natural_lengths_vary_and_max_tokens_sets_finish_reason(client: httpx.Client) -> None:
    answers = [ask(client, prompt, temperature=0, max_tokens=64) for prompt in PROMPTS]
    reasons = {answer["choices"][0]["finish_reason"] for answer in answers}
    assert reasons == {"stop", "length"}
    for answer in answers:
        used = answer["usage"]["completion_tokens"]
        if answer["choices"][0]["finish_reason"] == "length":
            assert used == 64
        else:
            assert used <= 64  # 63 pieces and the end-of-turn token
    assert len({answer["usage"]["completion_tokens"] for answer in answers}) > 5


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Hi!", "short"),
        ("Good morning, how are you today?", "short"),
        ("Give me a one-word synonym for \"happy\".", "short"),
        ("Translate \"good night\" into French.", "short"),
        ("Yes or no: is the sun a star?", "short"),
        ("Write a one-sentence Python function that adds two numbers.", "code"),
        ("List five fruits that are high in vitamin C.", "list"),
        ("Tell me about topic number 3.", "prose"),
    ],
)
def test_what_a_request_asks_for_sets_its_kind(prompt: str, kind: str) -> None:
    assert read_request(prompt).kind == kind


def test_short_requests_get_short_answers_and_code_longer_ones(client: httpx.Client) -> None:
    def median(prompts: list[str]) -> int:
        lengths = sorted(ask(client, prompt, temperature=0, max_tokens=400)["usage"]["completion_tokens"] for prompt in prompts)
        return lengths[len(lengths) // 2]  # type: ignore[no-any-return]

    short = median([f"Answer in one word: what is item {index}?" for index in range(15)])
    code = median([f"Write a Python function for task {index}." for index in range(15)])
    prose = median(PROMPTS[:15])
    assert short < 50 < code and short < prose


def test_usage_counts_the_streamed_pieces_and_the_end_of_turn_token(client: httpx.Client) -> None:
    for prompt in PROMPTS[:10]:
        pieces, finish, usage = streamed(client, prompt, temperature=0, max_tokens=128)
        assert usage["completion_tokens"] == len(pieces) + (finish == "stop")
        assert usage["prompt_tokens"] == tokens.count_prompt_tokens([{"role": "user", "content": prompt}], MODEL)
        assert pieces == tokens.split_into_pieces("".join(pieces))  # cut as the tokenizer model cuts
        whole = ask(client, prompt, temperature=0, max_tokens=128)
        assert whole["choices"][0]["message"]["content"] == "".join(pieces)
        assert whole["usage"]["completion_tokens"] == usage["completion_tokens"]


def test_prompt_tokens_count_the_template_and_the_default_system_prompt(client: httpx.Client) -> None:
    alone = ask(client, "Hi")["usage"]["prompt_tokens"]
    with_system = client.post(CHAT, json={"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    assert alone == 31  # measured on llama.cpp with SmolLM2-135M
    assert with_system.json()["usage"]["prompt_tokens"] == 18


def test_smaller_max_tokens_gives_a_prefix_of_the_same_answer(client: httpx.Client) -> None:
    for prompt in PROMPTS[:8]:
        texts = [ask(client, prompt, temperature=0, max_tokens=limit)["choices"][0]["message"]["content"] for limit in (1, 5, 16, 64, 256)]
        longest = ask(client, prompt, temperature=0)["choices"][0]["message"]["content"]
        for shorter, longer in zip(texts, [*texts[1:], longest]):
            assert longer.startswith(shorter)
        pieces = streamed(client, prompt, temperature=0, max_tokens=16)[0]
        assert pieces == streamed(client, prompt, temperature=0, max_tokens=256)[0][: len(pieces)]


def test_stream_pieces_look_like_a_tokenizers(client: httpx.Client) -> None:
    pieces = [piece for prompt in PROMPTS[:20] for piece in streamed(client, prompt, temperature=0, max_tokens=256)[0]]
    one_char = sum(len(piece) == 1 for piece in pieces) / len(pieces)
    punctuation = sum(not any(char.isalnum() for char in piece) and not piece.isspace() for piece in pieces) / len(pieces)
    spaces = sum(piece.isspace() for piece in pieces) / len(pieces)
    assert 0.1 < one_char < 0.4 and 0.05 < punctuation < 0.3 and 0.01 < spaces < 0.15


def test_context_size_cuts_the_answer_and_refuses_a_prompt_too_long() -> None:
    mock = MockModelRunner(context_size=60)
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        lengths = [ask(client, prompt, temperature=0)["usage"] for prompt in PROMPTS[:20]]
        assert all(usage["prompt_tokens"] + usage["completion_tokens"] <= 60 for usage in lengths)
        refused = client.post(CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": "word " * 100}]})
    assert refused.status_code == 400 and "context size" in refused.text


def test_seed_matters_only_when_sampling(client: httpx.Client) -> None:
    prompt = "Describe a harbour at dawn."

    def text(**body: Any) -> str:
        return ask(client, prompt, max_tokens=64, **body)["choices"][0]["message"]["content"]  # type: ignore[no-any-return]

    assert text(temperature=0, seed=1) == text(temperature=0, seed=2) == text(temperature=0.0) == text(temperature=0)
    assert text(temperature=0.7, seed=1) != text(temperature=0.7, seed=2)
    assert text(seed=1) != text(seed=2)  # unset: llama.cpp samples at 0.8
    assert text(temperature=0.7, seed=1) == text(temperature=0.7, seed=1)


@pytest.mark.parametrize(
    ("model", "configured", "requested", "width"),
    [("ai/smollm2", None, None, 576), ("ai/smollm2:360M-Q4_K_M", None, None, 960), ("ai/nomic-embed-text-v1.5", None, None, 768),
     ("ai/mxbai-embed-large", None, None, 1024), ("ai/unknown", None, None, 768), ("ai/smollm2", 256, None, 256), ("ai/smollm2", 256, 32, 32)],
)  # fmt: skip
def test_embedding_widths_by_family(model: str, configured: int | None, requested: int | None, width: int) -> None:
    mock = MockModelRunner(embedding_dimensions=configured)
    body: dict[str, Any] = {"model": model, "input": "hello world"}
    if requested is not None:
        body["dimensions"] = requested
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        answer = client.post("/engines/v1/embeddings", json=body).json()
    assert len(answer["data"][0]["embedding"]) == width
    assert answer["usage"]["prompt_tokens"] == tokens.count_tokens("hello world")


# -- answers that follow the request --------------------------------------------------------------


INVOICE_SCHEMA = {
    "title": "Invoice",
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "city": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "status": {"type": "string", "enum": ["draft", "paid", "overdue"]},
        "due": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["customer", "city", "amount", "status", "due", "email"],
}
INVOICE_PROMPT = "Maria Santos from Lisbon paid 420 euros on 2025-03-14; write to maria@example.org. The invoice is paid."


def test_json_object_follows_a_schema_given_in_the_system_message(client: httpx.Client) -> None:
    system = (
        "As a genius expert, your task is to understand the content and provide the parsed objects in json that match "
        f"the following json_schema:\n\n{json.dumps(INVOICE_SCHEMA, indent=2)}\n\nMake sure to return an instance of the JSON, not the schema itself"
    )  # instructor's JSON mode
    body = {"model": MODEL, "messages": [{"role": "system", "content": system}, {"role": "user", "content": INVOICE_PROMPT}],
            "response_format": {"type": "json_object"}}  # fmt: skip
    answer = json.loads(client.post(CHAT, json=body).json()["choices"][0]["message"]["content"])
    assert set(answer) == set(INVOICE_SCHEMA["properties"])  # type: ignore[arg-type]
    assert answer == {"customer": "Maria Santos", "city": "Lisbon", "amount": 420, "status": "paid", "due": "2025-03-14", "email": "maria@example.org"}


def test_a_schema_in_the_user_message_is_followed_when_json_is_asked(client: httpx.Client) -> None:
    prompt = f"Always respond with a JSON object that's compatible with this schema:\n\n{json.dumps(INVOICE_SCHEMA)}\n\n{INVOICE_PROMPT}"
    answer = json.loads(ask(client, prompt)["choices"][0]["message"]["content"])
    assert answer["customer"] == "Maria Santos" and answer["amount"] == 420


def test_json_values_respect_the_schema_over_the_prompt(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"count": {"type": "integer", "maximum": 10}, "status": {"enum": ["open", "closed"]}}, "required": ["count", "status"]}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "There were 420 visitors, then 7."}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}  # fmt: skip
    answer = json.loads(client.post(CHAT, json=body).json()["choices"][0]["message"]["content"])
    assert answer["count"] == 7  # 420 is past the maximum
    assert answer["status"] in ("open", "closed")


def test_tool_arguments_reuse_the_prompts_names_and_places(client: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "book_table", "parameters": {
        "type": "object", "properties": {"name": {"type": "string"}, "city": {"type": "string"}, "people": {"type": "integer", "minimum": 1}},
        "required": ["name", "city", "people"]}}}  # fmt: skip
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Please book table for Grace Hopper in Oslo, 4 people."}],
            "tools": [tool], "tool_choice": "required"}  # fmt: skip
    call = client.post(CHAT, json=body).json()["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"name": "Grace Hopper", "city": "Oslo", "people": 4}


@pytest.mark.parametrize(
    ("prompt", "fence"),
    [("Write a Python function that reverses a string.", "python"), ("Write a JavaScript function that sums an array.", "javascript"),
     ("Write a SQL query that selects all users older than 30.", "sql"), ("Write a function in C that computes the factorial of n.", "c"),
     ("Give me some code to parse a date.", "python")],
)  # fmt: skip
def test_code_requests_get_a_fenced_block_in_the_language_asked(client: httpx.Client, prompt: str, fence: str) -> None:
    text = ask(client, prompt, temperature=0, max_tokens=400)["choices"][0]["message"]["content"]
    assert re.search(rf"```{fence}\n.+?\n```", text, re.DOTALL), text


@pytest.mark.parametrize(
    ("prompt", "count", "marker"),
    [("List five fruits that are high in vitamin C.", 5, r"\d+\. "), ("Give me three tips for better sleep.", 3, r"\d+\. "),
     ("What are the causes of climate change? Answer as a bulleted list.", None, "- "), ("Name 7 animals that live in the ocean.", 7, r"\d+\. ")],
)  # fmt: skip
def test_list_requests_get_lists_with_the_count_asked(client: httpx.Client, prompt: str, count: int | None, marker: str) -> None:
    text = ask(client, prompt, temperature=0, max_tokens=1000)["choices"][0]["message"]["content"]
    items = re.findall(rf"^{marker}\S", text, re.MULTILINE)
    assert len(items) == count if count is not None else len(items) >= 3, text
    if marker != "- ":
        assert [int(line.split(".")[0]) for line in re.findall(r"^\d+\.", text, re.MULTILINE)] == list(range(1, len(items) + 1))


# -- pace ---------------------------------------------------------------------------------------


def test_pace_slows_a_sync_stream_at_least_as_configured() -> None:
    prompt = "Describe a harbour at dawn."

    def timed(mock: MockModelRunner) -> tuple[float, int]:
        with openai.OpenAI(base_url=mock.openai_base_url, api_key="unused", http_client=httpx.Client(transport=mock)) as sdk:
            started = time.perf_counter()
            chunks = list(sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=20, stream=True))
            return time.perf_counter() - started, len(chunks)

    baseline, _ = timed(MockModelRunner())
    paced, chunks = timed(MockModelRunner(pace=Pace(first_token=0.2, tokens_per_second=100)))
    minimum = 0.2 + (chunks - 1) / 100
    assert paced >= minimum
    assert paced > baseline


@pytest.mark.asyncio
async def test_pace_is_awaited_without_blocking_the_event_loop() -> None:
    mock = MockModelRunner(pace=Pace(first_token=0.15, tokens_per_second=200))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.ensure_future(ticker())
    async with httpx.AsyncClient(transport=mock, base_url=mock.base_url) as client:
        started = time.perf_counter()
        response = await client.post(CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10})
        elapsed = time.perf_counter() - started
    running.cancel()
    usage = response.json()["usage"]
    assert elapsed >= 0.15 + usage["completion_tokens"] / 200  # a whole answer waits for all its tokens
    assert ticks >= 3  # the loop ran meanwhile


def test_pace_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tokens_per_second"):
        Pace(tokens_per_second=0)
    with pytest.raises(ValueError, match="first_token"):
        Pace(first_token=-1)
