"""``python -m pytest_dmr.emulator`` as a process: it serves, infers, and unloads its models on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import MODEL

pytestmark = pytest.mark.tier_live


@pytest.fixture
def emulator_process(live_catalog: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [sys.executable, "-m", "pytest_dmr.emulator", "--port", "0", "--catalog", str(live_catalog),
               "--store", str(tmp_path / "store"), "--engine", "llama", "--threads", "1"]  # fmt: skip
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:  # closes the pipe, waits
        try:
            banner = process.stderr.readline()  # type: ignore[union-attr]
            found = re.search(r"on (http://127\.0\.0\.1:\d+) ", banner)
            assert found, f"no banner from the emulator: {banner!r}"
            yield process, found.group(1)
        finally:
            if process.poll() is None:
                process.kill()


def llama_children(pid: int) -> list[int]:
    """The pids of ``pid``'s llama.cpp children, read from ``/proc``.

    Not from ``ps``: its ``args`` column is cut to ``$COLUMNS`` when that is set, which hid the
    module name behind a long interpreter path in CI.
    """
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])  # field 4, after the command name
            command_line = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):  # the process ended while we looked
            continue
        if parent == pid and b"pytest_dmr.emulator.llama_process" in command_line:
            children.append(int(stat.parent.name))
    return children


def test_emulator_process_serves_and_stops_cleanly(emulator_process: tuple[subprocess.Popen[str], str], tmp_path: Path) -> None:
    process, url = emulator_process
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/").text == "Docker Model Runner is running"
        assert http.post("/models/create", json={"from": MODEL}).status_code == 200
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                                                       "max_tokens": 4})  # fmt: skip
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    children = llama_children(process.pid)
    assert len(children) == 1, f"expected one llama.cpp child of the emulator, found {children}"
    child_pid = children[0]
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert not Path(f"/proc/{child_pid}").exists(), "the llama.cpp process outlived the emulator"
    # The store outlives the process, so an image can ship pre-pulled models.
    assert (tmp_path / "store" / "models.json").is_file()
    assert not list((tmp_path / "store").rglob("*.log")), "llama.cpp logs of unloaded runners pile up in the store"


def test_emulator_refuses_a_missing_catalogue(tmp_path: Path, llama_model_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_dmr.emulator", "--port", "0", "--catalog", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "the model catalogue" in result.stderr and "is not a directory" in result.stderr



@pytest.mark.parametrize(("setting", "expected"), [
    ({"port": 99999}, "port (--port) must be between 0 (any free port) and 65535, not 99999"),
    ({"threads": 0}, "threads (--threads) must be at least 1, not 0"),
    ({"ctx_size": -5}, "ctx_size (--ctx-size) must be 0 (the model's own) or more, not -5"),
    ({"slots": -1}, "slots (--slots) must be at least 1, not -1"),
    ({"slots": 0}, "slots (--slots) must be at least 1, not 0"),
    ({"load_timeout": 0}, "load_timeout (--load-timeout) must be positive, not 0"),
])
def test_emulator_refuses_a_setting_that_cannot_work(tmp_path: Path, setting: dict[str, int], expected: str) -> None:
    from pytest_dmr.emulator import EmulatorServer

    with pytest.raises(ValueError) as caught:
        EmulatorServer(tmp_path, engine="mock", **({"port": 0} | setting))  # type: ignore[arg-type]
    assert str(caught.value) == expected


def test_the_emulator_command_says_which_option_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_dmr.emulator.__main__ import main

    assert main(["--catalog", str(tmp_path), "--engine", "mock", "--port", "99999"]) == 2
    assert capsys.readouterr().err == "pytest-dmr emulator: port (--port) must be between 0 (any free port) and 65535, not 99999\n"
