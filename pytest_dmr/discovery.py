"""Find a runner once per run: plan the candidates, probe them concurrently, keep every outcome.

Candidates, in priority order (the first that answers wins, whatever answers first in time):

1. ``url``: an explicit URL (``--dmr-url`` and friends). When given, nothing else is probed.
2. ``compose``: ``<REF>_URL`` variables injected by compose (refs from ``dmr_compose_refs``).
3. ``host``: ``127.0.0.1:12434`` (the literal address: ``localhost`` is never looked up).
4. ``container``: only inside a container, ``model-runner.docker.internal`` and the gateway on 12434.
5. ``desktop``: Docker Desktop's API socket with the ``/exp/vDD4.40`` prefix, where a socket exists.

A probe first opens a plain TCP connection (a refusal costs microseconds and needs no HTTP
library); only when something listens does it speak HTTP (``discovery_http.py``: a plain ``GET``
on a socket): ``GET /`` answering the banner is a Docker Model Runner; otherwise an OpenAI
``/models`` list under ``/engines/v1`` or ``/v1`` is an OpenAI-compatible server (no management
API). Nothing here imports pytest or httpx, and a :class:`Discovery` survives JSON (xdist hands
it to workers).

The header of every run in auto mode needs discovery, so this module is cheap to import: its
records are plain classes (``settings.Record``: defining a named tuple or a dataclass compiles code
at import), and what only a listening candidate needs (the HTTP exchange, the protocol's addresses,
routes and model listings, the redaction of URLs in details) loads when one listens, or when a
URL is given.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dmr.settings import Record, Settings, compose_variables

if TYPE_CHECKING:
    from pytest_dmr.protocol.addresses import RunnerAddress

CONNECT_TIMEOUT = 0.5
"""Seconds for the TCP connect of one probe."""
HTTP_TIMEOUT = 2.0
"""Seconds for each HTTP request of a probe, once something listens."""
DEADLINE = 3.0
"""Seconds after which discovery stops waiting; probes still running count as timeouts."""

DESKTOP_SOCKETS = ("/var/run/docker.sock", "~/.docker/run/docker.sock")
DEFAULT_GATEWAY = "172.17.0.1"

HOW_TO_START = (
    "Start one: Docker Desktop: `docker desktop enable model-runner --tcp 12434`; Docker Engine: "
    "`docker model install-runner`. Or point at one with --dmr-url=URL (DMR_URL), let pytest-dmr start "
    "one with --dmr-provision=testcontainers, or use --dmr=auto to fall back to the mock."
)
"""What to tell someone who has no runner."""

FOUND, REFUSED, TIMEOUT, NOT_DMR, SKIPPED, ERROR = "found", "refused", "timeout", "not-dmr", "skipped", "error"
KIND_DMR, KIND_OPENAI = "dmr", "openai"

# DMR's addresses and paths as protocol.addresses and protocol.routes define them (a test checks that they
# agree): what discovery needs before it knows a runner is there. So a run where nothing listens, or only a
# Docker API socket without the model runner, plans and probes with no protocol module loaded.
HOST_IP, HOST_PORT = "127.0.0.1", 12434
"""The ``host`` candidate (``addresses.DEFAULT_HOST_URL``)."""
DESKTOP_SOCKET_ROOT = "http://localhost/exp/vDD4.40"
"""The root of a runner behind Docker Desktop's API socket (``addresses.DESKTOP_SOCKET_PREFIX``)."""
ROOT_BANNER = "Docker Model Runner is running"
"""What ``GET /`` answers on a Docker Model Runner (``addresses.ROOT_BANNER``)."""
ROOT_PATH, MANAGEMENT_MODELS_PATH = "/", "/models"
ENGINES_PREFIX, ALIAS_PREFIX, MODELS = "/engines/v1", "/v1", "/models"
"""The OpenAI prefixes (``routes.ENGINES_PREFIX``, the built-in candidates' prefix, and ``routes.ALIAS_PREFIX``)
and the OpenAI model list under them (``routes.MODELS``)."""


