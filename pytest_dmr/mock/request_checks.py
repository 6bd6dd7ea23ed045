"""llama.cpp's refusals of a malformed inference request, which DMR passes through: the status and
message the mock answers with instead of generating (measured on xllamacpp 2026.10.11549).

Each check returns ``(status, message)`` for the first thing wrong, in llama.cpp's order, or
``None``. A 400 is llama.cpp's ``invalid_request_error``, a 500 its ``server_error`` (what its
message parsers throw). Images, audio and video parts are left alone: a vision model takes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pytest_dmr.protocol import encoding

Refusal = tuple[int, str]

_NUMBER_FIELDS = (
    "n_predict", "max_tokens", "max_completion_tokens", "n_indent", "n_keep", "n_discard", "n_cmpl", "t_max_predict_ms",
    "top_k", "top_p", "min_p", "top_n_sigma", "xtc_probability", "xtc_threshold", "typical_p", "temperature",
    "dynatemp_range", "dynatemp_exponent", "repeat_last_n", "repeat_penalty", "frequency_penalty", "presence_penalty",
    "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "mirostat", "mirostat_tau", "mirostat_eta",
    "seed", "n_probs", "min_keep", "logprobs", "n",
)  # fmt: skip
_BOOLEAN_FIELDS = ("stream", "cache_prompt", "return_tokens", "return_progress", "timings_per_token", "post_sampling_probs", "ignore_eos")
_TOOL_CHOICES = ("auto", "none", "required")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_MEDIA_PARTS = ("image_url", "input_audio", "video_url")
_PROMPT_ELEMENTS = (
    '"prompt" elements must be a string, a list of tokens, a JSON object containing a prompt string, '
    "or a list of mixed strings & tokens."
)


def _json_type(value: Any) -> str:
    """nlohmann::json's name for a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def _type_error(field: str, expected: str, value: Any) -> Refusal:
    return 400, f"Field '{field}': [json.exception.type_error.302] type must be {expected}, but is {_json_type(value)}"


_ORDER = {field: at for at, field in enumerate(_BOOLEAN_FIELDS + _NUMBER_FIELDS)}


def _fields(body: Mapping[str, Any]) -> Refusal | None:
    """The sampling fields' types and integer ranges (a boolean passes for a number, ``null`` for
    anything), ``stop``'s items, ``n``, then the repeat penalty the sampler refuses."""
    for field in sorted(_ORDER.keys() & body.keys(), key=_ORDER.__getitem__):
        value = body[field]
        if value is None:
            continue
        if field in _BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                return _type_error(field, "boolean", value)
        elif not isinstance(value, (bool, int, float)):
            return _type_error(field, "number", value)
        elif field != "n":
            refusal = _range(field, value)
            if refusal is not None:
                return refusal
    stop = body.get("stop")
    if type(stop) is list:
        wrong = next((item for item in stop if item is not None and not isinstance(item, str)), None)
        if wrong is not None:
            return _type_error("stop", "string", wrong)
    refusal = _range("n", body.get("n"))
    if refusal is not None:
        return refusal
    penalty = body.get("repeat_penalty")
    if isinstance(penalty, (int, float)) and not isinstance(penalty, bool) and not 0 < penalty < math.inf:
        return 400, "Failed to initialize samplers: penalty_repeat must be finite and greater than 0"
    return None


_INT_MAX, _INT64_MAX = 2**31 - 1, 2**63 - 1
_RANGES = {
    "n_predict": (-1, _INT_MAX, 32), "max_tokens": (-1, _INT_MAX, 32), "max_completion_tokens": (-1, _INT_MAX, 32),
    "n_indent": (0, _INT_MAX, 32), "n_keep": (-1, _INT_MAX, 32), "n_discard": (0, _INT_MAX, 32), "n_cmpl": (1, 1, 32),
    "t_max_predict_ms": (-1, _INT64_MAX, 64), "repeat_last_n": (0, _INT_MAX, 32), "dry_allowed_length": (0, _INT_MAX, 32),
    "dry_penalty_last_n": (0, _INT_MAX, 32), "min_keep": (0, _INT_MAX, 32), "n": (1, 1, 32),
}  # fmt: skip
"""llama.cpp's range checks of integer fields (measured: ``-5``, ``3000000000`` and ``1e300`` for each
field), as ``(lowest, highest, bits of the C integer it reads)``; ``n`` and ``n_cmpl`` must be 1."""


