"""Telling a dead run from a live one: the owner a container's labels record, checked in ``/proc``.

No Docker needed; Linux only (elsewhere nothing is recorded, so nothing is ever swept).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_dmr.provision import labels
from pytest_dmr.provision.owner import Owner, process_start_time

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")


@pytest.fixture
def me() -> Owner:
    owner = Owner.current()
    assert owner is not None
    return owner


def test_this_process_is_recorded_and_alive(me: Owner) -> None:
    assert me.pid == os.getpid()
    assert me.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert me.pid_namespace.startswith("pid:[")
    assert Owner.from_labels(me.to_labels()) == me
    assert not me.is_gone(me)


def test_a_child_is_alive_until_killed_and_gone_even_before_it_is_reaped(me: Owner) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start_time(child.pid)
        assert started is not None
        owner = replace(me, pid=child.pid, started=started)
        assert not owner.is_gone(me)
        child.kill()
        deadline = time.monotonic() + 10
        while not owner.is_gone(me) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert owner.is_gone(me), "a zombie cannot remove its containers: it counts as gone"
        assert os.path.exists(f"/proc/{child.pid}"), "not reaped yet"
    finally:
        child.kill()
        child.wait()
    assert owner.is_gone(me)


def test_a_pid_now_held_by_another_process_is_gone(me: Owner) -> None:
    earlier = replace(me, started=str(int(me.started) - 1))
    assert earlier.is_gone(me)


@pytest.mark.parametrize("where", ["boot_id", "pid_namespace"])
def test_an_owner_elsewhere_is_never_judged(me: Owner, where: str) -> None:
    elsewhere = replace(me, pid=2**22 + 1, started="1", **{where: "another"})  # no such pid here
    assert process_start_time(elsewhere.pid) is None
    assert not elsewhere.is_gone(me)
    assert replace(elsewhere, **{where: getattr(me, where)}).is_gone(me)


@pytest.mark.parametrize("missing", [labels.OWNER_BOOT, labels.OWNER_PID_NAMESPACE, labels.OWNER_PID, labels.OWNER_STARTED])
def test_labels_without_a_whole_owner_record_none(me: Owner, missing: str) -> None:
    recorded = me.to_labels()
    del recorded[missing]
    assert Owner.from_labels(recorded) is None
    assert Owner.from_labels({**me.to_labels(), labels.OWNER_PID: "not a pid"}) is None


def test_a_killed_runs_directory_is_removed_by_the_next_run_and_a_live_ones_is_kept(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    import tempfile

    from pytest_dmr.provision.coordination import RunDirectory

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    script = "from pytest_dmr.provision.coordination import RunDirectory; print(RunDirectory.create('killed').path)"
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "TMPDIR": str(tmp_path)}, check=True)  # fmt: skip
    dead = tmp_path / ended.stdout.strip()
    assert dead.is_dir() and dead.name.startswith("pytest-dmr-run-killed-")
    unknown = tmp_path / "pytest-dmr-run-no-owner-file"  # an older version's, or another user's: not ours to judge
    unknown.mkdir()

    mine = RunDirectory.new("first")
    assert not mine.path.exists() and dead.is_dir(), "nothing happens on disk until the run needs its directory"
    mine.ensure()
    assert not dead.exists(), "the directory of a run that has ended must not accumulate"
    assert unknown.is_dir()
    assert mine.path.parent == tmp_path
    RunDirectory.create("second")
    assert mine.path.is_dir(), "a live run's directory is never removed"


def test_a_worker_creates_the_run_directory_for_its_controller_and_only_the_controller_removes_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch, me: Owner  # noqa: ANN001
) -> None:
    import json
    import tempfile

    from pytest_dmr.provision.coordination import OWNER_FILE, RunDirectory

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    controller = RunDirectory.new()
    worker = RunDirectory.from_json(json.loads(json.dumps(controller.to_json())))  # as workerinput carries it
    assert (worker.run_id, worker.path, worker.owner, worker.owned) == (controller.run_id, controller.path, me, False)
    assert worker.ensure() == controller.path and controller.ensure() == controller.path  # whichever comes first
    assert Owner.from_labels(json.loads((controller.path / OWNER_FILE).read_text())) == me, "the controller owns it"
    worker.remove()
    assert controller.path.is_dir(), "a worker never removes the run's directory"
    controller.remove()
    assert not controller.path.exists()


def test_a_run_directory_path_taken_by_a_link_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import tempfile

    from pytest_dmr.provision.coordination import RunDirectory

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    directory = RunDirectory.new()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    directory.path.symlink_to(elsewhere)
    with pytest.raises(OSError, match="exists and is not a directory of this user"):
        directory.ensure()
    assert list(elsewhere.iterdir()) == []
