"""The container tier: a real Docker engine and the runner image (``ci/build-runner-image.sh``).

CI sets ``PYTEST_DMR_RUNNER_IMAGE`` to the image it built and makes this tier mandatory; elsewhere,
without Docker or the image, these tests skip with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tiers import require_tier  # tests/tiers.py

IMAGE_ENV = "PYTEST_DMR_RUNNER_IMAGE"
BUILD_HINT = "build it with ci/docker-engine.sh && ci/build-runner-image.sh, then export PYTEST_DMR_RUNNER_IMAGE=pytest-dmr/runner:local"


@dataclass(frozen=True)
class DockerEngine:
    client: Any
    """A docker-py client."""
    image: str
    """The runner image to provision (an emulator on real llama.cpp with SmolLM2 in its catalogue)."""

    def containers(self, **labels: str) -> list[Any]:
        """Containers (running or not) carrying every given label (``None`` value: any value)."""
        filters = [f"{key}={value}" if value else key for key, value in labels.items()]
        return self.client.containers.list(all=True, filters={"label": filters})


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    try:
        import docker
    except ImportError:
        require_tier("container", "the docker package is not installed: pip install 'pytest-dmr[containers]'")
    image = os.environ.get(IMAGE_ENV, "").strip()
    if not image:
        require_tier("container", f"{IMAGE_ENV} is not set: {BUILD_HINT}")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        require_tier("container", f"no Docker engine answers ({exc}): start one with ci/docker-engine.sh")
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        require_tier("container", f"the runner image {image} is not in the engine: {BUILD_HINT}")
    yield DockerEngine(client, image)
    client.close()


@pytest.fixture
def models_volume(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty models volume for this test's runner (so a pull really downloads), removed after."""
    name = f"pytest-dmr-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PYTEST_DMR_MODELS_VOLUME", name)
    yield name
    for container in docker_engine.client.containers.list(all=True, filters={"volume": name}):
        container.remove(force=True, v=True)
    try:
        docker_engine.client.volumes.get(name).remove(force=True)
    except Exception:  # noqa: BLE001, S110 - never created
        pass


@pytest.fixture
def run_environment(monkeypatch: pytest.MonkeyPatch, models_volume: str) -> None:
    """What a pytest run provisioning a runner needs here: no discovery hit, no user DMR settings."""
    for name in list(os.environ):
        if name.startswith(("DMR_", "MODEL_RUNNER_", "LLM_", "AI_RUNNER_")) or name in ("DEFAULT_LOCAL_MODEL", "LOCAL_MODEL_TIMEOUT"):
            monkeypatch.delenv(name)
    # Only the `url` probe group, and no URL: discovery finds nothing, whatever listens on 12434.
    monkeypatch.setenv("DMR_DISCOVERY", "url")
