"""The test tiers that need real parts (``live``, ``container``, ``openai2``): they skip with the
reason, or fail when ``PYTEST_DMR_REQUIRE_TIERS`` lists them (CI sets ``live,container``).

Import it as ``from tiers import require_tier`` (``tests/`` is on ``sys.path``: its conftest.py is
rootdir-relative). A plain ``from conftest import ...`` would take whichever conftest module was
imported last (``tests/core/conftest.py`` when ``tests/core`` is collected first).
"""

from __future__ import annotations

import os

import pytest


def required_tiers() -> set[str]:
    """Tiers listed in PYTEST_DMR_REQUIRE_TIERS (CI sets ``live,container``) must not skip."""
    return {tier.strip() for tier in os.environ.get("PYTEST_DMR_REQUIRE_TIERS", "").split(",") if tier.strip()}


def require_tier(tier: str, reason: str) -> None:
    """Skip with ``reason``, or fail with it when ``tier`` is mandatory for this run."""
    __tracebackhide__ = True
    if tier in required_tiers():
        pytest.fail(f"[{tier} tier is mandatory here] {reason}", pytrace=False)
    pytest.skip(f"[{tier} tier] {reason}")
