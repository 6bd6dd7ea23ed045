"""Start (or find) the run's runner container, pull its models, and remove it at the end.

Pure orchestration over ``engine`` (is there Docker, is there the image), ``container`` (the
testcontainers class), ``coordination`` (locks and the state file) and ``pull`` (progress).
No pytest here: ``pytest_dmr.provision`` wires this to a pytest run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pytest_dmr.protocol import addresses
from pytest_dmr.errors import ProvisioningError
from pytest_dmr.provision import coordination, labels
from pytest_dmr.provision.coordination import RunDirectory, RunnerRecord, RunState
from pytest_dmr.provision.owner import Owner
from pytest_dmr.provision.pull import Write, pull_models

if TYPE_CHECKING:
    from pytest_dmr.provision.container import ModelRunnerContainer
    from pytest_dmr.provision.engine import Engine

MODELS_VOLUME_ENV = "PYTEST_DMR_MODELS_VOLUME"
"""The named volume holding the runner's models (default ``pytest-dmr-models``): pulls survive runs."""


@dataclass(frozen=True)
class ProvisionRequest:
    """What a run asks of provisioning (built from the run's settings)."""

    image: str = addresses.DEFAULT_IMAGE
    models: Sequence[str] = ()
    pull: bool = True
    reuse: bool = False
    timeout: float = 120.0
    worker: str = "main"
    owner: Owner | None = field(default_factory=Owner.current)
    """The process that removes the run's containers at its end (the xdist controller)."""


@dataclass
class ProvisionedRunner(RunnerRecord):
    """The runner a run got (its record in the run's state) and what was pulled into it."""

    models: dict[str, str] = field(default_factory=dict)
    """Model -> ``pulled 98.04 MiB in 1.3 s`` or ``already on the runner``."""
    missing: dict[str, str] = field(default_factory=dict)
    """Model -> why its pull failed."""

    @classmethod
    def from_state(cls, state: RunState) -> ProvisionedRunner:
        if state.runner is None:
            raise ProvisioningError("this run has no runner")
        return cls(**asdict(state.runner), models=dict(state.pulled), missing=dict(state.pull_failures))

    @property
    def description(self) -> str:
        """For the run's header and summary: what was started, from what, and how fast."""
        short_id = self.container_id[:12]
        if self.kind == "desktop-proxy":
            what = f"Docker Desktop's runner through container {short_id}"
        elif self.reused:
            what = f"reused container {short_id} ({self.image}, --dmr-reuse)"
        else:
            kept = ", kept for reuse" if self.keep else ""
            what = f"container {short_id} from {self.image}, ready in {self.startup_seconds:.1f} s{kept}"
        return f"provisioned {what}"


def acquire(request: ProvisionRequest, run_dir: RunDirectory, *, write: Write, interactive: bool) -> ProvisionedRunner:
    """The run's runner: started by the first caller, read from the state file by the others."""
    with run_dir.locked() as state:
        if state.released:
            raise ProvisioningError("the run is ending: its runner was already removed")
        if state.failure is not None:
            raise ProvisioningError(state.failure)
        if state.runner is None:
            state.attempted = True
            run_dir.write(state)
            try:
                state.runner = _start_or_find(request, run_dir.run_id, write=write)
            except ProvisioningError as exc:
                state.failure = str(exc)
                raise
        record = state.runner
        wanted = [model for model in request.models if model not in state.pulled and model not in state.pull_failures]
        if wanted and request.pull:
            # A kept runner is shared with other runs: one pull at a time through it.
            shared = coordination.reuse_lock(coordination.reuse_key(record.image, _engine_host())) if record.keep else nullcontext()
            with shared:
                done, failed = pull_models(record.url, wanted, write=write, interactive=interactive, timeout=request.timeout)
            state.pulled.update(done)
            state.pull_failures.update(failed)
        return ProvisionedRunner.from_state(state)


