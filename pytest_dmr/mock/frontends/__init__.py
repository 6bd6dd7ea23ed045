"""The mock's other API formats, each a front-end over the chat-completions core, as DMR is built.

Each module reads its requests (:func:`view`: what the request is, and the chat request DMR would
translate it into, so rules match whatever the format) and answers them (``answer``), calling the
mock's scheduler (:func:`admit`, then :func:`generate_chat`, over the mock's :class:`~pytest_dmr.mock.state.MockState`) for what
DMR sends upstream. The translations are :mod:`pytest_dmr.protocol`'s, shared with the emulator.

How a rule's :class:`~pytest_dmr.mock.Fault` shows in each format (it stands for the upstream's
answer, so each front-end presents it as DMR presents that upstream answer):

==================  =========================================================================
``http(status)``    OpenAI, Messages, reranking: the status and body as they are (DMR passes
                    them through). Responses: a ``failed`` Response with that status (plain) or
                    ``error`` and ``response.failed`` events with status 200 (streamed). Ollama:
                    the status, with ``{"error": message}`` or the body (plain) or no body (streamed).
``timeout``,        the client's stack raises (``ReadTimeout``, ``RemoteProtocolError``) in every
``disconnect``      format.
``cut_stream(n)``   a stream stops after the events made from ``n`` content chunks (no closing
                    events); a whole body is cut in half.
``slow_first_token`` the first byte waits, in every format.
``pull_error``      ``/api/pull``: the progress lines, then ``{"error": ...}`` lines.
==================  =========================================================================

On routes that do not go upstream (``/api/tags``, ``GET /v1/responses/{id}``...) an ``http`` fault
replaces the answer as on DMR's own routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_dmr.protocol import engines_api, routes
from pytest_dmr.mock import inference
from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.inference import ChatOutcome
from pytest_dmr.mock.responses import Answer, plain_error, raw
from pytest_dmr.mock.rules import RecordedRequest, Rule
from pytest_dmr.mock.stacks import Dropped
from pytest_dmr.mock.state import MockState
from pytest_dmr.mock.streams import Delivery

if TYPE_CHECKING:
    from pytest_dmr.mock.stacks import AnyRequest


@dataclass
class View:
    """A front-end request as the mock records it: its format, endpoint and model, the chat
    request it translates into (``None`` when it is not one, or is refused), whether it goes
    upstream (then a fault stands for the upstream's answer), and the front-end's own parse."""

    api: str
    endpoint: str
    model: str | None = None
    chat: dict[str, Any] | None = None
    upstream: bool = False
    state: Any = None


@dataclass
class Call:
    """One front-end request on its way through the mock."""

    request: AnyRequest
    recorded: RecordedRequest
    view: View
    rule: Rule | None
    fault: Fault | None
    delivery: Delivery
    tokens: int = 0
    """The completion tokens the chat core generated for it (what a :class:`~pytest_dmr.mock.streams.Pace` times)."""

    @property
    def path(self) -> str:
        return self.recorded.path


Handler = Callable[[MockState, Call], Answer]


def preload_only(call: Call) -> bool:
    """Whether the request carries ``X-Preload-Only: true``: the scheduler loads the model and
    answers nothing (no body, no inference, no log record) where the front-end forwards the client's
    headers (Messages, Ollama); the Responses front-end builds a new request without it."""
    return call.recorded.headers.get(routes.PRELOAD_HEADER.lower()) == "true"


def method_not_allowed(allowed: str) -> Answer:
    """Go's ``ServeMux`` for a path registered for other methods: ``405`` and ``Allow``
    (``GET`` patterns allow ``HEAD`` too)."""
    refused = plain_error(405, "Method Not Allowed")
    return replace(refused, headers=(*refused.headers, ("allow", allowed)))


def translated_stream(
    outcome: ChatOutcome, head: list[bytes], feed: Callable[[Mapping[str, Any]], list[bytes]], tail: Callable[[], list[bytes]]
) -> tuple[list[bytes], Delivery]:
    """A front-end's stream from the core's chunks: ``head``, what ``feed`` makes of each chunk, then
    ``tail()``; and its delivery, a ``cut_stream`` fault's cut moved to where the chunk after the
    last piece sent would begin."""
    events = list(head)
    offsets = []
    for chunk in outcome.chunks or ():
        offsets.append(len(events))
        events += feed(chunk)
    offsets.append(len(events))
    events += tail()
    return events, outcome.cut_index(offsets)


def fault_answer(fault: Fault, recorded: RecordedRequest) -> Answer:
    """A fault that replaces the answer: its status and body, or a dropped connection."""
    if fault.kind in ("timeout", "disconnect"):
        raise Dropped(fault.kind)
    body, content_type = fault.response_body(method=recorded.method, endpoint=recorded.endpoint, model=recorded.model)
    return raw(fault.status, body, content_type)


def admit(
    runner: MockState, call: Call, *, backend: str | None, endpoint: str, body: Any, size: int, mode: str | None = None
) -> Answer | None:
    """What DMR's scheduler does before the backend sees a front-end's request: the rule's fault
    (it stands for the upstream's answer), then DMR's checks; ``None`` when the model is loaded."""
    if call.fault is not None and call.fault.replaces_answer:
        return fault_answer(call.fault, call.recorded)
    refusal = runner.checks(backend, body, size)
    if refusal is not None:
        return refusal
    runner.mark_loaded(body["model"], mode or engines_api.mode_for_endpoint(endpoint))
    return None


def generate_chat(runner: MockState, call: Call, chat: dict[str, Any]) -> ChatOutcome:
    """The chat-completions core's answer to ``chat`` (the front-end's translated request)."""
    exchange = inference.Exchange(
        recorded=call.recorded, body=chat, endpoint=routes.CHAT_COMPLETIONS, rule=call.rule, delivery=call.delivery
    )
    outcome = inference.chat_outcome(runner, exchange)
    call.tokens = outcome.completion_tokens
    return outcome
