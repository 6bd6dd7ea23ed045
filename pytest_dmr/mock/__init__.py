"""A deterministic, protocol-faithful Docker Model Runner in a transport for httpx2 and httpx.

Layout: ``transport`` (the ``MockModelRunner`` and its routing), ``management`` (DMR's own
endpoints) and ``inference`` (the chat-completions core and the OpenAI-compatible endpoints);
``frontends`` (Responses, Anthropic Messages, Ollama and reranking over that core); ``clock`` (the
time DMR would read from the wall clock, still until a test moves it); ``rules`` and ``faults`` (what tests
script); ``catalog`` (the model store and fake pulls); the generators ``prose``, ``schema``,
``prompt_values``, ``tokens``, ``tools`` and ``embeddings``, all drawing from ``seeded`` (SHA-256 of the
request); ``conversation`` (a chat request's turns, tool calls and results, for tools and rules); ``responses``
(stack-neutral answers: status, headers, body or pieces), ``streams`` (how a body is delivered) and
``stacks`` (the glue that makes an answer an httpx2 or httpx response).
"""

from __future__ import annotations

import httpx2

from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.rules import RecordedRequest, Rule
from pytest_dmr.mock.streams import Pace
from pytest_dmr.mock.transport import MockModelRunner

__all__ = ["Fault", "MockModelRunner", "Pace", "RecordedRequest", "Rule", "respond"]


def respond(runner: MockModelRunner, request: httpx2.Request) -> httpx2.Response:
    """Answer one request (the emulator's mock engine uses this): ``runner.handle_request(request)``."""
    return runner.handle_request(request)
