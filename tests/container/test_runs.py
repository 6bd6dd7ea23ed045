"""Whole pytest runs with ``--dmr-provision=testcontainers`` against a real engine and the runner image.

Each inner run records, from inside its tests, which runner it got and what Docker shows (the
containers labelled ``io.pytest-dmr.*`` and the runner's request log); the outer test checks
those records and what is left in Docker afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_dmr.provision import SIGTERM_MESSAGE, labels

pytestmark = pytest.mark.tier_container

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

CONFTEST = '''
import json, os
import docker
import pytest

def _published_port(container):
    for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
        for binding in bindings or ():
            yield binding.get("HostPort")

@pytest.fixture
def record(dmr_runner):
    """Append what this test sees to the file the outer test reads."""
    def write(**extra):
        client = docker.from_env()
        managed = client.containers.list(filters={"label": "io.pytest-dmr.managed"})
        port = dmr_runner.root_url.rsplit(":", 1)[-1]
        mine = [c for c in managed if port in set(_published_port(c))]
        pulls = mine[0].logs().decode(errors="replace").count('"POST /models/create ') if mine else None
        line = {
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "backend": dmr_runner.backend,
            "reason": dmr_runner.reason,
            "root_url": dmr_runner.root_url,
            "container": mine[0].id if mine else None,
            "managed": sorted(c.id for c in managed),
            "pulls": pulls,
            **extra,
        }
        with open(os.environ["DMR_TEST_RECORD"], "a") as out:
            out.write(json.dumps(line) + "\\n")
        client.close()
    return write
'''

LIVE_TESTS = '''
import pytest

@pytest.mark.dmr_live
@pytest.mark.dmr_model("ai/smollm2")
@pytest.mark.parametrize("n", range(4))
@pytest.mark.asyncio
async def test_live(n, dmr_adapter, record):
    text = await dmr_adapter.generate("Say hello.", max_tokens=4, temperature=0, seed=1)
    assert isinstance(text, str) and text
    assert dmr_adapter.backend == "live"
    record(n=n)
'''

SLEEPING_TESTS = (
    "import time\n\ndef test_slow(record):\n    record()\n    time.sleep(300)\n\n"
    "def test_other(record):\n    record()\n    time.sleep(300)\n"
)
QUICK_TEST = "def test_quick(record):\n    record()\n"
SWEPT = "dmr: removed container"


def provision_args(image: str, *extra: str) -> list[str]:
    return ["--dmr-provision=testcontainers", f"--dmr-image={image}", "-p", "no:cacheprovider", *extra]


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def leftovers(docker_engine: Any) -> list[str]:
    """Containers a run started and should have removed (``--dmr-reuse`` ones are kept on purpose)."""
    return [container.name for container in docker_engine.containers(**{labels.RUN: None})]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_environment: None, docker_engine: Any) -> Iterator[Path]:
    """A pytester project with the recording conftest; returns the record file's path."""
    assert not leftovers(docker_engine), "a previous test left a runner container behind"
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    record = pytester.path / "records.jsonl"
    monkeypatch.setenv("DMR_TEST_RECORD", str(record))
    yield record
    started_here = {found["container"] for found in read_records(record)}
    for container in docker_engine.containers(**{labels.RUN: None}):  # after a failure: spare the next tests
        if container.id in started_here:
            container.remove(force=True, v=True)


