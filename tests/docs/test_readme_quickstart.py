"""The README's quickstart, run as written: its marked blocks (``<!-- quickstart:NAME -->``) in a
fresh directory and a fresh venv, installing this checkout where the README says
``/path/to/pytest-dmr``; the run's output must show the README's lines.

Slow (a venv and an install from the configured package registry, about half a minute): it lives
outside the tiers that CI runs again on other Pythons, so the README's test command runs it once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = "/path/to/pytest-dmr"
BLOCKS = ["install", "pytest.ini", "test_llm.py", "run", "output"]
_BLOCK = re.compile(r"<!-- quickstart:(\S+) -->\n```[a-z]*\n(.*?)```\n", re.DOTALL)
_SETTINGS = ("DMR_", "MODEL_RUNNER_", "LLM_", "AI_RUNNER_", "PYTEST_", "PIP_TARGET", "PYTHON")
HANG_GUARD = 900  # seconds: a stuck install must end the test, not the CI job


def quickstart() -> dict[str, str]:
    return dict(_BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def output_pattern(line: str) -> str:
    """An fnmatch pattern for a line the README shows: the duration any, ``===`` borders any width."""
    bordered = line.startswith("=")
    parts = re.split(r"\d+\.\d+s\b", line.strip("= ") if bordered else line)
    pattern = "*s".join("".join(f"[{c}]" if c in "[]*?" else c for c in part) for part in parts)
    return f"*{pattern}*" if bordered else pattern


def fresh_environment() -> dict[str, str]:
    """This process's environment without DMR or pytest settings, as in a new shell."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(_SETTINGS) and name not in ("DEFAULT_LOCAL_MODEL", "LOCAL_MODEL_TIMEOUT", "USE_MOCK", "VIRTUAL_ENV")}
    env["COLUMNS"] = "80"  # the width the README's output was captured at
    # The README shows a machine without Docker. Here the in-container probes stay off (this machine
    # has /.dockerenv) and so does the Docker Desktop one: CI starts a Docker engine, whose socket
    # would answer "not a model runner" and add a clause to the header.
    env["DMR_DISCOVERY"] = "url,compose,host"
    return env


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD)


def test_the_quickstart_blocks_are_marked_in_order() -> None:
    blocks = quickstart()
    assert list(blocks) == BLOCKS
    assert CHECKOUT in blocks["install"]


@pytest.mark.slow
def test_the_quickstart_works_as_written_in_a_fresh_venv(tmp_path: Path) -> None:
    blocks = quickstart()
    checkout = tmp_path / "pytest-dmr"  # a copy: pip builds in the source tree (build/, egg-info)
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "*.egg-info", "__pycache__", "build", "dist", ".*_cache", "site"))
    app = tmp_path / "app"
    app.mkdir()
    env = fresh_environment()

    install = run(blocks["install"].replace(CHECKOUT, str(checkout)), app, env)
    assert install.returncode == 0, install.stdout + install.stderr
    (app / "pytest.ini").write_text(blocks["pytest.ini"], encoding="utf-8")
    (app / "test_llm.py").write_text(blocks["test_llm.py"], encoding="utf-8")
    result = run(blocks["run"], app, env)

    assert result.returncode == 0, result.stdout + result.stderr
    shown = [output_pattern(line) for line in blocks["output"].splitlines() if line != "..."]
    pytest.LineMatcher(result.stdout.splitlines()).fnmatch_lines(shown)
