"""Safe writes: a cassette is written whole or not at all, interrupted or killed; two processes
never write one cassette (the second waits, then uses what the first wrote)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx2
import pytest

from pytest_dmr.cassettes import Cassette, CassetteSession, list_cassettes, storage
from pytest_dmr.errors import CassetteError
from pytest_dmr.mock import MockModelRunner

OLD = '{"pytest_dmr_cassette": 1, "exchanges": []}\n'


def test_a_process_killed_mid_write_leaves_the_old_cassette_whole(tmp_path: Path) -> None:
    path = tmp_path / "cassettes" / "test_m" / "test_t.json"
    path.parent.mkdir(parents=True)
    path.write_text(OLD)
    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from pytest_dmr.cassettes import storage

        def stall(descriptor):  # the new text is in the temporary file, not yet in place
            print("writing", flush=True)
            sys.stdin.readline()

        os.fsync = stall
        storage.write_atomically(Path(sys.argv[1]), '{"pytest_dmr_cassette": 1, "exchanges": [' + '{}, ' * 100000 + '{}]}')
    """)
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    os.kill(writer.pid, signal.SIGKILL)
    writer.communicate()
    assert writer.returncode == -signal.SIGKILL

    assert path.read_text() == OLD
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert len(leftovers) == 1 and storage.is_leftover(leftovers[0])
    listing = list_cassettes([tmp_path], used=[path])
    assert (listing.used, listing.unused, listing.leftovers) == ([path.resolve()], [], [leftovers[0].resolve()])


def test_an_interrupted_write_removes_its_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    path.write_text(OLD)

    def interrupt(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        storage.write_atomically(path, "new text")
    assert path.read_text() == OLD and list(tmp_path.iterdir()) == [path]


def test_a_directory_that_cannot_be_made_is_a_cassette_error_naming_the_cassette(tmp_path: Path) -> None:
    (tmp_path / "cassettes").write_text("a file where the cassettes' directory should be")
    path = tmp_path / "cassettes" / "test_m" / "test_t.json"
    with pytest.raises(CassetteError, match=r"^cannot write cassette .*test_t\.json: .*Make its directory writable") as caught:
        storage.write_atomically(path, "new text")
    assert caught.value.path == str(path)


def test_a_failed_write_is_a_cassette_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "test_t.json"

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with pytest.raises(CassetteError, match="No space left on device"):
        storage.write_atomically(path, "new text")
    assert list(tmp_path.iterdir()) == []


HOLDER = textwrap.dedent("""
    import sys
    import httpx2
    from pytest_dmr.cassettes import CassetteSession
    from pytest_dmr.mock import MockModelRunner

    mock = MockModelRunner()
    mock.reply("from the first process")
    with CassetteSession(sys.argv[1], "once", lock_dir=sys.argv[2]) as session:
        print(session.action, flush=True)  # the lock is held from here
        sys.stdin.readline()
        with httpx2.Client(transport=session.transport(live=mock), base_url=mock.base_url) as client:
            client.post("/engines/v1/chat/completions", json={"model": "ai/smollm2", "messages": [{"role": "user", "content": "a"}]})
    print("written", flush=True)
""")


def test_a_second_recorder_waits_for_the_first_then_replays_what_it_wrote(tmp_path: Path) -> None:
    path, locks = tmp_path / "shared.json", tmp_path / "locks"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(locks)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert first.stdin is not None and first.stdout is not None
    try:
        assert first.stdout.readline() == "record\n"

        impatient = CassetteSession(path, "once", lock_dir=locks, lock_timeout=0.05)
        with pytest.raises(CassetteError, match=r"is being recorded by another process, which has held its lock"):
            impatient.start()

        second = CassetteSession(path, "once", lock_dir=locks)
        started = threading.Thread(target=second.start)
        started.start()  # blocks on the lock the first process holds
        first.stdin.write("go\n")
        first.stdin.flush()
        assert first.stdout.readline() == "written\n"
        started.join()
    finally:
        first.communicate()
    assert first.returncode == 0
    assert second.action == "replay"  # decided again once it had the lock: the file now exists
    with httpx2.Client(transport=second.transport(live=MockModelRunner()), base_url="http://x") as client:
        answer = client.post("/engines/v1/chat/completions", json={"model": "ai/smollm2", "messages": [{"role": "user", "content": "a"}]})
    assert answer.json()["choices"][0]["message"]["content"] == "from the first process"
    assert second.finish().written is False and len(Cassette.load(path).exchanges) == 1


def test_lock_files_stay_out_of_the_test_tree(tmp_path: Path) -> None:
    path = tmp_path / "tests" / "cassettes" / "m" / "t.json"
    with CassetteSession(path, "once") as session:
        with httpx2.Client(transport=session.transport(live=MockModelRunner()), base_url="http://x") as client:
            client.get("/models")
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.json"]
    assert storage.lock_path(path).parent != path.parent
