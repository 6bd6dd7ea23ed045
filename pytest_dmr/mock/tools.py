"""Which tools the mock calls, with which arguments, and what it says once their results are in.

The request is the last user message. A tool *fits* a part of it by word overlap: its name said
whole (3), each word of its name (2: ``send_email`` has ``send`` and ``email``), each word of its
description and parameter names (1); common words never count. The request is cut into tasks at
``and``, ``then``, commas and sentence ends; a task a tool fits by its name (score 2 or more) is a
planned call, and a short task that names only a thing ("... and in Rome", "... and alice") repeats
the previous task's tool for that thing. Calls made since the last user message use up planned
calls, oldest first: the assistant's by their tool, and results whose call is not in the request
(DMR's Responses front-end keeps a ``function_call`` input item only as a ``tool`` message) in order.

``tool_choice``:

* ``"auto"`` (the default when ``tools`` is given): the planned calls not made yet, all at once
  when ``parallel_tool_calls`` is not false, else the next one; when none is left, text (after
  tool results, a text that quotes them);
* ``"required"``: the same, but when no planned call is left, a call to the tool not yet called
  (since the last user message) that fits best (ties: the first listed);
* ``{"type": "function", "function": {"name": N}}`` (or ``{"name": N}``): a call to ``N``;
* ``"none"``: text.

Arguments are drawn from the tool's ``parameters`` schema (:mod:`pytest_dmr.mock.schema`) and sent
as a compact JSON string, as OpenAI and llama.cpp do; then, where the property's schema allows it,
filled from the task's words: an e-mail address, a place (a capitalised name) for ``city``-like
parameters, a number in range, an ``enum`` value the request says, the task's subject for
``query``-like parameters, otherwise a name in the order the request gives them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_dmr.protocol import encoding, openai_api
from pytest_dmr.mock.conversation import Conversation, ToolResult
from pytest_dmr.mock.prompt_values import PromptValues
from pytest_dmr.mock.schema import value_for_schema
from pytest_dmr.mock.seeded import SeededDraws, digest

_COMMON = frozenset(
    """a about above after again all also am an and any are as at be been before being below between both but by
    can could did do does doing done for from further get got had has have having he her here hers him his how i if
    in into is it its just let me more most my no nor not now of off on once only or other our out over own please
    same she should so some such than that the their them then there these they this those through to too under
    until up us use using very via want was we were what when where which while who whom why will with would you
    your yours tell give show find fetch make call run check look need know like thanks thank hi hello hey okay ok
    one two it's i'm what's let's today now currently current""".split()
)
"""Words that fit every tool (never counted, never taken for a name)."""
_WORD = r"[A-Za-z][A-Za-z0-9'-]*"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_NUMBER = r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])"
_TASK_BREAK = r"\s*(?:[;.!?]\s+|,\s*(?:and\s+|then\s+)?|\s+(?:and then|and also|and|then|also|plus|&)\s+)"
_PLACE_PARAMS = frozenset("city location place town country region destination origin where address_city area state".split())
_QUERY_PARAMS = frozenset("query q search term terms keyword keywords question prompt topic text input subject".split())
_RESULT_PARAMS = frozenset("summary answer result results response reply content description message explanation details report".split())
_EMAIL_PARAMS = frozenset("email to recipient recipients address mail email_address to_address".split())
_PLAIN_KEYS = frozenset("type description title default examples minLength maxLength minimum maximum format enum".split())
_SHARED_KEYS = frozenset("if then else not allOf anyOf oneOf dependentSchemas $ref propertyNames".split())
_RESULT_OPENERS = ("According to {tool}, {text}", "{tool} returned: {text}", "Here is what {tool} found: {text}")
_RESULT_LIMIT = 400


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


def _stem(word: str) -> str:
    word = word.lower().strip("'-")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(text: str) -> set[str]:
    """The counted words of ``text``: stemmed, lowercase, common words left out (``get_weather``
    and ``getWeather`` give ``weather``)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ")
    return {stem for stem in map(_stem, re.findall(_WORD, spaced)) if stem not in _COMMON and len(stem) > 1}


