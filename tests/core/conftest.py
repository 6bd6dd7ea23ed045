"""Fixtures shared by the mock's tests: a fresh mock runner, and an httpx client on it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pytest_dmr.mock import MockModelRunner


@pytest.fixture
def mock() -> MockModelRunner:
    return MockModelRunner()


@pytest.fixture
def client(mock: MockModelRunner) -> Iterator[httpx.Client]:
    with httpx.Client(transport=mock, base_url=mock.base_url) as client:
        yield client
