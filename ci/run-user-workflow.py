#!/usr/bin/env python3
"""Run the `run:` steps of the users' GitHub Actions workflow here, so the example cannot rot.

    ci/run-user-workflow.py [--workflow FILE] [--suite DIR] [--keep] [JOB ...]   # default: every job

Each job runs as GitHub would run it on a fresh machine, as far as it can here: in a temporary copy
of the example suite (examples/ultra), with a new virtual environment first on PATH, each `run:`
step in order with `bash --noprofile --norc -eo pipefail` (the workflow's `shell: bash`); the job
stops at its first failing step (then only `if: failure()` or `always()` steps run) or at its
`timeout-minutes`, and the processes its steps left running (the emulator) are ended with it.

What differs from GitHub, and nothing else:
- `uses:` steps are skipped: the checkout is the copy of the suite, setup-python is the new
  virtual environment (of this Python, once per job: a `python-version` matrix is not expanded),
  and pip's cache is this machine's.
- SUBSTITUTED: the install source is this checkout instead of the git URL, and the runner image
  is the one ci/build-runner-image.sh built (PYTEST_DMR_RUNNER_IMAGE) instead of
  docker/model-runner:latest, which no registry here can serve.
- The environment is this process's without pytest-dmr's and pytest's own variables (DMR_*,
  MODEL_RUNNER_*, PYTEST_ADDOPTS, ...), plus CI, RUNNER_TEMP, GITHUB_WORKSPACE and MACHINE_ENV.
`${{ }}` expressions are not evaluated: a `run:` step or an `env:` value holding one is an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHECKOUT = Path(__file__).resolve().parent.parent
WORKFLOW = CHECKOUT / "examples" / "ci" / "github-actions.yml"
SUITE = CHECKOUT / "examples" / "ultra"
RUNNER_IMAGE = os.environ.get("PYTEST_DMR_RUNNER_IMAGE") or "pytest-dmr/runner:local"

SUBSTITUTED = {
    "PYTEST_DMR_SOURCE": f"file://{CHECKOUT}",  # pip: "pytest-dmr[llama] @ file:///path/to/checkout"
    "DMR_IMAGE": RUNNER_IMAGE,
}
"""Environment variables whose workflow value is replaced here; each must be set by the workflow."""

MACHINE_ENV = {
    # No registry here: no Ryuk reaper (the plugin removes its own containers); containers on loopback.
    "TESTCONTAINERS_RYUK_DISABLED": "true",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    "TC_HOST": "127.0.0.1",
}
"""This machine's settings, for the container job (defaults: the environment's values win)."""

DROPPED_PREFIXES = ("DMR_", "MODEL_RUNNER_", "PYTEST_DMR_", "TESTCONTAINERS_")
DROPPED = {"PYTEST_ADDOPTS", "PYTEST_PLUGINS", "DEFAULT_LOCAL_MODEL", "LOCAL_MODEL_TIMEOUT", "USE_MOCK",
           "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "TC_HOST"}  # fmt: skip
"""Variables of this process that a fresh GitHub runner does not have: they would change what the jobs test."""

SKIPPED_ACTIONS = {
    "actions/checkout": "the job runs in a copy of the suite",
    "actions/setup-python": "a new virtual environment of this Python",
    "actions/upload-artifact": "nothing is uploaded from here",
}
CONDITIONS = {None: "success", "success()": "success", "failure()": "failure", "always()": "always", "!cancelled()": "always"}


class WorkflowError(Exception):
    """The workflow asks for something this runner does not do."""


@dataclass
class JobResult:
    name: str
    passed: bool = True
    seconds: float = 0.0
    failed_step: str = ""
    steps: list[str] = field(default_factory=list)


def step_name(step: dict[str, Any]) -> str:
    if "name" in step:
        return str(step["name"])
    if "uses" in step:
        return f"uses: {step['uses']}"
    return str(step.get("run", "")).strip().splitlines()[0]


def plain_env(values: dict[str, Any] | None, where: str) -> dict[str, str]:
    """An `env:` mapping as strings; expressions are refused, and SUBSTITUTED values replace the workflow's."""
    result = {}
    for key, value in (values or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "${{" in text:
            raise WorkflowError(f"{where}: env {key} holds a ${{{{ }}}} expression, which this runner does not evaluate")
        result[key] = SUBSTITUTED.get(key, text)
    return result


def setting(key: str, *levels: dict[str, Any] | None) -> Any:
    """The first `defaults.run.<key>` (or step-level `<key>`) found, innermost level first."""
    for level in levels:
        if level and level.get(key) is not None:
            return level[key]
    return None


def check_substitutions(workflow: dict[str, Any]) -> None:
    """Every SUBSTITUTED variable is set somewhere in the workflow: a renamed one would go untested."""
    found = set((workflow.get("env") or {}).keys())
    for job in (workflow.get("jobs") or {}).values():
        found |= set((job.get("env") or {}).keys())
        for step in job.get("steps") or []:
            found |= set((step.get("env") or {}).keys())
    missing = sorted(set(SUBSTITUTED) - found)
    if missing:
        raise WorkflowError(f"the workflow sets no {', '.join(missing)}: update SUBSTITUTED in {Path(__file__).name}")


def base_environment(workspace: Path, runner_temp: Path, venv: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not (key.startswith(DROPPED_PREFIXES) or key in DROPPED)}
    env.update({key: os.environ.get(key, value) for key, value in MACHINE_ENV.items()})
    env.update(CI="true", GITHUB_WORKSPACE=str(workspace), RUNNER_TEMP=str(runner_temp), VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env


def end_process_groups(groups: list[int]) -> None:
    """End what the job's steps left running (each step led its own process group): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = []
        for group in groups:
            try:
                os.killpg(group, sig)
                alive.append(group)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [group for group in alive if _group_alive(group)]
        if not alive:
            return
        groups = alive
    print(f"   left running after SIGKILL: process groups {groups}", file=sys.stderr)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose processes are all zombies (reaped by init later) is over for our purposes.
    return any(_state(pid) not in ("Z", "") for pid in _members(group))


def _members(group: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[2]) == group:
            pids.append(int(stat.parent.name))
    return pids


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


@dataclass
class Step:
    title: str
    condition: str  # success, failure or always: when the step runs
    skipped: str = ""  # why a `uses:` step is not run
    script: str = ""
    directory: str = "."
    env: dict[str, str] = field(default_factory=dict)


def plan(name: str, job: dict[str, Any], workflow: dict[str, Any]) -> list[Step]:
    """The job's steps, checked before anything runs: a step this runner cannot run is an error."""
    defaults = [(job.get("defaults") or {}).get("run"), (workflow.get("defaults") or {}).get("run")]
    steps = []
    for number, step in enumerate(job.get("steps") or [], 1):
        title = f"{name} step {number}: {step_name(step)}"
        condition = step.get("if")
        if condition not in CONDITIONS:
            raise WorkflowError(f"{title}: `if: {condition}` is not one of {', '.join(filter(None, CONDITIONS))}")
        if "uses" in step:
            action = str(step["uses"]).partition("@")[0]
            steps.append(Step(title, CONDITIONS[condition], skipped=SKIPPED_ACTIONS.get(action, "actions are not run here")))
            continue
        script = str(step["run"])
        if "${{" in script:
            raise WorkflowError(f"{title}: the script holds a ${{{{ }}}} expression, which this runner does not evaluate: "
                                "pass the value through `env:`")  # fmt: skip
        shell = setting("shell", step, *defaults)
        if shell != "bash":
            raise WorkflowError(f"{title}: shell {shell!r}: this runner runs `shell: bash` steps only")
        directory = str(setting("working-directory", step, *defaults) or ".")
        steps.append(Step(title, CONDITIONS[condition], script=script, directory=directory, env=plain_env(step.get("env"), title)))
    return steps


def run_job(name: str, workflow: dict[str, Any], suite: Path, keep: bool) -> JobResult:
    job = workflow["jobs"][name]
    steps = plan(name, job, workflow)
    job_env = {**plain_env(workflow.get("env"), "workflow"), **plain_env(job.get("env"), f"job {name}")}
    result = JobResult(name)
    started = time.monotonic()
    timeout = float(job.get("timeout-minutes", 360)) * 60
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    if matrix:
        shown = "; ".join(f"{key}: {', '.join(map(str, values))}" for key, values in matrix.items())
        print(f"   matrix ({shown}): run once here, on Python {platform.python_version()}")

    root = Path(tempfile.mkdtemp(prefix=f"user-workflow-{name}-"))
    workspace, runner_temp, venv = root / "workspace", root / "runner-temp", root / "venv"
    groups: list[int] = []
    try:
        shutil.copytree(suite, workspace, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        runner_temp.mkdir()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for number, step in enumerate(steps, 1):
            if (step.condition == "success" and not result.passed) or (step.condition == "failure" and result.passed):
                continue
            if step.skipped:
                print(f"-- {step.title}: skipped here ({step.skipped})")
                continue
            env = {**base_environment(workspace, runner_temp, venv), **job_env, **step.env}
            script_file = runner_temp / f"step-{number}.sh"
            script_file.write_text(step.script)
            print(f"-- {step.title}", flush=True)
            step_started = time.monotonic()
            process = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                                       cwd=workspace / step.directory, env=env, start_new_session=True)  # fmt: skip
            groups.append(process.pid)
            try:
                status = process.wait(timeout=max(timeout - (time.monotonic() - started), 0.1))
                outcome = f"exit {status}"
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                status, outcome = -1, f"timed out: the job's timeout-minutes ({timeout / 60:g}) passed"
            seconds = time.monotonic() - step_started
            short = step.title.partition(": ")[2]
            result.steps.append(f"{short}: {seconds:.1f} s")
            if status != 0:
                print(f"-- FAILED: {step.title} ({outcome}, {seconds:.1f} s)", file=sys.stderr, flush=True)
                if result.passed:
                    result.passed, result.failed_step = False, f"{short} ({outcome})"
            else:
                print(f"-- ok: {step.title} ({seconds:.1f} s)", flush=True)
    finally:
        end_process_groups(groups)
        if keep:
            print(f"   kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflow", type=Path, default=WORKFLOW, help="the workflow file (default: %(default)s)")
    parser.add_argument("--suite", type=Path, default=SUITE, help="the test suite the jobs run in (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep each job's temporary directory")
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="jobs to run, in order (default: every job)")
    args = parser.parse_args(argv)

    workflow = yaml.safe_load(args.workflow.read_text())
    jobs = workflow.get("jobs") or {}
    unknown = [job for job in args.jobs if job not in jobs]
    if unknown or not jobs:
        parser.error(f"no job {', '.join(unknown) or '(none at all)'} in {args.workflow}; jobs: {', '.join(jobs)}")
    if not args.suite.is_dir():
        parser.error(f"the suite {args.suite} is not a directory")
    try:
        check_substitutions(workflow)
        selected = args.jobs or list(jobs)
        for name in selected:
            plan(name, jobs[name], workflow)  # every selected job can run here, before any runs
        print(f"user workflow {args.workflow}, suite {args.suite}; substituted: "
              + ", ".join(f"{key}={value}" for key, value in SUBSTITUTED.items()))  # fmt: skip
        results = []
        for name in selected:
            print(f"== job {name}", flush=True)
            results.append(run_job(name, workflow, args.suite.resolve(), args.keep))
    except WorkflowError as exc:
        print(f"run-user-workflow: {exc}", file=sys.stderr)
        return 2
    for result in results:
        verdict = "passed" if result.passed else f"FAILED at {result.failed_step}"
        print(f"== job {result.name}: {verdict} in {result.seconds:.0f} s ({'; '.join(result.steps)})")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
