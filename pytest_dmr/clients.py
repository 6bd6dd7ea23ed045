"""Every format everywhere: SDK clients in one line, and the environment app code reads.

The fixtures (``plugin.py`` defines them as thin wrappers around these functions) wire the
official SDKs to this test's backend: the live runner, its cassette (replayed, or recorded from
the live runner), or its mock (the same mock ``dmr_mock`` controls: rules, faults and recorded
requests work whatever format a request came in):

- ``dmr_openai`` / ``dmr_async_openai``: ``openai.OpenAI`` / ``openai.AsyncOpenAI`` on
  ``.../engines/v1`` (chat completions, completions, embeddings, Responses);
- ``dmr_anthropic`` / ``dmr_async_anthropic``: ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic``
  on the root (Messages, ``count_tokens``);
- ``dmr_ollama`` / ``dmr_async_ollama``: ``ollama.Client`` / ``ollama.AsyncClient`` on the root
  (``/api/chat``, ``/api/generate``, ...);
- ``dmr_environment``: ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST`` and Ultra's
  ``MODEL_RUNNER_URL`` set for the test (``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` too: the SDKs
  refuse to start without one, DMR ignores it, and a real key of yours stays out of the test), and
  Ultra's ``USE_MOCK`` removed, pointing at the live runner,
  or at a :class:`~pytest_dmr.served.LoopbackServer` on 127.0.0.1 serving the test's mock or
  cassette (one server per process, its transport swapped per test).

Each SDK is imported when its fixture is set up; a missing one skips the test, naming the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dmr.protocol import routes
from pytest_dmr.session import LIVE, get_session

if TYPE_CHECKING:
    from pytest_dmr.fixtures import _TestBackend
    from pytest_dmr.served import LoopbackServer

API_KEY = "dmr-unused"
"""The key the SDK clients send: DMR ignores it, and the SDKs refuse to start without one."""
SERVER_KEY = pytest.StashKey["LoopbackServer"]()


def import_sdk(package: str, fixture: str) -> ModuleType:
    """``package``, or a skip naming it and the fixture that needs it."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(package)
    except ImportError:
        pytest.skip(f"{fixture} needs the {package} package, which is not installed: pip install {package}")


def _http_stack(sdk: ModuleType) -> ModuleType:
    """The HTTP stack an SDK is built on (openai 3.x and anthropic: httpx2; openai 2.x: httpx)."""
    return importlib.import_module(sdk.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])


def _sync_client(sdk: ModuleType, backend: _TestBackend) -> Any:
    stack = _http_stack(sdk)
    return stack.Client(transport=backend.transport(stack.__name__))


def dmr_openai(backend: _TestBackend) -> Iterator[Any]:
    openai = import_sdk("openai", "dmr_openai")
    with openai.OpenAI(base_url=backend.openai_url, api_key=API_KEY, http_client=_sync_client(openai, backend)) as client:
        yield client


def _async_client(sdk: ModuleType, backend: _TestBackend) -> Any:
    stack = _http_stack(sdk)
    return stack.AsyncClient(transport=backend.transport(stack.__name__, asynchronous=True))


def _close_async(close: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Close an async client after its test (the test's event loop has ended: a new one closes it)."""
    with contextlib.suppress(RuntimeError):  # its connections belong to a loop that has ended: closed with it
        asyncio.run(close())


def dmr_async_openai(backend: _TestBackend) -> Iterator[Any]:
    openai = import_sdk("openai", "dmr_async_openai")
    client = openai.AsyncOpenAI(base_url=backend.openai_url, api_key=API_KEY, http_client=_async_client(openai, backend))
    yield client
    _close_async(client.close)


def dmr_anthropic(backend: _TestBackend) -> Iterator[Any]:
    anthropic = import_sdk("anthropic", "dmr_anthropic")
    http = _sync_client(anthropic, backend)
    with anthropic.Anthropic(base_url=backend.root_url, api_key=API_KEY, http_client=http) as client:
        yield client


def dmr_async_anthropic(backend: _TestBackend) -> Iterator[Any]:
    anthropic = import_sdk("anthropic", "dmr_async_anthropic")
    client = anthropic.AsyncAnthropic(base_url=backend.root_url, api_key=API_KEY, http_client=_async_client(anthropic, backend))
    yield client
    _close_async(client.close)


def dmr_ollama(request: pytest.FixtureRequest, backend: _TestBackend) -> Iterator[Any]:
    ollama = import_sdk("ollama", "dmr_ollama")
    timeout = get_session(request.config).settings.timeout
    client = ollama.Client(host=backend.root_url, transport=backend.transport("httpx"), timeout=timeout)
    yield client
    client._client.close()  # ollama.Client keeps its httpx.Client there and has no close() of its own


def dmr_async_ollama(request: pytest.FixtureRequest, backend: _TestBackend) -> Iterator[Any]:
    ollama = import_sdk("ollama", "dmr_async_ollama")
    timeout = get_session(request.config).settings.timeout
    client = ollama.AsyncClient(host=backend.root_url, transport=backend.transport("httpx", asynchronous=True), timeout=timeout)
    yield client
    _close_async(client._client.aclose)  # its httpx.AsyncClient (ollama's own close() is only in newer releases)


# --------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DMREnvironment:
    """What ``dmr_environment`` set: ``variables`` (name -> value), the root URL they point at, and
    this test's backend (``live``, ``replay`` or ``mock``)."""

    root_url: str
    backend: str
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def openai_base_url(self) -> str:
        return self.variables["OPENAI_BASE_URL"]


def _server(config: pytest.Config) -> LoopbackServer:
    """This process's loopback server, started on first use and stopped at the end of the run."""
    server = config.stash.get(SERVER_KEY, None)
    if server is None:
        from pytest_dmr.served import LoopbackServer

        server = config.stash[SERVER_KEY] = LoopbackServer().start()
        config.add_cleanup(server.stop)
    return server


def dmr_environment(request: pytest.FixtureRequest, backend: _TestBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[DMREnvironment]:
    if backend.backend == LIVE and backend.cassette is None and backend.runner.socket_path is None:
        root, openai_url, server = backend.runner.root_url, backend.runner.base_url, None
    else:
        server = _server(request.config)
        server.transport, server.upstream = backend.transport(), backend.root_url
        root = server.url
        openai_url = root + routes.ENGINES_PREFIX
    variables = {"OPENAI_BASE_URL": openai_url, "ANTHROPIC_BASE_URL": root, "OLLAMA_HOST": root, "MODEL_RUNNER_URL": root}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, API_KEY)
        variables[name] = API_KEY
    monkeypatch.delenv("USE_MOCK", raising=False)  # Ultra's: it would make create_modelrunner_adapter() build its own mock
    yield DMREnvironment(root, backend.backend, variables)
    if server is not None:
        transport, server.transport = server.transport, None
        if transport is not None:
            transport.close()
