"""
Local model call sites.

Where Ultra's services use the Docker Model Runner adapter: the mock LLM service trying a local
model first, the orchestrator registering the default local model, and an analysis with a system
message, streamed or not. Written as Ultra writes them.
"""

import logging
import os
from typing import Any, Dict, Optional

from ultra_models.docker_modelrunner_adapter import create_modelrunner_adapter
from ultra_models.llm_adapter import LLMAdapter, create_adapter

logger = logging.getLogger("local_models")


async def try_model_runner_response(prompt: str, model: str, model_runner_url: Optional[str] = None) -> Optional[str]:
    """Try to get a response from Docker Model Runner (None when it cannot answer)."""
    try:
        adapter = create_modelrunner_adapter(model, base_url=model_runner_url)
        return await adapter.generate(prompt)
    except Exception as e:
        logger.warning(f"Failed to get response from Docker Model Runner: {str(e)}")
        return None


def register_local_model(model_registry: Dict[str, Dict[str, Any]], default_model: Optional[str] = None) -> LLMAdapter:
    """Add the default local model to the orchestrator's registry, keyed as Ultra keys it."""
    default_model = default_model or os.getenv("DEFAULT_MODEL", "phi3:mini")
    adapter = create_adapter(
        "docker_modelrunner",
        api_key=None,
        model=default_model,
        base_url=os.environ.get("MODEL_RUNNER_URL", "http://model-runner:8080"),
        timeout=30,
    )
    capabilities = adapter.get_capabilities()
    model_registry[capabilities["name"]] = {
        "provider": "docker_modelrunner",
        "model": default_model,
        "adapter": adapter,
        "max_tokens": capabilities["max_tokens"],
        "streaming": capabilities["supports_streaming"],
    }
    return adapter


async def analyze(adapter: LLMAdapter, prompt: str, stream: bool = False) -> str:
    """Ultra's analysis call: a system message, Ultra's default temperature, a bounded answer."""
    options = {
        "system_message": "You are an analyst. Answer in one sentence.",
        "temperature": 0.7,
        "max_tokens": min(256, adapter.get_capabilities()["max_tokens"]),
    }
    if not stream:
        return await adapter.generate(prompt, **options)
    chunks = []
    async for chunk in adapter.stream_generate(prompt, **options):
        chunks.append(chunk)
    return "".join(chunks)
