"""What pytest-dmr adds to a run's start-up: 200 trivial tests, auto mode, nothing listening.

Runs the same temporary suite in fresh pytest subprocesses, with the plugin (auto mode, discovery
limited to url,compose,host,desktop as on this project's machines) and with ``-p no:dmr``,
interleaved, several times each; prints both medians and the difference. Target: under 50 ms.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = 200


def write_suite(folder: Path) -> None:
    body = "\n".join(f"def test_{index}():\n    assert {index} == {index}\n" for index in range(TESTS))
    (folder / "test_trivial.py").write_text(body)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def run_once(folder: Path, extra: list[str], environ: dict[str, str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    took = time.perf_counter() - start
    if result.returncode != 0 or f"{TESTS} passed" not in result.stdout:
        raise SystemExit(f"the run failed ({' '.join(extra) or 'with pytest-dmr'}):\n{result.stdout}\n{result.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each kind (default 15)")
    args = parser.parse_args()
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DMR_", "MODEL_RUNNER_"))}
    environ["DMR_DISCOVERY"] = "url,compose,host,desktop"
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: byte code is cached
    environ.pop("PYTEST_ADDOPTS", None)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        write_suite(folder)
        kinds = {"with pytest-dmr (auto)": [], "-p no:dmr": ["-p", "no:dmr"]}
        for extra in kinds.values():  # warm-up: byte code, file cache
            run_once(folder, extra, environ)
        timings: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.runs):
            for name, extra in kinds.items():
                timings[name].append(run_once(folder, extra, environ))
    with_plugin = statistics.median(timings["with pytest-dmr (auto)"])
    without = statistics.median(timings["-p no:dmr"])
    print(f"{TESTS} trivial tests, {args.runs} runs each, interleaved")
    print(f"median with pytest-dmr (auto, nothing listening): {with_plugin * 1000:7.1f} ms")
    print(f"median with -p no:dmr:                            {without * 1000:7.1f} ms")
    print(f"added by pytest-dmr:                              {(with_plugin - without) * 1000:+7.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
