"""Reranking (``/rerank``, ``/score``): DMR's routes and path rewrite, llama.cpp's request checks and
answer shapes (measured on xllamacpp 2026.10.11549, SmolLM2 with ``--embeddings --reranking``), and the
mock's relevance scores: sensible ordering, and the same bytes in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytest_dmr.protocol import rerank_api
from pytest_dmr.protocol.encoding import dumps
from pytest_dmr.protocol.rerank_api import RerankRoute, answer, match_rerank_path, parse_request, relevance_scores

DOCS = ["The giant panda is a bear.", "Paris is the capital of France.", "hi"]


@pytest.mark.parametrize(
    ("path", "route"),
    [("/rerank", RerankRoute(None, "rerank")), ("/score", RerankRoute(None, "score")),
     ("/engines/rerank", RerankRoute(None, "rerank")), ("/engines/score", RerankRoute(None, "score")),
     ("/engines/llama.cpp/rerank", RerankRoute("llama.cpp", "rerank")), ("/engines/vllm/score", RerankRoute("vllm", "score")),
     ("/rerank/", None), ("/v1/rerank", None), ("/engines/llama.cpp/v1/rerank", None), ("/engines/a/b/rerank", None),
     ("/reranking", None), ("/engines/rerank/x", None)],
)  # fmt: skip
def test_routes(path: str, route: RerankRoute | None) -> None:
    assert match_rerank_path(path) == route


def test_alias_and_upstream_paths() -> None:
    assert rerank_api.alias_target("/rerank") == "/engines/rerank"
    assert rerank_api.alias_target("/score") == "/engines/score"
    assert rerank_api.alias_target("/rerank/x") is None
    assert rerank_api.upstream_path("/engines/rerank") == "/rerank"
    assert rerank_api.upstream_path("/engines/llama.cpp/score") == "/score"
    assert rerank_api.upstream_path("/engines/llama.cpp/v1/chat/completions") == "/v1/chat/completions"
    assert rerank_api.RERANKING_MODE == "reranking"
    assert rerank_api.LLAMACPP_RERANK_ARGS == ("--embeddings", "--reranking")


def test_jina_answer_shape_sorted_and_cut_to_top_n() -> None:
    status, body = answer("rerank", {"model": "ai/smollm2", "query": "What is a panda?", "documents": DOCS, "top_n": 2,
                                     "return_documents": True}, model_name="server-alias")  # fmt: skip
    assert status == 200
    assert list(body) == ["model", "object", "usage", "results"]
    assert body["model"] == "ai/smollm2" and body["object"] == "list"
    assert list(body["usage"]) == ["prompt_tokens", "total_tokens"] and body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert [list(r) for r in body["results"]] == [["index", "relevance_score"]] * 2  # return_documents: ignored by llama.cpp
    assert [r["index"] for r in body["results"]] == [0, 1]
    assert body["results"][0]["relevance_score"] > body["results"][1]["relevance_score"]


@pytest.mark.parametrize(("top_n", "count"), [(None, 3), (0, 0), (1, 1), (9, 3), (1.5, 1), ("2", 3), (True, 1)])
def test_top_n_as_llama_cpp_reads_it(top_n: object, count: int) -> None:
    body: dict[str, object] = {"query": "x", "documents": DOCS}
    if top_n is not None:
        body["top_n"] = top_n
    status, answer_body = answer("rerank", body, model_name="m")
    assert status == 200 and len(answer_body["results"]) == count
    assert answer_body["model"] == "m"  # no model in the body: the server's own name


def test_tei_shape_with_texts() -> None:
    status, body = answer("rerank", {"query": "panda", "texts": ["paris", "a panda"], "return_text": True}, model_name="m")
    assert status == 200
    assert body == [{"index": 1, "score": body[0]["score"], "text": "a panda"}, {"index": 0, "score": body[1]["score"], "text": "paris"}]
    _, plain = answer("rerank", {"query": "panda", "texts": ["paris", "a panda"]}, model_name="m")
    assert [list(r) for r in plain] == [["index", "score"]] * 2


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [({"documents": ["a"]}, 400, '{"error":{"code":400,"message":"\\"query\\" must be provided","type":"invalid_request_error"}}'),
     ({"query": 1, "documents": ["a"]}, 400, '{"error":{"code":400,"message":"\\"query\\" must be a string","type":"invalid_request_error"}}'),
     ({"query": None, "documents": ["a"]}, 400, '{"error":{"code":400,"message":"\\"query\\" must be a string","type":"invalid_request_error"}}'),
     ({"query": "x"}, 400, '{"error":{"code":400,"message":"\\"documents\\" must be a non-empty string array","type":"invalid_request_error"}}'),
     ({"query": "x", "documents": [1, 2]}, 400, '{"error":{"code":400,"message":"\\"documents\\" must be a non-empty string array","type":"invalid_request_error"}}'),
     ({"query": "x", "documents": "abc"}, 400, '{"error":{"code":400,"message":"\\"documents\\" must be a non-empty string array","type":"invalid_request_error"}}'),
     ({"query": "x", "documents": [], "texts": ["a"]}, 400, '{"error":{"code":400,"message":"\\"documents\\" must be a non-empty string array","type":"invalid_request_error"}}'),
     ({"query": "x", "documents": ["a", "b"], "top_n": -1}, 500, '{"error":{"code":500,"message":"vector::_M_default_append","type":"server_error"}}')],
)  # fmt: skip
def test_llama_cpp_errors(body: dict[str, object], status: int, text: str) -> None:
    got_status, got_body = answer("rerank", body, model_name="m")
    assert (got_status, dumps(got_body)) == (status, text)


def test_documents_of_the_wrong_type_fall_back_to_texts() -> None:
    request = parse_request({"query": "x", "documents": [1], "texts": ["a"]})
    assert request.documents == ("a",) and request.tei


def test_score_is_llama_cpp_404_and_without_reranking_501() -> None:
    assert answer("score", {"query": "x", "documents": ["a"]}, model_name="m") == (404, rerank_api.SCORE_NOT_FOUND_BODY)
    assert dumps(rerank_api.SCORE_NOT_FOUND_BODY) == '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}'
    assert dumps(rerank_api.not_supported_body()) == (
        '{"error":{"code":501,"message":"This server does not support reranking. Start it with `--reranking`",'
        '"type":"not_supported_error"}}'
    )


# The mock's relevance scores


def test_documents_sharing_more_query_words_score_higher() -> None:
    query = "How do giant pandas eat bamboo?"
    documents = ["Paris is lovely in spring.", "Giant pandas live in China.", "Giant pandas eat bamboo all day.",
                 "BAMBOO!", "How do giant pandas eat bamboo?"]  # fmt: skip
    scores = relevance_scores(query, documents)
    assert all(0 <= score < 1 for score in scores)
    assert scores[4] > scores[2] > scores[1] > scores[3] > scores[0]
    status, body = answer("rerank", {"query": query, "documents": documents}, model_name="m")
    assert [r["index"] for r in body["results"]] == [4, 2, 1, 3, 0]


def test_shared_word_count_always_dominates() -> None:
    query = "alpha beta gamma delta"
    one_word = ["alpha"] + ["alpha " + " ".join(f"w{i}" for i in range(n)) for n in range(1, 40)]
    two_words = ["alpha beta " + " ".join(f"w{i}" for i in range(n)) for n in range(0, 40)]
    scores = relevance_scores(query, one_word + two_words + ["nothing here"])
    assert min(scores[len(one_word):-1]) > max(scores[: len(one_word)]) > scores[-1]


def test_equal_documents_tie_and_keep_document_order() -> None:
    scores = relevance_scores("a b", ["a b c", "zzz", "a b c"])
    assert scores[0] == scores[2]
    _, body = answer("rerank", {"query": "a b", "documents": ["a b c", "zzz", "a b c"]}, model_name="m")
    assert [r["index"] for r in body["results"]] == [0, 2, 1]


def test_case_and_punctuation_do_not_matter_but_the_tiebreak_separates_texts() -> None:
    upper, lower = relevance_scores("Panda", ["PANDA!", "panda"])
    assert int(upper * 100) == int(lower * 100) and upper != lower
    assert relevance_scores("", ["a", ""]) == relevance_scores("", ["a", ""])


SCORE_CODE = (
    "import json; from pytest_dmr.protocol.rerank_api import relevance_scores; "
    "print(json.dumps([s.hex() for s in relevance_scores('What is a panda?', %r)]))" % (DOCS + ["ünïcödé panda 熊猫"],)
)


def scores_in_subprocess(hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run([sys.executable, "-c", SCORE_CODE], env=env, capture_output=True, text=True, timeout=60, check=True)
    result: list[str] = json.loads(completed.stdout)
    return result


def test_scores_are_the_same_bits_across_processes_and_hash_seeds() -> None:
    here = [score.hex() for score in relevance_scores("What is a panda?", DOCS + ["ünïcödé panda 熊猫"])]
    assert scores_in_subprocess("1") == scores_in_subprocess("4242") == here


def test_scores_are_pinned() -> None:
    """Plain IEEE arithmetic on SHA-256: these exact values on every platform."""
    assert relevance_scores("What is a panda?", DOCS) == [0.6500961567273736, 0.2178393751740677, 0.0012725638771334004]