@dataclass(frozen=True)
class _Vocabulary:
    """The words a tool answers to."""

    function: Mapping[str, Any]
    name: str
    name_words: frozenset[str]
    other_words: frozenset[str]

    @classmethod
    def of(cls, function: Mapping[str, Any]) -> _Vocabulary:
        name = str(function["name"])
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        names = ""
        if isinstance(properties, Mapping):  # parameter names, and the words of their enum values
            enums = [value for schema in properties.values() if isinstance(schema, Mapping) for value in schema.get("enum") or ()]
            names = " ".join([*properties, *(value for value in enums if isinstance(value, str))])
        other = _words(f"{function.get('description') or ''} {names}")
        return cls(function, name, frozenset(_words(name)), frozenset(other))

    def fit(self, text: str) -> int:
        words = _words(text)
        named = 3 if re.search(rf"(?<!\w){re.escape(self.name.lower())}(?!\w)", text.lower()) else 0
        return named + 2 * len(self.name_words & words) + len(self.other_words & words)

    @property
    def words(self) -> frozenset[str]:
        return self.name_words | self.other_words


@dataclass(frozen=True)
class PlannedCall:
    """A call to make: the tool, the part of the request its arguments come from, the whole request
    (for ``enum`` values said anywhere), and the words that name tools (never taken for values)."""

    function: Mapping[str, Any]
    task: str
    request: str = ""
    vocabulary: frozenset[str] = frozenset()
    results: str = ""
    """The tool results so far (since the last user message), for ``summary``-like parameters."""


def _tasks(text: str) -> list[str]:
    return [part.strip() for part in re.split(_TASK_BREAK, text) if part and part.strip()]


def _things(task: str, vocabulary: frozenset[str]) -> list[str]:
    """What a task names, in order: e-mail addresses, numbers, quoted text, capitalised names
    (consecutive ones joined: ``New York``), and other uncommon words no tool is named by."""
    found: list[tuple[int, int, str]] = []  # start, end, text

    def free(start: int, end: int) -> bool:
        return not any(a < end and start < b for a, b, _ in found)

    for pattern in (_EMAIL, r'"([^"]+)"|\'([^\']+)\'', _NUMBER):
        for match in re.finditer(pattern, task):
            if free(*match.span()):
                found.append((*match.span(), next((group for group in match.groups() if group), match.group(0))))
    words: list[tuple[int, int, str]] = []
    for match in re.finditer(_WORD, task):
        word = match.group(0)
        if free(*match.span()) and _stem(word) not in _COMMON | vocabulary and (word[0].isupper() or len(word) > 2):
            previous = words[-1] if words else None
            if previous and previous[2][0].isupper() and word[0].isupper() and task[previous[1] : match.start()].isspace():
                words[-1] = (previous[0], match.end(), task[previous[0] : match.end()])  # "New York": one name
            else:
                words.append((*match.span(), word))
    return [text for _, _, text in sorted(found + words)]


def _plan(vocabularies: Sequence[_Vocabulary], request: str, every_word: frozenset[str]) -> list[PlannedCall]:
    """The calls the request asks for, in order."""
    planned: list[PlannedCall] = []
    for task in _tasks(request):
        score, _, vocabulary = max((v.fit(task), -i, v) for i, v in enumerate(vocabularies))
        if score >= 2:
            planned.append(PlannedCall(vocabulary.function, task, request, every_word))
        elif planned and _things(task, every_word) and len(_words(task) - every_word) <= 3:
            planned.append(PlannedCall(planned[-1].function, task, request, every_word))
    return planned