def release(run_dir: RunDirectory) -> list[str]:
    """Remove every container of this run (by its run label). Returns the removed ids."""
    if not run_dir.exists:
        return []  # no process of the run took the lock: none tried to start a container
    started = True
    try:
        with run_dir.locked(timeout=60.0) as state:
            state.released = True
            if not state.attempted:
                return []
            started = state.runner is not None
    except ProvisioningError:
        pass  # a process of the run still holds the lock (starting the runner?): remove by label all the same
    from pytest_dmr.provision.engine import connect

    try:
        engine = connect()
    except ProvisioningError:
        if not started:
            return []  # the start failed and no engine answers now: the run has no container to remove
        raise
    removed = []
    try:
        found = engine.client.containers.list(all=True, filters={"label": f"{labels.RUN}={run_dir.run_id}"})
        for item in found:
            item.remove(force=True, v=True)
            removed.append(item.id)
    finally:
        engine.client.close()
    return removed


def sweep_dead_runs(engine: Engine, *, write: Write) -> list[str]:
    """Remove the containers of runs whose owner is gone (killed before it could remove them).

    One ``docker ps`` filtered by label; ``--dmr-reuse`` runners (no run label), runs still alive
    and runs elsewhere are never touched (``owner.py``). Returns the removed ids.
    """
    import docker

    from pytest_dmr.provision.engine import _short

    observer = Owner.current()
    if observer is None:
        return []
    try:
        found = engine.client.api.containers(all=True, filters={"label": [labels.MANAGED, labels.RUN]})
    except docker.errors.DockerException:
        return []  # the start that follows reports what is wrong with the engine
    removed = []
    for item in found:
        owner = Owner.from_labels(item.get("Labels") or {})
        if owner is None or labels.REUSE in item["Labels"] or not owner.is_gone(observer):
            continue
        name = item["Names"][0].lstrip("/")
        try:
            engine.client.api.remove_container(item["Id"], force=True, v=True)
        except docker.errors.NotFound:
            continue  # another run removed it first
        except docker.errors.DockerException as exc:
            write(f"dmr: could not remove {name}, left behind by an ended run: {_short(exc)}", False)
            continue
        removed.append(item["Id"])
        write(f"dmr: removed container {name}, left behind by a run whose pytest (pid {owner.pid}) has ended", False)
    return removed


