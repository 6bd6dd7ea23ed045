"""What a replayed call costs: pytest-dmr's ``ReplayTransport`` against vcrpy (what pytest-recording
runs) replaying the same exchange, in one process, on httpx (the stack vcrpy patches).

Three calls, each recorded once from :class:`~pytest_dmr.mock.MockModelRunner` by both tools, then
replayed many times:

- ``plain``: a chat completion posted with ``httpx.Client.post`` and its JSON parsed;
- ``stream``: the same request with ``"stream": true``, read with ``Client.stream``/``iter_raw``
  (server-sent events: pytest-dmr replays them chunk for chunk);
- ``async stream``: the stream again with ``httpx.AsyncClient`` (``aiter_raw``).

vcrpy's first replay of each call runs on a thread bounded by ``--bound`` seconds (its streamed
replays are known to hang or buffer, vcrpy issue 989): a replay that does not finish in time is
reported as hung and left out of the timing. The pieces each side hands the caller are counted.

Both tools replay from their cassette files (pytest-dmr's is saved and loaded again, as vcrpy's
YAML is), through one ``httpx.Client``/``httpx.AsyncClient`` each, and both work at the same layer:
vcrpy patches the transports' ``handle_request``, pytest-dmr is the transport. The floor is that
client with a transport returning the recorded bytes with no lookup: what httpx itself costs.

Rounds are interleaved; prints the median microseconds per call and two ratios: per whole call
(client included: never below the floor's own ratio, 0.4 on httpx) and per the cost each tool adds
above the floor (the replay itself: what the tools do differently). vcrpy patches httpx only, so
there is no httpx2 comparison.

    python benchmarks/replay_overhead.py [--calls 1000] [--rounds 5] [--bound 10]
    python benchmarks/replay_overhead.py --only pytest-dmr:async-stream --calls 400   # under cachegrind

Target (issue 11): pytest-dmr at most 0.3x vcrpy's time per call, measured on what each tool adds
above the client's own cost (the exit status); the whole-call ratio is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import vcr

from pytest_dmr.cassettes import Cassette, RecordingTransport, ReplayTransport, save
from pytest_dmr.mock import MockModelRunner
from pytest_dmr.protocol import addresses

TARGET = 0.3
URL = "http://127.0.0.1:12434/engines/v1/chat/completions"  # nothing listens: both tools answer from cassettes
BODY = {"model": addresses.DEFAULT_MODEL, "messages": [{"role": "user", "content": "Describe a harbour at dawn."}],
        "max_tokens": 48, "temperature": 0}
STREAMED = {**BODY, "stream": True}

Call = Callable[[], Any]


def plain(client: httpx.Client) -> Call:
    return lambda: client.post(URL, json=BODY).json()["choices"][0]["message"]["content"]


def stream(client: httpx.Client) -> Call:
    def call() -> list[bytes]:
        with client.stream("POST", URL, json=STREAMED) as response:
            return list(response.iter_raw())
    return call


def async_stream(client: httpx.AsyncClient) -> Call:
    async def pieces() -> list[bytes]:
        async with client.stream("POST", URL, json=STREAMED) as response:
            return [piece async for piece in response.aiter_raw()]

    loop = asyncio.new_event_loop()
    call: Call = lambda: loop.run_until_complete(pieces())  # noqa: E731
    call.loop = loop  # type: ignore[attr-defined]
    return call


def record(directory: Path) -> tuple[Cassette, vcr.VCR, dict[str, bytes]]:
    """Both cassettes, recorded from the mock; the mock's bytes per call (for the floor)."""
    mock = MockModelRunner()
    ours = Cassette()

    def through_mock(request: httpx.Request) -> httpx.Response:  # a transport class vcrpy patches
        answer = mock.handle_request(request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.read())

    recorder = vcr.VCR(cassette_library_dir=str(directory), record_mode="once", match_on=["method", "uri", "body"])
    with recorder.use_cassette("replay_overhead.yaml"):
        with httpx.Client(transport=httpx.MockTransport(through_mock)) as client:
            bodies = {"plain": client.post(URL, json=BODY).content, "stream": client.post(URL, json=STREAMED).content}
    with httpx.Client(transport=RecordingTransport(mock, ours)) as client:
        plain(client)()
        stream(client)()
    ours.path = directory / "replay_overhead.json"
    save(ours)
    ours = Cassette.load(ours.path)  # replayed from its file, as vcrpy's is
    player = vcr.VCR(cassette_library_dir=str(directory), record_mode="none", match_on=["method", "uri", "body"])
    return ours, player, bodies


