"""A chat request's conversation as the mock reads it: turns, the last role, tool calls and results.

Every front-end reaches the chat core with chat messages (an Anthropic ``tool_result``, a Responses
``function_call_output`` and an Ollama ``tool`` message all become ``tool`` messages), so this
reads one shape. The *turn* is the number of assistant messages so far: 0 for the first request
of a conversation, 1 after one answer (a tool call or text), and so on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_dmr.protocol import encoding, openai_api


@dataclass(frozen=True)
class ToolResult:
    """One tool message: the tool's name (from the message, else from the call it answers), the
    call's JSON arguments (``""`` when unknown), the result's text and the call's ID."""

    name: str
    arguments: str
    content: str
    call_id: str = ""


@dataclass(frozen=True)
class Conversation:
    """The messages of one chat request, read once."""

    messages: Sequence[Mapping[str, Any]]

    @classmethod
    def of(cls, body: Any) -> Conversation:
        messages = body.get("messages") if isinstance(body, (dict, Mapping)) else None
        return cls([m for m in messages if isinstance(m, (dict, Mapping))] if isinstance(messages, list) else [])

    @property
    def turn(self) -> int:
        """How many assistant messages came before this request."""
        return sum(1 for message in self.messages if message.get("role") == "assistant")

    @property
    def last_role(self) -> str | None:
        return str(self.messages[-1].get("role")) if self.messages else None

    def _last_user_index(self) -> int:
        return max((i for i, message in enumerate(self.messages) if message.get("role") == "user"), default=-1)

    @property
    def last_user_text(self) -> str:
        index = self._last_user_index()
        return openai_api.message_text(self.messages[index].get("content")) if index >= 0 else ""

    def calls(self, *, since_user: bool = False) -> list[tuple[str, str, str]]:
        """The assistant's tool calls as ``(id, name, arguments)``, oldest first (only those after the
        last user message with ``since_user``)."""
        start = self._last_user_index() + 1 if since_user else 0
        found = []
        for message in self.messages[start:]:
            if message.get("role") != "assistant":
                continue
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, (dict, Mapping)) else None
                if isinstance(function, (dict, Mapping)):
                    arguments = function.get("arguments")
                    text = arguments if isinstance(arguments, str) else encoding.dumps(arguments) if arguments is not None else ""
                    found.append((str(call.get("id") or ""), str(function.get("name") or ""), text))
        return found

    def tool_results(self, *, since_user: bool = False) -> list[ToolResult]:
        """The ``tool`` messages, oldest first (only those after the last user message with ``since_user``)."""
        start = self._last_user_index() + 1 if since_user else 0
        tail = self.messages[start:]
        if not any(message.get("role") == "tool" for message in tail):  # most requests: no call to look up
            return []
        by_id = {call_id: (name, arguments) for call_id, name, arguments in self.calls()}
        results = []
        for message in tail:
            if message.get("role") != "tool":
                continue
            call_id = str(message.get("tool_call_id") or "")
            name, arguments = by_id.get(call_id, ("", ""))
            name = str(message.get("name") or message.get("tool_name") or name)
            results.append(ToolResult(name, arguments, openai_api.message_text(message.get("content")), call_id))
        return results

    def unseen_calls(self) -> int:
        """How many calls since the last user message are known only by the ``tool`` messages that
        answer them (their ``tool_call_id`` is no assistant call's): DMR's Responses front-end turns
        a ``function_call`` input item into a ``tool`` message, so the call itself is nowhere."""
        seen = {call_id for call_id, _, _ in self.calls(since_user=True)}
        return len({result.call_id for result in self.tool_results(since_user=True) if result.call_id and result.call_id not in seen})

    @property
    def tools_called(self) -> list[str]:
        """The names of the tools the assistant called in this conversation, oldest first."""
        return [name for _, name, _ in self.calls()]

