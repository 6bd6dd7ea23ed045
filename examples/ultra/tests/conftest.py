"""The app's objects, each built on the adapter pytest-dmr gives this test (live or mock)."""

from __future__ import annotations

import pytest
from ultra_app import Summarizer, TicketClassifier


@pytest.fixture
def summarizer(dmr_adapter):
    return Summarizer(dmr_adapter, max_words=40)


@pytest.fixture
def classifier(dmr_adapter):
    return TicketClassifier(dmr_adapter)


@pytest.fixture
def dmr_config():
    """Every adapter of this suite decodes greedily with a fixed seed, so live answers repeat across runs."""
    return {"temperature": 0, "seed": 42}
