"""The glue between the mock's stack-neutral answers and an HTTP stack: httpx2 or httpx.

A request says which stack sent it (``httpx2.Request`` or ``httpx.Request``); its answer becomes
that stack's ``Response``, its streamed bodies that stack's byte streams, and the mock's transport
failures (timeouts, dropped connections, cut streams) that stack's exceptions. Each stack is
imported the first time one of its requests arrives, so either may be missing.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.streams import CUT_MESSAGE

if TYPE_CHECKING:
    import httpx
    import httpx2

    AnyRequest = Union[httpx.Request, httpx2.Request]
    AnyResponse = Union[httpx.Response, httpx2.Response]

TIMED_OUT = "timed out"
DISCONNECTED = "Server disconnected without sending a response."


class Dropped(Exception):
    """Raised by the mock's core: the connection fails before any answer (``timeout`` or ``disconnect``);
    :meth:`Stack.error` turns it into the request's stack's exception."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Pieces:
    """A streamed body: ``answer.chunks`` one by one, as ``answer.delivery`` says (maybe late, maybe
    breaking off). A delay longer than the read timeout waits the timeout, then raises the stack's
    ``ReadTimeout``, as a client reading a silent server would."""

    def __init__(self, answer: Answer, request: AnyRequest, stack: Stack) -> None:
        self.answer = answer
        self.request = request
        self.stack = stack

    def _sent(self) -> list[bytes]:
        chunks = list(self.answer.chunks or ())
        cut_after = self.answer.delivery.cut_after
        return chunks if cut_after is None else chunks[:cut_after]

    def _steps(self) -> Iterator[tuple[float, bool, bytes]]:
        """Each chunk, the seconds to wait before it, and whether the client's read times out in that
        wait (then the wait is the read timeout, and the chunk never comes)."""
        delivery = self.answer.delivery
        timeout = delivery.read_timeout
        for index, chunk in enumerate(self._sent()):
            wait = delivery.delay if index == 0 else delivery.interval
            if timeout is not None and wait > timeout:
                yield timeout, True, chunk
                return
            yield wait, False, chunk

    def __iter__(self) -> Iterator[bytes]:
        for wait, times_out, chunk in self._steps():
            if wait:
                time.sleep(wait)
            if times_out:
                raise self.stack.module.ReadTimeout(TIMED_OUT, request=self.request)
            yield chunk
        if self.answer.delivery.cut_after is not None:
            raise self.stack.module.RemoteProtocolError(CUT_MESSAGE, request=self.request)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for wait, times_out, chunk in self._steps():
            if wait:
                await asyncio.sleep(wait)
            if times_out:
                raise self.stack.module.ReadTimeout(TIMED_OUT, request=self.request)
            yield chunk
        if self.answer.delivery.cut_after is not None:
            raise self.stack.module.RemoteProtocolError(CUT_MESSAGE, request=self.request)


class Stack:
    """One HTTP stack's classes, and how to build its responses and exceptions."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._response = module.Response
        self._whole = module.ByteStream

        class Pieces(_Pieces, module.SyncByteStream, module.AsyncByteStream):  # type: ignore[misc, name-defined]
            """A streamed mock body for this stack's clients."""

        self._pieces = Pieces

    def response(self, answer: Answer, request: AnyRequest) -> Any:
        """``answer`` as this stack's ``Response``, unread (as a transport returns it): a whole body in
        one piece with its ``content-length``, a streamed one piece by piece."""
        if answer.chunks is None:
            body = answer.body
            length = str(len(body)) if answer.content_length is None else answer.content_length
            headers = [*answer.headers, ("content-length", length)] if length else answer.headers
            return self._response(answer.status, headers=headers, stream=self._whole(body))
        headers = [*answer.headers, ("content-length", answer.content_length)] if answer.content_length else answer.headers
        return self._response(answer.status, headers=headers, stream=self._pieces(answer, request, self))

    def error(self, dropped: Dropped, request: AnyRequest) -> Exception:
        """This stack's exception for a connection that failed before the answer."""
        if dropped.kind == "timeout":
            return self.module.ReadTimeout(TIMED_OUT, request=request)  # type: ignore[no-any-return]
        return self.module.RemoteProtocolError(DISCONNECTED, request=request)  # type: ignore[no-any-return]


_STACKS: dict[type, Stack] = {}


def for_request(request: object) -> Stack:
    """The stack whose ``Request`` this is (httpx2 or httpx), its glue made on first use."""
    kind = type(request)
    stack = _STACKS.get(kind)
    if stack is None:
        stack = _STACKS[kind] = Stack(_module_of(kind))
    return stack


def _module_of(kind: type) -> ModuleType:
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if issubclass(kind, module.Request):
            return module
    raise TypeError(f"MockModelRunner answers httpx2 and httpx requests, not {kind.__module__}.{kind.__qualname__}")
