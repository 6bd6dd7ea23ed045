"""Route each task to its preferred model, falling back to the next when one fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_dmr import DMRError, LLMAdapter


class NoModelAvailable(RuntimeError):
    """Every adapter for a task failed; the message lists why, adapter by adapter."""


class ModelRouter:
    def __init__(self, routes: Mapping[str, Sequence[LLMAdapter]]) -> None:
        if not routes or any(not adapters for adapters in routes.values()):
            raise ValueError("every task needs at least one adapter")
        self.routes = {task: list(adapters) for task, adapters in routes.items()}
        self.served_by: list[str] = []
        """Which model answered each call, in order (what dashboards show)."""

    async def generate(self, task: str, prompt: str, **options: object) -> str:
        adapters = self.routes.get(task)
        if adapters is None:
            raise KeyError(f"no route for task {task!r}; known tasks: {', '.join(sorted(self.routes))}")
        failures = []
        for adapter in adapters:
            name = adapter.get_capabilities().get("model", type(adapter).__name__)
            try:
                answer = await adapter.generate(prompt, **options)
            except DMRError as exc:
                failures.append(f"{name}: {exc.message}")
                continue
            self.served_by.append(str(name))
            return answer
        raise NoModelAvailable(f"no model could answer task {task!r}: " + "; ".join(failures))