def start_run(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[str]:
    """A pytest run in the background, in a process group of its own (its xdist workers included)."""
    command = [sys.executable, "-m", "pytest", *args]
    return subprocess.Popen(
        command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def wait_for_runner(process: subprocess.Popen[str], records: Path) -> dict[str, Any]:
    """The first record of a background run: its tests are running, on their runner."""
    deadline = time.monotonic() + 90
    while not read_records(records) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    found = read_records(records)
    assert found and found[0]["container"], "the inner run never got its runner"
    return found[0]


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Signal a background run and all its processes (if still running), and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.communicate(timeout=60)


def test_live_tests_pass_through_a_provisioned_runner(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_live=LIVE_TESTS)
    result = pytester.runpytest_subprocess("--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=4)
    records = read_records(inner)
    assert {record["backend"] for record in records} == {"live"}
    assert len({record["container"] for record in records}) == 1
    assert records[-1]["pulls"] == 1
    output = result.stdout.str() + result.stderr.str()
    assert "dmr: ai/smollm2:latest: pulled " in output
    result.stdout.fnmatch_lines(["dmr: provisioned container * from pytest-dmr/*, ready in * s at http://127.0.0.1:*"])
    assert not leftovers(docker_engine)


def test_two_workers_share_one_container_and_one_pull(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_live=LIVE_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=4)
    records = read_records(inner)
    assert {record["worker"] for record in records} == {"gw0", "gw1"}
    assert len({record["root_url"] for record in records}) == 1
    containers = {record["container"] for record in records}
    assert len(containers) == 1 and None not in containers
    # At every moment a test looked, Docker showed exactly that one pytest-dmr container.
    assert all(record["managed"] == sorted(containers) for record in records)
    assert max(record["pulls"] for record in records) == 1
    assert not leftovers(docker_engine)


def test_no_container_is_left_after_a_failing_run(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_fails="def test_fails(record):\n    record()\n    assert False, 'this run fails'\n")
    result = pytester.runpytest_subprocess("--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(failed=1)
    (record,) = read_records(inner)
    assert record["container"] is not None, "the run did provision a container"
    assert not leftovers(docker_engine)


RUN_DIRECTORIES_PROBE = '''
import pathlib, tempfile

def run_directories():
    """pytest-dmr's entries in the temporary directory (this run's only: TMPDIR is the test's own)."""
    return {path.name: sorted(item.name for item in path.iterdir())
            for path in pathlib.Path(tempfile.gettempdir()).glob("pytest-dmr*")}

def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller, its workers gone, before its cleanup
        pathlib.Path(os.environ["DMR_TEST_RUN_DIRECTORIES"]).write_text(json.dumps(run_directories()))
'''

PULLING_TESTS = {
    # Provisioning pulls every collected dmr_model model; this one fails, so the test's own check
    # pulls it again under the run's pull lock (and writes the failure down for the other worker).
    "test_missing": 'import pytest\n\n@pytest.mark.dmr_model("ai/no-such-model")\ndef test_missing(dmr_runner):\n    pass\n',
    "test_present": (
        "import pytest\nfrom conftest import run_directories\n\n"
        '@pytest.mark.dmr_model("ai/smollm2")\ndef test_present(record):\n    record(run_directories=run_directories())\n'
    ),
}


def test_provisioning_and_model_pulls_share_one_run_directory(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST + RUN_DIRECTORIES_PROBE)
    pytester.makepyfile(**PULLING_TESTS)
    temporary = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(temporary))
    at_end = pytester.path / "run-directories.json"
    monkeypatch.setenv("DMR_TEST_RUN_DIRECTORIES", str(at_end))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "-rs", "--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs a live Docker Model Runner: pulling ai/no-such-model* failed: *"])
    (record,) = read_records(inner)
    assert record["backend"] == "live" and len(record["run_directories"]) == 1, record["run_directories"]
    # At the end of the run, before the controller's cleanup: one directory held both the
    # provisioned runner's state and the model's pull lock.
    (name, contents), *others = json.loads(at_end.read_text()).items()
    assert not others, f"more than one run directory: {[name, *dict(others)]}"
    assert name.startswith("pytest-dmr-run-")
    assert {"owner.json", "state.json", "state.lock"} <= set(contents), contents
    assert [item for item in contents if item.startswith("pull-") and item.endswith(".lock")], contents
    assert list(temporary.iterdir()) == [], "the controller removed the run's directory"
    assert not leftovers(docker_engine)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["single-process", "xdist"])
def test_no_container_is_left_after_ctrl_c_or_sigterm(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, workers: list[str], sig: int
) -> None:
    pytester.makepyfile(test_slow=SLEEPING_TESTS)
    # auto: the runner is started when a test needs it, so under xdist by a worker, not the controller
    process = start_run(pytester, *workers, "--dmr=auto", *provision_args(docker_engine.image))
    try:
        wait_for_runner(process, inner)
        assert leftovers(docker_engine), "the runner exists while the run is going"
        process.send_signal(sig)  # to pytest (the xdist controller) only
        output, _ = process.communicate(timeout=90)
    finally:
        kill_group(process)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert (SIGTERM_MESSAGE in output) == (sig == signal.SIGTERM), output
    assert not leftovers(docker_engine)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["single-process", "xdist"])