def _range(field: str, value: Any) -> Refusal | None:
    """llama.cpp's refusal of an integer field's value outside its range, as it reads the value."""
    if field not in _RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low, high, bits = _RANGES[field]
    number = _as_c_int(value, bits)
    if low <= number <= high:
        return None
    return 400, f"Field '{field}': Value must be between {low} <= value <= {high}, but got {number}"


def _as_c_int(value: float, bits: int = 32) -> int:
    """What llama.cpp's ``json_value`` makes of a JSON number as a C integer of ``bits`` bits: a
    64-bit integer wrapped, a double truncated (the lowest integer when it does not fit, as x86 does)."""
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        half: int = 2 ** (bits - 1)
        return (value + half) % (2 * half) - half
    whole = math.trunc(float(value))
    lowest: int = -(2 ** (bits - 1))
    return whole if lowest <= whole < -lowest else lowest


def _content(message: Any) -> Refusal | None:
    """``oaicompat_chat_params_parse``'s look at one message's content."""
    if not isinstance(message, dict) or "content" not in message:
        if isinstance(message, dict) and message.get("role") == "assistant":
            return None if "tool_calls" in message else (400, "Assistant message must contain either 'content' or 'tool_calls'!")
        return 400, "All non-assistant messages must contain 'content'"
    content = message["content"]
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return 400, "Expected 'content' to be a string or an array"
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" and kind not in _MEDIA_PARTS:
            return 400, "unsupported content[].type"
    return None


def _tools(tools: Any) -> Refusal | None:
    """``common_chat_tools_parse_oaicompat``: a 500 naming the tool, then all of them (pretty-printed)."""
    if tools is None:
        return None
    problem = None
    if not isinstance(tools, list):
        problem = f"Expected 'tools' to be an array, got {encoding.dumps(tools)}"
    else:
        for tool in tools:
            if not isinstance(tool, dict) or "type" not in tool:
                problem = f"Missing tool type: {encoding.dumps(tool)}"
            elif tool["type"] != "function":
                problem = f"Unsupported tool type: {encoding.dumps(tool)}"
            elif not isinstance(tool.get("function"), dict):
                problem = f"Missing tool function: {encoding.dumps(tool)}"
            elif "name" not in tool["function"]:
                problem = "[json.exception.out_of_range.403] key 'name' not found"
            if problem is not None:
                break
    if problem is None:
        return None
    return 500, f"Failed to parse tools: {problem}; tools = {json.dumps(tools, indent=2, ensure_ascii=False)}"


def _parsed_message(message: Mapping[str, Any]) -> str | None:
    """``common_chat_msgs_parse_oaicompat``'s complaint about one message, if any."""
    if "role" not in message:
        return f"Missing 'role' in message: {encoding.dumps(message)}"
    if not isinstance(message["role"], str):
        return f"[json.exception.type_error.302] type must be string, but is {_json_type(message['role'])}"
    content = message.get("content")
    for part in content if isinstance(content, list) else ():
        if part.get("type") == "text":
            if "text" not in part:
                return "[json.exception.out_of_range.403] key 'text' not found"
            if not isinstance(part["text"], str):
                return f"[json.exception.type_error.302] type must be string, but is {_json_type(part['text'])}"
    for call in _json_items(message.get("tool_calls")):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or "type" not in call:
            return f"Missing tool call type: {encoding.dumps(call)}"
        if call["type"] != "function":
            return f"Unsupported tool call type: {encoding.dumps(call)}"
        if "function" not in call:
            return f"Missing tool call function: {encoding.dumps(call)}"
        if not isinstance(function, dict) or "name" not in function:
            return f"Missing tool call name: {encoding.dumps(call)}"
        if not isinstance(function["name"], str):
            return f"[json.exception.type_error.302] type must be string, but is {_json_type(function['name'])}"
        if "arguments" not in function:
            return "[json.exception.out_of_range.403] key 'arguments' not found"
        if "id" in call and not isinstance(call["id"], str):
            return f"[json.exception.type_error.302] type must be string, but is {_json_type(call['id'])}"
    wrong = next((message[key] for key in ("reasoning_content", "name", "tool_call_id") if key in message and not isinstance(message[key], str)), ...)
    if wrong is not ...:
        return f"[json.exception.type_error.302] type must be string, but is {_json_type(wrong)}"
    return None


