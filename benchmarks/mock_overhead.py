"""What the deterministic mock costs per call, against a canned HTTP mock.

A non-streamed ``generate`` through :class:`~pytest_dmr.adapter.DockerModelRunnerAdapter`, answered
(a) by :class:`~pytest_dmr.mock.MockModelRunner` and (b) by respx with a fixed body (the very bytes
the mock gave for the same request, so both sides parse the same answer). Same adapter code, same
process, rounds interleaved. Prints the median per call in microseconds and the ratio mock/respx.

    python benchmarks/mock_overhead.py [--calls 2000] [--rounds 7]

Target (issue 2): ratio at most 1.5, and under 200 us a call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import respx

from pytest_dmr.protocol import encoding
from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.mock import MockModelRunner

PROMPT = "Summarise the plot of Hamlet in one sentence."
OPTIONS = {"max_tokens": 32, "temperature": 0}
RUNNER_URL = "http://127.0.0.1:12434"  # respx intercepts it: nothing is sent anywhere


async def per_call_microseconds(generate: Callable[[], Awaitable[str]], calls: int) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        await generate()
        samples.append((clock() - start) / 1000)
    return samples


async def run(calls: int, rounds: int) -> dict[str, list[float]]:
    mock = MockModelRunner()
    on_mock = DockerModelRunnerAdapter(mock.base_url, transport=mock)
    canned_answer = (await on_mock.chat([{"role": "user", "content": PROMPT}], **OPTIONS)).raw
    canned = encoding.dumps(canned_answer).encode()

    on_respx = DockerModelRunnerAdapter(RUNNER_URL)
    router = respx.mock(assert_all_called=False, assert_all_mocked=True)
    router.post(f"{RUNNER_URL}/engines/v1/chat/completions").respond(
        200, content=canned, headers={"content-type": "application/json"}
    )

    # Informational floor: the same adapter on a bare httpx.MockTransport returning the canned bytes
    # (no mocking library, no generation): what httpx and the adapter alone cost.
    on_floor = DockerModelRunnerAdapter(
        RUNNER_URL,
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, content=canned, headers={"content-type": "application/json"})
        ),
    )

    async def generate_on_mock() -> str:
        return await on_mock.generate(PROMPT, **OPTIONS)

    async def generate_on_respx() -> str:
        return await on_respx.generate(PROMPT, **OPTIONS)

    async def generate_on_floor() -> str:
        return await on_floor.generate(PROMPT, **OPTIONS)

    samples: dict[str, list[float]] = {"mock": [], "respx": [], "floor": []}
    sides = (("mock", generate_on_mock), ("respx", generate_on_respx), ("floor", generate_on_floor))
    with router:
        assert await generate_on_mock() == await generate_on_respx(), "both must give the same answer"
        for _ in range(max(calls // 10, 50)):  # warm up every path
            for _, generate in sides:
                await generate()
        for _ in range(rounds):
            for name, generate in sides:
                gc.collect()
                samples[name].extend(await per_call_microseconds(generate, calls))
    await on_mock.aclose()
    await on_respx.aclose()
    await on_floor.aclose()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round and side (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, interleaved (default 7)")
    args = parser.parse_args(argv)

    samples = asyncio.run(run(args.calls, args.rounds))
    mock_median = statistics.median(samples["mock"])
    respx_median = statistics.median(samples["respx"])
    floor_median = statistics.median(samples["floor"])
    ratio = mock_median / respx_median
    print(f"generate() through DockerModelRunnerAdapter, {args.rounds} rounds x {args.calls} calls per side")
    print(f"  MockModelRunner : median {mock_median:7.1f} us/call (mean {statistics.fmean(samples['mock']):7.1f})")
    print(f"  respx canned    : median {respx_median:7.1f} us/call (mean {statistics.fmean(samples['respx']):7.1f})")
    print(f"  ratio mock/respx: {ratio:.2f} (target <= 1.5; mock target < 200 us)")
    print(f"  floor (adapter on a bare httpx.MockTransport, canned): median {floor_median:7.1f} us/call; "
          f"the mock's own generation costs {mock_median - floor_median:.1f} us/call")
    return 0 if ratio <= 1.5 and mock_median < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