def test_the_next_run_removes_the_container_of_a_killed_run(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, workers: list[str]
) -> None:
    pytester.makepyfile(test_slow=SLEEPING_TESTS, test_quick=QUICK_TEST)
    killed = start_run(pytester, "test_slow.py", *workers, "--dmr=auto", *provision_args(docker_engine.image))
    try:
        wait_for_runner(killed, inner)  # under xdist, a worker started it: the controller owns it
    finally:
        kill_group(killed, signal.SIGKILL)
    (left,) = leftovers(docker_engine)  # SIGKILL: pytest_unconfigure never ran

    result = pytester.runpytest_subprocess("test_quick.py", "--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"{SWEPT} {left}, left behind by a run whose pytest (pid {killed.pid}) has ended"])
    last = read_records(inner)[-1]
    assert last["managed"] == [last["container"]], "the new run sees only its own runner"
    assert not leftovers(docker_engine)


def test_a_concurrent_run_leaves_a_live_runs_container_alone(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_slow=SLEEPING_TESTS, test_quick=QUICK_TEST)
    alive = start_run(pytester, "test_slow.py", "--dmr=live", *provision_args(docker_engine.image))
    try:
        first = wait_for_runner(alive, inner)
        result = pytester.runpytest_subprocess("test_quick.py", "--dmr=live", *provision_args(docker_engine.image))
        result.assert_outcomes(passed=1)
        second = read_records(inner)[-1]
        assert second["container"] != first["container"]
        assert first["container"] in second["managed"], "the live run's runner was there while the second run ran"
        assert SWEPT not in result.stdout.str() + result.stderr.str()
        assert alive.poll() is None
        assert [container.id for container in docker_engine.containers(**{labels.RUN: None})] == [first["container"]]
        alive.send_signal(signal.SIGINT)
        alive.communicate(timeout=90)
    finally:
        kill_group(alive)
    assert not leftovers(docker_engine)


def test_auto_falls_back_to_the_mock_when_the_image_cannot_be_had(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_auto="def test_auto(record):\n    record()\n")
    result = pytester.runpytest_subprocess("--dmr=auto", *provision_args("pytest-dmr/no-such-runner:0"))
    result.assert_outcomes(passed=1, warnings=1)
    (record,) = read_records(inner)
    assert record["backend"] == "mock"
    assert "the image pytest-dmr/no-such-runner:0 is not in the local engine and cannot be pulled" in record["reason"]
    # Asked for a runner, ran on the mock: a warning and a summary line say so (CI sees both).
    result.stdout.fnmatch_lines([
        "*PytestWarning: pytest-dmr: asked for a runner to be provisioned (--dmr-provision=testcontainers) but ran on "
        "the mock: no runner: *; provisioning failed: *the image pytest-dmr/no-such-runner:0 is not in the local engine*",
    ])
    result.stdout.fnmatch_lines(["dmr: asked for a runner to be provisioned (--dmr-provision=testcontainers) but ran on the mock: * (1 test)"])
    assert not leftovers(docker_engine)


def test_live_without_the_image_is_one_clear_error(pytester: pytest.Pytester, inner: Path, docker_engine: Any) -> None:
    pytester.makepyfile(test_live="def test_one(dmr_runner):\n    pass\n\ndef test_two(dmr_runner):\n    pass\n")
    result = pytester.runpytest_subprocess("--dmr=live", *provision_args("pytest-dmr/no-such-runner:0"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("the image pytest-dmr/no-such-runner:0 is not in the local engine and cannot be pulled") == 1
    assert "test_one" not in output, "the run stops before any test"
    assert "--dmr=live needs a Docker Model Runner" in output
    assert not leftovers(docker_engine)


@pytest.fixture
def reusable(docker_engine: Any) -> Any:
    """Remove the ``--dmr-reuse`` runner before and after (it outlives runs by design)."""

    def remove() -> None:
        for container in docker_engine.containers(**{labels.REUSE: None}):
            container.remove(force=True, v=True)

    remove()
    yield
    remove()


def test_reuse_keeps_one_runner_that_concurrent_runs_share(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, reusable: None
) -> None:
    pytester.makepyfile(test_reuse="def test_reuse(record):\n    record()\n")
    command = [sys.executable, "-m", "pytest", "--dmr=live", "--dmr-reuse", *provision_args(docker_engine.image)]
    runs = [subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    records = read_records(inner)
    assert len(records) == 2
    (kept,) = docker_engine.containers(**{labels.REUSE: None})
    assert {record["container"] for record in records} == {kept.id}
    assert kept.status == "running", "a --dmr-reuse runner stays up after its runs"
    assert sum("dmr: provisioned reused container" in output for output in outputs) == 1

    third = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stdout
    assert read_records(inner)[-1]["container"] == kept.id
    assert "dmr: provisioned reused container" in third.stdout


def test_a_reuse_runner_is_never_removed_by_the_next_run(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, reusable: None
) -> None:
    pytester.makepyfile(test_slow=SLEEPING_TESTS, test_quick=QUICK_TEST)
    killed = start_run(pytester, "test_slow.py", "--dmr=live", "--dmr-reuse", *provision_args(docker_engine.image))
    try:
        kept_id = wait_for_runner(killed, inner)["container"]
    finally:
        kill_group(killed, signal.SIGKILL)

    result = pytester.runpytest_subprocess("test_quick.py", "--dmr=live", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=1)
    assert SWEPT not in result.stdout.str() + result.stderr.str()
    assert read_records(inner)[-1]["container"] != kept_id, "a run without --dmr-reuse starts its own runner"
    (kept,) = docker_engine.containers(**{labels.REUSE: None})
    assert (kept.id, kept.status) == (kept_id, "running")


DEAD_WORKER_CONFTEST = '''
import docker
from pytest_dmr.provision import labels
from pytest_dmr.session import SESSION_KEY


def pytest_sessionstart(session):
    """As a worker that died right after `docker create` leaves it: the run's container (name, labels),
    never started, no runner in the state, the lock free; the next worker must not fall back to the mock."""
    if hasattr(session.config, "workerinput"):
        return
    run_dir = session.config.stash[SESSION_KEY].run_directory
    with run_dir.locked() as state:
        state.attempted = True
    owner = run_dir.owner.to_labels() if run_dir.owner else {}
    client = docker.from_env()
    created = client.containers.create(
        os.environ["DMR_TEST_IMAGE"], name=f"pytest-dmr-{run_dir.run_id}",
        labels={labels.MANAGED: "true", labels.RUN: run_dir.run_id, **owner},
    )
    with open(os.environ["DMR_TEST_ORPHAN"], "w") as out:
        out.write(created.id)
    client.close()
'''


def test_a_container_left_by_a_worker_that_died_while_starting_it_is_replaced_not_the_mock(
    pytester: pytest.Pytester, inner: Path, docker_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST + DEAD_WORKER_CONFTEST)
    pytester.makepyfile(test_auto="import pytest\n\n@pytest.mark.parametrize('n', range(4))\ndef test_auto(n, record):\n    record()\n")
    orphan_file = pytester.path / "orphan.txt"
    monkeypatch.setenv("DMR_TEST_ORPHAN", str(orphan_file))
    monkeypatch.setenv("DMR_TEST_IMAGE", docker_engine.image)
    result = pytester.runpytest_subprocess("-n", "2", "--dmr=auto", *provision_args(docker_engine.image))
    result.assert_outcomes(passed=4)
    output = result.stdout.str() + result.stderr.str()
    orphan = orphan_file.read_text()
    records = read_records(inner)
    assert {record["backend"] for record in records} == {"live"}, output
    (container,) = {record["container"] for record in records}
    assert container is not None and container != orphan
    assert "409" not in output and "already in use" not in output and "ran on the mock" not in output
    assert "dmr: replacing container pytest-dmr-" in output and "left by a worker of this run that died while starting it" in output
    assert not leftovers(docker_engine)
