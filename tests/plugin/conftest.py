"""Fixtures for the plugin's tests: a DMR stand-in on 127.0.0.1, and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from plugin_standin import StandIn

SAFE_DISCOVERY = "url,compose,host,desktop"
"""This machine has /.dockerenv: the container probe group must never fire from here."""

# Before this run's own pytest-dmr resolves its settings (when run as `pytest tests/plugin`).
os.environ.setdefault("DMR_DISCOVERY", SAFE_DISCOVERY)

OUR_VARIABLES = (
    "DMR_MODE", "DMR_URL", "MODEL_RUNNER_URL", "MODEL_RUNNER_HOST", "DMR_MODEL", "DEFAULT_LOCAL_MODEL",
    "DMR_PROVISION", "DMR_IMAGE", "DMR_PULL", "DMR_REUSE", "DMR_REQUIRE_LIVE", "DMR_DISCOVERY",
    "DMR_TIMEOUT", "LOCAL_MODEL_TIMEOUT", "LLM_URL", "LLM_MODEL", "AI_RUNNER_URL", "AI_RUNNER_MODEL",
    "USE_MOCK", "PYTEST_ADDOPTS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pytest-dmr variable leaks in from outside; discovery leaves the container group out."""
    for name in OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DMR_DISCOVERY", SAFE_DISCOVERY)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A Docker Model Runner stand-in on 127.0.0.1 and a free port, with one model."""
    with StandIn() as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL where nothing listens (a port just freed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


SETTINGS_PROBE = """
import json, pathlib
from pytest_dmr.fixtures import get_session

def test_write_settings(pytestconfig):
    pathlib.Path("settings.json").write_text(json.dumps(get_session(pytestconfig).settings.to_json()))
"""


@pytest.fixture
def resolved_settings(pytester: pytest.Pytester):
    """Run pytest in-process with these arguments (and the ini file pytester holds); return its settings."""
    import json

    def run(*args: str) -> dict:
        pytester.makepyfile(test_settings_probe=SETTINGS_PROBE)
        result = pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider", "-p", "no:asyncio")
        result.assert_outcomes(passed=1)
        return json.loads((pytester.path / "settings.json").read_text())

    return run

