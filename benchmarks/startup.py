"""What pytest-dmr adds to a pytest run: 200 trivial tests, auto mode, nothing listening.

Runs the same temporary suite in fresh pytest processes, with the plugin (auto mode, discovery
limited to url,compose,host,desktop as on this project's machines, nothing on 127.0.0.1:12434) and
with ``-p no:dmr``, in pairs (the order alternating from pair to pair); prints both medians and
the median and spread of the per-pair ratio, in CPU time (user and system: other processes on
the machine disturb it less than wall time) and in wall time, and the ratio of the fastest runs
(on a busy machine, the least disturbed). Target: a median ratio of at most 1.01. Then the
``-X importtime`` totals of ``import pytest_dmr.plugin``, in a process that has imported pytest.

Then the same ratio in instructions, which a loaded machine does not disturb: ``--instructions``
pairs (default 3) under valgrind's cachegrind (``PYTHONHASHSEED=0``, byte code cached), each pair
with the environment padded by a different length: a run's count moves by about 0.1% with where
the garbage collector happens to run, which such small differences shift, so the pairs sample it
(their spread is printed). The plugin's run blocks a plugin that does not exist (``-p
no:dmr_absent``), so both command lines have the same shape (pytest's own count depends on it by
as much). ``--instructions 0`` skips them; without valgrind they are skipped with a note.

By default the package is seen as a user sees an installed wheel: a throwaway environment whose
site directory holds a copy of ``pytest_dmr`` with its entry point and RECORD, and reaches this
environment's packages through a path file. So setuptools' editable finder (which an editable
install loads at every interpreter start, in both arms) plays no part, and pytest marks the
package for assertion rewriting as it does an installed plugin (an editable install's RECORD
names no module of the package, so there its modules load without pytest's import hook).
``--view editable`` runs this environment as it is instead.

    python benchmarks/startup.py [--pairs 21] [--instructions 3] [--view installed|editable]
                                 [--discovery url,compose,host,desktop]

A Docker API socket that answers (a Docker Engine without the model runner) is a candidate that
listens: the header then says that it answered, but not as a model runner, and the run pays for
asking it; ``--discovery url,compose,host`` leaves it out.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TESTS = 200
PACKAGE = Path(__file__).resolve().parent.parent / "pytest_dmr"
WITH, WITHOUT = "with pytest-dmr (auto)", "-p no:dmr"
KINDS = {WITH: ["-p", "no:dmr_absent"], WITHOUT: ["-p", "no:dmr"]}
"""The two runs' extra arguments: the same shape, only the second blocks pytest-dmr."""
PAD = "STARTUP_BENCHMARK_PAD"


def write_suite(folder: Path) -> None:
    body = "\n".join(f"def test_{index}():\n    assert {index} == {index}\n" for index in range(TESTS))
    (folder / "test_trivial.py").write_text(body)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def installed_view(folder: Path) -> str:
    """A Python whose site directory holds a copy of the package and its metadata (no editable finder)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    shutil.copytree(PACKAGE, Path(site) / "pytest_dmr", ignore=shutil.ignore_patterns("__pycache__"))
    info = Path(site) / "pytest_dmr-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-dmr\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\ndmr = pytest_dmr.plugin\ndmr_shim = pytest_dmr.shim\n")
    # The files, as a wheel's RECORD lists them: pytest then marks the package for assertion
    # rewriting (its modules load through pytest's import hook), as for an installed plugin.
    files = sorted(path.relative_to(site).as_posix() for path in (Path(site) / "pytest_dmr").rglob("*") if path.is_file())
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in [*files, *(f"{info.name}/{n}" for n in ("METADATA", "entry_points.txt", "RECORD"))]))
    # This environment's packages (pytest and the rest), after the copy: a .pth line adds a path,
    # and the .pth files in that path (the editable finder's) are not run.
    (Path(site) / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_once(python: str, folder: Path, extra: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """One pytest process: (CPU seconds, user and system, of the process; wall seconds)."""
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", *extra]  # not -q: the header (discovery) counts
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or f"{TESTS} passed" not in result.stdout:
        raise SystemExit(f"the run failed ({' '.join(extra)}):\n{result.stdout}\n{result.stderr}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def count_once(python: str, folder: Path, extra: list[str], environ: dict[str, str]) -> int:
    """One pytest process under cachegrind: the instructions it executed (all its threads)."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               python, "-m", "pytest", "-p", "no:cacheprovider", *extra]
    result = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    if result.returncode != 0 or f"{TESTS} passed" not in result.stdout:
        raise SystemExit(f"the run under valgrind failed ({' '.join(extra)}):\n{result.stdout}\n{result.stderr}")
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(found.group(1).replace(",", ""))


def instruction_pairs(python: str, folder: Path, environ: dict[str, str], pairs: int) -> dict[str, list[int]]:
    """``pairs`` pairs of counted runs, the order alternating, each pair with its own padding."""
    counted = {**environ, "PYTHONHASHSEED": "0"}
    counts: dict[str, list[int]] = {name: [] for name in KINDS}
    for pair in range(pairs):
        padded = {**counted, PAD: "x" * pair}
        for name in (list(KINDS) if pair % 2 == 0 else list(KINDS)[::-1]):
            counts[name].append(count_once(python, folder, KINDS[name], padded))
    return counts


