"""Token log-probabilities for a request that asks for them (``logprobs``): llama.cpp's shape, each
generated piece with its ``id``, ``token``, ``bytes`` and ``logprob``, and its ``top_logprobs``
(the piece itself first, then common tokens less likely). The numbers are made up, from the
answer: the same answer, plain or streamed, the same numbers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

_VOCABULARY_SIZE = 49152
_DEFAULT_TOP = 20
"""llama.cpp's count of alternatives for ``logprobs: true`` without ``top_logprobs``."""
_ALTERNATIVES = (" the", " a", ",", ".", " and", " to", " of", " is", " in", " it", "The", "I", " that", " for", " on",
                 " with", " as", " this", " be", " at", " you")  # fmt: skip


def top_count(body: Mapping[str, Any], *, chat: bool = True) -> int:
    """How many alternatives each token lists: a chat's ``top_logprobs``, else ``logprobs`` as a number
    (``true``: 20 for a chat, 1 for a completion); 0 when the request asks for none (then a chat's
    answer has no ``logprobs``, a completion's has ``null``)."""
    asked = body.get("logprobs")
    if asked is None or asked is False:
        return 0
    top = body.get("top_logprobs") if chat else None
    if not isinstance(top, (int, float)):  # llama.cpp's json_value: absent or not a number, the default
        top = (_DEFAULT_TOP if chat else 1) if asked is True else asked
    return max(0, int(min(top, _VOCABULARY_SIZE))) if isinstance(top, (int, float)) and top == top else 0  # (NaN is not top)


def _entry(token: str, logprob: float) -> dict[str, Any]:
    token_id = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % _VOCABULARY_SIZE
    return {"id": token_id, "token": token, "bytes": list(token.encode()), "logprob": logprob}


def _others(piece: str, count: int) -> list[str]:
    """``count`` tokens other than ``piece``: the common ones, then numbers (llama.cpp lists as many as asked)."""
    found: list[str] = []
    rank = 0
    while len(found) < count:
        token = _ALTERNATIVES[rank] if rank < len(_ALTERNATIVES) else f" {rank}"
        if token != piece:
            found.append(token)
        rank += 1
    return found


def token_logprobs(pieces: list[str], top: int) -> list[dict[str, Any]]:
    """One entry per generated piece, as in ``choices[].logprobs.content``."""
    seed = hashlib.sha256("".join(pieces).encode()).hexdigest()
    found = []
    for index, piece in enumerate(pieces):
        digest = hashlib.sha256(f"{seed}\0{index}\0{piece}".encode()).digest()
        chosen = -round(digest[0] / 255 * 2.5 + 0.01, 6)
        others = _others(piece, top - 1)
        alternatives = [_entry(token, round(chosen - 0.25 * (rank + 1) - digest[(rank + 1) % 32] / 2550, 6)) for rank, token in enumerate(others)]
        found.append(_entry(piece, chosen) | {"top_logprobs": [_entry(piece, chosen), *alternatives][:top]})
    return found
