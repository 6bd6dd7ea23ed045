"""Drive an ``AsyncModelRunnerClient`` from sync tests, so one test body checks both clients."""

from __future__ import annotations

import asyncio
from typing import Any

from pytest_dmr.client import AsyncModelRunnerClient


class AsyncFacade:
    """Calls an AsyncModelRunnerClient's coroutine methods as if they were sync."""

    def __init__(self, client: AsyncModelRunnerClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: asyncio.run(attribute(*args, **kwargs))