class _Floor(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The recorded bytes, whole, with no lookup: the stack and the caller alone (a class of its
    own: vcrpy patches ``httpx.MockTransport``)."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies

    def _answer(self, body: bytes) -> httpx.Response:
        streamed = b'"stream"' in body
        content_type = "text/event-stream" if streamed else "application/json"
        content = self.bodies["stream" if streamed else "plain"]
        headers = {"content-type": content_type, "content-length": str(len(content))}
        return httpx.Response(200, stream=httpx.ByteStream(content), headers=headers)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(await request.aread())


def bounded(call: Call, seconds: float) -> tuple[bool, Any]:
    """``call()`` on a daemon thread: (finished in time, its result or exception)."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(_attempt(call)), daemon=True)
    thread.start()
    thread.join(seconds)
    return (bool(outcome), outcome[0] if outcome else None)


def _attempt(call: Call) -> Any:
    try:
        return call()
    except Exception as exc:  # reported, not raised: a peer's failure is a finding
        return exc


def per_call(call: Call, calls: int) -> list[float]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and side (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, interleaved (default 5)")
    parser.add_argument("--bound", type=float, default=10.0, help="seconds vcrpy's first replay of a call may take (default 10)")
    parser.add_argument("--only", metavar="SIDE:KIND", help="run one side's call --calls times, untimed, and print nothing "
                        "(for instruction counts: cachegrind at --calls N and 0, the difference over N; e.g. vcrpy:plain)")
    args = parser.parse_args(argv)
    logging.getLogger("vcr").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as directory:
        ours, player, bodies = record(Path(directory))
        replay = ReplayTransport(ours)
        floor = _Floor(bodies)
        with player.use_cassette("replay_overhead.yaml", allow_playback_repeats=True):
            sides: dict[str, dict[str, Call]] = {}
            clients: list[Any] = []
            for name, transport in (("pytest-dmr", replay), ("vcrpy", None), ("floor", floor)):
                sync_client = httpx.Client(transport=transport) if transport is not None else httpx.Client()
                async_client = httpx.AsyncClient(transport=transport) if transport is not None else httpx.AsyncClient()
                clients += [sync_client, async_client]
                sides[name] = {"plain": plain(sync_client), "stream": stream(sync_client), "async stream": async_stream(async_client)}

            if args.only:
                side, kind = args.only.split(":")
                call = sides[side][kind.replace("-", " ")]
                for _ in range(args.calls + 1):  # one more: the first call's one-off costs are in the 0-call run too
                    call()
                return 0

            report: dict[str, str] = {}
            timed: dict[str, list[str]] = {}
            for kind in ("plain", "stream", "async stream"):
                timed[kind] = []
                for name, calls in sides.items():
                    finished, result = bounded(calls[kind], args.bound) if name == "vcrpy" else (True, _attempt(calls[kind]))
                    if not finished:
                        report[f"{name} {kind}"] = f"hung (no answer within {args.bound:g} s): left out"
                    elif isinstance(result, Exception):
                        report[f"{name} {kind}"] = f"failed: {type(result).__name__}: {str(result)[:120]}"
                    else:
                        pieces = len(result) if isinstance(result, list) else 1
                        report[f"{name} {kind}"] = f"answered, {pieces} piece{'s' if pieces != 1 else ''} to the caller"
                        timed[kind].append(name)

            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for kind, names in timed.items():
                    for name in names:
                        gc.collect()
                        samples.setdefault((kind, name), []).extend(per_call(sides[name][kind], args.calls))
            for client in clients:
                if isinstance(client, httpx.Client):
                    client.close()
            for calls in sides.values():
                calls["async stream"].loop.close()  # type: ignore[attr-defined]

    print(f"{args.rounds} rounds x {args.calls} calls per side; median (mean) us per call")
    for line, outcome in report.items():
        print(f"  first replay, {line}: {outcome}")
    ok = True
    for kind in ("plain", "stream", "async stream"):
        median = {name: statistics.median(samples[(kind, name)]) for name in timed[kind]}
        shown = ", ".join(f"{name} {value:7.1f} ({statistics.fmean(samples[(kind, name)]):7.1f})" for name, value in median.items())
        print(f"  {kind:12}: {shown}")
        if "vcrpy" in median:
            ratio = median["pytest-dmr"] / median["vcrpy"]
            print(f"  {kind:12}: whole call, ratio pytest-dmr/vcrpy {ratio:.2f} (the floor alone: "
                  f"{median['floor'] / median['vcrpy']:.2f})")
            ours, theirs = median["pytest-dmr"] - median["floor"], median["vcrpy"] - median["floor"]
            above = ours / theirs
            ok = ok and above <= TARGET
            print(f"  {kind:12}: above the floor, pytest-dmr {ours:.1f} us, vcrpy {theirs:.1f} us, "
                  f"ratio {above:.2f} (target <= {TARGET})")
        else:
            print(f"  {kind:12}: no ratio: vcrpy did not replay this call")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
