"""The mock's sentences: drawn from phrase banks, as words and as the tokens a tokenizer cuts them into.

A sentence is an opener (sometimes), a subject, a verb, an object and an ending (sometimes empty),
or "When X does Y, Z does W"; its first word is capitalised, one object in six is in bold, and it
ends in a period (now and then an exclamation mark). Each phrase of a sentence is a
:class:`Phrase`: its words as the sentence writes them and their tokens, cut once and kept (a few
hundred phrases, each in a few forms), so writing a sentence's tokens costs a few list joins.

The tokenizer never joins the end of one word (a letter or punctuation) with the space or newline
that starts the next, so a text's tokens are its words' tokens one after another.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

from pytest_dmr.mock.seeded import SeededDraws
from pytest_dmr.mock.tokens import split_into_pieces


def _bank(*phrases: str) -> tuple[tuple[str, ...], ...]:
    """Each phrase as its words, every word with its leading space (``" the"``, ``" model"``)."""
    return tuple(tuple(" " + word for word in phrase.split()) for phrase in phrases)


OPENERS = _bank(
    "In practice,", "As a rule,", "For most teams,", "In short,", "Put simply,", "That said,",
    "On the whole,", "In many cases,", "By contrast,", "Over time,", "At first,", "Here,",
    "It is worth noting that", "Most people agree that", "One reason is that", "In the end,",
    "So,", "For this reason,", "Often,", "Also,", "First,", "Next,", "Finally,", "Yes,",
)
SUBJECTS = _bank(
    "the model", "a good answer", "the result", "this step", "a reader", "the system",
    "each request", "the first draft", "a short summary", "the team", "the data", "each example",
    "the main idea", "a simple test", "the last version", "the question", "a clear plan",
    "the method", "a small change", "the whole process", "the user", "a good prompt", "it",
    "this", "the code", "the list", "a new user", "the key point",
)
VERBS = _bank(
    "depends on", "builds on", "points to", "makes room for", "relies on", "leads to",
    "brings out", "helps explain", "comes down to", "draws on", "reflects", "shapes", "supports",
    "highlights", "improves", "balances", "clarifies", "takes into account", "benefits from",
    "stays close to", "is about", "needs", "uses", "is part of", "can help with", "has",
)
OBJECTS = _bank(
    "the context it is given", "clear, simple steps", "a few good examples", "the questions people ask",
    "the shape of the problem", "steady feedback", "the details that matter", "what the user needs",
    "small, careful changes", "the structure of the input", "a shared plan", "the trade-offs (cost, time, risk)",
    "the goals of the project", "a consistent format", "the facts at hand", "the limits of the tools",
    "a solid baseline", "the time it has", "the wider picture", "plain, direct words", "2 or 3 tries",
    "the first 10 minutes", "1 key idea", "a 5-step plan", "the \"why\" behind it", "its own rules",
)
_ENDINGS = _bank(
    "", "", "", "", "over time", "in most cases", "more than expected", "from the start",
    "along the way", "for everyone", "with little effort", "in the long run", "at each step",
    "as the work goes on", "(at least at first)", "- and that is fine", "too",
)
_WHEN = (" When",)
_BOLD = "**"


class _WordTokens(dict[str, tuple[str, ...]]):
    """A word's tokens, kept once cut (the words come from the phrase banks: a few thousand at most)."""

    def __missing__(self, word: str) -> tuple[str, ...]:
        tokens = self[word] = tuple(split_into_pieces(word))
        return tokens


word_tokens = _WordTokens().__getitem__


class Phrase(NamedTuple):
    """A phrase as one sentence writes it: its words, their tokens, and how many of those the first word has."""

    words: tuple[str, ...]
    tokens: tuple[str, ...]
    first_word_tokens: int


def _written(words: tuple[str, ...], form: str) -> Phrase:
    """``words`` in a ``form``: ``^`` capitalised, ``*`` in bold, then the mark the last word ends
    with (``.``, ``!``, ``,``: a comma it had goes)."""
    written = list(words)
    if "*" in form:
        written[0] = " " + _BOLD + written[0][1:]
        written[-1] = written[-1] + _BOLD
    if "^" in form:
        written[0] = " " + written[0][1:2].upper() + written[0][2:]
    if form[-1:] in (".", "!", ","):
        written[-1] = written[-1].rstrip(",") + form[-1]
    tokens = [token for word in written for token in word_tokens(word)]
    return Phrase(tuple(written), tuple(tokens), len(word_tokens(written[0])))


