"""Provisioning against a real Docker engine, below pytest: the container class, pulls, the run's lock.

The runner image is the emulator on real llama.cpp with SmolLM2 in its catalogue; pulls through
``/models/create`` copy the model from that catalogue into the runner's models volume.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from pytest_dmr.protocol import addresses
from pytest_dmr.errors import ProvisioningError
from pytest_dmr.provision import labels
from pytest_dmr.provision.coordination import RunDirectory
from pytest_dmr.provision.runner import ProvisionRequest, acquire, release

pytestmark = pytest.mark.tier_container


def count_pulls(container: Any) -> int:
    """``POST /models/create`` requests in the emulator's request log (``--log-requests``)."""
    return container.logs().decode(errors="replace").count('"POST /models/create ')


class Lines:
    """Collects what provisioning writes to the terminal."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, line: str, transient: bool) -> None:
        with self.lock:
            self.lines.append((line, transient))

    @property
    def final(self) -> list[str]:
        return [line for line, transient in self.lines if not transient]


@pytest.fixture
def run_dir(docker_engine) -> Any:
    directory = RunDirectory.new("t")
    yield directory
    release(directory)
    directory.remove()
    assert not directory.path.exists()


def test_container_answers_on_loopback_with_our_labels_only(docker_engine, models_volume) -> None:
    from pytest_dmr.provision.container import ModelRunnerContainer

    with ModelRunnerContainer(docker_engine.image, models_volume=models_volume) as runner:
        url = runner.get_endpoint()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/").text == addresses.ROOT_BANNER
        wrapped = runner.get_wrapped_container()
        wrapped.reload()
        bindings = wrapped.attrs["NetworkSettings"]["Ports"][f"{addresses.DEFAULT_PORT}/tcp"]
        assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}
        assert wrapped.labels[labels.MANAGED] == "true"
        assert wrapped.labels[labels.IMAGE] == docker_engine.image
        assert not [key for key in wrapped.labels if key.startswith("org.testcontainers")]
        mounts = {mount["Destination"]: mount for mount in wrapped.attrs["Mounts"]}
        assert mounts["/models"]["Name"] == models_volume
    assert wrapped.id not in {container.id for container in docker_engine.containers(**{labels.MANAGED: "true"})}


def test_a_container_that_exits_fails_at_once_with_its_logs(docker_engine) -> None:
    from pytest_dmr.provision.container import ModelRunnerContainer

    runner = ModelRunnerContainer(docker_engine.image, models_volume=None, startup_timeout=600).with_command(
        ["python3", "-c", "import sys; print('runner exploded', file=sys.stderr); sys.exit(3)"]
    )
    started = time.monotonic()
    with pytest.raises(ProvisioningError) as caught:
        with runner:
            pass
    assert time.monotonic() - started < 300, "an exited container must not wait for the 600 s timeout"
    message = str(caught.value)
    assert "stopped before it answered (exited)" in message
    assert "runner exploded" in message


def test_a_runner_that_never_answers_times_out_with_a_clear_message(docker_engine) -> None:
    from pytest_dmr.provision.container import ModelRunnerContainer

    runner = ModelRunnerContainer(docker_engine.image, models_volume=None, startup_timeout=2).with_command(
        ["python3", "-c", "import time; print('still booting', flush=True); time.sleep(60)"]
    )
    with pytest.raises(ProvisioningError) as caught:
        with runner:
            pass
    message = str(caught.value)
    assert "did not answer GET http://127.0.0.1:" in message
    assert f"with {addresses.ROOT_BANNER!r} within 2 s" in message
    assert "still booting" in message
    assert "--dmr-timeout" in message


def test_acquire_starts_once_pulls_once_and_release_removes(docker_engine, models_volume, run_dir) -> None:
    lines = Lines()
    request = ProvisionRequest(image=docker_engine.image, models=("ai/smollm2",), timeout=60)

    first = acquire(request, run_dir, write=lines, interactive=False)
    assert httpx.get(first.url + "/").text == addresses.ROOT_BANNER
    assert first.models["ai/smollm2"].startswith("pulled ")
    assert "MiB in " in first.models["ai/smollm2"]
    assert lines.final == [f"dmr: ai/smollm2: {first.models['ai/smollm2']}"]
    models = httpx.get(first.url + "/models").json()
    assert [tag for model in models for tag in model["tags"]] == ["docker.io/ai/smollm2:latest"]

    second = acquire(request, run_dir, write=lines, interactive=False)
    assert second.container_id == first.container_id
    (container,) = docker_engine.containers(**{labels.RUN: run_dir.run_id})
    assert container.id == first.container_id
    assert count_pulls(container) == 1

    assert release(run_dir) == [first.container_id]
    assert not docker_engine.containers(**{labels.RUN: run_dir.run_id})
    assert docker_engine.client.volumes.get(models_volume).name == models_volume, "pulled models survive the run"


def test_concurrent_acquires_share_one_container_and_one_pull(docker_engine, models_volume, run_dir) -> None:
    request = ProvisionRequest(image=docker_engine.image, models=("ai/smollm2",), timeout=60)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(acquire(request, RunDirectory.from_json(run_dir.to_json()), write=Lines(), interactive=False)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 3
    assert len({result.container_id for result in results}) == 1
    (container,) = docker_engine.containers(**{labels.RUN: run_dir.run_id})
    assert count_pulls(container) == 1


def test_a_missing_image_is_one_clear_reason_and_is_not_retried(docker_engine, run_dir) -> None:
    request = ProvisionRequest(image="pytest-dmr/no-such-runner:0", timeout=10)
    with pytest.raises(ProvisioningError) as caught:
        acquire(request, run_dir, write=Lines(), interactive=False)
    message = str(caught.value)
    assert "the image pytest-dmr/no-such-runner:0 is not in the local engine and cannot be pulled" in message
    assert "--dmr-image" in message
    with pytest.raises(ProvisioningError) as again:
        acquire(request, run_dir, write=Lines(), interactive=False)
    assert str(again.value) == message


def test_the_readiness_probe_goes_straight_to_loopback_whatever_http_proxy_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from pytest_dmr.provision.container import _get

    class Banner(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            body = addresses.ROOT_BANNER.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Banner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing there: a proxied request fails
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert _get(f"http://127.0.0.1:{server.server_address[1]}/") == addresses.ROOT_BANNER
    finally:
        server.shutdown()
        server.server_close()
