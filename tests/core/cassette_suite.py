"""A suite of calls through every layer (client, adapter, OpenAI SDK, raw httpx2 and httpx, sync and
async, plain and streamed, pull progress), run while recording and again while replaying.

``python tests/core/cassette_suite.py CASSETTE`` replays it from ``CASSETTE`` with no runner (the
base URL points nowhere) and prints what the calls returned as JSON, so a test can compare a fresh
process's replay with what was recorded.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import httpx2
import openai

from pytest_dmr.adapter import DockerModelRunnerAdapter
from pytest_dmr.client import ModelRunnerClient

MODEL = "ai/smollm2"
PROMPT = "Describe a harbour at dawn."
CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 12, "stream": True}
NOWHERE = "http://127.0.0.1:9"
"""The replay's base URL: a cassette answers whatever the host (nothing listens on port 9)."""


def run(transport: Any, base_url: str) -> dict[str, Any]:
    """Every call's result (texts, and each stream's pieces as the caller received them)."""
    out: dict[str, Any] = {}
    with ModelRunnerClient(base_url, transport=transport) as client:
        out["models"] = [model.id for model in client.list_models()]
        progress: list[str] = []
        out["pull"] = repr(client.pull(MODEL, progress=lambda line: progress.append(repr(line))))
        out["pull_progress"] = progress
    with httpx2.Client(transport=transport, base_url=base_url) as raw:
        with raw.stream("POST", "/engines/v1/chat/completions", json=CHAT) as response:
            out["httpx2_pieces"] = [piece.decode() for piece in response.iter_raw()]
    sdk = openai.OpenAI(base_url=base_url + "/engines/v1", api_key="sk-unused", max_retries=0,
                        http_client=httpx2.Client(transport=transport))
    with sdk:
        out["sdk_text"] = sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=12
        ).choices[0].message.content

    async def asynchronous() -> None:
        adapter = DockerModelRunnerAdapter(base_url, MODEL, transport=transport)
        out["adapter_text"] = await adapter.generate(PROMPT, max_tokens=12)
        out["adapter_pieces"] = [piece async for piece in adapter.stream_generate(PROMPT, max_tokens=12)]
        await adapter.aclose()
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as raw:
            async with raw.stream("POST", "/v1/chat/completions", json=CHAT) as response:
                out["httpx_async_pieces"] = [piece.decode() async for piece in response.aiter_raw()]
        sdk = openai.AsyncOpenAI(base_url=base_url + "/engines/v1", api_key="sk-unused", max_retries=0,
                                 http_client=httpx2.AsyncClient(transport=transport))
        async with sdk:
            stream = await sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=12, stream=True
            )
            out["async_sdk_pieces"] = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]

    asyncio.run(asynchronous())
    return out


if __name__ == "__main__":
    from pytest_dmr.cassettes import Cassette, ReplayTransport

    print(json.dumps(run(ReplayTransport(Cassette.load(sys.argv[1])), NOWHERE)))
