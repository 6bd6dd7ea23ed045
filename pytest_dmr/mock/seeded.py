"""Deterministic choices: everything the mock invents is drawn from SHA-256 of the request.

No clock, no :mod:`random`, no :func:`hash` (which changes with ``PYTHONHASHSEED``): the same
request gives the same bytes in any process, on any machine.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pytest_dmr.protocol.encoding import compact_encoder

T = TypeVar("T")

_SIXTEEN_SHORTS = struct.Struct(">16H")


canonical_json: Callable[[Any], str] = compact_encoder(sort_keys=True, default=str)
"""Key-sorted compact JSON: two requests that differ only in key order give the same text."""


def digest(text: str | bytes) -> bytes:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).digest()


class SeededDraws:
    """A stream of pseudo-random numbers: SHA-256(seed, counter), 16 bits at a time."""

    __slots__ = ("_seed", "_counter", "_pool", "_index")

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._pool: tuple[int, ...] = ()
        self._index = 16

    @classmethod
    def from_text(cls, text: str) -> SeededDraws:
        return cls(digest(text))

    def fork(self, label: str) -> SeededDraws:
        """An independent stream for one purpose (so adding draws elsewhere changes nothing here)."""
        return SeededDraws(digest(self._seed + label.encode()))

    def next16(self) -> int:
        if self._index == 16:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._pool = _SIXTEEN_SHORTS.unpack(block)
            self._index = 0
        value = self._pool[self._index]
        self._index += 1
        return value

    def take(self, count: int) -> Sequence[int]:
        """The next ``count`` 16-bit numbers (what ``count`` calls of :meth:`next16` give)."""
        index = self._index
        if index + count <= 16:
            self._index = index + count
            return self._pool[index : index + count]
        return [self.next16() for _ in range(count)]

    def below(self, bound: int) -> int:
        """An integer in ``[0, bound)``."""
        if bound <= 1:
            return 0
        if bound <= 0x10000:
            return self.next16() % bound
        return ((self.next16() << 32) | (self.next16() << 16) | self.next16()) % bound

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        return low + self.below(high - low + 1) if high > low else low

    def unit(self) -> float:
        """A float in ``[0, 1)``."""
        return ((self.next16() << 16) | self.next16()) / 4294967296.0

    def chance(self, probability: float) -> bool:
        return self.next16() < probability * 65536

    def choice(self, options: Sequence[T]) -> T:
        count = len(options)
        if count > 0x10000:
            return options[self.below(count)]
        index = self._index
        if index == 16:  # next16() inlined: the prose draws thousands of words
            return options[self.next16() % count]
        self._index = index + 1
        return options[self._pool[index] % count]

    def hex(self, length: int) -> str:
        """``length`` hex characters."""
        return "".join(f"{self.next16():04x}" for _ in range((length + 3) // 4))[:length]
