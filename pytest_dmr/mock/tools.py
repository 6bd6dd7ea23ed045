"""Which tool the mock calls, and with which arguments.

``tool_choice``:

* ``"required"``: a call to the tool whose name appears in the last user message, else the first;
* ``{"type": "function", "function": {"name": N}}``: a call to ``N``;
* ``"auto"`` (the default when ``tools`` is given): a call only when a tool's name (or the name
  with ``_`` read as spaces) appears in the last user message, case-insensitively; else text;
* ``"none"``: text.

Arguments are drawn from the tool's ``parameters`` schema (:mod:`pytest_dmr.mock.schema`) and sent
as a compact JSON string, as OpenAI and llama.cpp do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_dmr.protocol import encoding, openai_api
from pytest_dmr.mock.prompt_values import PromptValues
from pytest_dmr.mock.schema import value_for_schema
from pytest_dmr.mock.seeded import SeededDraws


def tool_definitions(tools: Any) -> list[Mapping[str, Any]]:
    """The ``function`` part of each well-formed tool of a request."""
    if not isinstance(tools, list):
        return []
    found = []
    for tool in tools:
        if isinstance(tool, Mapping):
            function = tool.get("function", tool)
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                found.append(function)
    return found


def _mentioned(function: Mapping[str, Any], message: str) -> bool:
    name = str(function["name"]).lower()
    text = message.lower()
    return name in text or name.replace("_", " ") in text


def choose_tool(tools: Sequence[Mapping[str, Any]], tool_choice: Any, last_user_message: str) -> Mapping[str, Any] | None:
    """The function to call, or ``None`` for a text answer."""
    if not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        wanted = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        return next((tool for tool in tools if tool["name"] == wanted), None)
    mentioned = next((tool for tool in tools if _mentioned(tool, last_user_message)), None)
    if tool_choice == "required":
        return mentioned or tools[0]
    return mentioned


def generated_call(function: Mapping[str, Any], draws: SeededDraws, call_id: str, values: PromptValues | None = None) -> dict[str, Any]:
    """A call of ``function`` with arguments valid against its ``parameters`` schema (reusing the
    prompt's ``values`` where the schema allows)."""
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = value_for_schema(parameters, draws, values)
    return openai_api.tool_call(id=call_id, name=str(function["name"]), arguments=encoding.dumps(arguments))


def scripted_call(spec: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    """A rule's ``tool_call``: ``{"name": ..., "arguments": {...} or "..."}`` (or the OpenAI shape)."""
    function = spec.get("function", spec)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ValueError(f"tool_call needs a 'name', got {dict(spec)!r}")
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = encoding.dumps(arguments)
    return openai_api.tool_call(id=str(spec.get("id") or call_id), name=function["name"], arguments=arguments)
