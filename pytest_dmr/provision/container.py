"""The runner container: Docker Model Runner's image (or a stand-in) started with testcontainers.

Shaped like a testcontainers community module (``OllamaContainer``): a port constant, domain
arguments plus ``**kwargs``, ``with_*`` builders, a wait strategy set in ``__init__`` and
``get_endpoint()``. It differs from ``DockerContainer.start()`` on purpose, in three ways:

* no Ryuk reaper and no ``org.testcontainers.session-id`` label: the runner is shared by every
  xdist worker (and, with ``--dmr-reuse``, by later runs), so it must not die with the process
  that started it. pytest-dmr removes it itself, by its ``io.pytest-dmr.*`` labels;
* no implicit ``docker pull``: whether the image can be had is decided before (see ``engine.py``),
  so that a missing image becomes one clear reason instead of a registry error;
* the port is published on 127.0.0.1 only, and the endpoint is always loopback (the bridge
  gateway is never used, even when this process runs inside a container).

This module imports testcontainers and docker: import it only when a container is needed.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy

from pytest_dmr.protocol import addresses, routes
from pytest_dmr.errors import ProvisioningError
from pytest_dmr.provision import labels

if TYPE_CHECKING:
    from testcontainers.core.waiting_utils import WaitStrategyTarget

LOOPBACK = "127.0.0.1"
DEFAULT_MODELS_VOLUME = "pytest-dmr-models"
DEFAULT_STARTUP_TIMEOUT = 120.0
LOG_TAIL_LINES = 40

DESKTOP_PROXY_IMAGE = "alpine/socat:1.8.0.1"
"""Docker Desktop: a socat proxy to its built-in runner, as testcontainers-java and -go do."""
DESKTOP_RUNNER_AUTHORITY = "model-runner.docker.internal:80"


class RunnerReadyWait(WaitStrategy):
    """Wait until ``GET /`` answers DMR's banner, failing at once if the container stops.

    Like testcontainers' ``HttpWaitStrategy(port, "/").for_response_predicate(...)``, but a crashed
    container ends the wait immediately, and the timeout error names the URL, what was expected,
    what came back last, and ends with the container's logs.
    """

    def __init__(self, port: int, *, timeout: float = DEFAULT_STARTUP_TIMEOUT, poll_interval: float = 0.2) -> None:
        super().__init__()
        self.port = port
        self._startup_timeout = float(timeout)
        self._poll_interval = poll_interval

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        try:
            port = container.get_exposed_port(self.port)
        except ProvisioningError:  # no published port: a container that exited at once has none
            container.reload()
            if container.status not in ALIVE:
                raise _stopped(container, "no port published") from None
            raise
        url = f"http://{container.get_container_host_ip()}:{port}{routes.ROOT_PATH}"
        deadline = time.monotonic() + self._startup_timeout
        last = "no answer yet"
        while True:
            answer = _get(url)
            if answer == addresses.ROOT_BANNER:
                return
            last = answer
            container.reload()
            if container.status not in ALIVE:
                raise _stopped(container, f"last answer at {url}: {last}")
            if time.monotonic() > deadline:
                raise ProvisioningError(
                    f"the runner container did not answer GET {url} with {addresses.ROOT_BANNER!r} "
                    f"within {self._startup_timeout:g} s; last answer: {last}\n{_log_tail(container)}",
                    hint="Raise the wait with --dmr-timeout, or check the container's logs above",
                )
            time.sleep(self._poll_interval)


ALIVE = ("created", "running", "restarting")
"""Container states from which a runner may still come up."""


def _stopped(container: WaitStrategyTarget, last: str) -> ProvisioningError:
    return ProvisioningError(
        f"the runner container stopped before it answered ({container.status}); {last}\n{_log_tail(container)}",
        hint="Check that the image is a Docker Model Runner (it must serve MODEL_RUNNER_PORT)",
    )


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to the loopback port: never through an ``http_proxy`` from the environment."""


