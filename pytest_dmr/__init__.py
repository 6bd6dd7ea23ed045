"""pytest-dmr: Docker Model Runner for tests: live when a runner is there, a deterministic mock when not.

The public names below load on first use, so ``import pytest_dmr`` (which pytest does for the
plugin on every run) costs almost nothing until a test asks for an adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC_NAMES = {
    "LLMAdapter": "pytest_dmr.adapter",
    "DockerModelRunnerAdapter": "pytest_dmr.adapter",
    "ChatResult": "pytest_dmr.adapter",
    "create_modelrunner_adapter": "pytest_dmr.adapter",
    "ModelRunnerClient": "pytest_dmr.client",
    "AsyncModelRunnerClient": "pytest_dmr.client",
    "PullResult": "pytest_dmr.client",
    "MockModelRunner": "pytest_dmr.mock",
    "Fault": "pytest_dmr.mock",
    "RecordedRequest": "pytest_dmr.mock",
    "ModelInfo": "pytest_dmr.protocol.model_info",
    "RunningModel": "pytest_dmr.protocol.engines_api",
    "DiskUsage": "pytest_dmr.protocol.engines_api",
    "PullProgress": "pytest_dmr.protocol.pull_stream",
    "normalize_model_name": "pytest_dmr.protocol.model_names",
    "DMRError": "pytest_dmr.errors",
    "ConfigurationError": "pytest_dmr.errors",
    "RunnerUnavailableError": "pytest_dmr.errors",
    "NotAModelRunnerError": "pytest_dmr.errors",
    "ProvisioningError": "pytest_dmr.errors",
    "RunnerTimeoutError": "pytest_dmr.errors",
    "StreamInterruptedError": "pytest_dmr.errors",
    "PullError": "pytest_dmr.errors",
    "MalformedResponseError": "pytest_dmr.errors",
    "RunnerHTTPError": "pytest_dmr.errors",
    "BadRequestError": "pytest_dmr.errors",
    "ModelNotFoundError": "pytest_dmr.errors",
    "BackendUnavailableError": "pytest_dmr.errors",
    "ModelLoadingError": "pytest_dmr.errors",
    "ModelLoadError": "pytest_dmr.errors",
}

__all__ = ["__version__", *_PUBLIC_NAMES]

if TYPE_CHECKING:
    from pytest_dmr.adapter import ChatResult, DockerModelRunnerAdapter, LLMAdapter, create_modelrunner_adapter
    from pytest_dmr.client import AsyncModelRunnerClient, ModelRunnerClient, PullResult
    from pytest_dmr.errors import (
        BackendUnavailableError,
        BadRequestError,
        ConfigurationError,
        DMRError,
        MalformedResponseError,
        ModelLoadError,
        ModelLoadingError,
        ModelNotFoundError,
        NotAModelRunnerError,
        ProvisioningError,
        PullError,
        RunnerHTTPError,
        RunnerTimeoutError,
        RunnerUnavailableError,
        StreamInterruptedError,
    )
    from pytest_dmr.mock import Fault, MockModelRunner, RecordedRequest
    from pytest_dmr.protocol.engines_api import DiskUsage, RunningModel
    from pytest_dmr.protocol.model_info import ModelInfo
    from pytest_dmr.protocol.model_names import normalize_model_name
    from pytest_dmr.protocol.pull_stream import PullProgress


def __getattr__(name: str) -> Any:
    module = _PUBLIC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_dmr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
