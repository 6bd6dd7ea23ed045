"""Repository-wide test configuration, for every run whose rootdir is this repository: the README's
test command (``.venv/bin/pytest``: ``tests/`` and ``examples/ultra_compat/``) and any part of it.

``examples/ultra`` is a project of its own, as a user's would be: its ``pytest.ini`` makes it the
rootdir of ``pytest examples/ultra`` (the README's main job), so that run never loads this file and
uses only the plugin and its own settings (``asyncio_mode = auto``). A run from here leaves it out
rather than running its tests under this repository's settings.

Helpers for the test tiers live in ``tests/tiers.py``; ``tests/conftest.py`` has the tiers' fixtures.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# pytest put this directory first on sys.path to import this file; nothing here needs it there, and
# with it there every in-process pytester run finds pytest_dmr (and the editable install's egg-info)
# through sys.path, tries to mark the already imported plugin for assertion rewriting and fails on
# the warning. Tests import the installed package, as a user's suite does.
_ROOT = str(Path(__file__).parent)
while _ROOT in sys.path:
    sys.path.remove(_ROOT)

pytest_plugins = ["pytester"]

collect_ignore = ["examples/ultra"]  # its own pytest.ini: run it as `pytest examples/ultra`


def pytest_configure(config: pytest.Config) -> None:
    """Our tests talk to 127.0.0.1 only: a proxy from the environment must never carry that traffic
    (the test helpers use plain httpx and urllib too, which honour ``NO_PROXY``)."""
    for name in ("NO_PROXY", "no_proxy"):
        present = [host for host in os.environ.get(name, "").split(",") if host.strip()]
        os.environ[name] = ",".join(dict.fromkeys([*present, "127.0.0.1", "localhost"]))
