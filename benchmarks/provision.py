"""Time to a ready runner: a new container (cold) against a kept one (``--dmr-reuse``).

    python benchmarks/provision.py [--image pytest-dmr/runner:local] [--runs 5]

Each measurement is what a test run waits for: from asking ``pytest_dmr.provision`` for a runner
to a runner that answers ``GET /`` with DMR's banner and has the model (already in the models
volume, so no download: this measures the container, not the network). Cold: a fresh run
directory and container every time, removed after. Reused: the ``--dmr-reuse`` runner found by
its label. Prints the median and range of each, and the ratio of the medians.

The benchmark removes only what it started (by the container ids it got back) and its own models
volume: a ``--dmr-reuse`` runner of yours is never touched. If one already runs for the image,
the reuse measurement is skipped (it would measure, and pull into, your runner instead).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
from pytest_dmr.provision import coordination, labels  # noqa: E402
from pytest_dmr.provision.coordination import RunDirectory  # noqa: E402
from pytest_dmr.provision.engine import connect  # noqa: E402
from pytest_dmr.provision.runner import ProvisionedRunner, ProvisionRequest, acquire, release  # noqa: E402

VOLUME = "pytest-dmr-benchmark-models"


def quiet(line: str, transient: bool) -> None:
    pass


def once(request: ProvisionRequest, tag: str) -> tuple[float, ProvisionedRunner]:
    """One run's wait for its runner; the run's own containers are removed after (kept ones are not)."""
    run_dir = RunDirectory.new(tag)
    try:
        started = time.perf_counter()
        runner = acquire(request, run_dir, write=quiet, interactive=False)
        return time.perf_counter() - started, runner
    finally:
        release(run_dir)
        run_dir.remove()


def existing_kept_runners(image: str) -> list[str]:
    """Names of the ``--dmr-reuse`` runners already kept for ``image`` on this engine (not ours)."""
    engine = connect()
    try:
        key = coordination.reuse_key(image, engine.host)
        found = engine.client.containers.list(all=True, filters={"label": f"{labels.REUSE}={key}"})
        return [container.name for container in found]
    finally:
        engine.client.close()


def remove_started(container_ids: list[str]) -> None:
    """Remove the kept runners this benchmark started (by id), and the benchmark's models volume."""
    engine = connect()
    try:
        for container_id in container_ids:
            try:
                engine.client.containers.get(container_id).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
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
    theirs = existing_kept_runners(args.image)
    started_kept: list[str] = []
    reused: list[float] = []
    try:
        once(cold_request, "warmup")  # fills the models volume: later runs measure the container only
        cold = [once(cold_request, f"cold{n}")[0] for n in range(args.runs)]
        if not theirs:
            _, kept = once(reuse_request, "keep")  # starts the kept runner
            if not kept.reused:
                started_kept.append(kept.container_id)
            reused = [once(reuse_request, f"reuse{n}")[0] for n in range(args.runs)]
    finally:
        remove_started(started_kept)

    print(f"image {args.image}, model {args.model} already in the volume")
    print(describe("cold", cold))
    if reused:
        print(describe("reused", reused))
        print(f"ratio    cold / reused = {statistics.median(cold) / statistics.median(reused):.1f}x")
    else:
        print(
            f"reused   skipped: a --dmr-reuse runner of yours is kept for this image ({', '.join(theirs)}); "
            "the benchmark leaves it alone. Remove it, or pass another --image, to measure reuse"
        )


if __name__ == "__main__":
    main()
