"""discovery: the plan, each probe's outcome, the winner, the cost, and the JSON hand-over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest
from plugin_standin import StandIn

from pytest_dmr.protocol import addresses
from pytest_dmr import discovery as discovery_module
from pytest_dmr.discovery import Discovery, Target, discover, plan, probe
from pytest_dmr.settings import resolve


def settings_for(environ: dict[str, str] | None = None, **options: str):
    return resolve({f"--dmr-{key}" if key != "mode" else "--dmr": value for key, value in options.items()}, {}, environ or {})


def target_at(url: str, group: str = "host") -> Target:
    address = addresses.parse_runner_url(url)
    host, port = address.root.removeprefix("http://").split(":")
    return Target(group, f"{host}:{port}", *address, host=host, port=int(port))


class NotARunner(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello</html>"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotARunner)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


def test_plan_order_outside_a_container(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    sock.touch()
    environ = {"LLM_URL": "http://127.0.0.1:7001", "AI_RUNNER_URL": "http://127.0.0.1:7002/engines/v1"}
    targets, notes = plan(settings_for(environ), environ, inside=False, sockets=[str(sock), str(tmp_path / "absent")])
    assert [(t.group, t.label, t.origin) for t in targets] == [
        ("compose", "127.0.0.1:7001", "LLM_URL"),
        ("compose", "127.0.0.1:7002", "AI_RUNNER_URL"),
        ("host", "127.0.0.1:12434", None),
        ("desktop", f"unix://{sock}", None),
    ]
    assert targets[-1].address.root == "http://localhost/exp/vDD4.40"
    assert targets[-1].socket_path == str(sock)
    assert notes == ["container: not inside a container, so no container-only address is probed"]


def test_plan_inside_a_container_adds_the_container_addresses_without_probing_them() -> None:
    targets, _ = plan(settings_for({}), {}, inside=True, gateway="127.0.0.9", sockets=[])
    assert [(t.group, t.host, t.port) for t in targets] == [
        ("host", "127.0.0.1", 12434),
        ("container", "model-runner.docker.internal", 80),
        ("container", "127.0.0.9", 12434),
    ]
    assert all(t.skip is None for t in targets)


def test_groups_left_out_are_not_planned() -> None:
    environ = {"LLM_URL": "http://127.0.0.1:7001", "DMR_DISCOVERY": "compose"}
    targets, notes = plan(settings_for(environ), environ, inside=True, sockets=[])
    assert [t.group for t in targets] == ["compose"]
    assert notes == []


def test_an_explicit_url_is_the_only_candidate() -> None:
    environ = {"LLM_URL": "http://127.0.0.1:7001"}
    targets, _ = plan(settings_for(environ, url="localhost:7005/engines/llama.cpp/v1"), environ, inside=False)
    assert len(targets) == 1
    only = targets[0]
    # localhost is never looked up: the literal loopback address is used.
    assert (only.group, only.host, only.port, only.origin) == ("url", "127.0.0.1", 7005, "--dmr-url")
    assert only.address == addresses.RunnerAddress("http://127.0.0.1:7005", "/engines/llama.cpp/v1")


@pytest.mark.parametrize("host", ["model-runner", "model-runner.docker.internal", "llm"])
def test_docker_internal_names_are_skipped_from_the_host(host: str) -> None:
    environ = {"LLM_URL": f"http://{host}:12434"}
    targets, _ = plan(settings_for(environ), environ, inside=False, sockets=[])
    compose = targets[0]
    assert compose.skip == f"{host} only resolves inside a container"
    outcome = probe(compose).probe
    assert (outcome.result, outcome.detail) == ("skipped", f"skipped: {host} only resolves inside a container")
    assert outcome.elapsed < discovery_module.CONNECT_TIMEOUT  # nothing was even tried


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------


def test_refused_is_fast_and_needs_no_http(refused_url: str) -> None:
    result = probe(target_at(refused_url)).probe
    assert (result.result, result.detail) == ("refused", "connection refused")  # not a timeout: no wait


def test_a_runner_is_found_with_its_models(standin: StandIn) -> None:
    result = probe(target_at(standin.url))
    assert result.probe.result == "found"
    assert result.probe.kind == "dmr"
    assert result.probe.detail == "answered as Docker Model Runner"
    assert result.models == ("docker.io/ai/smollm2:latest",)
    assert result.address == addresses.RunnerAddress(standin.url, "/engines/v1")
    assert standin.count("GET", "/") == 1


def test_an_openai_compatible_server_is_found_without_management() -> None:
    with StandIn(openai_only=True, models=("smollm2",)) as server:
        result = probe(target_at(server.url))
    assert (result.probe.result, result.probe.kind) == ("found", "openai")
    assert "OpenAI-compatible" in result.probe.detail
    assert result.models == ("smollm2",)


def test_something_else_listening_is_not_dmr(other_server: str) -> None:
    result = probe(target_at(other_server)).probe
    assert result.result == "not-dmr"
    assert result.detail == "answered, but not as a model runner (HTTP / 200, /engines/v1/models 404, /v1/models 404)"


def test_a_silent_listener_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_dmr import discovery

    monkeypatch.setattr(discovery, "HTTP_TIMEOUT", 0.2)
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        result = probe(target_at(f"http://127.0.0.1:{listener.getsockname()[1]}")).probe
    assert result.result == "timeout"
    assert result.detail == "no HTTP answer to GET / within 0.2s"


def test_the_container_group_logic_on_an_injected_loopback_target(standin: StandIn) -> None:
    target = target_at(standin.url, group="container")
    found = discover(settings_for({}), {}, targets=[target])
    assert found.address is not None and found.probes[0].group == "container"


def test_desktop_socket_with_its_prefix(tmp_path: Path) -> None:
    """Docker Desktop's API socket: HTTP over a unix socket, every path under /exp/vDD4.40."""
    seen: list[str] = []

    class Desktop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = addresses.ROOT_BANNER.encode() if self.path == "/exp/vDD4.40/" else b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

        def address_string(self) -> str:
            return "unix"

    class UnixServer(HTTPServer):
        address_family = socket.AF_UNIX

        def server_bind(self) -> None:
            self.socket.bind(self.server_address)

    path = str(tmp_path / "docker.sock")
    server = UnixServer(path, Desktop)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        targets, _ = plan(settings_for({"DMR_DISCOVERY": "desktop"}), {}, inside=False, sockets=[path])
        found = discover(settings_for({}), {}, targets=targets)
    finally:
        server.shutdown()
        server.server_close()
    assert found.found and found.socket_path == path
    assert found.address == addresses.RunnerAddress("http://localhost/exp/vDD4.40", "/engines/v1")
    assert seen == ["/exp/vDD4.40/", "/exp/vDD4.40/models"]


