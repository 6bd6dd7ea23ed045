"""
Docker Model Runner Adapter Module.

Ultra's module, its adapter now pytest-dmr's: the same names, constructor and calls, with DMR's
wire format, retries, timeouts and errors (all ``pytest_dmr.DMRError``, an ``Exception``).
"""

import logging
from typing import List, Optional

from pytest_dmr import DockerModelRunnerAdapter, create_modelrunner_adapter

from ultra_models.llm_adapter import LLMAdapter

# Ultra's code types adapters as its own LLMAdapter: pytest-dmr's adapter is one.
LLMAdapter.register(DockerModelRunnerAdapter)

__all__ = ["DockerModelRunnerAdapter", "create_modelrunner_adapter", "get_available_models"]


# Function to get all available Docker Model Runner models
async def get_available_models(base_url: Optional[str] = None) -> List[str]:
    """
    Get all available models from Docker Model Runner.

    Args:
        base_url: Model Runner API URL (optional)

    Returns:
        List of model IDs
    """
    try:
        adapter = create_modelrunner_adapter(base_url=base_url)
        async with adapter:
            return await adapter.get_available_models()  # the ids already (Ultra took model["id"] of each entry)
    except Exception as e:
        logging.error(f"Failed to get available models: {e}")
        return []