def remove_orphans(engine: Engine, run_id: str, *, write: Write) -> list[str]:
    """Remove this run's containers that no state records: a worker that died while starting one
    (after ``docker create``) left it, name and all. The caller holds the run's lock and found no
    runner in the state, so no live process of the run owns them; they are replaced, never the mock.
    Returns the removed ids."""
    import docker

    from pytest_dmr.provision.engine import _short

    removed = []
    for item in engine.client.containers.list(all=True, filters={"label": f"{labels.RUN}={run_id}"}):
        try:
            item.remove(force=True, v=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as exc:
            raise ProvisioningError(
                f"cannot remove container {item.name}, left by a worker of this run that died while starting it: {_short(exc)}",
                hint=f"Remove it with `docker rm -f {item.name}` and run again",
            ) from None
        removed.append(item.id)
        write(f"dmr: replacing container {item.name} ({item.status}), left by a worker of this run that died while starting it", False)
    return removed


def _engine_host() -> str:
    from pytest_dmr.provision.engine import docker_host

    return docker_host()


def _start_or_find(request: ProvisionRequest, run_id: str, *, write: Write) -> RunnerRecord:
    from pytest_dmr.provision.engine import connect

    engine = connect()
    try:
        sweep_dead_runs(engine, write=write)
        image = request.image
        if engine.desktop:
            from pytest_dmr.provision.container import DESKTOP_PROXY_IMAGE

            image = DESKTOP_PROXY_IMAGE
        if not request.reuse:
            owner = request.owner.to_labels() if request.owner else {}
            remove_orphans(engine, run_id, write=write)
            return _start(engine, image, request, run_labels={labels.RUN: run_id, **owner}, name=f"pytest-dmr-{run_id}", write=write)
        key = coordination.reuse_key(image, engine.host)
        with coordination.reuse_lock(key):
            found = _find_reusable(engine, key, request)
            if found is not None:
                return found
            return _start(engine, image, request, run_labels={labels.REUSE: key}, name=f"pytest-dmr-reuse-{key}", write=write)
    finally:
        engine.client.close()


def _start(engine: Engine, image: str, request: ProvisionRequest, *, run_labels: dict[str, str], name: str, write: Write) -> RunnerRecord:
    from pytest_dmr.provision.container import DEFAULT_MODELS_VOLUME, DesktopRunnerProxy, ModelRunnerContainer
    from pytest_dmr.provision.engine import ensure_image

    ensure_image(engine, image, announce=lambda line: write(line, False))
    volume = os.environ.get(MODELS_VOLUME_ENV) or DEFAULT_MODELS_VOLUME
    runner: ModelRunnerContainer
    if engine.desktop:
        runner = DesktopRunnerProxy(image, extra_labels=run_labels, startup_timeout=request.timeout, name=name)
    else:
        runner = ModelRunnerContainer(
            image, extra_labels=run_labels, models_volume=volume, startup_timeout=request.timeout, name=name
        )
    started = time.monotonic()
    try:
        runner.start()
    except BaseException as exc:
        _remove_quietly(runner)
        if isinstance(exc, ProvisioningError):
            raise
        if isinstance(exc, Exception):
            raise ProvisioningError(
                f"cannot start a runner container from {image}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                hint="Check `docker ps -a` and the engine's logs",
            ) from None
        raise
    return RunnerRecord(
        url=runner.get_endpoint(),
        container_id=runner.get_wrapped_container().id,
        image=image,
        kind="desktop-proxy" if engine.desktop else "runner",
        keep=request.reuse,
        startup_seconds=round(time.monotonic() - started, 3),
        started_by=request.worker,
    )


def _remove_quietly(runner: ModelRunnerContainer) -> None:
    try:
        if runner._container is not None:
            runner._container.remove(force=True, v=True)
    except Exception:  # noqa: BLE001, S110 - best effort; the run's label sweep catches what is left
        pass


def _find_reusable(engine: Engine, key: str, request: ProvisionRequest) -> RunnerRecord | None:
    """A runner an earlier run kept (``--dmr-reuse``), restarted if it had stopped; ``None`` if none."""
    from pytest_dmr.provision.container import LOOPBACK, RunnerReadyWait, published_port

    found = engine.client.containers.list(all=True, filters={"label": f"{labels.REUSE}={key}"})
    for item in found:
        started = time.monotonic()
        try:
            if item.status != "running":
                item.start()
            target = _WaitTarget(item)
            RunnerReadyWait(addresses.DEFAULT_PORT, timeout=min(request.timeout, 60.0)).wait_until_ready(target)
            url = f"http://{LOOPBACK}:{published_port(item, addresses.DEFAULT_PORT)}"
        except Exception:  # noqa: BLE001 - a broken kept runner is replaced, not reported
            item.remove(force=True, v=True)
            continue
        return RunnerRecord(
            url=url,
            container_id=item.id,
            image=item.labels.get(labels.IMAGE, request.image),
            kind="desktop-proxy" if item.labels.get(labels.KIND) == "desktop-proxy" else "runner",
            reused=True,
            keep=True,
            startup_seconds=round(time.monotonic() - started, 3),
            started_by=request.worker,
        )
    return None


class _WaitTarget:
    """Lets the wait strategy watch a docker-py container found by label (not started by us)."""

    def __init__(self, item) -> None:  # type: ignore[no-untyped-def]
        self.item = item

    def get_container_host_ip(self) -> str:
        from pytest_dmr.provision.container import LOOPBACK

        return LOOPBACK

    def get_exposed_port(self, port: int) -> int:
        from pytest_dmr.provision.container import published_port

        return published_port(self.item, port)

    def get_wrapped_container(self):  # type: ignore[no-untyped-def]
        return self.item

    def get_logs(self) -> tuple[bytes, bytes]:
        return self.item.logs(stderr=False), self.item.logs(stdout=False)

    def reload(self) -> None:
        self.item.reload()

    @property
    def status(self) -> str:
        return str(self.item.status)
