"""One llama.cpp server (xllamacpp) for one model, run as its own process by the llama engine.

``python -m pytest_dmr.emulator.llama_process --model FILE [--embedding] ...`` loads the model,
prints ``LISTENING <url>`` on stdout once the server answers, and serves until its stdin closes
(the emulator closes it to unload the model, and an emulator that dies closes it too).

A separate process, as DMR runs its backends: xllamacpp's ``Server`` holds the GIL for the whole
load, so loading in the emulator's own process would freeze every request it is serving.
"""

from __future__ import annotations

import argparse
import sys

READY_PREFIX = "LISTENING "


def build_params(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import xllamacpp

    from pytest_dmr.emulator.gguf import GGUFError, read_header

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.model_alias = {args.alias}
    params.endpoint_metrics = True
    if args.reranking:  # llama.cpp's --reranking: embeddings with rank pooling (scores are the model's logits)
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_RANK
    elif args.embedding:
        params.embedding = True
        try:
            own_pooling = read_header(args.model).has_pooling
        except (GGUFError, OSError):
            own_pooling = False
        if not own_pooling:  # a chat model: mean pooling makes /v1/embeddings answer
            params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_dmr.emulator.llama_process")
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--alias", required=True, help="the model name the server reports")
    parser.add_argument("--embedding", action="store_true", help="serve /v1/embeddings")
    parser.add_argument("--reranking", action="store_true", help="serve /rerank (rank pooling), as DMR's reranking mode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, default=2048)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)

    import xllamacpp

    server = xllamacpp.Server(build_params(args))
    print(READY_PREFIX + server.listening_address, flush=True)
    sys.stdin.read()  # until the emulator closes our stdin
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
