"""
LLM Adapter Module.

Ultra's base class for LLM integrations, as Ultra wrote it: a name and an optional API key,
``generate`` abstract, default ``stream_generate``, ``check_availability`` and ``get_capabilities``.
The cloud providers' adapters are left out (they need the providers' SDKs and keys); the factory
keeps Ultra's Docker Model Runner branch.
"""

import asyncio
import logging
import os
import time
from abc import ABC, abstractmethod
from typing import Any, AsyncGenerator, Dict, Optional


class LLMAdapter(ABC):
    """Base adapter for LLM integrations."""

    def __init__(self, name: str, api_key: Optional[str] = None):
        """
        Initialize the LLM adapter.

        Args:
            name: The name of the LLM
            api_key: Optional API key
        """
        self.name = name
        self.api_key = api_key
        self.logger = logging.getLogger(f"llm_adapter.{name}")
        self.last_call_time = 0.0
        self.rate_limit_seconds = 0.5  # Default rate limiting

    @abstractmethod
    async def generate(self, prompt: str, **options: Any) -> str:
        """
        Generate a response from the LLM.

        Args:
            prompt: The input prompt
            **options: Additional provider-specific options

        Returns:
            The generated text response
        """

    async def stream_generate(self, prompt: str, **options: Any) -> AsyncGenerator[str, None]:
        """
        Generate a streaming response from the LLM.

        Note:
            Default implementation returns the full response as a single chunk.
        """
        full_response = await self.generate(prompt, **options)
        yield full_response

    async def check_availability(self) -> bool:
        """
        Check if the LLM is available.

        Returns:
            True if the LLM is available, False otherwise
        """
        try:
            response = await self.generate("Hello", max_tokens=10)
            return bool(response)
        except Exception as e:
            self.logger.warning(f"Availability check failed: {e}")
            return False

    def get_capabilities(self) -> Dict[str, Any]:
        """
        Get LLM capabilities.

        Returns:
            Dictionary of capabilities
        """
        return {
            "name": self.name,
            "supports_streaming": False,
            "max_tokens": 4000,
            "supports_functions": False,
            "supports_vision": False,
        }

    async def _respect_rate_limit(self) -> None:
        """Respect rate limiting by waiting if needed."""
        now = time.time()
        time_since_last_call = now - self.last_call_time
        if time_since_last_call < self.rate_limit_seconds:
            await asyncio.sleep(self.rate_limit_seconds - time_since_last_call)
        self.last_call_time = time.time()


# Helper function to create the appropriate adapter
def create_adapter(provider: str, api_key: Optional[str] = None, **options: Any) -> LLMAdapter:
    """
    Create an LLM adapter for the specified provider.

    Args:
        provider: The LLM provider ("docker_modelrunner"; Ultra's cloud providers are left out here)
        api_key: The API key (optional for providers like Docker Model Runner)
        **options: Additional provider-specific options (model, base_url, timeout)

    Returns:
        An instance of the appropriate LLMAdapter

    Raises:
        ValueError: If the provider is not supported
    """
    model = options.get("model")

    if provider.lower() == "docker_modelrunner":
        from ultra_models.docker_modelrunner_adapter import DockerModelRunnerAdapter

        return DockerModelRunnerAdapter(
            api_key=None,
            model=model or os.environ.get("DEFAULT_MODEL", "phi3:mini"),
            base_url=options.get("base_url", os.environ.get("MODEL_RUNNER_URL", "http://model-runner:8080")),
            timeout=options.get("timeout", int(os.environ.get("LOCAL_MODEL_TIMEOUT", 60000)) / 1000),
        )
    raise ValueError(f"Unsupported LLM provider: {provider}")
