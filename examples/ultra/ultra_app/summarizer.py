"""Summaries of support conversations, short enough for a ticket list."""

from __future__ import annotations

from pytest_dmr import LLMAdapter

SYSTEM_PROMPT = "You summarise customer support conversations in one or two plain sentences."


class Summarizer:
    def __init__(self, adapter: LLMAdapter, *, max_words: int = 40) -> None:
        if max_words < 1:
            raise ValueError("max_words must be at least 1")
        self.adapter = adapter
        self.max_words = max_words

    async def summarize(self, conversation: str) -> str:
        """A summary of at most ``max_words`` words; the model's wording, trimmed and tidied."""
        text = conversation.strip()
        if not text:
            raise ValueError("nothing to summarise: the conversation is empty")
        answer = await self.adapter.generate(
            f"Summarise this conversation:\n\n{text}",
            system=SYSTEM_PROMPT,
            temperature=0,
            max_tokens=self.max_words * 2,
        )
        return self._trim(answer)

    def _trim(self, answer: str) -> str:
        words = answer.split()
        if len(words) <= self.max_words:
            return " ".join(words)
        return " ".join(words[: self.max_words]).rstrip(",;:") + "…"