def plan_calls(body: Mapping[str, Any], conversation: Conversation) -> list[PlannedCall]:
    """The calls the model makes in answer to ``body`` (none: it answers in text)."""
    tools = tool_definitions(body.get("tools"))
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    request = conversation.last_user_text
    if isinstance(choice, Mapping):
        function = choice.get("function")
        wanted = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        named = next((tool for tool in tools if tool["name"] == wanted), None)
        return [PlannedCall(named, request, request, _Vocabulary.of(named).words)] if named is not None else []
    vocabularies = [_Vocabulary.of(tool) for tool in tools]
    every_word = frozenset().union(*(v.words for v in vocabularies))
    remaining = _plan(vocabularies, request, every_word)
    made = [name for _, name, _ in conversation.calls(since_user=True)]
    for name in made:
        index = next((i for i, call in enumerate(remaining) if call.function["name"] == name), None)
        if index is not None:
            del remaining[index]
    del remaining[: conversation.unseen_calls()]
    if remaining:
        return remaining if body.get("parallel_tool_calls") is not False else remaining[:1]
    if choice != "required":
        return []
    best = max(enumerate(vocabularies), key=lambda item: (item[1].name not in made, item[1].fit(request), -item[0]))[1]
    results = "; ".join(_result_text(result) for result in conversation.tool_results(since_user=True))
    return [PlannedCall(best.function, request, request, every_word, results)]


# -- arguments ------------------------------------------------------------------------------------------


def _plain(schema: Any) -> Mapping[str, Any] | None:
    """A property schema simple enough to put a value of the request in (no combinators, no pattern)."""
    return schema if isinstance(schema, Mapping) and set(schema) <= _PLAIN_KEYS else None


def _allows(schema: Mapping[str, Any], value: Any) -> bool:
    kinds = schema.get("type", "string" if isinstance(value, str) else "number")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str):
        fmt = schema.get("format")
        return bool(
            "string" in kinds
            and (fmt is None or (fmt == "email" and re.fullmatch(_EMAIL, value) is not None))
            and schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        )
    if isinstance(value, bool) or not kinds & {"integer", "number"} or (isinstance(value, float) and "number" not in kinds):
        return False
    return bool(schema.get("minimum", value) <= value <= schema.get("maximum", value))


def _number(text: str) -> int | float | None:
    if re.fullmatch(_NUMBER, text) is None:
        return None
    return float(text) if "." in text else int(text)


def _pick(name: str, schema: Mapping[str, Any], call: PlannedCall, things: list[str]) -> Any:
    """A value for property ``name`` from the call's task (an enum value: from the whole request), or ``None``."""
    if isinstance(schema.get("enum"), list):
        said = _words(call.request)
        return next((value for value in schema["enum"] if isinstance(value, str) and _stem(value) in said), None)
    key = name.lower()
    candidates: Iterator[Any]
    if key in _RESULT_PARAMS and call.results:
        candidates = iter([call.results])
    elif schema.get("type") in ("integer", "number"):
        candidates = (number for number in map(_number, things) if number is not None)
    elif key in _EMAIL_PARAMS or schema.get("format") == "email":
        emails = [thing for thing in things if re.fullmatch(_EMAIL, thing)]
        candidates = iter(emails or ([] if schema.get("format") == "email" else [t for t in things if _number(t) is None]))
    elif key in _PLACE_PARAMS or key.endswith(("city", "location", "country")):
        candidates = (thing for thing in things if thing[:1].isupper() and "@" not in thing)
    elif key in _QUERY_PARAMS:
        candidates = iter([" ".join(t for t in things if "@" not in t)] if things else [])
    else:
        candidates = (thing for thing in things if _number(thing) is None and "@" not in thing)
    return next((value for value in candidates if value and _allows(schema, value)), None)


def _arguments(call: PlannedCall, draws: SeededDraws, values: PromptValues | None) -> Any:
    """Arguments drawn from the schema (reusing the whole prompt's ``values``), then each property
    the call's own task names (its place, its person, its number) set from that task."""
    parameters = call.function.get("parameters") or {"type": "object", "properties": {}}
    arguments = value_for_schema(parameters, draws, values)
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(arguments, dict) or not isinstance(properties, Mapping) or _SHARED_KEYS & set(parameters):
        return arguments
    things = _things(call.task, call.vocabulary)
    for name in arguments:
        schema = _plain(properties.get(name))
        if schema is None:
            continue
        value = _pick(name, schema, call, things)
        if value is not None:
            arguments[name] = value
            if value in things:
                things.remove(value)
    return arguments


