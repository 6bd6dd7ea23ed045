"""Recorded requests, and the rules that script the mock's answers."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from pytest_dmr.protocol import model_names, routes
from pytest_dmr.mock.conversation import Conversation
from pytest_dmr.mock.faults import Fault

ToolCallSpec = Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]
"""A scripted tool call (``{"name": ..., "arguments": {...}}``), or a list of them: one answer calling several tools."""
Step = Union[str, ToolCallSpec, Fault]
"""One answer of a ``replies=`` sequence: a text, a tool call (or a list of them), or a :class:`Fault`."""


class Headers(Mapping[str, str]):
    """A request's headers as a dict with lowercase names (repeated ones joined), built when first
    read: most requests' are never read whole. ``get`` of a lowercase name asks the request itself."""

    __slots__ = ("_source", "_dict")

    def __init__(self, source: Any) -> None:
        self._source = source  # an httpx2 or httpx ``Headers``
        self._dict: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._dict is None:
            self._dict = dict(self._source.items())  # items() joins repeated headers, in one pass
        return self._dict

    def get(self, name: str, default: Any = None) -> Any:
        if self._dict is None and name.islower():
            try:
                return self._source[name]
            except KeyError:
                return default
        return self._built().get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._built()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


@dataclass(frozen=True, init=False)
class RecordedRequest:
    """One request the mock received, as tests want to assert on it.

    ``headers`` has lowercase names. ``json`` is the parsed body (``None`` without a JSON body).
    ``model`` is the request's model as sent (``from`` for a pull, the ref for inspect/delete).
    ``endpoint`` is the OpenAI endpoint for inference (``/chat/completions``, ``/completions``,
    ``/embeddings``, ``/models``), else the path (``/models/create``, ``/models/ai/smollm2``...).
    ``last_user_message`` is the last user message of a chat, a completion's prompt, or the
    embeddings input.

    ``api`` is the format the request came in: ``openai`` (``/engines/v1/...``), ``responses``,
    ``anthropic``, ``ollama``, ``rerank``, or ``dmr`` (DMR's own routes: models, engines...).
    ``json`` is always the body as sent; for a request DMR translates into a chat completion (a
    Responses create, a Messages request, Ollama's chat and generate), ``chat`` is that translated
    chat request, and ``model``, ``endpoint`` (``/chat/completions``; ``/messages`` for Messages),
    ``stream`` and ``last_user_message`` are read from it, so rules match whatever the format.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    model: str | None
    endpoint: str | None
    stream: bool
    last_user_message: str
    content: bytes = field(default=b"", repr=False)
    """The raw request body (an extension of the documented interface)."""
    api: str = "openai"
    chat: Any = field(default=None, repr=False)

    def __init__(
        self, method: str, path: str, headers: Mapping[str, str], json: Any, model: str | None, endpoint: str | None,
        stream: bool, last_user_message: str, content: bytes = b"", api: str = "openai", chat: Any = None,
    ) -> None:  # fmt: skip
        # the dataclass's own __init__ sets each field of a frozen instance through object.__setattr__:
        # ten times the cost, for the object the mock makes at every request
        self.__dict__.update(
            method=method, path=path, headers=headers, json=json, model=model, endpoint=endpoint, stream=stream,
            last_user_message=last_user_message, content=content, api=api, chat=chat,
        )  # fmt: skip

    @property
    def conversation(self) -> Conversation:
        """The chat's messages as the model reads them (every format's, translated): ``turn`` (how many
        assistant messages so far), ``last_role``, ``tool_results()``, ``tools_called``."""
        return Conversation.of(self.chat if self.chat is not None else self.json)


_PULL_ENDPOINTS = (routes.MODELS_CREATE_PATH, "/api/pull")
CHAT_ENDPOINTS = (*routes.INFERENCE_ENDPOINTS, "/messages")
"""What a rule without ``endpoint=`` matches: the endpoints that generate (Messages included)."""


class Rule:
    """A scripted answer for the requests it matches. Made by :meth:`MockModelRunner.add_rule`.

    Matching (every condition given must hold): ``model`` (same model after normalisation),
    ``contains`` (substring of the last user message, case-sensitive), ``matches`` (regex searched
    in it), ``endpoint`` (exact; without it a rule only matches inference requests:
    ``/chat/completions``, ``/completions``, ``/embeddings``, ``/messages``), ``api`` (the format:
    ``openai``, ``responses``, ``anthropic``, ``ollama``...), ``when`` (a callable on the
    :class:`RecordedRequest`). On the conversation (a chat request in any format): ``turn`` (how many
    assistant messages came before: 0 for a conversation's first request, 1 after the first answer),
    ``last_role`` (``user``, ``tool``, ``assistant``, ``system``), ``tool_result`` (a tool result since
    the last user message contains this text, or a compiled regex finds a match in one: an Anthropic
    ``tool_result``, a Responses ``function_call_output`` and an Ollama tool message count), ``tool_called``
    (the assistant called this tool earlier in the conversation). ``times`` limits how many requests
    it answers; ``calls`` counts them.

    It answers with ``reply`` (a text), ``stream`` (the text's pieces), ``tool_call`` (one call, or a
    list: several calls in one answer), a ``fault``, or ``replies``: a sequence used in order, one
    answer per request, each a text, a tool call (or a list of them) or a :class:`Fault`
    (``Fault.loading(times=2)`` takes two requests); the rule is used up after the last (its
    ``times`` is the sequence's length).
    ``background`` rules (a suite's canned answers: see :meth:`MockModelRunner.mark_background_rules`)
    are not expected to answer anything, so :meth:`MockModelRunner.assert_all_rules_used` skips them.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        contains: str | None = None,
        matches: str | re.Pattern[str] | None = None,
        when: Callable[[RecordedRequest], bool] | None = None,
        endpoint: str | None = None,
        api: str | None = None,
        reply: str | None = None,
        stream: Sequence[str] | None = None,
        tool_call: ToolCallSpec | None = None,
        fault: Fault | None = None,
        times: int | None = None,
        turn: int | None = None,
        last_role: str | None = None,
        tool_result: str | re.Pattern[str] | None = None,
        tool_called: str | None = None,
        replies: Sequence[Step] | None = None,
    ) -> None:
        if replies is not None:
            given = [name for name, value in (("reply", reply), ("stream", stream), ("tool_call", tool_call), ("fault", fault), ("times", times)) if value is not None]
            if given:
                raise ValueError(f"replies= gives every answer, one per request: drop {', '.join(given)}= (put it in the sequence)")
        if turn is not None and (not isinstance(turn, int) or isinstance(turn, bool) or turn < 0):
            raise ValueError(f"turn= counts the assistant messages before the request: 0 or more, got {turn!r}")
        answers = [name for name, value in (("reply", reply), ("stream", stream), ("tool_call", tool_call)) if value is not None]
        if len(answers) > 1:
            raise ValueError(f"a rule gives one answer: pass only one of reply=, stream=, tool_call= (got {', '.join(answers)})")
        if fault is not None and not isinstance(fault, Fault):
            raise TypeError(f"fault= takes a Fault (e.g. Fault.http(503)), got {fault!r}")
        if fault is not None and fault.replaces_answer and answers:
            raise ValueError(f"Fault.{fault.kind} replaces the answer: drop {answers[0]}= or use another rule")
        self._steps = _steps(replies, endpoint) if replies is not None else None
        if self._steps is not None:
            times = len(self._steps)
        elif not answers and fault is None:
            raise ValueError("a rule needs something to do: reply=, stream=, tool_call=, fault= or replies=")
        if fault is not None and fault.kind == "pull_error" and endpoint not in _PULL_ENDPOINTS:
            raise ValueError(f"Fault.pull_error only applies to pulls: pass endpoint={routes.MODELS_CREATE_PATH!r} (or '/api/pull')")
        if isinstance(stream, str):
            raise TypeError("stream= takes a list of pieces, e.g. ['Hel', 'lo']; for one text use reply=")
        times_given = times if self._steps is None else None
        if times is None and fault is not None:
            times = fault.times
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times= must be a positive integer or None, got {times!r}")
        if tool_call is not None:
            _check_tool_call(tool_call)
        self.model = model
        self.contains = contains
        self.pattern = re.compile(matches) if isinstance(matches, str) else matches
        self.when = when
        self.endpoint = endpoint
        self.api = api
        self.reply = reply
        self.stream = list(stream) if stream is not None else None
        self.tool_call = tool_call
        self.fault = fault
        self.times = times
        self.turn = turn
        self.last_role = last_role
        self.tool_result = tool_result
        self.tool_called = tool_called
        self.replies = list(replies) if replies is not None else None
        self.calls = 0
        self.background = False
        self._canonical_model = model_names.canonical_model_name(model) if model else None
        self._matches = matches
        self._times_given = times_given

    @property
    def used_as_expected(self) -> bool:
        """It answered a request; with ``times=N`` (given, or its fault's), N of them."""
        return self.calls >= (self.times or 1)

    @property
    def next_fault(self) -> Fault | None:
        """The fault its next use answers with (a ``replies=`` sequence's next step's), if any."""
        return self.answer_for(self.calls + 1).fault

    def answer_for(self, call: int) -> Rule:
        """What answers its ``call``-th request (from 1): the rule itself, or its sequence's step."""
        return self if self._steps is None else self._steps[min(call, len(self._steps)) - 1]

    def _conditions(self) -> list[tuple[str, Any]]:
        """Its matchers as written, in the order ``add_rule`` takes them."""
        return [
            (name, value)
            for name, value in (
                ("model", self.model),
                ("contains", self.contains),
                ("matches", self._matches),
                ("when", self.when),
                ("endpoint", self.endpoint),
                ("api", self.api),
                ("turn", self.turn),
                ("last_role", self.last_role),
                ("tool_result", self.tool_result),
                ("tool_called", self.tool_called),
            )
            if value is not None
        ]

    def describe(self) -> str:
        """The rule as it would be written: ``reply('Paris.', contains='capital of France')``,
        ``fail(Fault.http(503), model='ai/qwen3')``, ``add_rule(stream=['Hel', 'lo'], times=2)``."""
        matchers = self._conditions()
        limit = [("times", self._times_given)] if self._times_given is not None else []
        answers = [
            (name, value)
            for name, value in (("reply", self.reply), ("stream", self.stream), ("tool_call", self.tool_call), ("replies", self.replies))
            if value is not None
        ]
        if answers and answers[0][0] == "reply" and self.fault is None:
            return _call("reply", [self.reply], matchers + limit)
        if not answers and self.fault is not None:
            return _call("fail", [self.fault], matchers + limit)
        fault = [("fault", self.fault)] if self.fault is not None else []
        return _call("add_rule", [], matchers + answers + fault + limit)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.calls >= self.times

    def applies_to(self, request: RecordedRequest) -> bool:
        if self.exhausted:
            return False
        if request.method != "POST" and (self.endpoint is None or self.next_fault is None):
            return False  # only a POST generates: a reply, or a fault on the generating endpoints, waits for one
        if self.endpoint is not None:
            if request.endpoint != self.endpoint:
                return False
        elif request.endpoint not in CHAT_ENDPOINTS:
            return False
        if self.api is not None and request.api != self.api:
            return False
        if self._canonical_model is not None:
            if not request.model or model_names.canonical_model_name(request.model) != self._canonical_model:
                return False
        if self.contains is not None and self.contains not in request.last_user_message:
            return False
        if self.pattern is not None and not self.pattern.search(request.last_user_message):
            return False
        if self.turn is not None or self.last_role is not None or self.tool_result is not None or self.tool_called is not None:
            if not self._conversation_matches(request.conversation):
                return False
        return self.when is None or bool(self.when(request))

    def _conversation_matches(self, conversation: Conversation) -> bool:
        if self.turn is not None and conversation.turn != self.turn:
            return False
        if self.last_role is not None and conversation.last_role != self.last_role:
            return False
        if self.tool_called is not None and self.tool_called not in conversation.tools_called:
            return False
        if self.tool_result is None:
            return True
        wanted = self.tool_result
        found = [result.content for result in conversation.tool_results(since_user=True)]
        return any(wanted in text if isinstance(wanted, str) else wanted.search(text) for text in found)

    @property
    def reply_text(self) -> str | None:
        if self.reply is not None:
            return self.reply
        if self.stream is not None:
            return "".join(self.stream)
        return None

    def __repr__(self) -> str:
        conditions = [f"{name}={value.pattern if isinstance(value, re.Pattern) else value!r}" for name, value in self._conditions()]
        action = next(
            f"{name}={value!r}"
            for name, value in (
                ("reply", self.reply), ("stream", self.stream), ("tool_call", self.tool_call), ("fault", self.fault),
                ("replies", self.replies), ("", ""),
            )
            if value is not None
        )
        limit = f", times={self.times}" if self.times is not None else ""
        return f"Rule({', '.join(conditions) or 'any request'} -> {action}{limit}, calls={self.calls})"


def _check_tool_call(spec: Any) -> None:
    specs = [spec] if isinstance(spec, Mapping) else spec if isinstance(spec, (list, tuple)) and spec else [spec]
    for one in specs:
        if not isinstance(one, Mapping) or not isinstance((one.get("function") or one).get("name"), str):
            raise ValueError(f"tool_call= needs a 'name', e.g. {{'name': 'get_weather', 'arguments': {{}}}}, got {spec!r}")


def _steps(replies: Sequence[Step], endpoint: str | None) -> list[Rule]:
    """One rule per request of a ``replies=`` sequence (a fault with ``times=N`` takes N requests)."""
    if isinstance(replies, (str, Mapping)) or not replies:
        raise ValueError(f"replies= takes a non-empty list of answers (texts, tool calls, faults), got {replies!r}")
    steps = []
    for step in replies:
        if isinstance(step, Fault):
            steps += [Rule(fault=step, endpoint=endpoint)] * (step.times or 1)
        elif isinstance(step, str):
            steps.append(Rule(reply=step))
        elif isinstance(step, (Mapping, list, tuple)):
            steps.append(Rule(tool_call=step))
        else:
            raise TypeError(f"each of replies= is a text, a tool call (or a list of them) or a Fault, got {step!r}")
    return steps


def _call(name: str, arguments: Sequence[Any], keywords: Sequence[tuple[str, Any]]) -> str:
    parts = [_source(value) for value in arguments] + [f"{key}={_source(value)}" for key, value in keywords]
    return f"{name}({', '.join(parts)})"


def _source(value: Any) -> str:
    """A value as code would spell it: ``'text'``, ``re.compile('x', re.IGNORECASE)``, ``Fault.timeout()``,
    a function by its name (a lambda by where it is: ``<lambda at test_x.py:12>``)."""
    if isinstance(value, Fault):
        return value.describe()
    if isinstance(value, list):
        return "[" + ", ".join(map(_source, value)) + "]"
    if callable(value):
        name = getattr(value, "__name__", None)
        code = getattr(value, "__code__", None)
        if name == "<lambda>" and code is not None:
            return f"<lambda at {os.path.basename(code.co_filename)}:{code.co_firstlineno}>"
        return name or repr(value)
    return repr(value)
