"""Anthropic Messages under ``/anthropic`` on the emulator, as DMR serves them (``pkg/anthropic``).

DMR checks the body (Anthropic JSON errors: :func:`pytest_dmr.protocol.anthropic_api.check_request`),
then hands the request to the scheduler as ``/engines/v1/messages[/count_tokens]`` with
``X-Request-Origin: anthropic/messages``; llama.cpp implements the Messages API itself. The
scheduler forms (``/v1/messages``, ``/engines[/{backend}]/v1/messages``) need nothing here: the
server sends them to :class:`~.inference.Inference` as any other inference path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_dmr.protocol import anthropic_api, error_bodies, request_log
from pytest_dmr.protocol.encoding import go_json_line
from pytest_dmr.emulator.inference import Reply

if TYPE_CHECKING:
    from pytest_dmr.emulator.server import EmulatorServer

PREFIX = "/anthropic"


def handle(emulator: EmulatorServer, reply: Reply, method: str, path: str, body: bytes | None) -> None:
    """``POST /anthropic/v1/messages[/count_tokens]``; Go's mux answers any other method or path."""
    if path not in anthropic_api.ROUTES:
        reply.send_plain_error(404, error_bodies.PAGE_NOT_FOUND)
        return
    if method != "POST":
        reply.method_not_allowed("POST")
        return
    try:
        if body is None:  # over the server's 10 MiB read limit
            raise anthropic_api.AnthropicError(413, "request_too_large", "Request body too large")
        anthropic_api.check_request(body, model_exists=lambda name: emulator.store.find(name) is not None)
    except anthropic_api.AnthropicError as error:
        reply.send_body(error.status, go_json_line(error.body()), "application/json")  # DMR's writeAnthropicError
        return
    headers = reply.forwarded_headers(
        ("Content-Type", "application/json"), (request_log.REQUEST_ORIGIN_HEADER, request_log.ORIGIN_ANTHROPIC_MESSAGES)
    )
    reply.send_answer(emulator.inference.serve("/engines" + path[len(PREFIX) :], body, headers))