def _nth_id(call_id: str, index: int) -> str:
    """The id of the answer's call number ``index``: ``call_id`` for the first, one derived from it after."""
    return call_id if index == 0 else call_id[:5] + digest(f"{call_id}\0{index}").hex()[: len(call_id) - 5]


def generated_calls(
    calls: Sequence[PlannedCall], draws: SeededDraws, call_id: str, values: PromptValues | None = None
) -> list[dict[str, Any]]:
    """The planned calls with their ids (``call_id`` for the first, derived ones after it) and arguments."""
    found = []
    for index, call in enumerate(calls):
        arguments = _arguments(call, draws.fork("tool" if index == 0 else f"tool{index}"), values)
        found.append(openai_api.tool_call(id=_nth_id(call_id, index), name=str(call.function["name"]), arguments=encoding.dumps(arguments)))
    return found


def scripted_calls(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]], call_id: str) -> list[dict[str, Any]]:
    """A rule's ``tool_call``: ``{"name": ..., "arguments": {...} or "..."}`` (or the OpenAI shape),
    or a list of them (several calls in one answer)."""
    specs = [spec] if isinstance(spec, Mapping) else list(spec)
    calls = []
    for index, one in enumerate(specs):
        function = one.get("function", one)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool_call needs a 'name', got {dict(one)!r}")
        arguments = function.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = encoding.dumps(arguments)
        calls.append(openai_api.tool_call(id=str(one.get("id") or _nth_id(call_id, index)), name=function["name"], arguments=arguments))
    return calls


# -- answering with the results -----------------------------------------------------------------------------


def _result_text(result: ToolResult) -> str:
    """A tool's result as a sentence's worth of text: a JSON object as ``key: value`` pairs, other
    text with its whitespace collapsed; cut at a word past the limit."""
    text = result.content.strip()
    try:
        value = encoding.loads(text) if text[:1] in "{[" else None
    except ValueError:
        value = None
    if isinstance(value, dict) and value:
        text = ", ".join(f"{key}: {item if isinstance(item, str) else encoding.dumps(item)}" for key, item in value.items())
    text = " ".join(text.split()) or "nothing"
    if len(text) > _RESULT_LIMIT:
        text = text[:_RESULT_LIMIT].rsplit(" ", 1)[0] + "..."
    return text


def result_answer(conversation: Conversation, draws: SeededDraws) -> str | None:
    """The text the model answers with once tool results are in (those since the last user message),
    quoting each, drawn from ``draws``' ``results`` fork; ``None`` when there are none."""
    every = conversation.tool_results(since_user=True)
    # DMR's Responses front-end sends a ``function_call`` item as an empty ``tool`` message before its output's
    results = [result for at, result in enumerate(every) if result.content or not result.call_id or result.call_id not in {later.call_id for later in every[at + 1 :]}]
    if not results:
        return None
    draws = draws.fork("results")
    lines = []
    for result in results:
        tool = result.name or "the tool"
        subject = _subject(result)
        text = _result_text(result)
        lines.append(draws.choice(_RESULT_OPENERS).format(tool=f"{tool} ({subject})" if subject else tool, text=text))
    if len(lines) == 1:
        return _sentence(lines[0])
    return "Here is what the tools found:\n" + "\n".join(f"- {_sentence(line)}" for line in lines)


def _subject(result: ToolResult) -> str:
    """The call's arguments in brief (``Paris``; ``bob@example.com, Hello``), for telling results apart."""
    try:
        arguments = encoding.loads(result.arguments) if result.arguments else None
    except ValueError:
        return ""
    if not isinstance(arguments, dict):
        return ""
    values = [str(value) for value in arguments.values() if isinstance(value, (str, int, float)) and not isinstance(value, bool)]
    return ", ".join(value for value in values[:2] if len(value) <= 40)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "...")) else text + "."
