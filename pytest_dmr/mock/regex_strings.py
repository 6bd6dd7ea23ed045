"""Strings that match a regular expression, drawn deterministically (for JSON schema ``pattern``).

A small parser for the ECMA-262 subset that structured-output schemas use, written here rather than
borrowed from :mod:`re`'s private parser (whose output changes between Python versions, and the mock
promises the same bytes on all of them). Every choice comes from the :class:`SeededDraws` passed in.

Supported: literals and escapes (``\\d \\w \\s \\D \\W \\S``, ``\\t \\n \\r \\f \\v \\0``,
``\\xHH``, ``\\uXXXX``, escaped punctuation such as ``\\. \\- \\/ \\\\``), ``.``, character classes
with ranges, escapes and negation (``[A-Z0-9_-]``, ``[^,]``), quantifiers ``? * + {m} {m,} {m,n}``
and their lazy forms, groups ``( )``, ``(?: )``, named groups ``(?<name> )`` / ``(?P<name> )``,
alternation ``|``, and the assertions ``^ $ \\b \\B``. :class:`PatternError` with ``unsupported``
set: lookaround, backreferences, unicode property escapes (``\\p{...}``), inline flags, unknown
ASCII letter escapes, and ``]`` first in a class (ECMA-262 and Python read ``[]a]`` differently).

Drawn strings match under ECMA-262 and under :func:`re.search` (which jsonschema uses): ``.`` and
classes draw printable ASCII, or a few symbols that no ``\\d \\w \\s`` of either engine contains.
An unbounded quantifier repeats at most 3 times past its minimum, a bounded one 32, unless a length
needs more. A draft whose assertions fail where the draw put them (``a(^|b)c``), or that misses the
lengths, is drawn again (the later drafts do not aim at the lengths, which can squeeze out the
``\\.?`` that a ``\\b`` needs). :meth:`Pattern.search` has :func:`re.search`'s meaning (JSON schema
patterns are not anchored), on a set-of-positions walk that cannot backtrack exponentially.

Limits, so that no pattern stalls a test (a :class:`PatternError`, the mock answers 400): groups nest
at most 32 deep, a draw takes at most 10000 characters and repetitions, a search at most 2 million
steps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias

from pytest_dmr.mock.seeded import SeededDraws

_UNBOUNDED = 1 << 30
_EXTRA_REPEATS = 3
"""How far past its minimum an unbounded quantifier (``*``, ``+``, ``{m,}``) repeats."""
_EXTRA_BOUNDED_REPEATS = 32
"""How far past its minimum a bounded one (``{0,100000}``) repeats."""
_MAX_NESTING = 32
_MAX_DRAW_STEPS = 10_000
"""Characters and repetitions one draw of the pattern may take (``a{100000}`` is refused)."""
_MAX_SEARCH_STEPS = 2_000_000
_DRAW_ATTEMPTS = 256
"""Drafts tried for assertions that hold (``^((25[0-5]|1\\d|\\d)\\.?\\b){4}$`` needs about 16)."""
_LENGTH_ATTEMPTS = 32
"""Drafts tried for the lengths, after which a draft that misses them is kept (the pattern wins)."""
_MAX_DRAFTED = 100_000
"""Characters and assertions all the drafts of one draw may take together (the first one always runs)."""
_MAX_CODE_POINT = 0x10FFFF
_PRINTABLE_ASCII = tuple(range(0x20, 0x7F))
_NEUTRAL_SYMBOLS = tuple(ord(char) for char in "¡§«°±·»¿×÷€•→")
"""Non-ASCII characters that no ``\\d \\w \\s`` contains in ECMA-262 or in Python (drawn when a class has no ASCII)."""

_Ranges = tuple[tuple[int, int], ...]

_DIGITS: _Ranges = ((0x30, 0x39),)
_WORD: _Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE: _Ranges = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)
_LINE_TERMINATORS: _Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "v": 0x0B}


class PatternError(ValueError):
    """The pattern is not a valid regular expression, or uses a construct this module cannot draw."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


