"""Deterministic unit vectors that behave a little like real embeddings.

Each word of the text (lowercased letters and digits) adds +1 or -1 to eight of the vector's
dimensions, chosen by SHA-256 of the word (common words such as "the" count a quarter); a small dense part from SHA-256 of the model and the
whole text makes every vector distinct and dense. The sum is scaled to length 1. Texts that share
words therefore have a higher cosine similarity than unrelated texts, and the same text always
gives the same vector (for the same model and dimension).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct

_WORD = re.compile(r"[^\W_]+")
_FEATURES_PER_WORD = 8
_DENSE_WEIGHT = 0.15
_SHORTS = struct.Struct(">16H")
_word_features: dict[tuple[str, int], tuple[tuple[int, float], ...]] = {}
_WORD_CACHE_LIMIT = 50_000
_STOPWORD_WEIGHT = 0.25
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or that the this to was were will with you".split()
)


def _features(word: str, dimensions: int) -> tuple[tuple[int, float], ...]:
    key = (word, dimensions)
    found = _word_features.get(key)
    if found is None:
        shorts = _SHORTS.unpack(hashlib.sha256(word.encode()).digest())
        found = tuple(
            (((shorts[2 * i] << 16) | shorts[2 * i + 1]) % dimensions, 1.0 if shorts[2 * i] & 1 else -1.0)
            for i in range(_FEATURES_PER_WORD)
        )
        if len(_word_features) < _WORD_CACHE_LIMIT:
            _word_features[key] = found
    return found


def _dense(seed: bytes, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
        values.extend(short / 32767.5 - 1.0 for short in _SHORTS.unpack(block))
    return values[:dimensions]


def embedding_vector(text: str, *, model: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats for ``text``."""
    seed = hashlib.sha256(f"{model}\x00{dimensions}\x00{text}".encode()).digest()
    vector = [value * _DENSE_WEIGHT for value in _dense(seed, dimensions)]
    for word in _WORD.findall(text.lower()):
        weight = _STOPWORD_WEIGHT if word in _STOPWORDS else 1.0
        for index, sign in _features(word, dimensions):
            vector[index] += sign * weight
    norm = math.sqrt(math.fsum(value * value for value in vector))
    return [value / norm for value in vector]
