"""Ticket triage with structured output: the model must answer JSON that fits a schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_dmr import LLMAdapter

LABELS = ("billing", "bug", "feature_request", "account", "other")


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float


class ClassificationError(ValueError):
    """The model's answer was not JSON of the expected shape."""


class TicketClassifier:
    def __init__(self, adapter: LLMAdapter, labels: tuple[str, ...] = LABELS) -> None:
        self.adapter = adapter
        self.labels = labels

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": list(self.labels)},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["label", "confidence"],
            "additionalProperties": False,
        }

    async def classify(self, ticket: str) -> Classification:
        answer = await self.adapter.generate(
            f"Classify this support ticket as one of {', '.join(self.labels)}:\n\n{ticket}",
            temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": self.schema}},
        )
        return self._parse(answer)

    def _parse(self, answer: str) -> Classification:
        try:
            data = json.loads(answer)
        except ValueError:
            raise ClassificationError(f"the model did not answer JSON: {answer[:80]!r}") from None
        if not isinstance(data, dict) or data.get("label") not in self.labels:
            raise ClassificationError(f"the model answered an unknown label: {answer[:80]!r}")
        confidence = data.get("confidence")
        if not isinstance(confidence, (int, float)) or isinstance(confidence, bool):
            raise ClassificationError(f"the model answered a confidence that is not a number: {answer[:80]!r}")
        # JSON-schema grammars constrain types, not ranges: small models overshoot, so clamp.
        return Classification(data["label"], min(max(float(confidence), 0.0), 1.0))
