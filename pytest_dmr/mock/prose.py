"""What the mock writes: prose, code for a code request, a list for a list request.

Answers are drawn by a :class:`~pytest_dmr.mock.seeded.SeededDraws` and sized in tokens as
:mod:`pytest_dmr.mock.tokens` counts them:

* **Prose**: sentences built from phrase banks (:mod:`pytest_dmr.mock.sentences`: opener, subject, verb, object, ending), in
  paragraphs of two to four sentences.
* **Code** (the request asks for a function, script, query, class..., or how to do something in a
  named language):
  a sentence, a fenced block in the language asked (Python when none is named), then prose.
* **List** (the request asks to list, name, give or suggest some things, or for steps, tips, ideas):
  a sentence ending in a colon, then that many items (the count asked for, else three to seven),
  numbered, or bulleted when the request says so; then prose.
* **Short** (a message of four words or fewer, a greeting, or a request for a word, a sentence or
  a yes or no, or to translate, spell, rewrite, extract or classify something): prose, whose length
  :func:`~pytest_dmr.mock.tokens.natural_length` draws from the spread of such answers.

:func:`answer_pieces` writes an answer (as its tokens) of a given length, or as long as asked for an answer that runs
on; a longer answer of the same request starts with the shorter one (whole sentences are added
from the same stream), so a smaller ``max_tokens`` gives a prefix of the same answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pytest_dmr.mock.seeded import SeededDraws
from pytest_dmr.mock.sentences import OBJECTS, VERBS, Phrase, prose, tokens_of, word_tokens, words_of
from pytest_dmr.mock.tokens import count_tokens, split_into_pieces


_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "a few": 3, "several": 4,
}
_COUNT = r"\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:[a-z-]+\s+){0,2}?[a-z-]+s\b"
_LIST_REQUEST = (
    r"\b(?:list|bullet(?:ed)?|numbered|enumerate|name|suggest|give me (?:a |some |\w+ )?\w+|steps|tips|ideas|ways|examples|pros and cons)\b"
)
_SHORT_REQUEST = (
    r"\b(?:one|two|a|single)[- ](?:word|sentence)s?\b|\byes or no\b|\b(?:translate|spell|rewrite|synonym|extract|classify)\b"
    r"|^\W*(?:hi|hello|hey|thanks|thank you|good (?:morning|afternoon|evening))\b"
)
_CODE_NOUN = (
    r"\b(?:code|function|script|class|method|program|snippet|implementation|implement|regex|regular expression|query|command|one-liner)\b"
)


@dataclass(frozen=True)
class _Patterns:
    code: re.Pattern[str]
    short: re.Pattern[str]
    list: re.Pattern[str]
    count: re.Pattern[str]

    @classmethod
    def compiled(cls, flags: int) -> _Patterns:
        return cls(*(re.compile(pattern, flags) for pattern in (_CODE_NOUN, _SHORT_REQUEST, _LIST_REQUEST, _COUNT)))


_FOLDED = _Patterns.compiled(re.IGNORECASE)
_LOWERCASE = _Patterns.compiled(0)
"""For ASCII text, lowercased: the same matches as :data:`_FOLDED` on the text, at a third of the cost."""
_LANGUAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (fence tag, how a request names it, words one of which each way of naming it contains: a quick test first)
    ("typescript", r"typescript|\bts\b", ("typescript", "ts")),
    ("javascript", r"javascript|\bjs\b|node\.?js", ("js", "javascript")),
    ("cpp", r"c\+\+|\bcpp\b", ("c++", "cpp")),
    ("csharp", r"c#|c sharp", ("c#", "c sharp")),
    ("c", r"\bin c\b|\bc function\b|\bc program\b", ("c ", "in c")),
    ("java", r"\bjava\b", ("java",)),
    ("go", r"\bgolang\b|\bin go\b", ("golang", "in go")),
    ("rust", r"\brust\b", ("rust",)),
    ("ruby", r"\bruby\b", ("ruby",)),
    ("sql", r"\bsql\b|\bquery\b", ("sql", "query")),
    ("bash", r"\bbash\b|\bshell\b|\bcommand\b", ("bash", "shell", "command")),
    ("python", r"\bpython\b", ("python",)),
)
_LANGUAGE_PATTERNS = tuple((tag, re.compile(named), words) for tag, named, words in _LANGUAGES)
_LANGUAGE_WORDS = tuple(dict.fromkeys(word for _, _, words in _LANGUAGES for word in words))
_HOW_TO = re.compile(r"\bhow (?:do i|to)\b")
_WORD = re.compile(r"[a-z]+")
_STOP_WORDS = frozenset(
    "a an the that which to of in on for with and or is are be it its from by as at this these write "
    "me please can you how do i function script program code class method whether into all".split()
)


class Request(NamedTuple):
    """What the request asks for: ``kind`` ``prose``, ``code``, ``list`` or ``short``; for code, its
    language and the words a name is made of; for a list, how many items and whether numbered."""

    kind: str = "prose"
    language: str = "python"
    items: int | None = None
    numbered: bool = True
    words: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1 << 10)
def read_request(text: str) -> Request:
    """What ``text`` (the last user message) asks for (kept for the last 1,024 texts: a suite sends
    the same prompts again and again)."""
    lowered = text.lower()
    patterns, subject = (_LOWERCASE, lowered) if text.isascii() else (_FOLDED, text)
    if patterns.code.search(subject) or _HOW_TO.search(lowered):
        language = _language(lowered)
        if language is not None or patterns.code.search(subject):
            words = tuple([word for word in _WORD.findall(lowered) if word not in _STOP_WORDS and len(word) > 2])
            return Request("code", language or "python", words=words)
    if patterns.short.search(subject) or len(text.split()) <= 4:
        return Request("short")
    if patterns.list.search(subject):
        match = patterns.count.search(subject)
        count = None
        if match:
            number = match.group(1).lower()
            count = int(number) if number.isdigit() else _NUMBER_WORDS[number]
        return Request("list", items=count if count and 1 <= count <= 30 else None, numbered="bullet" not in lowered)
    return Request()


def _language(lowered: str) -> str | None:
    """The programming language a (lowercased) request names, ``None`` for none."""
    if not any(map(lowered.__contains__, _LANGUAGE_WORDS)):  # most prompts name none
        return None
    return next((tag for tag, named, needed in _LANGUAGE_PATTERNS if any(word in lowered for word in needed) and named.search(lowered)), None)


def _identifier(words: Sequence[str], draws: SeededDraws) -> str:
    """A snake_case name from the request's words (``reverses a string`` -> ``reverses_string``)."""
    chosen = [word for word in words if word not in ("python", "javascript", "sql", "bash")][:3]
    return "_".join(chosen) if chosen else draws.choice(("process", "compute", "handle", "transform"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def code_block(request: Request, draws: SeededDraws) -> str:
    """A fenced block in the request's language: a small function named after the request, and its use."""
    name = _identifier(request.words, draws)
    number = draws.between(2, 9)
    language = request.language
    if language == "python":
        body = (
            f"def {name}(value):\n    \"\"\"Return the result for `value`.\"\"\"\n    result = []\n"
            f"    for item in value:\n        result.append(item * {number})\n    return result\n\n\n"
            f"print({name}([1, 2, 3]))\n"
        )
    elif language in ("javascript", "typescript"):
        typed = ": number[]" if language == "typescript" else ""
        body = (
            f"function {_camel(name)}(values{typed}){typed} {{\n  const result = [];\n  for (const item of values) {{\n"
            f"    result.push(item * {number});\n  }}\n  return result;\n}}\n\nconsole.log({_camel(name)}([1, 2, 3]));\n"
        )
    elif language in ("c", "cpp", "java", "csharp", "go", "rust"):
        signature = {
            "c": f"int {name}(int n)", "cpp": f"int {name}(int n)", "java": f"static int {_camel(name)}(int n)",
            "csharp": f"static int {_camel(name)}(int n)", "go": f"func {_camel(name)}(n int) int", "rust": f"fn {name}(n: i32) -> i32",
        }[language]
        declare = {"go": "result := 1", "rust": "let mut result = 1;"}.get(language, "int result = 1;")
        loop = {"go": "for i := 1; i <= n; i++ {", "rust": "for i in 1..=n {"}.get(language, "for (int i = 1; i <= n; i++) {")
        end = "" if language in ("go", "rust") else ";"
        body = f"{signature} {{\n    {declare}\n    {loop}\n        result = result * i{end}\n    }}\n    {'result' if language == 'rust' else 'return result' + end}\n}}\n"
    elif language == "sql":
        table = next((word for word in request.words if word.endswith("s")), "items")
        body = f"SELECT *\nFROM {table}\nWHERE value > {number * 10}\nORDER BY value DESC;\n"
    elif language == "bash":
        body = 'for file in *.txt; do\n  echo "$file: $(wc -l < "$file")"\ndone\n'
    else:
        body = f"def {name}(value)\n  value * {number}\nend\n\nputs {name}(3)\n"
    return f"```{language}\n{body}```"


def _list_items(request: Request, draws: SeededDraws) -> str:
    count = request.items or draws.between(3, 7)
    lines = []
    for index in range(count):
        head = "".join(draws.choice(OBJECTS)).strip().rstrip(",")
        tail = "".join(draws.choice(VERBS) + draws.choice(OBJECTS)).rstrip(",")
        marker = f"{index + 1}." if request.numbered else "-"
        lines.append(f"{marker} **{head[:1].upper()}{head[1:]}**: it{tail}.")
    return "\n".join(lines)


def _head(request: Request, draws: SeededDraws) -> str:
    """The part of a code or list answer that comes before its prose ("" for prose), drawn from
    ``draws``' ``head`` fork."""
    if request.kind not in ("code", "list"):
        return ""
    draws = draws.fork("head")
    if request.kind == "code":
        return f"Here is one way to do it:\n\n{code_block(request, draws)}\n\nThis{''.join(draws.choice(VERBS))} the input."
    if request.kind == "list":
        return f"Here {'is' if request.items == 1 else 'are'} a few:\n\n{_list_items(request, draws)}"
    return ""


def _trimmed(sentence: list[Phrase], lead: str, text: list[str], tokens: int) -> list[str]:
    """The first of a sentence's tokens (``text``) within ``tokens`` tokens, ending in a period ([]
    when no word fits). The cut falls after a letter or digit, so the word it falls in is tokenized
    again as what is kept of it, and the period is a token of its own."""
    kept = text[: max(1, tokens - 1)]
    while kept and not any(map(str.isalnum, kept[-1])):
        kept.pop()
    if not kept:
        return []
    start = 0  # where the word the cut falls in starts among the kept tokens
    for word in words_of(sentence, lead):
        size = len(word_tokens(word))
        if start + size >= len(kept):
            break
        start += size
    return [*kept[:start], *word_tokens("".join(kept[start:])), "."]


def answer_pieces(
    request: Request, draws: SeededDraws, tokens: int, *, natural: bool, leading_space: bool = False, enough: int | None = None
) -> list[str]:
    """An answer to ``request``, as its tokens, of about ``tokens`` tokens when ``natural`` (it ends
    there: its last sentence is cut to fit, but a code or list answer is never shorter than its
    block), else at least ``tokens`` tokens of an answer that runs on. ``leading_space`` starts it
    with a space (a completion continues its prompt; the sizes leave that space out). ``enough``: stop
    at the first sentence end past that many tokens (for a caller that keeps only those: they are
    the whole answer's first tokens)."""
    head = _head(request, draws)
    count = count_tokens(head) if head else 0
    pieces = split_into_pieces(" " + head if leading_space else head) if head else []
    stop_at = tokens if enough is None else min(tokens, enough)
    for index, (sentence, lead) in enumerate(prose(draws.fork("prose"))):
        if count >= stop_at:
            break
        opening = index == 0 and not head  # the sentence the text starts with
        if index == 0:
            lead = "\n\n" if head else ""
        text = tokens_of(sentence, lead)
        size = len(text)
        if natural and count + size > tokens:
            if tokens - count >= 4 or opening:
                trimmed = _trimmed(sentence, lead, text, tokens - count)
                if opening and leading_space and trimmed:  # the sizes leave that space out
                    trimmed = split_into_pieces(" " + "".join(trimmed))
                pieces += trimmed
            break
        if opening and leading_space:  # the sizes leave that space out
            text = tokens_of(sentence)
        pieces += text
        count += size
    return pieces if pieces or not leading_space else [" "]


def cut_at_stop(pieces: list[str], stops: Sequence[str]) -> tuple[list[str], bool]:
    """Cut the pieces where the first stop sequence starts (the stop itself is not sent, as
    llama.cpp does). Returns the pieces and whether a stop sequence was found."""
    if not stops:
        return pieces, False
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