def _json_items(value: Any) -> list[Any]:
    """What a C++ range-for over an nlohmann value visits: an array's items, an object's values,
    nothing for ``null``, else the value itself."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return list(value.values()) if isinstance(value, dict) else [value]


def chat_refusal(body: Mapping[str, Any]) -> Refusal | None:
    """What llama.cpp's ``/v1/chat/completions`` (and so its Messages API, and every DMR front-end
    that translates to a chat completion) refuses, in its order."""
    if "messages" not in body:
        return 400, "'messages' is required"
    messages = body["messages"]
    if not isinstance(messages, list):
        return 400, "Expected 'messages' to be an array"
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if isinstance(kind, str) and kind not in _RESPONSE_FORMATS:
        return 400, f'response_format type must be one of "text" or "json_object", but got: {kind}'
    for message in messages:
        refusal = _content(message)
        if refusal is not None:
            return refusal
    refusal = _tools(body.get("tools"))
    if refusal is not None:
        return refusal
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice not in _TOOL_CHOICES:
        return 400, f"Invalid tool_choice: {choice}"
    for message in messages:
        problem = _parsed_message(message)
        if problem is not None:
            return 500, f"Failed to parse messages: {problem}"
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant" and last.get("tool_calls"):
        return 400, "Cannot continue an assistant message that contains tool calls."
    if body.get("logprobs") is True:
        if body.get("stream") is True and isinstance(body.get("tools"), list) and body["tools"]:
            return 400, "logprobs is not supported with tools + stream"
    elif body.get("top_logprobs") is not None:
        return 400, "top_logprobs requires logprobs to be set to true"
    return _fields(body)


def _prompt(value: Any, field: str) -> Refusal | None:
    """``tokenize_input_prompts``: a string, an object, or a list of strings, objects, token IDs
    and lists of them."""
    if isinstance(value, list) and not value:
        return 400, f'"{field}" must not be empty'
    elements = value if isinstance(value, list) else [value]
    for element in elements:
        token = isinstance(element, int) and not isinstance(element, bool) and element is not value
        if isinstance(element, Mapping):  # llama.cpp's multimodal prompt: {"prompt_string": ..., "multimodal_data": [...]}
            if "prompt_string" not in element:
                return 400, _PROMPT_ELEMENTS
            if not isinstance(element["prompt_string"], str):
                return 400, f"[json.exception.type_error.302] type must be string, but is {_json_type(element['prompt_string'])}"
        elif not token and not isinstance(element, (str, list)):
            return 400, _PROMPT_ELEMENTS
    return None


def completion_refusal(body: Mapping[str, Any]) -> Refusal | None:
    """What llama.cpp's ``/v1/completions`` refuses: no ``prompt``, a prompt of the wrong shape,
    then the sampling fields."""
    if "prompt" not in body:
        return 400, "[json.exception.out_of_range.403] key 'prompt' not found"
    return _prompt(body["prompt"], "prompt") or _fields(body)


def embedding_refusal(body: Mapping[str, Any]) -> Refusal | None:
    """What llama.cpp's ``/v1/embeddings`` refuses: no ``input`` (nor ``content``), or one of the wrong shape."""
    if "input" not in body and "content" not in body:
        return 400, '"input" or "content" must be provided'
    return _prompt(body["input"] if "input" in body else body["content"], "input")
