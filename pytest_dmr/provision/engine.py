"""The Docker engine: is there one, is it Docker Desktop, can the runner image be had.

Every "no" becomes a :class:`ProvisioningError` whose message is the reason a run reports (the
header in ``--dmr=auto``, the error in ``--dmr=live``), with how to fix it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from pytest_dmr.errors import ProvisioningError

if TYPE_CHECKING:
    import docker

PING_TIMEOUT = 5.0
"""How long an engine has to answer at all."""
OPERATION_TIMEOUT = 60.0
"""How long one call may take once it answered (creating, starting, removing a container on a busy machine)."""
INSTALL_HINT = "Install the container extra: pip install 'pytest-dmr[containers]'"


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answered."""

    client: docker.DockerClient
    version: str
    desktop: bool
    host: str

    def describe(self) -> str:
        kind = "Docker Desktop" if self.desktop else "Docker Engine"
        return f"{kind} {self.version} at {self.host}"


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: float = PING_TIMEOUT) -> Engine:
    """Connect to the engine ``DOCKER_HOST`` names (or the local socket), or explain why not."""
    try:
        import docker
        import testcontainers  # noqa: F401 - checked here so the reason names the missing extra
    except ImportError as exc:
        raise ProvisioningError(f"cannot provision a runner: {exc.name} is not installed", hint=INSTALL_HINT) from None
    try:
        _reach_unix_socket(docker_host(), timeout)
        client = docker.from_env(timeout=int(max(1, timeout)))
        client.ping()
        info: dict[str, Any] = client.info()
        client.api.timeout = max(OPERATION_TIMEOUT, timeout)
    except Exception as exc:  # noqa: BLE001 - docker-py raises many kinds; all mean "no engine"
        raise ProvisioningError(
            f"cannot provision a runner: no Docker engine answers at {docker_host()} ({_short(exc)})",
            hint="Start Docker (or set DOCKER_HOST), or run without --dmr-provision",
        ) from None
    return Engine(
        client=client,
        version=str(info.get("ServerVersion") or "unknown"),
        desktop=is_docker_desktop(info),
        host=docker_host(),
    )


def _reach_unix_socket(host: str, timeout: float) -> None:
    """Raise ``OSError`` when ``host`` is a unix socket that takes no connection (no engine there).

    docker-py leaves its socket to the garbage collector when connecting to a unix socket fails: a
    ``ResourceWarning``, which fails a test under ``filterwarnings = error``. Our own socket is closed.
    """
    if host.startswith("unix://"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(host.removeprefix("unix://"))


def is_docker_desktop(info: dict[str, Any]) -> bool:
    """Docker Desktop says so in ``docker info``'s operating system (``Docker Desktop``)."""
    return "docker desktop" in str(info.get("OperatingSystem", "")).lower()


def ensure_image(engine: Engine, image: str, *, announce: Callable[[str], None] | None = None) -> bool:
    """Make sure ``image`` is in the engine: ``False`` when it was there, ``True`` when it was pulled."""
    import docker

    try:
        engine.client.images.get(image)
        return False
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise ProvisioningError(f"cannot inspect the image {image}: {_short(exc)}") from None
    if announce is not None:
        announce(f"dmr: pulling image {image} (not in the local engine)")
    try:
        engine.client.images.pull(image)
    except docker.errors.DockerException as exc:
        raise ProvisioningError(
            f"cannot provision a runner: the image {image} is not in the local engine and cannot be pulled "
            f"({_short(exc)})",
            hint="Pull or build it first (`docker pull IMAGE`, ci/build-runner-image.sh), or pass --dmr-image",
        ) from None
    return True


def _short(exc: BaseException) -> str:
    """One line of an exception: docker-py's messages can span a whole HTTP response."""
    explanation = getattr(exc, "explanation", None)  # docker-py's APIError: the engine's own words
    text = str(explanation or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."
