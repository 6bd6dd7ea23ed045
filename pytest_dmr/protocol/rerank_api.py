"""Reranking: DMR's ``/rerank`` and ``/score`` routes and llama.cpp's rerank API, with no I/O.

DMR (``pkg/routing/router.go``, ``pkg/inference/scheduling``): ``POST /rerank`` and ``/score`` are
rewritten to ``/engines/rerank`` and ``/engines/score`` (an alias, not a redirect; exact paths
only); ``POST /engines[/{backend}]/rerank|score`` go through the same checks as chat completions
(plain-text 400/404/500 errors, DMR-PROTOCOL.md section 3.3), then to a runner in **reranking**
mode: a llama.cpp server of its own for that model, started with ``--embeddings --reranking``
(settings from ``_configure`` for that mode, else the model's completion settings). So DMR never
answers llama.cpp's ``501 not_supported_error``: that is only what a llama.cpp server started
without ``--reranking`` says. The path is cut to ``/rerank`` or ``/score`` upstream. llama.cpp
serves ``/rerank`` (also ``/reranking``, ``/v1/rerank``, ``/v1/reranking``) but has no ``/score``:
DMR loads the runner and passes on llama.cpp's 404 (measured on xllamacpp 2026.10.11549).

llama.cpp's rerank API (Jina's shape; TEI's when the body has ``texts``): ``query`` (a string),
``documents`` (strings), ``top_n`` (default: all), and for TEI ``return_text``. Answer: the results
sorted by score, best first, cut to ``top_n``: ``{"model","object":"list","usage":{...},
"results":[{"index","relevance_score"}]}``, or for TEI a bare ``[{"index","score"[,"text"]}]``. Jina's
``return_documents`` is ignored. Scores are the model's logits: any real number.

The mock scores with :func:`relevance_scores` (deterministic, word overlap) and answers with
:func:`answer`; the emulator starts its reranking runner with llama.cpp's ``--reranking``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytest_dmr.protocol._regex import compiled
from pytest_dmr.protocol.openai_api import backend_error_body

__all__ = [
    "ALIAS_PATHS",
    "LLAMACPP_RERANK_ARGS",
    "LLAMACPP_RERANK_PATHS",
    "NOT_SUPPORTED_MESSAGE",
    "RERANKING_MODE",
    "SCORE_NOT_FOUND_BODY",
    "RerankError",
    "RerankRequest",
    "RerankRoute",
    "alias_target",
    "answer",
    "match_rerank_path",
    "not_supported_body",
    "parse_request",
    "relevance_scores",
    "rerank_response",
    "upstream_path",
]

RERANKING_MODE = "reranking"
"""The runner mode the scheduler asks for on ``/rerank`` and ``/score``."""
ALIAS_PATHS = ("/rerank", "/score")
LLAMACPP_RERANK_ARGS = ("--embeddings", "--reranking")
"""What DMR adds to llama.cpp's command line for a reranking-mode runner (pooling type ``rank``)."""
LLAMACPP_RERANK_PATHS = ("/rerank", "/reranking", "/v1/rerank", "/v1/reranking")
NOT_SUPPORTED_MESSAGE = "This server does not support reranking. Start it with `--reranking`"
SCORE_NOT_FOUND_BODY: dict[str, Any] = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
"""llama.cpp's 404 for a path it does not serve, ``/score`` among them (its keys in this order)."""


class RerankRoute(NamedTuple):
    """A reranking route: the named backend (``None``: the default) and ``rerank`` or ``score``."""

    backend: str | None
    endpoint: str


_RERANK_PATH = r"^/engines(?:/(?P<backend>[^/]+))?/(?P<endpoint>rerank|score)$"


def alias_target(path: str) -> str | None:
    """DMR's alias: ``/rerank`` -> ``/engines/rerank``, ``/score`` -> ``/engines/score`` (exact paths, any method)."""
    return "/engines" + path if path in ALIAS_PATHS else None


def match_rerank_path(path: str) -> RerankRoute | None:
    """``/engines[/{backend}]/rerank|score`` or an alias (``POST`` only; other methods: DMR's 404 ``not found``)."""
    found = compiled(_RERANK_PATH).match(alias_target(path) or path)
    return RerankRoute(found["backend"], found["endpoint"]) if found else None


def upstream_path(path: str) -> str:
    """The path DMR sends to the runner: cut at the first ``/v1/``, else ``/rerank``, else ``/score``."""
    for marker in ("/v1/", "/rerank", "/score"):
        index = path.find(marker)
        if index != -1:
            return path[index:]
    return path


def not_supported_body() -> dict[str, Any]:
    """llama.cpp's 501 from a server started without ``--reranking`` (not something DMR sends)."""
    return backend_error_body(501, NOT_SUPPORTED_MESSAGE, "not_supported_error")