# -- the syntax tree ----------------------------------------------------------------------------
# Each node knows the least and the most characters it can match (_UNBOUNDED for no limit), and the
# most steps (characters and repetitions) a draw without length constraints takes.


class _Chars:
    """One character from a set of code-point ranges (or from outside them, when negated)."""

    __slots__ = ("ranges", "negated", "min_len", "max_len", "steps", "_choices", "_known")

    def __init__(self, ranges: Iterable[tuple[int, int]], negated: bool = False) -> None:
        self.ranges = _normalised(ranges)
        self.negated = negated
        self.min_len: int = 1
        self.max_len: int = 1
        self.steps: int = 1
        self._choices: tuple[int, ...] | None = None
        self._known: dict[int, bool] = {}  # code point -> in the set (searches ask again and again)

    def has(self, code: int) -> bool:
        known = self._known.get(code)
        if known is None:
            known = self._known[code] = any(low <= code <= high for low, high in self.ranges) != self.negated
        return known

    def choices(self) -> tuple[int, ...]:
        """What drawing prefers: the printable ASCII characters in the set, else its neutral symbols."""
        if self._choices is None:
            printable = tuple(code for code in _PRINTABLE_ASCII if self.has(code))
            self._choices = printable or tuple(code for code in _NEUTRAL_SYMBOLS if self.has(code))
        return self._choices


class _Seq:
    __slots__ = ("items", "min_len", "max_len", "steps")

    def __init__(self, items: list[_Node]) -> None:
        self.items = items
        self.min_len: int = sum(item.min_len for item in items)
        self.max_len: int = min(_UNBOUNDED, sum(item.max_len for item in items))
        self.steps: int = sum(item.steps for item in items)


class _Alt:
    __slots__ = ("options", "min_len", "max_len", "steps")

    def __init__(self, options: list[_Node]) -> None:
        self.options = options
        self.min_len: int = min(option.min_len for option in options)
        self.max_len: int = max(option.max_len for option in options)
        self.steps: int = max(option.steps for option in options)


class _Repeat:
    __slots__ = ("item", "least", "most", "natural_most", "min_len", "max_len", "steps")

    def __init__(self, item: _Node, least: int, most: int | None) -> None:
        self.item = item
        self.least = least
        self.most = most
        self.natural_most = least + _EXTRA_REPEATS if most is None else min(most, least + _EXTRA_BOUNDED_REPEATS)
        self.min_len: int = least * item.min_len
        self.max_len: int
        if item.max_len == 0 or most == 0:
            self.max_len = 0
        elif most is None or item.max_len >= _UNBOUNDED:
            self.max_len = _UNBOUNDED
        else:
            self.max_len = min(_UNBOUNDED, most * item.max_len)
        self.steps: int = self.natural_most * max(1, item.steps)


class _Assert:
    """A zero-width assertion: ``^`` (start), ``$`` (end), ``b`` / ``B`` (word boundary or not)."""

    __slots__ = ("kind", "min_len", "max_len", "steps")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.min_len: int = 0
        self.max_len: int = 0
        self.steps: int = 0


_Node: TypeAlias = "_Chars | _Seq | _Alt | _Repeat | _Assert"


def _normalised(ranges: Iterable[tuple[int, int]]) -> _Ranges:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def _complement(ranges: _Ranges) -> _Ranges:
    result: list[tuple[int, int]] = []
    start = 0
    for low, high in _normalised(ranges):
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return tuple(result)


_SHORTHANDS: dict[str, _Ranges] = {
    "d": _DIGITS, "D": _complement(_DIGITS),
    "w": _WORD, "W": _complement(_WORD),
    "s": _SPACE, "S": _complement(_SPACE),
}


_BOUNDS = re.compile(r"\{([0-9]+)(,?)([0-9]*)\}")
"""A quantifier's braces: ASCII digits only (``{²}`` and ``{١٢}`` are literal text in ECMA-262 and Python)."""


