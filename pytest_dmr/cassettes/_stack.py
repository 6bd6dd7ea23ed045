"""What the cassette transports need from an HTTP stack, on top of :mod:`pytest_dmr.mock.stacks`:
transport base classes for both stacks, byte-stream classes of a request's stack, and a request as
a cassette keeps it."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx2

from pytest_dmr.cassettes.format import RecordedRequest
from pytest_dmr.cassettes.matching import capture

if TYPE_CHECKING:
    import httpx

    from pytest_dmr.mock.stacks import AnyRequest

    class Transports(  # type: ignore[misc]  # each stack types its own requests: the transports serve both
        httpx2.BaseTransport, httpx2.AsyncBaseTransport, httpx.BaseTransport, httpx.AsyncBaseTransport
    ):
        """For type checkers: a transport of either stack."""

else:  # at run time, httpx2's (as MockModelRunner); httpx's clients need no base class

    class Transports(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
        pass


_STREAM_CLASSES: dict[tuple[ModuleType, type], type] = {}


def stream_class(module: ModuleType, mixin: type) -> Any:
    """``mixin`` (with ``__iter__``/``__aiter__``, ``close``/``aclose``) as a byte stream of ``module``'s stack."""
    key = (module, mixin)
    made = _STREAM_CLASSES.get(key)
    if made is None:
        made = _STREAM_CLASSES[key] = type(mixin.__name__, (mixin, module.SyncByteStream, module.AsyncByteStream), {})
    return made


def recorded_request(request: AnyRequest, body: bytes) -> RecordedRequest:
    """``request`` (of either stack, its body read) as a cassette keeps it."""
    url = request.url
    return capture(request.method, url.path, url.query.decode("ascii", "replace"), request.headers.multi_items(), body)
