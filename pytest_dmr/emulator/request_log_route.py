"""``GET /engines/requests[?model=]``: the request log (:class:`pytest_dmr.protocol.request_log.RequestLog`).

JSON by default; with ``Accept: text/event-stream`` exactly, DMR's event stream: the stored records
when ``include_existing=true``, ``connected``, then one ``new_request`` per completed request until
the client goes (or the emulator stops).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_dmr.protocol import request_log
from pytest_dmr.emulator.inference import Reply

if TYPE_CHECKING:
    from pytest_dmr.emulator.server import EmulatorServer

POLL_INTERVAL = 0.2
"""How often an idle event stream checks whether its client left or the emulator stops."""


def serve(emulator: EmulatorServer, reply: Reply, params: dict[str, list[str]]) -> None:
    log = emulator.inference.log
    model = params.get("model", [""])[0]
    if not request_log.wants_event_stream(reply.headers.get("Accept")):
        reply.send_body(200, request_log.records_body(log.records(model)), request_log.JSON_HEADERS[0][1])
        return
    subscription = log.subscribe(model)
    try:
        reply.start_chunks(200, request_log.EVENT_STREAM_HEADERS)
        include = params.get("include_existing", [""])[0] == "true"
        reply.chunk(log.stream_start(model, include_existing=include))
        while not emulator.stopping.is_set() and not reply.client_gone():
            entries = subscription.get(POLL_INTERVAL)
            if entries is not None:
                reply.chunk(request_log.encode_event("new_request", entries))
    finally:
        log.unsubscribe(subscription)
    reply.end_chunks()
