"""Time to a ready runner: a new container (cold) against a kept one (``--dmr-reuse``).

    python benchmarks/provision.py [--image pytest-dmr/runner:local] [--runs 5]

Each measurement is what a test run waits for: from asking ``pytest_dmr.provision`` for a runner
to a runner that answers ``GET /`` with DMR's banner and has the model (already in the models
volume, so no download: this measures the container, not the network). Cold: a fresh run
directory and container every time, removed after. Reused: the ``--dmr-reuse`` runner found by
its label. Prints the median and range of each, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
from pytest_dmr.provision import labels  # noqa: E402
from pytest_dmr.provision.coordination import RunDirectory  # noqa: E402
from pytest_dmr.provision.engine import connect  # noqa: E402
from pytest_dmr.provision.runner import ProvisionRequest, acquire, release  # noqa: E402

VOLUME = "pytest-dmr-benchmark-models"


def quiet(line: str, transient: bool) -> None:
    pass


def once(request: ProvisionRequest, tag: str) -> float:
    run_dir = RunDirectory.create(tag)
    try:
        started = time.perf_counter()
        acquire(request, run_dir, write=quiet, interactive=False)
        return time.perf_counter() - started
    finally:
        release(run_dir)
        shutil.rmtree(run_dir.path, ignore_errors=True)


def remove_kept(*, volume: bool = False) -> None:
    """Remove the ``--dmr-reuse`` runner (and, at the end, the benchmark's models volume)."""
    engine = connect()
    try:
        for container in engine.client.containers.list(all=True, filters={"label": labels.REUSE}):
            container.remove(force=True, v=True)
        if volume:
            try:
                engine.client.volumes.get(VOLUME).remove(force=True)
            except docker.errors.NotFound:
                pass
    finally:
        engine.client.close()


def describe(name: str, times: list[float]) -> str:
    return (
        f"{name:<8} median {statistics.median(times) * 1000:7.0f} ms   "
        f"min {min(times) * 1000:6.0f}   max {max(times) * 1000:6.0f}   ({len(times)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=os.environ.get("PYTEST_DMR_RUNNER_IMAGE", "pytest-dmr/runner:local"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="ai/smollm2")
    args = parser.parse_args()
    os.environ["PYTEST_DMR_MODELS_VOLUME"] = VOLUME

    cold_request = ProvisionRequest(image=args.image, models=(args.model,), timeout=60)
    reuse_request = ProvisionRequest(image=args.image, models=(args.model,), timeout=60, reuse=True)
    remove_kept()
    try:
        once(cold_request, "warmup")  # fills the models volume: later runs measure the container only
        cold = [once(cold_request, f"cold{n}") for n in range(args.runs)]
        once(reuse_request, "keep")  # starts the kept runner
        reused = [once(reuse_request, f"reuse{n}") for n in range(args.runs)]
    finally:
        remove_kept(volume=True)

    print(f"image {args.image}, model {args.model} already in the volume")
    print(describe("cold", cold))
    print(describe("reused", reused))
    print(f"ratio    cold / reused = {statistics.median(cold) / statistics.median(reused):.1f}x")


if __name__ == "__main__":
    main()
