"""Record and replay: real answers without a runner, chunk for chunk, in every format.

``format`` (the cassette file), ``matching`` (which exchange answers a request, and the error when
none does), ``recording`` (``RecordingTransport``), ``replay`` (``ReplayTransport``), ``storage``
(atomic writes, a lock per cassette), ``session`` (record modes: ``CassetteSession``), ``listing``
(cassette paths; cassettes no test uses). Usable outside pytest::

    cassette = Cassette(path=Path("cassettes/hi.json"))
    with httpx2.Client(transport=RecordingTransport(httpx2.HTTPTransport(), cassette),
                       base_url="http://localhost:12434") as client:
        client.post("/engines/v1/chat/completions", json={...})
    save(cassette)
    replay = ReplayTransport(Cassette.load("cassettes/hi.json"))   # answers the same request again
"""

from __future__ import annotations

from pytest_dmr.cassettes.format import Cassette, Chunk, Exchange, RecordedRequest, RecordedResponse
from pytest_dmr.cassettes.listing import CassetteListing, cassette_for_nodeid, cassette_path, list_cassettes
from pytest_dmr.cassettes.recording import RecordingTransport
from pytest_dmr.cassettes.replay import ReplayTransport
from pytest_dmr.cassettes.session import MODES, CassetteSession, SessionResult, plan
from pytest_dmr.cassettes.storage import save

__all__ = [
    "MODES",
    "Cassette",
    "CassetteListing",
    "CassetteSession",
    "Chunk",
    "Exchange",
    "RecordedRequest",
    "RecordedResponse",
    "RecordingTransport",
    "ReplayTransport",
    "SessionResult",
    "cassette_for_nodeid",
    "cassette_path",
    "list_cassettes",
    "plan",
    "save",
]
