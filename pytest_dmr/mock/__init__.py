"""A deterministic, protocol-faithful Docker Model Runner in an httpx transport.

Layout: ``transport`` (the ``MockModelRunner`` and its routing), ``management`` (DMR's own
endpoints) and ``inference`` (the OpenAI-compatible ones); ``rules`` and ``faults`` (what tests
script); ``catalog`` (the model store and fake pulls); the generators ``prose``, ``schema``,
``tools`` and ``embeddings``, all drawing from ``seeded`` (SHA-256 of the request); ``streams``
and ``responses`` (httpx bodies and headers).
"""

from __future__ import annotations

import httpx

from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.rules import RecordedRequest, Rule
from pytest_dmr.mock.transport import MockModelRunner

__all__ = ["Fault", "MockModelRunner", "RecordedRequest", "Rule", "respond"]


def respond(runner: MockModelRunner, request: httpx.Request) -> httpx.Response:
    """Answer one request (the emulator's mock engine uses this): ``runner.handle_request(request)``."""
    return runner.handle_request(request)
