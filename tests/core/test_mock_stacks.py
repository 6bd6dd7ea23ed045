"""One mock, two HTTP stacks: httpx2 and httpx clients, sync and async, get the same bytes, and the
mock's transport faults raise each stack's own exceptions; ``_http`` maps both stacks' errors alike."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest

from pytest_dmr import _http, errors
from pytest_dmr.mock import Fault, MockModelRunner

CHAT = "/engines/v1/chat/completions"
BODY = {"model": "ai/smollm2", "messages": [{"role": "user", "content": "Describe a harbour at dawn."}], "max_tokens": 12}
STREAMED = {**BODY, "stream": True}

STACKS = [pytest.param(httpx2, id="httpx2"), pytest.param(httpx, id="httpx")]


def send(stack: ModuleType, mock: MockModelRunner, *, sync: bool, body: dict[str, Any], timeout: float | None = None) -> bytes:
    """POST ``body`` with the stack's sync or async client; the whole body, read piece by piece."""
    if sync:
        with stack.Client(transport=mock, base_url=mock.base_url, timeout=timeout) as client:
            with client.stream("POST", CHAT, json=body) as response:
                return b"".join(response.iter_raw())

    async def read() -> bytes:
        async with stack.AsyncClient(transport=mock, base_url=mock.base_url, timeout=timeout) as client:
            async with client.stream("POST", CHAT, json=body) as response:
                return b"".join([piece async for piece in response.aiter_raw()])

    return asyncio.run(read())


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("stack", STACKS)
def test_both_stacks_get_the_same_bytes(stack: ModuleType, sync: bool) -> None:
    reference = MockModelRunner()
    with httpx2.Client(transport=reference, base_url=reference.base_url) as client:
        whole = client.post(CHAT, json=BODY)
        streamed = client.post(CHAT, json=STREAMED)
    assert isinstance(whole, httpx2.Response) and whole.headers["content-length"] == str(len(whole.content))
    mock = MockModelRunner()
    assert send(stack, mock, sync=sync, body=BODY) == whole.content
    assert send(stack, mock, sync=sync, body=STREAMED) == streamed.content
    assert streamed.content.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("fault", "error", "timeout"),
    [
        (Fault.timeout(), "ReadTimeout", None),
        (Fault.disconnect(), "RemoteProtocolError", None),
        (Fault.cut_stream(after=2), "RemoteProtocolError", None),
        (Fault.slow_first_token(0.05), "ReadTimeout", 0.01),
    ],
    ids=["timeout", "disconnect", "cut_stream", "slow_first_token"],
)
def test_faults_raise_the_stacks_own_exceptions(
    stack: ModuleType, sync: bool, fault: Fault, error: str, timeout: float | None
) -> None:
    mock = MockModelRunner()
    mock.fail(fault)
    with pytest.raises(getattr(stack, error)) as caught:
        send(stack, mock, sync=sync, body=STREAMED, timeout=timeout)
    assert type(caught.value).__module__ == stack.__name__
    assert caught.value.request.url.path == CHAT


def test_a_request_of_another_library_is_refused() -> None:
    class Request:
        pass

    with pytest.raises(TypeError, match="answers httpx2 and httpx requests, not .*Request"):
        MockModelRunner().handle_request(Request())  # type: ignore[call-overload]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        ("ConnectError", errors.RunnerUnavailableError, "cannot connect to the runner"),
        ("ReadTimeout", errors.RunnerTimeoutError, "did not answer within 3 s"),
        ("ConnectTimeout", errors.RunnerTimeoutError, "did not accept the connection"),
        ("RemoteProtocolError", errors.RunnerUnavailableError, "closed the connection"),
        ("UnsupportedProtocol", errors.ConfigurationError, "cannot be used"),
    ],
)
def test_either_stacks_errors_map_into_the_dmr_tree(stack: ModuleType, error: str, expected: type, words: str) -> None:
    exc = getattr(stack, error)("boom")
    assert isinstance(exc, _http.http_errors())
    mapped = _http.transport_error(exc, runner_url="http://127.0.0.1:12434", timeout=3)
    assert type(mapped) is expected and words in str(mapped)
    assert _http.RetryPolicy().retries_error(exc) is (error in ("ConnectError", "ConnectTimeout"))
