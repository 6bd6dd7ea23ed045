"""Ultra-style application code: every feature takes an ``LLMAdapter`` and never knows which one.

In production the adapter talks to Docker Model Runner (or a cloud model); in tests pytest-dmr
hands over a real runner when there is one and a deterministic mock when there is not.
"""

from ultra_app.classifier import Classification, TicketClassifier
from ultra_app.router import ModelRouter, NoModelAvailable
from ultra_app.summarizer import Summarizer

__all__ = ["Classification", "ModelRouter", "NoModelAvailable", "Summarizer", "TicketClassifier"]
