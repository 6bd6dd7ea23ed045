"""What the deterministic mock costs per call, against canned-answer HTTP mocks, on both stacks.

httpx2 (the adapter's stack): a non-streamed ``generate`` through
:class:`~pytest_dmr.adapter.DockerModelRunnerAdapter`, answered (a) by
:class:`~pytest_dmr.mock.MockModelRunner`, generating its answer each call, and (b) by httpx2-pytest
(``pytest_httpx2``, pytest-httpx for httpx2) sending a fixed body: the very bytes the mock gave for
the same request, so both sides parse the same answer.

httpx: the same chat request sent with an ``httpx.AsyncClient`` and its JSON parsed, answered (a) by
the mock and (b) by respx with the same fixed body.

Same code per stack, same process, rounds interleaved. Also shown: the mock on httpx2 with a new
prompt at every call, so that what it keeps from one request to the next (how a prompt reads, a
message's token count) never helps. Prints the median per call in microseconds
and the ratio mock/canned for each stack; a floor (a bare ``MockTransport`` returning the bytes:
the stack and the caller alone) is shown for information, and so is the least a generating
transport can do (``least_generating.py``: the mock's generator with none of its other layers),
which bounds what any rework of those layers could reach.

    python benchmarks/mock_overhead.py [--calls 2000] [--rounds 7] [--instructions 1000]

``--instructions CALLS`` also counts each side's instructions per call under valgrind's cachegrind
(``PYTHONHASHSEED=0``; a run of ``CALLS`` calls minus a run of none), which a loaded machine does
not disturb; it takes a few minutes. SHA-256 counts high there: valgrind hides the CPU's SHA
instructions.

Target (issue 8): the mock at most 0.8x the canned peer's time per call, on each stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import httpx2
import respx
from pytest_httpx2 import HTTPXMock
from pytest_httpx2._options import _HTTPXMockOptions

from pytest_dmr.protocol import addresses, encoding
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner

from least_generating import LeastGenerating

PROMPT = "Summarise the plot of Hamlet in one sentence."
OPTIONS = {"max_tokens": 32, "temperature": 0}
RUNNER_URL = "http://127.0.0.1:12434"  # the canned mocks intercept it: nothing is sent anywhere
CHAT_URL = RUNNER_URL + "/engines/v1/chat/completions"
CHAT_BODY = {"model": addresses.DEFAULT_MODEL, "messages": [{"role": "user", "content": PROMPT}], **OPTIONS}
TARGET = 0.8
NEW_PROMPTS = "httpx2 mock, a new prompt each call"
STACKS = (("httpx2, adapter.generate", "httpx2 mock", "httpx2-pytest"), ("httpx, AsyncClient.post", "httpx mock", "respx"))
WARM_UP = 300

Call = Callable[[], Awaitable[Any]]


@contextlib.contextmanager
def httpx2_pytest(canned: bytes) -> Iterator[None]:
    """What the ``httpx2_mock`` fixture does, outside pytest: httpx2's transport answers from HTTPXMock."""
    options = _HTTPXMockOptions(assert_all_responses_were_requested=False, can_send_already_matched_responses=True)
    canned_mock = HTTPXMock(options)
    canned_mock.add_response(method="POST", url=CHAT_URL, content=canned, headers={"content-type": "application/json"})
    real = httpx2.AsyncHTTPTransport.handle_async_request

    async def handle(transport: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        return await canned_mock._handle_async_request(transport, request)

    httpx2.AsyncHTTPTransport.handle_async_request = handle  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx2.AsyncHTTPTransport.handle_async_request = real  # type: ignore[method-assign]


async def per_call_microseconds(call: Call, calls: int) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        await call()
        samples.append((clock() - start) / 1000)
    return samples


async def run(calls: int, rounds: int, only: str | None = None) -> dict[str, list[float]]:
    """Each side's microseconds per call; with ``only``, just ``calls`` calls of that side (to count)."""
    mock = MockModelRunner()
    adapters = {
        "httpx2 mock": DockerModelRunnerAdapter(mock.base_url, transport=mock),
        "httpx2-pytest": DockerModelRunnerAdapter(RUNNER_URL),
    }
    canned = encoding.dumps((await adapters["httpx2 mock"].chat([{"role": "user", "content": PROMPT}], **OPTIONS)).raw).encode()
    adapters["httpx2 floor"] = DockerModelRunnerAdapter(RUNNER_URL, transport=httpx2.MockTransport(
        lambda request: httpx2.Response(200, content=canned, headers={"content-type": "application/json"})))
    adapters["httpx2 least"] = DockerModelRunnerAdapter(RUNNER_URL, transport=LeastGenerating())
    clients = {
        "httpx mock": httpx.AsyncClient(transport=mock),
        "respx": httpx.AsyncClient(),
        "httpx floor": httpx.AsyncClient(transport=httpx.MockTransport(
            lambda request: httpx.Response(200, content=canned, headers={"content-type": "application/json"}))),
        "httpx least": httpx.AsyncClient(transport=LeastGenerating()),
    }
    router = respx.mock(assert_all_called=False, assert_all_mocked=True)
    router.post(CHAT_URL).respond(200, content=canned, headers={"content-type": "application/json"})
    body = json.dumps(CHAT_BODY).encode()

    def generate(adapter: DockerModelRunnerAdapter) -> Call:
        return lambda: adapter.generate(PROMPT, **OPTIONS)

    def post(client: httpx.AsyncClient) -> Call:
        async def call() -> Any:
            response = await client.post(CHAT_URL, content=body, headers={"content-type": "application/json"})
            return response.json()["choices"][0]["message"]["content"]
        return call

    prompts = itertools.cycle([f"{PROMPT} (request {index})" for index in range(4 * calls)])

    def generate_new_prompt(adapter: DockerModelRunnerAdapter) -> Call:
        return lambda: adapter.generate(next(prompts), **OPTIONS)

    sides = {**{name: generate(adapter) for name, adapter in adapters.items()}, **{name: post(client) for name, client in clients.items()}}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    with router, httpx2_pytest(canned):
        answers = {name: await call() for name, call in sides.items()}
        sides[NEW_PROMPTS] = generate_new_prompt(adapters["httpx2 mock"])  # no canned peer: a figure to read beside the others
        samples[NEW_PROMPTS] = []
        assert len(set(answers.values())) == 1, f"every side must give the same answer: {answers}"
        if only is not None:
            for _ in range(WARM_UP + calls):
                await sides[only]()
            rounds = 0
        for _ in range(max(calls // 10, 50) if only is None else 0):  # warm up every path
            for call in sides.values():
                await call()
        for _ in range(rounds):
            for name, call in sides.items():
                gc.collect()
                samples[name].extend(await per_call_microseconds(call, calls))
    for adapter in adapters.values():
        await adapter.aclose()
    for client in clients.values():
        await client.aclose()
    return samples


def instructions(side: str, calls: int) -> int:
    """The instructions a process running ``calls`` calls of ``side`` executes (cachegrind)."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--only", side, "--calls", str(calls)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in cachegrind's output: {done.stderr[-500:]}")
    return int(found[1].replace(",", ""))


def print_instructions(calls: int) -> None:
    per_call = {}
    for _, *sides in STACKS:
        for side in (*sides, sides[0].replace("mock", "floor"), sides[0].replace("mock", "least")):
            per_call[side] = (instructions(side, calls) - instructions(side, 0)) / calls
    print(f"instructions per call (cachegrind, {calls} calls minus none):")
    for side, count in per_call.items():
        print(f"  {side:14}: {count / 1000:7.1f}K")
    for stack, mock_side, peer in STACKS:
        least = per_call[mock_side.replace("mock", "least")]
        print(f"  {stack}: mock/{peer} {per_call[mock_side] / per_call[peer]:.3f}; the least a generating transport can do: "
              f"{least / per_call[peer]:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round and side (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, interleaved (default 7)")
    parser.add_argument("--instructions", type=int, default=0, metavar="CALLS", help="also count instructions per call (cachegrind)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one side's calls, untimed: what --instructions counts
    args = parser.parse_args(argv)
    if args.only is not None:
        asyncio.run(run(args.calls, 0, only=args.only))
        return 0

    samples = asyncio.run(run(args.calls, args.rounds))
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{args.rounds} rounds x {args.calls} calls per side; median (mean) us per call")
    for name, values in samples.items():
        print(f"  {name:14}: {median[name]:7.1f} ({statistics.fmean(values):7.1f})")
    print(f"  ({NEW_PROMPTS}: the mock's caches of prompt readings and message token counts miss; for information)")
    ok = True
    for stack, mock_side, peer in STACKS:
        ratio = median[mock_side] / median[peer]
        ok = ok and ratio <= TARGET
        floor = median[mock_side.replace("mock", "floor")]
        own, peer_own = median[mock_side] - floor, median[peer] - floor
        least = median[mock_side.replace("mock", "least")] / median[peer]
        print(f"  {stack}: ratio mock/{peer} {ratio:.2f} (target <= {TARGET}); over the floor, the mock's own work "
              f"{own:.1f} us/call against {peer}'s {peer_own:.1f}: {own / peer_own:.2f}; "
              f"the least a generating transport can do: {least:.2f}")
    if args.instructions > 0:
        if shutil.which("valgrind") is None:
            print("instructions: not counted (valgrind is not installed)")
        else:
            print_instructions(args.instructions)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