class Target(Record):
    """One candidate to probe: where to connect (``host`` and ``port``, or ``socket_path``), and the runner
    address it would give (``root`` and ``api_prefix``: ``Target(group, label, *runner_address, ...)``).
    ``label``: how messages name it (``127.0.0.1:12434``, ``unix:///var/run/docker.sock``); ``origin``:
    where the URL came from (``--dmr-url``, ``LLM_URL``), for url and compose targets; ``skip``: why it is
    not probed at all (a docker-internal name seen from the host)."""

    __slots__ = ("group", "label", "root", "api_prefix", "host", "port", "socket_path", "origin", "skip")

    def __init__(
        self, group: str, label: str, root: str, api_prefix: str, host: str = "", port: int = 0,
        socket_path: str | None = None, origin: str | None = None, skip: str | None = None,
    ) -> None:
        self.group, self.label, self.root, self.api_prefix = group, label, root, api_prefix
        self.host, self.port, self.socket_path, self.origin, self.skip = host, port, socket_path, origin, skip

    @property
    def address(self) -> RunnerAddress:
        from pytest_dmr.protocol.addresses import RunnerAddress

        return RunnerAddress(self.root, self.api_prefix)


class Probe(Record):
    """The outcome of probing one target: ``result`` is found, refused, timeout, not-dmr, skipped or
    error; ``elapsed`` in seconds; ``kind`` dmr or openai, when found."""

    __slots__ = ("target", "group", "result", "detail", "elapsed", "kind")

    def __init__(self, target: str, group: str, result: str, detail: str, elapsed: float, kind: str | None = None) -> None:
        self.target, self.group, self.result, self.detail, self.elapsed, self.kind = target, group, result, detail, elapsed, kind

    def describe(self) -> str:
        return f"{self.target} {self.detail}"