_FORMS = {  # each bank, and the forms a sentence writes its phrases in
    "when": ((_WHEN,), ("",)),
    "opener": (OPENERS, ("^",)),
    "subject": (SUBJECTS, ("", "^")),
    "verb": (VERBS, ("",)),
    "object": (OBJECTS, ("", ",", ".", "!", "*", "*.", "*!")),
    "ending": (_ENDINGS, (".", "!")),
}


@functools.cache
def _phrases() -> dict[tuple[str, str], tuple[Phrase, ...]]:
    """Every phrase of every bank in each of its forms, by bank and form; made at the first sentence
    (about 2 ms), so that a sentence's phrases are looked up, not written."""
    return {(bank, form): tuple(_written(words, form) if words else Phrase((), (), 0) for words in phrases)
            for bank, (phrases, forms) in _FORMS.items() for form in forms}  # fmt: skip


def sentence(draws: SeededDraws) -> list[Phrase]:
    """One sentence, as its phrases."""
    phrases = _phrases()
    shape = draws.below(6)
    if shape == 0:  # "When X does Y, Z does W."
        first, second = draws.take(3), draws.take(3)  # each clause's subject, verb and object
        return [
            phrases["when", ""][0],
            phrases["subject", ""][first[0] % len(SUBJECTS)],
            phrases["verb", ""][first[1] % len(VERBS)],
            phrases["object", ","][first[2] % len(OBJECTS)],
            phrases["subject", ""][second[0] % len(SUBJECTS)],
            phrases["verb", ""][second[1] % len(VERBS)],
            phrases["object", "."][second[2] % len(OBJECTS)],
        ]
    opener = draws.take(1)[0] % len(OPENERS) if shape >= 3 else None
    object_draw, subject_draw, verb_draw, ending_draw = draws.take(4)
    mark = "!" if shape == 4 and draws.chance(0.2) else "."
    ending = ending_draw % len(_ENDINGS)
    bold = "*" if shape == 5 else ""  # "... **the key point** ..."
    written = [phrases["opener", "^"][opener]] if opener is not None else []
    written.append(phrases["subject", "" if written else "^"][subject_draw % len(SUBJECTS)])
    written.append(phrases["verb", ""][verb_draw % len(VERBS)])
    if _ENDINGS[ending]:
        written += (phrases["object", bold][object_draw % len(OBJECTS)], phrases["ending", mark][ending])
    else:
        written.append(phrases["object", bold + mark][object_draw % len(OBJECTS)])
    return written


def sentence_words(draws: SeededDraws) -> list[str]:
    """One sentence as a list of words, without their leading spaces (for short texts such as JSON string values)."""
    return [word[1:] for phrase in sentence(draws) for word in phrase.words]


def words_of(phrases: list[Phrase], lead: str = " ") -> list[str]:
    """A sentence's words, the first starting with ``lead`` instead of its space."""
    words = [word for phrase in phrases for word in phrase.words]
    words[0] = lead + words[0][1:]
    return words


def tokens_of(phrases: list[Phrase], lead: str = " ") -> list[str]:
    """A sentence's tokens, its first word starting with ``lead`` instead of its space."""
    first = phrases[0]
    if lead == " ":
        tokens = list(first.tokens)
    else:
        tokens = [*word_tokens(lead + first.words[0][1:]), *first.tokens[first.first_word_tokens :]]
    for phrase in phrases[1:]:
        tokens += phrase.tokens
    return tokens


def prose(draws: SeededDraws) -> Iterator[tuple[list[Phrase], str]]:
    """Sentences without end, in paragraphs of two to four: each as its phrases, and what its first
    word starts with (``"\n\n"`` when it opens a paragraph, else its space)."""
    in_paragraph, paragraph = 0, 2 + draws.below(3)
    first = True
    while True:
        phrases = sentence(draws)
        lead = " "
        if first:
            first = False
        elif in_paragraph >= paragraph:
            lead = "\n\n"
            in_paragraph, paragraph = 0, 2 + draws.below(3)
        in_paragraph += 1
        yield phrases, lead