# -- parsing ------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over ``disjunction := alternative ('|' alternative)*``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.nesting = 0

    def peek(self, text: str) -> bool:
        return self.source.startswith(text, self.pos)

    def parse(self) -> _Seq | _Alt:
        node = self.disjunction()
        if self.pos < len(self.source):  # only a ')' stops a top-level disjunction early
            raise PatternError(f"unbalanced parenthesis at position {self.pos}")
        if node.steps > _MAX_DRAW_STEPS:
            raise PatternError(f"a match can take {node.steps} characters and repetitions, more than the mock draws ({_MAX_DRAW_STEPS})")
        return node

    def disjunction(self) -> _Seq | _Alt:
        first = self.alternative()
        options: list[_Node] = [first]
        while self.peek("|"):
            self.pos += 1
            options.append(self.alternative())
        return first if len(options) == 1 else _Alt(options)

    def alternative(self) -> _Seq:
        items: list[_Node] = []
        while self.pos < len(self.source) and self.source[self.pos] not in "|)":
            items.append(self.quantifier(self.term()))
        return _Seq(items)

    def term(self) -> _Chars | _Seq | _Alt | _Assert:
        char = self.source[self.pos]
        if char in "*+?" or (char == "{" and self.bounds() is not None):
            raise PatternError(f"nothing to repeat at position {self.pos}")
        self.pos += 1
        if char in "^$":
            return _Assert(char)
        if char == ".":
            return _Chars(_LINE_TERMINATORS, negated=True)
        if char == "(":
            return self.group()
        if char == "[":
            return self.char_class()
        if char == "\\":
            return self.escape()
        return _Chars([(ord(char), ord(char))])

    def group(self) -> _Seq | _Alt:
        start = self.pos - 1
        if self.peek("?"):
            if self.peek("?:"):
                self.pos += 2
            elif self.peek("?=") or self.peek("?!"):
                raise PatternError(f"lookahead '({self.source[self.pos:self.pos + 2]}' at position {start}", unsupported=True)
            elif self.peek("?<=") or self.peek("?<!"):
                raise PatternError(f"lookbehind '({self.source[self.pos:self.pos + 3]}' at position {start}", unsupported=True)
            elif self.peek("?P="):
                raise PatternError(f"backreference '(?P=' at position {start}", unsupported=True)
            elif self.peek("?<") or self.peek("?P<"):
                self.pos += 2 if self.peek("?<") else 3
                end = self.source.find(">", self.pos)
                name = self.source[self.pos:end] if end >= 0 else ""
                if not name or not (name[0].isalpha() or name[0] in "_$") or not all(c.isalnum() or c in "_$" for c in name):
                    raise PatternError(f"invalid group name at position {start}")
                self.pos = end + 1
            else:
                raise PatternError(f"group syntax '({self.source[self.pos:self.pos + 2]}' (inline flags?) at position {start}", unsupported=True)
        self.nesting += 1
        if self.nesting > _MAX_NESTING:
            raise PatternError(f"groups nest more than {_MAX_NESTING} deep at position {start}")
        inner = self.disjunction()
        self.nesting -= 1
        if not self.peek(")"):
            raise PatternError(f"unbalanced parenthesis at position {start}")
        self.pos += 1
        return inner

    def bounds(self) -> tuple[int, int | None, int] | None:
        """``{m}``, ``{m,}`` or ``{m,n}`` at the cursor: (least, most, length), or None if a literal brace."""
        found = _BOUNDS.match(self.source, self.pos)
        if found is None:
            return None
        least_text, comma, most_text = found.groups()
        least = int(least_text)
        most = (int(most_text) if most_text else None) if comma else least
        return least, most, found.end() - self.pos

    def quantifier(self, atom: _Node) -> _Node:
        if self.pos >= len(self.source):
            return atom
        char = self.source[self.pos]
        bounds = self.bounds() if char == "{" else None
        if char not in "*+?" and bounds is None:
            return atom
        if isinstance(atom, _Assert):
            raise PatternError(f"nothing to repeat at position {self.pos} (after an anchor)")
        if bounds is not None:
            least, most, length = bounds
            if most is not None and most < least:
                raise PatternError(f"numbers out of order in {{}} quantifier at position {self.pos}")
            self.pos += length
        else:
            least, most = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
            self.pos += 1
        if self.peek("?"):  # lazy: matches the same strings
            self.pos += 1
        if self.pos < len(self.source) and (self.source[self.pos] in "*+" or self.bounds() is not None):
            raise PatternError(f"nothing to repeat at position {self.pos} (a quantifier after a quantifier)")
        return _Repeat(atom, least, most)

    def escape(self) -> _Chars | _Assert:
        start = self.pos - 1
        if self.pos >= len(self.source):
            raise PatternError("trailing backslash")
        char = self.source[self.pos]
        self.pos += 1
        if char in "bB":
            return _Assert(char)
        if char in _SHORTHANDS:
            return _Chars(_SHORTHANDS[char])
        if char in "123456789" or (char == "k" and self.peek("<")):
            raise PatternError(f"backreference '\\{char}' at position {start}", unsupported=True)
        code = self.code_point(char, start)
        return _Chars([(code, code)])

    def code_point(self, char: str, start: int, *, in_class: bool = False) -> int:
        """The character an escape (already past ``\\`` and ``char``) stands for."""
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char == "b" and in_class:
            return 0x08
        if char == "0" and not (self.pos < len(self.source) and self.source[self.pos] in "0123456789"):
            return 0
        if char in "xu":
            width = 2 if char == "x" else 4
            digits = self.source[self.pos:self.pos + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                self.pos += width
                return int(digits, 16)
            raise PatternError(f"invalid escape '\\{char}{digits}' at position {start}")
        if char in "pP":
            raise PatternError(f"unicode property escape '\\{char}' at position {start}", unsupported=True)
        if char.isascii() and char.isalnum():  # ECMA-262 reads \q as q, Python refuses it
            raise PatternError(f"unknown escape '\\{char}' at position {start}", unsupported=True)
        return ord(char)

    def char_class(self) -> _Chars:
        start = self.pos - 1
        negated = self.peek("^")
        if negated:
            self.pos += 1
        if self.peek("]"):
            raise PatternError(f"']' first in the character class at position {start} (ECMA-262 and Python read it differently)", unsupported=True)
        ranges: list[tuple[int, int]] = []
        while True:
            if self.pos >= len(self.source):
                raise PatternError(f"unterminated character class at position {start}")
            if self.peek("]"):
                self.pos += 1
                return _Chars(ranges, negated)
            low = self.class_atom()
            if isinstance(low, int) and self.peek("-") and self.pos + 1 < len(self.source) and self.source[self.pos + 1] != "]":
                self.pos += 1
                high = self.class_atom()
                if not isinstance(high, int):  # [a-\d]: a, '-' and the digits
                    ranges.extend([*high, (0x2D, 0x2D), (low, low)])
                    continue
                if high < low:
                    raise PatternError(f"range out of order in character class at position {start}")
                ranges.append((low, high))
            elif isinstance(low, int):
                ranges.append((low, low))
            else:
                ranges.extend(low)

    def class_atom(self) -> int | _Ranges:
        """One character of a class (its code point), or a shorthand's ranges."""
        char = self.source[self.pos]
        self.pos += 1
        if char != "\\":
            return ord(char)
        start = self.pos - 1
        if self.pos >= len(self.source):
            raise PatternError("trailing backslash")
        char = self.source[self.pos]
        self.pos += 1
        if char in _SHORTHANDS:
            return _SHORTHANDS[char]
        if char in "123456789":
            raise PatternError(f"backreference '\\{char}' at position {start}", unsupported=True)
        return self.code_point(char, start, in_class=True)


@functools.lru_cache(maxsize=256)
def compile_pattern(source: str) -> Pattern:
    """The parsed pattern (cached: a schema's patterns come back with every request)."""
    return Pattern(source, _Parser(source).parse())


# -- matching and drawing -----------------------------------------------------------------------


def _is_word(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isascii() and (text[index].isalnum() or text[index] == "_"))


def _holds(kind: str, text: str, pos: int) -> bool:
    if kind == "^":
        return pos == 0
    if kind == "$":
        return pos == len(text)
    boundary = _is_word(text, pos - 1) != _is_word(text, pos)
    return boundary if kind == "b" else not boundary


class _Search:
    """Where the matches of a node that begin at given positions end: a set-of-positions walk, bounded."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps = 0

    def ends(self, node: _Node, starts: frozenset[int]) -> frozenset[int]:
        if not starts:
            return starts
        self.steps += len(starts)
        if self.steps > _MAX_SEARCH_STEPS:
            raise PatternError(f"matching it against a string of {len(self.text)} characters takes more than {_MAX_SEARCH_STEPS} steps")
        text = self.text
        if isinstance(node, _Chars):
            return frozenset(pos + 1 for pos in starts if pos < len(text) and node.has(ord(text[pos])))
        if isinstance(node, _Seq):
            for item in node.items:
                starts = self.ends(item, starts)
            return starts
        if isinstance(node, _Alt):
            return frozenset().union(*(self.ends(option, starts) for option in node.options))
        if isinstance(node, _Assert):
            return frozenset(pos for pos in starts if _holds(node.kind, text, pos))
        current = starts
        for _ in range(node.least):
            following = self.ends(node.item, current)
            if following == current:  # a fixed point: more repeats change nothing
                break
            current = following
        reached = set(current)
        count = node.least
        while current and (node.most is None or count < node.most):
            current = self.ends(node.item, current) - reached  # a position reached with fewer repeats can go as far
            reached |= current
            count += 1
        return frozenset(reached)


class _Draft:
    """A string being drawn, and the assertions it must satisfy once complete."""

    __slots__ = ("parts", "size", "checks")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.checks: list[tuple[int, str]] = []


class Pattern:
    """A parsed pattern: :meth:`search` a string, or :meth:`draw` one that matches."""

    def __init__(self, source: str, root: _Seq | _Alt) -> None:
        self.source = source
        self.root = root

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text`` (as :func:`re.search`)."""
        return bool(_Search(text).ends(self.root, frozenset(range(len(text) + 1))))

    def draw(self, draws: SeededDraws, min_length: int = 0, max_length: int | None = None, accept: Callable[[str], bool] | None = None) -> str:
        """A string the pattern matches (and ``accept`` too), within the lengths when some match has such a length."""
        high = _UNBOUNDED if max_length is None else max_length
        lengths_possible = self.root.min_len <= high and self.root.max_len >= min_length
        missing_lengths: str | None = None
        drafted = tries = 0
        while tries < _DRAW_ATTEMPTS and drafted < _MAX_DRAFTED:
            tries += 1
            draft = _Draft()
            if tries <= _DRAW_ATTEMPTS // 2:
                self._emit(self.root, draws, min_length, high, draft)
            else:  # the lengths may squeeze out what an assertion needs: try without them
                self._emit(self.root, draws, 0, _UNBOUNDED, draft)
            drafted += draft.size + len(draft.checks)
            text = "".join(draft.parts)
            if not all(_holds(kind, text, pos) for pos, kind in draft.checks) or (accept is not None and not accept(text)):
                continue
            if not lengths_possible or min_length <= len(text) <= high:
                return text
            if missing_lengths is None:
                missing_lengths = text
            if tries >= _LENGTH_ATTEMPTS:
                break
        if missing_lengths is not None:
            return missing_lengths
        raise PatternError(f"no string satisfies its anchors (^, $, \\b) where they stand ({tries} drafts tried)")

    def _emit(self, node: _Node, draws: SeededDraws, low: int, high: int, draft: _Draft) -> None:
        """Append a match of ``node`` to ``draft``, aiming at a length in ``[low, high]``."""
        if isinstance(node, _Chars):
            draft.parts.append(chr(_draw_char(node, draws, _word_wanted(draft))))
            draft.size += 1
        elif isinstance(node, _Seq):
            self._emit_sequence(node.items, draws, low, high, draft)
        elif isinstance(node, _Alt):
            possible = [option for option in node.options if not (draft.size and _starts_at_start(option))] or node.options
            fitting = [option for option in possible if option.min_len <= high and option.max_len >= low]
            self._emit(draws.choice(fitting or possible), draws, low, high, draft)
        elif isinstance(node, _Repeat):
            count = _repeat_count(node, draws, low, high)
            self._emit_sequence([node.item] * count, draws, low, high, draft)
        else:
            draft.checks.append((draft.size, node.kind))

    def _emit_sequence(self, items: Sequence[_Node], draws: SeededDraws, low: int, high: int, draft: _Draft) -> None:
        """Each item aims at the share of ``[low, high]`` that the items after it leave."""
        after_min = [0] * len(items)
        after_max = [0] * len(items)
        for index in range(len(items) - 2, -1, -1):
            after_min[index] = after_min[index + 1] + items[index + 1].min_len
            after_max[index] = min(_UNBOUNDED, after_max[index + 1] + items[index + 1].max_len)
        start = draft.size
        for index, item in enumerate(items):
            used = draft.size - start
            item_low = max(item.min_len, low - used - after_max[index])
            item_high = min(item.max_len, high - used - after_min[index])
            if item_low > item_high:
                item_low, item_high = item.min_len, item.max_len
            self._emit(item, draws, item_low, item_high, draft)


def _word_wanted(draft: _Draft) -> bool | None:
    """Whether the next character must be a word character, for a ``\\b``/``\\B`` just before it (None: free)."""
    for pos, kind in reversed(draft.checks):
        if pos != draft.size:
            break
        if kind in "bB":
            before = bool(draft.parts) and _is_word(draft.parts[-1], 0)
            return before != (kind == "b")
    return None


def _starts_at_start(node: _Node) -> bool:
    """Whether every match of ``node`` begins with ``^`` (so it cannot come after other characters)."""
    if isinstance(node, _Assert):
        return node.kind == "^"
    if isinstance(node, _Seq):
        return bool(node.items) and _starts_at_start(node.items[0])
    if isinstance(node, _Alt):
        return all(_starts_at_start(option) for option in node.options)
    if isinstance(node, _Repeat):
        return node.least > 0 and _starts_at_start(node.item)
    return False


def _draw_char(node: _Chars, draws: SeededDraws, word: bool | None = None) -> int:
    """One of the set's preferred characters (word characters or not, if asked), else any but surrogates."""
    choices = node.choices()
    if word is not None:
        choices = tuple(code for code in choices if _is_word(chr(code), 0) == word) or choices
    if choices:
        return draws.choice(choices)
    ranges = tuple(_without_surrogates(_complement(node.ranges) if node.negated else node.ranges))
    if not ranges:
        raise PatternError("a character class matches no character")
    first, last = draws.choice(ranges)
    return draws.between(first, last)


def _without_surrogates(ranges: _Ranges) -> Iterable[tuple[int, int]]:
    for low, high in ranges:
        if high < 0xD800 or low > 0xDFFF:
            yield low, high
            continue
        if low < 0xD800:
            yield low, 0xD7FF
        if high > 0xDFFF:
            yield 0xE000, high


def _repeat_count(node: _Repeat, draws: SeededDraws, low: int, high: int) -> int:
    """How many times to repeat: the natural range, else what the lengths need."""
    item_min, item_max = node.item.min_len, node.item.max_len
    feasible_low = node.least
    if low > 0 and item_max > 0:
        feasible_low = max(feasible_low, -(-low // item_max))
    feasible_high = node.most if node.most is not None else _UNBOUNDED
    if item_min > 0:
        feasible_high = min(feasible_high, high // item_min)
    if feasible_low > feasible_high:  # the lengths cannot hold: the pattern wins
        return draws.between(node.least, node.natural_most)
    if feasible_low <= node.natural_most:
        return draws.between(feasible_low, min(node.natural_most, feasible_high))
    return draws.between(feasible_low, min(feasible_high, feasible_low + _EXTRA_REPEATS))  # a minimum length needs more