class Discovery(Record):
    """Every probe's outcome and the winner (``address`` is ``None`` when nothing answered). ``source``:
    what found it, for messages (``127.0.0.1:12434``, ``--dmr-url``, ``LLM_URL``); ``notes``: groups left
    out and why (``container: not inside a container``)."""

    __slots__ = ("probes", "address", "kind", "source", "socket_path", "models", "notes", "elapsed")

    def __init__(
        self, probes: tuple[Probe, ...] = (), address: RunnerAddress | None = None, kind: str | None = None,
        source: str | None = None, socket_path: str | None = None, models: tuple[str, ...] = (),
        notes: tuple[str, ...] = (), elapsed: float = 0.0,
    ) -> None:
        self.probes, self.address, self.kind, self.source = probes, address, kind, source
        self.socket_path, self.models, self.notes, self.elapsed = socket_path, models, notes, elapsed

    @property
    def found(self) -> bool:
        return self.address is not None

    def explain(self) -> str:
        """What was probed and what answered, one clause per probe: ``127.0.0.1:12434 connection refused; ...``."""
        parts = [probe.describe() for probe in self.probes]
        return "; ".join(parts) if parts else "nothing to probe"

    def to_json(self) -> dict[str, Any]:
        return {
            "probes": [probe._asdict() for probe in self.probes],
            "address": list(self.address) if self.address else None,
            "kind": self.kind,
            "source": self.source,
            "socket_path": self.socket_path,
            "models": list(self.models),
            "notes": list(self.notes),
            "elapsed": self.elapsed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Discovery:
        address = None
        if data.get("address"):  # a runner was found: its address needs the protocol module
            from pytest_dmr.protocol.addresses import RunnerAddress

            address = RunnerAddress(*data["address"])
        return cls(
            probes=tuple(Probe(**probe) for probe in data.get("probes", ())),
            address=address,
            kind=data.get("kind"),
            source=data.get("source"),
            socket_path=data.get("socket_path"),
            models=tuple(data.get("models", ())),
            notes=tuple(data.get("notes", ())),
            elapsed=float(data.get("elapsed", 0.0)),
        )


# --------------------------------------------------------------------------------------------
# Where we are
# --------------------------------------------------------------------------------------------


def in_container() -> bool:
    """Whether this process runs inside a container (``/.dockerenv``, podman's marker, or cgroups)."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(hint in cgroup for hint in ("docker", "containerd", "kubepods", "libpod"))


def default_gateway() -> str:
    """The default route's gateway from ``/proc/net/route`` (no traffic), else Docker's usual bridge."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return DEFAULT_GATEWAY
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
            return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return DEFAULT_GATEWAY


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _only_resolves_inside_containers(host: str) -> bool:
    """Compose service names (no dot) and ``*.internal`` names mean nothing to the host's resolver."""
    if host == "localhost" or _is_ip_literal(host):
        return False
    return "." not in host or host.endswith(".internal")


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _url_target(group: str, url: str, origin: str, *, inside: bool) -> Target:
    from urllib.parse import urlsplit

    from pytest_dmr.protocol import addresses

    address = addresses.parse_runner_url(url)
    parts = urlsplit(address.root)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    skip = None
    if not inside and _only_resolves_inside_containers(host):
        skip = f"{host} only resolves inside a container"
    if host == "localhost":
        # Never ask the resolver about localhost: connect to the literal loopback address.
        netloc = f"127.0.0.1:{port}"
        address = addresses.RunnerAddress(address.root.replace(parts.netloc, netloc, 1), address.api_prefix)
        host = "127.0.0.1"
    label = f"{host}:{port}" if parts.path in ("", "/") else f"{host}:{port}{parts.path}"
    return Target(group, label, *address, host=host, port=port, origin=origin, skip=skip)


def plan(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    inside: bool | None = None,
    gateway: str | None = None,
    sockets: Sequence[str] | None = None,
) -> tuple[list[Target], list[str]]:
    """The targets to probe, in priority order, and notes on groups left out.

    ``inside``, ``gateway`` and ``sockets`` default to what this machine says; tests pass them.
    """
    inside = in_container() if inside is None else inside
    if settings.url:
        return [_url_target("url", settings.url, settings.url_source or "url", inside=inside)], [
            "explicit URL given: no other candidate probed"
        ]
    groups = settings.discovery
    targets: list[Target] = []
    notes: list[str] = []
    if "compose" in groups:
        for ref, url, _model in compose_variables(settings.compose_refs, environ):
            targets.append(_url_target("compose", url, f"{ref}_URL", inside=inside))
    if "host" in groups:
        label = f"{HOST_IP}:{HOST_PORT}"
        targets.append(Target("host", label, f"http://{label}", ENGINES_PREFIX, HOST_IP, HOST_PORT))
    if "container" in groups:
        if inside:
            from pytest_dmr.protocol import addresses

            desktop = _url_target("container", addresses.CONTAINER_DESKTOP_URL, "container", inside=True)
            gateway_host = gateway or default_gateway()
            engine = _url_target(
                "container", f"http://{gateway_host}:{addresses.CONTAINER_GATEWAY_PORT}", "container", inside=True
            )
            targets.extend([desktop, engine])
        else:
            notes.append("container: not inside a container, so no container-only address is probed")
    if "desktop" in groups:
        candidates = list(DESKTOP_SOCKETS) if sockets is None else list(sockets)
        docker_host = environ.get("DOCKER_HOST", "")
        if sockets is None and docker_host.startswith("unix://"):
            candidates.insert(0, docker_host[len("unix://") :])
        existing = []
        for path in dict.fromkeys(os.path.expanduser(candidate) for candidate in candidates):
            if os.path.exists(path):
                existing.append(path)
        for path in existing:
            targets.append(Target("desktop", f"unix://{path}", DESKTOP_SOCKET_ROOT, ENGINES_PREFIX, socket_path=path))
        if not existing:
            notes.append("desktop: no Docker API socket found")
    return targets, notes


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


class _Outcome(Exception):
    """Ends a probe early with a result and a detail."""

    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


def _open(target: Target, ip: str, timeout: float) -> socket.socket:
    """A socket connected to the target (unix or TCP), closed again at once if connecting fails."""
    address: str | tuple[str, int]
    if target.socket_path:
        family, address = socket.AF_UNIX, target.socket_path
    else:
        family, address = (socket.AF_INET6 if ":" in ip else socket.AF_INET), (ip, target.port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(target: Target, ip: str) -> None:
    """A plain TCP (or unix) connect: refused is instant and needs nothing else."""
    try:
        _open(target, ip, CONNECT_TIMEOUT).close()
    except ConnectionRefusedError:
        raise _Outcome(REFUSED, "connection refused") from None
    except (socket.timeout, TimeoutError):
        raise _Outcome(TIMEOUT, f"no connection within {CONNECT_TIMEOUT:g}s") from None
    except PermissionError:
        raise _Outcome(ERROR, "permission denied") from None
    except OSError as exc:
        raise _Outcome(ERROR, exc.strerror or str(exc)) from None


def _resolve(target: Target) -> str:
    if target.socket_path or _is_ip_literal(target.host):
        return target.host
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError:
        raise _Outcome(ERROR, f"{target.host} does not resolve") from None
    return str(infos[0][4][0])


class _Result(Record):
    __slots__ = ("probe", "address", "models")

    def __init__(self, probe: Probe, address: RunnerAddress | None = None, models: tuple[str, ...] = ()) -> None:
        self.probe, self.address, self.models = probe, address, models


def probe(target: Target) -> _Result:
    """Probe one target; never raises."""
    started = time.perf_counter()

    def done(result: str, detail: str, kind: str | None = None) -> Probe:
        if "://" in detail:  # an error may quote the URL, password and all
            from pytest_dmr.redaction import redact_text

            detail = redact_text(detail)
        return Probe(target.label, target.group, result, detail, round(time.perf_counter() - started, 6), kind)

    if target.skip:
        return _Result(done(SKIPPED, f"skipped: {target.skip}"))
    try:
        ip = _resolve(target)
        _connect(target, ip)
        from pytest_dmr.discovery_http import identify  # something listens: ask what it is

        address, kind, models = identify(target, ip)
    except _Outcome as outcome:
        return _Result(done(outcome.result, outcome.detail))
    except Exception as exc:  # a probe must never break the run
        return _Result(done(ERROR, f"probe failed: {exc.__class__.__name__}: {exc}"))
    what = "Docker Model Runner" if kind == KIND_DMR else "OpenAI-compatible server (no model management)"
    return _Result(done(FOUND, f"answered as {what}", kind), address, models)


def probe_all(targets: Sequence[Target], *, deadline: float = DEADLINE) -> list[_Result]:
    """Probe every target concurrently (one daemon thread each); in ``targets`` order."""
    results: list[_Result | None] = [None] * len(targets)
    if len(targets) == 1:
        results[0] = probe(targets[0])
    else:
        import threading


        def run(index: int) -> None:
            results[index] = probe(targets[index])

        threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(len(targets))]
        for thread in threads:
            thread.start()
        end = time.perf_counter() + deadline
        for thread in threads:
            thread.join(max(0.0, end - time.perf_counter()))
    final = []
    for target, result in zip(targets, results):
        if result is None:
            result = _Result(Probe(target.label, target.group, TIMEOUT, f"no answer within {deadline:g}s", deadline))
        final.append(result)
    return final


def discover(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    targets: Sequence[Target] | None = None,
    inside: bool | None = None,
) -> Discovery:
    """Run discovery once. ``targets`` replaces the plan (tests inject targets on 127.0.0.1)."""
    started = time.perf_counter()
    environ = os.environ if environ is None else environ
    notes: list[str] = []
    if targets is None:
        planned, notes = plan(settings, environ, inside=inside)
    else:
        planned = list(targets)
    results = probe_all(planned)
    winner = next(((target, result) for target, result in zip(planned, results) if result.address), None)
    elapsed = round(time.perf_counter() - started, 6)
    probes = tuple(result.probe for result in results)
    if winner is None:
        return Discovery(probes=probes, notes=tuple(notes), elapsed=elapsed)
    target, result = winner
    source = target.label if target.origin is None else f"{target.origin} {target.label}"
    return Discovery(
        probes=probes,
        address=result.address,
        kind=result.probe.kind,
        source=source,
        socket_path=target.socket_path,
        models=result.models,
        notes=tuple(notes),
        elapsed=elapsed,
    )
