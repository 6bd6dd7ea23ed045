"""Pulling the models a run needs, with progress in the terminal.

One line per model while it downloads (rewritten in place on a terminal, repeated every few
seconds otherwise), then one line with its size and the time it took::

    dmr: pulling ai/smollm2 ... 40.00 MiB of 98.04 MiB
    dmr: pulled ai/smollm2 (98.04 MiB) in 1.3 s
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pytest_dmr.protocol import pull_stream
from pytest_dmr.errors import DMRError
from pytest_dmr.protocol.pull_stream import PullProgress

Write = Callable[[str, bool], None]
"""``write(line, transient)``: a transient line may be overwritten by the next one."""

PROGRESS_EVERY = 2.0
"""Seconds between repeated progress lines when the output is not a terminal."""


@dataclass
class PullDisplay:
    """Turns a pull's progress lines into terminal lines for one model."""

    model: str
    write: Write
    interactive: bool
    clock: Callable[[], float] = time.monotonic
    started: float = 0.0
    last_shown: float = 0.0
    layers: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def __post_init__(self) -> None:
        self.started = self.last_shown = self.clock()

    @property
    def received(self) -> int:
        """Bytes so far: the latest ``current`` of every layer (layers download in parallel)."""
        return sum(self.layers.values())

    def __call__(self, progress: PullProgress) -> None:
        if progress.type != "progress" or progress.layer_id is None:
            return
        self.layers[progress.layer_id] = progress.layer_current
        self.total = max(self.total, progress.total)
        now = self.clock()
        if self.interactive or now - self.last_shown >= PROGRESS_EVERY:
            self.last_shown = now
            of_total = f" of {pull_stream.format_size(self.total)}" if self.total else ""
            self.write(f"dmr: pulling {self.model} ... {pull_stream.format_size(self.received)}{of_total}", True)

    def finished(self, size: int, cached: bool) -> str:
        elapsed = self.clock() - self.started
        if cached:
            summary = f"already on the runner ({pull_stream.format_size(size)})" if size else "already on the runner"
        else:
            summary = f"pulled {pull_stream.format_size(size or self.received)} in {elapsed:.1f} s"
        self.write(f"dmr: {self.model}: {summary}", False)
        return summary


def pull_models(
    url: str,
    models: Iterable[str],
    *,
    write: Write,
    interactive: bool,
    timeout: float,
) -> tuple[dict[str, str], dict[str, str]]:
    """Pull each model the runner lacks. Returns ``(done, failed)``: model -> summary / reason."""
    from pytest_dmr.client import ModelRunnerClient

    done: dict[str, str] = {}
    failed: dict[str, str] = {}
    with ModelRunnerClient(url, timeout=timeout) as client:
        for model in models:
            display = PullDisplay(model, write, interactive)
            try:
                if client.has_model(model):
                    done[model] = display.finished(0, cached=True)
                    continue
                display.write(f"dmr: pulling {model} ...", True)
                result = client.pull(model, progress=display)
            except DMRError as exc:
                failed[model] = str(exc)
                display.write(f"dmr: {model}: pull failed: {exc}", False)
                continue
            done[model] = display.finished(result.total, cached=result.cached)
    return done, failed