class RerankError(Exception):
    """A request llama.cpp refuses: ``status`` and its JSON error body (:func:`backend_error_body`)."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.body = backend_error_body(status, message, type)


@dataclass(frozen=True)
class RerankRequest:
    """A rerank body as llama.cpp reads it. ``tei``: the body has ``texts`` (TEI's answer shape)."""

    query: str
    documents: tuple[str, ...]
    top_n: int
    tei: bool = False
    return_text: bool = False
    model: str | None = None


def _strings(value: Any) -> list[str] | None:
    return list(value) if isinstance(value, list) and all(isinstance(item, str) for item in value) else None


def _top_n(value: Any, default: int) -> int:
    """nlohmann's ``get<int>``: a number (a fraction cut toward zero) or a boolean; anything else: the default."""
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, float) and value == value and abs(value) < 2**31:
        return int(value)
    return default


def parse_request(body: Mapping[str, Any]) -> RerankRequest:
    """llama.cpp's checks, in order (DMR has already checked the JSON and ``model``): 400
    ``"query" must be provided`` / ``must be a string``, 400 ``"documents" must be a non-empty
    string array`` (``documents``, else ``texts``; a field of the wrong type counts as absent), and
    500 for a negative ``top_n`` (llama.cpp's ``vector::_M_default_append``)."""
    if "query" not in body:
        raise RerankError(400, '"query" must be provided')
    query = body["query"]
    if not isinstance(query, str):
        raise RerankError(400, '"query" must be a string')
    documents = _strings(body.get("documents"))
    if documents is None:
        documents = _strings(body.get("texts")) or []
    if not documents:
        raise RerankError(400, '"documents" must be a non-empty string array')
    top_n = _top_n(body.get("top_n"), len(documents))
    if top_n < 0:
        raise RerankError(500, "vector::_M_default_append", "server_error")
    model = body.get("model")
    return RerankRequest(
        query=query, documents=tuple(documents), top_n=top_n, tei="texts" in body,
        return_text=body.get("return_text") is True, model=model if isinstance(model, str) else None,
    )  # fmt: skip


def rerank_response(
    request: RerankRequest, scores: Sequence[float], *, model_name: str, prompt_tokens: int
) -> dict[str, Any] | list[dict[str, Any]]:
    """llama.cpp's answer: results best first (equal scores in document order), at most ``top_n``;
    Jina's object, or TEI's bare list (``score``, and ``text`` when ``return_text``)."""
    order = sorted(range(len(scores)), key=lambda index: -scores[index])[: request.top_n]
    if request.tei:
        results: list[dict[str, Any]] = []
        for index in order:
            result: dict[str, Any] = {"index": index, "score": scores[index]}
            if request.return_text:
                result["text"] = request.documents[index]
            results.append(result)
        return results
    return {
        "model": request.model if request.model is not None else model_name,
        "object": "list",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "results": [{"index": index, "relevance_score": scores[index]} for index in order],
    }


def _words(text: str) -> list[str]:
    return compiled(r"\w+").findall(text.casefold())


def _tiebreak(query: str, document: str) -> float:
    """A number in [0, 1) from SHA-256 of the pair: the same on every platform and in every process."""
    digest = hashlib.sha256(b"pytest-dmr rerank\0" + query.encode() + b"\0" + document.encode()).digest()
    return int.from_bytes(digest[:6], "big") / 2**48


def relevance_scores(query: str, documents: Sequence[str]) -> list[float]:
    """The mock's relevance of each document to ``query``, in [0, 1).

    Words are runs of letters and digits, case-folded. A document that contains more of the query's
    distinct words always scores higher; among documents that share as many, the one with fewer
    distinct words of its own (more of it about the query) scores higher, and a SHA-256 tiebreak of
    (query, document) orders the rest. Plain IEEE arithmetic only (no ``hash()``, no ``random``,
    no ``exp``/``log``), so the scores are the same bytes everywhere.
    """
    wanted = set(_words(query))
    scores = []
    for document in documents:
        own = set(_words(document))
        shared = len(wanted & own)
        density = shared / len(own) if own else 0.0
        scores.append((shared + 0.5 * density + 0.01 * _tiebreak(query, document)) / (len(wanted) + 1))
    return scores


def answer(endpoint: str, body: Mapping[str, Any], *, model_name: str) -> tuple[int, Any]:
    """What the mock's reranking runner answers (status, JSON body), as llama.cpp would: ``score``
    gets llama.cpp's 404; ``rerank`` the :func:`relevance_scores` ranking, or a :class:`RerankError`'s
    status and body. ``prompt_tokens``: the words of the query and of each document, per document."""
    if endpoint != "rerank":
        return 404, SCORE_NOT_FOUND_BODY
    try:
        request = parse_request(body)
    except RerankError as error:
        return error.status, error.body
    query_words = len(request.query.split())
    tokens = sum(query_words + len(document.split()) for document in request.documents)
    scores = relevance_scores(request.query, request.documents)
    return 200, rerank_response(request, scores, model_name=model_name, prompt_tokens=tokens)
