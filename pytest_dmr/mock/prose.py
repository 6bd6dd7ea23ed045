"""Plausible English prose, and the token-like pieces it streams in.

A *token* of the mock is one streamed piece: a word with its leading space (punctuation stays on
the word), or, for text the mock did not write itself (a rule's reply, JSON), a word or a single
punctuation mark with its leading whitespace. ``completion_tokens`` is always the number of pieces.

Answers are sentences built from a phrase bank (opener, subject, verb, object, ending) by a
:class:`~pytest_dmr.mock.seeded.SeededDraws`, grouped in paragraphs of two to four sentences.
Length follows the token budget (``max_tokens``, or the mock's default): sentences are added while
they fit; the answer ends at a sentence boundary (``stop``) once it fills at least half of the
budget, else the sentence that overflows is cut at the budget (``length``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pytest_dmr.mock.seeded import SeededDraws

NATURAL_LENGTH_LIMIT = 1024
"""However large ``max_tokens`` is, a natural answer stops by this many tokens."""


def _bank(*phrases: str) -> tuple[tuple[str, ...], ...]:
    """Each phrase as its pieces, every word with its leading space (``" the"``, ``" model"``)."""
    return tuple(tuple(" " + word for word in phrase.split()) for phrase in phrases)


_OPENERS = _bank(
    "In practice,", "As a rule,", "For most teams,", "In short,", "Put simply,", "That said,",
    "On the whole,", "In many cases,", "By contrast,", "Over time,", "At first glance,",
    "It is worth noting that", "Most people agree that", "One reason is that", "In the end,",
    "Seen this way,", "For this reason,", "More often than not,", "Just as important,",
)
_SUBJECTS = _bank(
    "the model", "a good answer", "the result", "this approach", "a careful reader", "the system",
    "each request", "the first draft", "a short summary", "the team", "the data", "every example",
    "the main idea", "a simple test", "the final version", "the question", "a clear plan",
    "the method", "a small change", "the whole process", "the user", "a well written prompt",
)
_VERBS = _bank(
    "depends on", "builds on", "points to", "makes room for", "relies on", "leads to",
    "brings out", "helps explain", "comes down to", "draws on", "reflects", "shapes", "supports",
    "highlights", "improves", "balances", "clarifies", "takes into account", "benefits from",
    "stays close to",
)
_OBJECTS = _bank(
    "the context it is given", "clear and simple steps", "a few well chosen examples",
    "the questions people ask", "the shape of the problem", "a steady flow of feedback",
    "the details that matter", "what the user needs", "small, careful changes",
    "the structure of the input", "a shared understanding", "the trade-offs involved",
    "the goals of the project", "a consistent format", "the evidence at hand",
    "the limits of the tools", "a reliable baseline", "the time that is available",
    "the wider picture", "honest and direct language",
)
_ENDINGS = _bank(
    "", "", "", "over time", "in most cases", "more than expected", "from the start",
    "along the way", "for everyone involved", "without much effort", "in the long run",
    "at every step", "as the work goes on",
)


_WHEN = (" When",)


def sentence_pieces(draws: SeededDraws) -> list[str]:
    """One sentence as pieces (each with a leading space), capitalised, ending in a period."""
    shape = draws.below(5)
    if shape == 0:  # "When X does Y, Z does W."
        clause = [*draws.choice(_SUBJECTS), *draws.choice(_VERBS), *draws.choice(_OBJECTS)]
        clause[-1] = clause[-1].rstrip(",") + ","
        pieces = [*_WHEN, *clause, *draws.choice(_SUBJECTS), *draws.choice(_VERBS), *draws.choice(_OBJECTS)]
    else:
        opener = draws.choice(_OPENERS) if shape >= 3 else ()
        pieces = [*opener, *draws.choice(_SUBJECTS), *draws.choice(_VERBS), *draws.choice(_OBJECTS), *draws.choice(_ENDINGS)]
        first = pieces[0]
        pieces[0] = " " + first[1:2].upper() + first[2:]
    pieces[-1] = pieces[-1].rstrip(",") + "."
    return pieces


def sentence_words(draws: SeededDraws) -> list[str]:
    """One sentence as a list of words (for short texts such as JSON string values)."""
    return [piece[1:] for piece in sentence_pieces(draws)]


def prose_pieces(draws: SeededDraws, budget: int, *, leading_space: bool = False) -> tuple[list[str], str]:
    """Pieces of an answer of at most ``budget`` tokens, and its finish reason (``stop``/``length``).

    ``leading_space`` starts the first piece with a space (a completion continues its prompt).
    """
    budget = max(1, budget)
    target = min(budget, NATURAL_LENGTH_LIMIT)
    pieces: list[str] = []
    in_paragraph = 0
    paragraph_length = 2 + draws.below(3)
    while True:
        sentence = sentence_pieces(draws)
        if not pieces:
            if not leading_space:
                sentence[0] = sentence[0][1:]
        elif in_paragraph >= paragraph_length:
            sentence[0] = "\n\n" + sentence[0][1:]
            in_paragraph = 0
            paragraph_length = 2 + draws.below(3)
        if len(pieces) + len(sentence) <= target:
            pieces += sentence
            in_paragraph += 1
            if len(pieces) < target:
                continue
            return pieces, "stop"
        if pieces and 2 * len(pieces) >= target:
            return pieces, "stop"
        pieces += sentence
        if len(pieces) > budget:
            return pieces[:budget], "length"
        return pieces, "stop"


_PIECE = re.compile(r"\s*[\w']+|\s*[^\s\w']|\s+")


def split_pieces(text: str) -> list[str]:
    """Token-like pieces of any text (words and single punctuation marks, each with its leading
    whitespace); they join back to exactly ``text``."""
    return _PIECE.findall(text)


def cut_at_stop(pieces: list[str], stops: Sequence[str]) -> tuple[list[str], bool]:
    """Cut the pieces where the first stop sequence starts (the stop itself is not sent, as
    llama.cpp does). Returns the pieces and whether a stop sequence was found."""
    text = "".join(pieces)
    cut = min((index for index in (text.find(stop) for stop in stops if stop) if index >= 0), default=-1)
    if cut < 0:
        return pieces, False
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) >= cut:
            if cut > length:
                kept.append(piece[: cut - length])
            break
        kept.append(piece)
        length += len(piece)
    return kept, True


def word_count(text: str) -> int:
    """The mock's prompt-token approximation for one text: its whitespace-separated words."""
    return len(text.split())