def check_header(python: str, folder: Path, environ: dict[str, str]) -> str:
    """The header line of a run with the plugin: it must be auto mode falling back to the mock."""
    result = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", "-v"], cwd=folder,
                            env=environ, capture_output=True, text=True)
    line = next((line for line in result.stdout.splitlines() if line.startswith("dmr:")), "")
    plugin = next((line for line in result.stdout.splitlines() if line.startswith("plugins:")), "")
    if not line.startswith("dmr: mock (no runner:"):
        raise SystemExit(f"expected auto mode on the mock, got {line!r}:\n{result.stdout}\n{result.stderr}")
    return f"{line}\n  {plugin}"


def import_times(python: str, folder: Path, environ: dict[str, str], runs: int = 7) -> tuple[float, list[tuple[str, float]]]:
    """``-X importtime`` of the plugin after pytest, medians of ``runs`` processes: the cumulative
    milliseconds of ``import pytest_dmr.plugin``, and each module it loads with its own milliseconds."""
    totals: list[float] = []
    own: dict[str, list[float]] = {}
    for _ in range(runs):
        total, modules = import_time(python, folder, environ)
        totals.append(total)
        for name, took in modules:
            own.setdefault(name, []).append(took)
    return statistics.median(totals), [(name, statistics.median(took)) for name, took in own.items()]


def import_time(python: str, folder: Path, environ: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    result = subprocess.run([python, "-X", "importtime", "-c", "import pytest; import pytest_dmr.plugin"],
                            cwd=folder, env=environ, capture_output=True, text=True, check=True)
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    after = next(index for index, line in enumerate(lines) if line.rstrip().endswith("| pytest"))
    modules: list[tuple[str, float]] = []
    cumulative = 0.0
    for line in lines[after + 1:]:
        self_us, cumulative_us, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        modules.append((name.strip(), int(self_us) / 1000))
        if name == "pytest_dmr.plugin":
            cumulative = int(cumulative_us) / 1000
    return cumulative, modules


def nothing_listens() -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 12434)) == 0:
            raise SystemExit("something listens on 127.0.0.1:12434: stop it first (the benchmark is for nothing listening)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=21, help="pairs of runs (default 21)")
    parser.add_argument("--instructions", type=int, default=3, metavar="PAIRS",
                        help="pairs of runs counted under valgrind (default 3; 0: none)")
    parser.add_argument("--view", choices=("installed", "editable"), default="installed",
                        help="how the package is seen (default: installed, as from a wheel)")
    parser.add_argument("--discovery", default="url,compose,host,desktop",
                        help="DMR_DISCOVERY of the runs (default url,compose,host,desktop)")
    args = parser.parse_args()
    nothing_listens()
    counting = args.instructions > 0 and shutil.which("valgrind") is not None
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DMR_", "MODEL_RUNNER_"))}
    environ["DMR_DISCOVERY"] = args.discovery
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: byte code is cached
    environ.pop("PYTEST_ADDOPTS", None)
    environ.pop("PYTHONPATH", None)
    kinds = KINDS
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "suite"
        folder.mkdir()
        write_suite(folder)
        python = installed_view(Path(temp) / "env") if args.view == "installed" else sys.executable
        header = check_header(python, folder, environ)
        for extra in kinds.values():  # warm-up: byte code, file cache
            run_once(python, folder, extra, environ)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in kinds}
        for pair in range(args.pairs):
            order = list(kinds) if pair % 2 == 0 else list(kinds)[::-1]
            for name in order:
                runs[name].append(run_once(python, folder, kinds[name], environ))
        cumulative, own = import_times(python, folder, environ)
        counts = instruction_pairs(python, folder, environ, args.instructions) if counting else {}
    print(f"{TESTS} trivial tests, {args.pairs} pairs of runs (order alternating), package view: {args.view}, "
          f"DMR_DISCOVERY={args.discovery}")
    print(header)
    for index, measure in enumerate(("CPU time (user+system)", "wall time")):
        with_plugin = [run[index] for run in runs[WITH]]
        without = [run[index] for run in runs[WITHOUT]]
        ratios = sorted(a / b for a, b in zip(with_plugin, without))
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"{measure}: median {statistics.median(with_plugin) * 1000:.1f} ms with pytest-dmr (auto, nothing "
              f"listening), {statistics.median(without) * 1000:.1f} ms with -p no:dmr")
        print(f"  per-pair ratio: median {statistics.median(ratios):.3f} (target <= 1.01), "
              f"quartiles {low:.3f}-{high:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}; "
              f"fastest run to fastest run: {min(with_plugin) / min(without):.3f}")
    print(f"import pytest_dmr.plugin after import pytest (-X importtime, median of 7): {cumulative:.2f} ms; "
          "the modules it loads (self ms):")
    print("  " + ", ".join(f"{name} {took:.2f}" for name, took in own))
    if counts:
        with_plugin, without = counts[WITH], counts[WITHOUT]
        ratios = sorted(a / b for a, b in zip(with_plugin, without))
        print(f"instructions (cachegrind, {args.instructions} pairs): median {statistics.median(with_plugin) / 1e6:.1f} M with "
              f"pytest-dmr, {statistics.median(without) / 1e6:.1f} M with -p no:dmr, median difference "
              f"{statistics.median(a - b for a, b in zip(with_plugin, without)) / 1e6:.1f} M")
        print(f"  per-pair ratio: median {statistics.median(ratios):.4f} (target <= 1.01), range {ratios[0]:.4f}-{ratios[-1]:.4f}")
    elif args.instructions > 0:
        print("instructions: not counted (valgrind is not installed)")


if __name__ == "__main__":
    main()