def _get(url: str) -> str:
    """The body of ``GET url`` (or a short description of why there is none)."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=2) as response:
            return str(response.read(256).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _log_tail(container: WaitStrategyTarget) -> str:
    try:
        stdout, stderr = container.get_logs()
    except Exception as exc:  # noqa: BLE001 - the logs are a courtesy, never the error itself
        return f"(the container's logs could not be read: {exc})"
    lines = (stdout + stderr).decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    body = "\n".join(f"    {line}" for line in lines) or "    (empty)"
    return f"last {len(lines)} lines of the container's logs:\n{body}"


class ModelRunnerContainer(DockerContainer):
    """A Docker Model Runner in a container, published on 127.0.0.1 at a free port.

    >>> with ModelRunnerContainer("docker/model-runner:latest") as runner:  # doctest: +SKIP
    ...     runner.get_endpoint()
    'http://127.0.0.1:32768'
    """

    PORT = addresses.DEFAULT_PORT
    MODELS_PATH = "/models"

    def __init__(
        self,
        image: str = addresses.DEFAULT_IMAGE,
        *,
        models_volume: str | None = DEFAULT_MODELS_VOLUME,
        extra_labels: dict[str, str] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.labels: dict[str, str] = {labels.MANAGED: "true", labels.IMAGE: image, labels.KIND: "runner"}
        self.labels.update(extra_labels or {})
        self.with_env("MODEL_RUNNER_PORT", str(self.PORT))
        self.with_loopback_port(self.PORT)
        if models_volume:
            self.with_volume_mapping(models_volume, self.MODELS_PATH, "rw")
        self.waiting_for(RunnerReadyWait(self.PORT, timeout=startup_timeout))

    def with_loopback_port(self, port: int) -> ModelRunnerContainer:
        """Publish ``port`` on 127.0.0.1 only, at a port the engine picks."""
        self.ports[f"{port}/tcp"] = (LOOPBACK,)  # type: ignore[assignment] # docker-py: (host_ip,)
        return self

    def with_labels(self, **values: str) -> ModelRunnerContainer:
        self.labels.update(values)
        return self

    def start(self) -> ModelRunnerContainer:
        """Create and start the container, then wait for the banner (see the module docstring)."""
        client = self.get_docker_client()
        self._configure()
        self._container = client.client.containers.create(
            self.image,
            command=self._command,
            environment=self.env,
            ports=self.ports,
            name=self._name,
            volumes={host: {"bind": mount["bind"], "mode": mount["mode"]} for host, mount in self.volumes.items()},
            labels=self.labels,
            detach=True,
            **self._kwargs,
        )
        self._container.start()
        if self._wait_strategy is not None:
            self._wait_strategy.wait_until_ready(self)
        return self

    def get_container_host_ip(self) -> str:
        return LOOPBACK

    def get_exposed_port(self, port: int) -> int:
        return published_port(self.get_wrapped_container(), port)

    def get_endpoint(self) -> str:
        """The runner's root URL, e.g. ``http://127.0.0.1:32768``."""
        return f"http://{LOOPBACK}:{self.get_exposed_port(self.PORT)}"


class DesktopRunnerProxy(ModelRunnerContainer):
    """Docker Desktop's built-in runner, reached through a socat container on 127.0.0.1.

    Desktop serves its runner inside its VM at ``model-runner.docker.internal``; starting another
    runner there would duplicate it (and its model store). testcontainers-java and -go do the same.
    """

    def __init__(self, image: str = DESKTOP_PROXY_IMAGE, **kwargs: Any) -> None:
        super().__init__(image, models_volume=None, **kwargs)
        self.labels[labels.KIND] = "desktop-proxy"
        self.with_command(
            f"tcp-listen:{self.PORT},fork,reuseaddr tcp-connect:{DESKTOP_RUNNER_AUTHORITY}"
        )


def published_port(container: Any, port: int) -> int:
    """The host port a docker-py container publishes ``port`` on (after a reload)."""
    container.reload()
    bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in bindings.get(f"{port}/tcp") or ():
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    raise ProvisioningError(
        f"the runner container {container.short_id} does not publish port {port}",
        hint="It may have stopped: check `docker logs " + container.short_id + "`",
    )
