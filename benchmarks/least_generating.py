"""A stand-in of ours, for ``mock_overhead.py``: the least a transport that generates its answer can do.

:class:`LeastGenerating` answers one plain chat request, and nothing else, with the mock's own
generator (same seeds, same draws, same text, same bytes), doing only the steps that any answer
generated per call needs: read and parse the body, seed SHA-256 from its canonical JSON, count the
prompt's tokens, read the prompt, draw a length, write the text, encode the completion, keep the
request, build the stack's ``Response``. Everything else the mock does is left out: routing,
rules, faults, CORS, the front-ends, DMR's checks, loaded runners, the request log.

Its time per call, against the canned peer's, bounds what any rework of the mock's layers could
reach with this generator.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_dmr.mock import responses, stacks, tokens
from pytest_dmr.mock.inference import _Seeds, _sized, prompt_tokens
from pytest_dmr.mock.prose import answer_pieces, read_request
from pytest_dmr.mock.seeded import SeededDraws
from pytest_dmr.protocol import openai_api, routes


class LeastGenerating:
    """An httpx2 or httpx async transport for plain, non-streamed chat completions."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, dict[str, Any]]] = []

    async def handle_async_request(self, request: Any) -> Any:
        await request.aread()
        body = json.loads(request.content)
        model, messages = body["model"], body["messages"]
        seeds = _Seeds(body, routes.CHAT_COMPLETIONS)
        prompt = prompt_tokens(messages, model)
        draws = SeededDraws(seeds.content)
        read = read_request(messages[-1]["content"])
        natural = tokens.natural_length(draws.fork("length"), read.kind)
        limit = body["max_tokens"]
        wanted = natural - 1 if natural is not None else limit
        text = answer_pieces(read, draws, wanted, natural=natural is not None, enough=limit)
        pieces, finish = _sized(text, limit) if natural is not None else (text[:limit], "length")
        completion = openai_api.chat_completion_json(
            id="chatcmpl-" + seeds.id_hex[:32], created=seeds.created, model=model, content="".join(pieces),
            finish_reason=finish, prompt_tokens=prompt, completion_tokens=len(pieces) + (finish != "length"), tool_calls=None,
        )  # fmt: skip
        self.requests.append((request, body))
        return stacks.for_request(request).response(responses.backend_text(completion), request)

    async def aclose(self) -> None:
        pass
