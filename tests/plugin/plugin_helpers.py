"""Helpers shared by the plugin's pytester tests."""

from __future__ import annotations

import pytest


BASE_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def make_ini(pytester: pytest.Pytester, lines: str = "") -> None:
    """An ini file for an inner run: pytest-asyncio configured, plus ``lines``."""
    pytester.makeini(BASE_INI + lines)


KEEP_WARNINGS = ("-W", "always::pytest.PytestWarning")
"""For an in-process inner run: pytest-dmr's warnings shown, not turned into errors by this suite's
``filterwarnings = error`` (which the inner run inherits)."""