# --------------------------------------------------------------------------------------------
# The whole discovery
# --------------------------------------------------------------------------------------------


def test_priority_order_wins_not_speed(standin: StandIn, refused_url: str) -> None:
    with StandIn() as second:
        found = discover(settings_for({}), {}, targets=[target_at(refused_url, "url"), target_at(second.url, "compose"),
                                                         target_at(standin.url, "host")])
    assert found.source == second.url.removeprefix("http://")
    assert [p.result for p in found.probes] == ["refused", "found", "found"]
    assert found.explain().startswith(f"{refused_url.removeprefix('http://')} connection refused; ")


def test_nothing_found_explains_every_probe(refused_url: str) -> None:
    environ = {"LLM_URL": "http://llm:12434"}
    found = discover(settings_for(environ, url=refused_url), environ, inside=False)
    assert not found.found
    assert found.explain() == f"{refused_url.removeprefix('http://')} connection refused"
    found = discover(settings_for(environ | {"DMR_DISCOVERY": "compose"}), environ, inside=False)
    assert found.explain() == "llm:12434 skipped: llm only resolves inside a container"


def test_discovery_survives_json(standin: StandIn, refused_url: str) -> None:
    found = discover(settings_for({}), {}, targets=[target_at(refused_url), target_at(standin.url)])
    again = Discovery.from_json(__import__("json").loads(__import__("json").dumps(found.to_json())))
    assert again == found


def test_nothing_listening_needs_no_http_library() -> None:
    """In a fresh interpreter: discovery with nothing on 12434 and no socket imports no HTTP library,
    httpx2 and httpx included (its cost is a figure of benchmarks/startup.py, not a bound here)."""
    code = (
        "import sys, time\n"
        "from pytest_dmr import discovery, settings\n"
        "s = settings.resolve({}, {}, {'DMR_DISCOVERY': 'url,compose,host'})\n"
        "start = time.perf_counter(); d = discovery.discover(s, {}); took = time.perf_counter() - start\n"
        "print(took, 'httpx' in sys.modules or 'httpx2' in sys.modules, 'http.client' in sys.modules, d.probes[0].result)\n"
    )
    with socket.socket() as probe_socket:
        if probe_socket.connect_ex(("127.0.0.1", 12434)) == 0:
            pytest.skip("something listens on 127.0.0.1:12434 on this machine")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stdout.split()
    httpx_loaded, http_client_loaded, result = output[1], output[2], output[3]
    assert result == "refused"
    assert httpx_loaded == "False" and http_client_loaded == "False"


def test_a_hung_probe_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch, refused_url: str) -> None:
    from pytest_dmr import discovery

    released = threading.Event()

    def hung_probe(target: Target):
        if target.port == 1:
            released.wait(120)
        return original(target)

    original = discovery.probe
    monkeypatch.setattr(discovery, "probe", hung_probe)
    start = time.perf_counter()
    try:
        results = discovery.probe_all([target_at("http://127.0.0.1:1"), target_at(refused_url)], deadline=0.2)
        assert time.perf_counter() - start < 60, "the 0.2 s deadline, not the 120 s hang, must end discovery"
    finally:
        released.set()
    assert [r.probe.result for r in results] == ["timeout", "refused"]
    assert results[0].probe.detail == "no answer within 0.2s"


def test_discovery_records_hash_and_compare_as_the_named_tuples_they_replaced() -> None:
    first, same = target_at("http://127.0.0.1:12434"), target_at("http://127.0.0.1:12434")
    other = target_at("http://127.0.0.1:12435")
    assert first == same and hash(first) == hash(same)
    assert first != other
    assert len({first, same, other}) == 2
