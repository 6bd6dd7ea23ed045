"""Where runners live: default addresses, and any URL a user writes for one split into its root and OpenAI prefix."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from pytest_dmr import errors
from pytest_dmr.protocol.routes import ENGINES_PREFIX

ENGINES_ROOT = ENGINES_PREFIX.removesuffix("/v1")


DEFAULT_PORT = 12434
DEFAULT_HOST_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
"""The Docker Engine plugin, or Docker Desktop with host TCP on (``localhost:12434``)."""
CONTAINER_DESKTOP_URL = "http://model-runner.docker.internal"
"""Docker Desktop's runner as seen from inside a container (port 80). Only probed in a container."""
CONTAINER_GATEWAY_PORT = DEFAULT_PORT
"""Docker Engine's runner as seen from inside a container: the bridge gateway on this port."""
DESKTOP_SOCKET_PREFIX = "/exp/vDD4.40"
"""Docker Desktop's API socket prefixes every runner path with this."""
DEFAULT_MODEL = "ai/smollm2"
DEFAULT_IMAGE = "docker/model-runner:latest"
MOCK_BASE_URL = "http://dmr-mock.invalid"
"""Base URL of the mock runner: ``.invalid`` never resolves, so nothing can leave the process."""

ROOT_BANNER = "Docker Model Runner is running"


class RunnerAddress(NamedTuple):
    """A runner's root URL (management API) and the prefix of its OpenAI-compatible API."""

    root: str
    api_prefix: str

    @property
    def openai_url(self) -> str:
        """The base URL an OpenAI client takes, e.g. ``http://127.0.0.1:12434/engines/v1``."""
        return self.root + self.api_prefix

    @property
    def authority(self) -> str:
        """``host:port`` of the root, for short messages (``localhost:12434``)."""
        parts = urlsplit(self.root)
        return parts.netloc + (parts.path if parts.path not in ("", "/") else "")


def parse_runner_url(url: str) -> RunnerAddress:
    """Split any form users write a runner URL in into its root and its OpenAI prefix.

    Accepts a bare root (``http://localhost:12434``), an OpenAI base (``.../engines/v1``,
    ``.../engines/llama.cpp/v1``, ``.../v1``), the engines root (``.../engines``: the default
    prefix), Docker Desktop's socket prefix (``.../exp/vDD4.40``), ``host:port`` without a scheme,
    and ``tcp://`` (as ``MODEL_RUNNER_HOST`` is sometimes written). Raises
    :class:`~pytest_dmr.errors.ConfigurationError` for anything else.
    """
    text = url.strip()
    if not text:
        raise errors.ConfigurationError(
            "the runner URL is empty", hint="Give a URL such as http://localhost:12434"
        )
    if text.startswith("tcp://"):
        text = "http://" + text[len("tcp://") :]
    if "://" not in text:
        text = "http://" + text
    unusable = errors.ConfigurationError(
        f"{url!r} is not a usable runner URL",
        hint="Give an http(s) URL such as http://localhost:12434 or http://localhost:12434/engines/v1",
    )
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:  # an unclosed "[" of an IPv6 address, a name that NFKC folds into a separator...
        raise unusable from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise unusable
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise errors.ConfigurationError(f"{url!r} has an invalid port", hint="Give a port between 1 and 65535")
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    api_prefix = ENGINES_PREFIX
    found = re.search(r"/engines(?:/[^/]+)?/v1$|/v1$", path)
    if found:
        api_prefix, path = found.group(0), path[: found.start()]
    elif path.endswith(ENGINES_ROOT):  # the engines root: DMR's default backend under it
        path = path[: -len(ENGINES_ROOT)]
    root = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return RunnerAddress(root, api_prefix)
