"""``MockModelRunner``: a transport for httpx2 and httpx (sync and async) that answers as Docker Model Runner does."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import httpx2

from pytest_dmr.protocol import addresses, cors, encoding, engines_api, error_bodies, openai_api, request_log, routes
from pytest_dmr.protocol.responses_api import ResponseStore
from pytest_dmr.mock import frontends, inference, management, responses, stacks
from pytest_dmr.mock.catalog import ModelStore, describe_model
from pytest_dmr.mock.clock import MockClock
from pytest_dmr.mock.faults import Fault
from pytest_dmr.mock.frontends import Call, View
from pytest_dmr.mock.rules import Headers, RecordedRequest, Rule, Step, ToolCallSpec
from pytest_dmr.mock.responses import Answer
from pytest_dmr.mock.stacks import Dropped
from pytest_dmr.mock.state import MockState
from pytest_dmr.mock.streams import AT_ONCE, Delivery, Pace
from pytest_dmr.protocol.model_info import ModelInfo
from pytest_dmr.protocol.request_log import RequestLog

if TYPE_CHECKING:
    import httpx

    from pytest_dmr.mock.stacks import AnyRequest

    class _Transports(  # type: ignore[misc]  # each stack types its own requests: MockModelRunner overloads both
        httpx2.BaseTransport, httpx2.AsyncBaseTransport, httpx.BaseTransport, httpx.AsyncBaseTransport
    ):
        """For type checkers: the mock is a transport of either stack."""

else:  # at run time, httpx2's (its glue is the core dependency); httpx's clients need no base class

    class _Transports(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
        pass

DEFAULT_CONTEXT_SIZE = 2048
"""The mock's context size: the emulator's (and the live tier's llama.cpp's) default."""
_GO_TRUE = frozenset({"", "1", "t", "T", "TRUE", "true", "True"})
_MODELS_PREFIX = routes.MANAGEMENT_MODELS_PATH + "/"
_PRELOAD = routes.PRELOAD_HEADER.lower()  # recorded headers have lowercase names
_T = TypeVar("_T")

RULES_NOT_USED = "The mock's rules were not all used:\n{rules}\n\n{hint}"
"""What :meth:`MockModelRunner.assert_all_rules_used` raises: one ``- rule: how it fell short`` line per rule."""
RULES_NOT_USED_HINT = (
    "If a rule may go unused on purpose, add it in a pytest_dmr_configure_mock hook (or before "
    "mock.mark_background_rules()), or turn the check off with @pytest.mark.dmr_mock(assert_all_rules_used=False)."
)


class _InState(Generic[_T]):
    """A runner attribute kept in its :class:`~pytest_dmr.mock.state.MockState`, where handlers read it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, runner: None, owner: type) -> _InState[_T]: ...
    @overload
    def __get__(self, runner: MockModelRunner, owner: type) -> _T: ...

    def __get__(self, runner: MockModelRunner | None, owner: type) -> _InState[_T] | _T:
        return self if runner is None else getattr(runner.state, self.name)

    def __set__(self, runner: MockModelRunner, value: _T) -> None:
        setattr(runner.state, self.name, value)


class MockModelRunner(_Transports):
    """A Docker Model Runner in a transport: give it to any httpx2 or httpx client, sync or async
    (the OpenAI SDK's included).

    >>> mock = MockModelRunner()
    >>> client = httpx2.Client(transport=mock, base_url=mock.base_url)
    >>> client.get("/").text
    'Docker Model Runner is running'

    Unmatched requests get generated answers (prose, code, lists, JSON for a schema, tool calls,
    embeddings), byte-identical for the same request in any process, as long as a real model's
    (SmolLM2's on llama.cpp): a natural length per request, cut by ``max_tokens`` (else
    ``default_max_tokens``, else nothing) and by the ``context_size`` left after the prompt.
    Embeddings are as wide as the model family's (SmolLM2-135M: 576) unless ``embedding_dimensions``
    or the request's ``dimensions`` says otherwise. ``pace`` (a :class:`~pytest_dmr.mock.streams.Pace`)
    makes generated answers take time: time to first token, tokens per second. Rules (newest first) script replies and
    faults; every request is kept in :attr:`requests`. ``serve_any_model`` lets inference use
    models the store does not list (as if every model were pulled); turn it off to get DMR's 404.

    ``origins`` is the list DMR's CORS middleware checks an ``Origin`` header against (exact
    matching; ``["*"]`` allows every origin); the default is DMR's own list without ``DMR_ORIGINS``
    (the environment is not read, so the mock answers the same everywhere). ``_configure`` settings
    are kept in :attr:`runner_configs`, keyed by (backend, model ID, mode).

    Besides the OpenAI routes, it serves DMR's other front-ends over the same core: Responses
    (:attr:`openai_base_url` with ``responses.create``), Anthropic Messages (:attr:`anthropic_base_url`),
    Ollama (:attr:`ollama_base_url`), reranking and the request log ``/engines/requests``
    (:mod:`pytest_dmr.mock.frontends`). What DMR dates with the wall clock is dated by :attr:`clock`,
    which stands still until a test advances it.
    """

    base_url: str = addresses.MOCK_BASE_URL
    serve_any_model = _InState[bool]()
    embedding_dimensions = _InState["int | None"]()
    default_max_tokens = _InState["int | None"]()
    context_size = _InState[int]()
    pace = _InState["Pace | None"]()
    origins = _InState["tuple[str, ...]"]()
    store = _InState[ModelStore]()
    rules = _InState["list[Rule]"]()
    requests = _InState["list[RecordedRequest]"]()
    loaded_runners = _InState["list[tuple[str, str]]"]()
    runner_configs = _InState["dict[tuple[str, str, str], engines_api.RunnerConfig]"]()
    clock = _InState[MockClock]()
    response_store = _InState[ResponseStore]()
    request_log = _InState[RequestLog]()

    def __init__(
        self,
        *,
        models: Iterable[str] = (addresses.DEFAULT_MODEL,),
        serve_any_model: bool = True,
        embedding_dimensions: int | None = None,
        default_max_tokens: int | None = None,
        context_size: int = DEFAULT_CONTEXT_SIZE,
        pace: Pace | None = None,
        origins: Sequence[str] = cors.DEFAULT_ALLOWED_ORIGINS,
    ) -> None:
        for name, value in (("embedding_dimensions", embedding_dimensions), ("default_max_tokens", default_max_tokens), ("context_size", context_size)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value!r}")
        if isinstance(origins, str):
            raise TypeError(f"origins must be a list of origins, not the string {origins!r} (split it on commas)")
        self.state = MockState(
            models=models, serve_any_model=serve_any_model, embedding_dimensions=embedding_dimensions,
            default_max_tokens=default_max_tokens, context_size=context_size, pace=pace, origins=origins,
        )
        """What the handlers read and change: the attributes above (``store``, ``rules``, ``requests``...) are kept there."""

    # -- the controller ---------------------------------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI client takes (``.../engines/v1``)."""
        return self.base_url + routes.ENGINES_PREFIX

    @property
    def anthropic_base_url(self) -> str:
        """The base URL an Anthropic client takes: the root (the SDK appends ``/v1/messages``)."""
        return self.base_url

    @property
    def ollama_base_url(self) -> str:
        """The host an Ollama client takes: the root (the SDK appends ``/api/...``)."""
        return self.base_url

    @property
    def models(self) -> list[ModelInfo]:
        """The models the management API lists, in order."""
        return self.state.models

    @property
    def last_request(self) -> RecordedRequest:
        if not self.requests:
            raise LookupError("the mock runner has received no request yet")
        return self.requests[-1]

    def add_rule(
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
    ) -> Rule:
        """Script the answer to matching requests; the newest matching rule wins. See :class:`Rule`."""
        rule = Rule(
            model=model, contains=contains, matches=matches, when=when, endpoint=endpoint, api=api,
            reply=reply, stream=stream, tool_call=tool_call, fault=fault, times=times,
            turn=turn, last_role=last_role, tool_result=tool_result, tool_called=tool_called, replies=replies,
        )
        with self.state.lock:
            self.rules.append(rule)
        return rule

    def reply(self, text: str, **match: Any) -> Rule:
        """``add_rule(reply=text, ...)``: answer matching requests with ``text`` (streamed in pieces)."""
        return self.add_rule(reply=text, **match)

    def fail(self, fault: Fault, **match: Any) -> Rule:
        """``add_rule(fault=fault, ...)``."""
        return self.add_rule(fault=fault, **match)

    def mark_background_rules(self) -> None:
        """Make the rules added so far background: canned answers a suite sets up for every test (the
        plugin marks those of ``pytest_dmr_configure_mock`` so), which :meth:`assert_all_rules_used`
        does not expect a test to use."""
        with self.state.lock:
            for rule in self.rules:
                rule.background = True

    def assert_all_rules_used(self) -> None:
        """Raise ``AssertionError`` listing, oldest first, each rule (background ones aside) that answered
        no request, or fewer than its ``times``: a rule nothing used means the code under test did not
        ask what the test scripted."""
        __tracebackhide__ = True
        with self.state.lock:
            short = [rule for rule in self.rules if not rule.background and not rule.used_as_expected]
            lines = [f"- {rule.describe()}: {_usage(rule)}" for rule in short]
        if lines:
            raise AssertionError(RULES_NOT_USED.format(rules="\n".join(lines), hint=RULES_NOT_USED_HINT))

    def reset(self) -> None:
        """Forget rules, recorded requests, loaded runners and their settings, stored responses and the
        request log; restore the initial models; set the clock back."""
        self.state.reset()

    def flush_request_log(self) -> RequestLog:
        """The request log (``GET /engines/requests``), every queued change made."""
        return self.state.flush_request_log()

    def add_model(self, name: str, *, size: int | None = None, tags: Iterable[str] = ()) -> ModelInfo:
        """Put a model in the store (as if pulled); ``size`` in bytes, ``tags`` extra names for it."""
        return self.store.add(describe_model(name, size=size, extra_tags=tags))

    def remove_model(self, name: str) -> None:
        """Take a model (every tag of it) out of the store."""
        model = self.store.find(name)
        if model is None:
            present = ", ".join(stored.name for stored in self.store.models) or "none"
            raise KeyError(f"the mock runner has no model {name!r} (it has: {present})")
        self.store.remove(model)

    # -- the transport, for httpx2 and httpx ---------------------------------------------------------

    @overload
    def handle_request(self, request: httpx2.Request) -> httpx2.Response: ...
    @overload
    def handle_request(self, request: httpx.Request) -> httpx.Response: ...

    def handle_request(self, request: AnyRequest) -> Any:
        stack = stacks.for_request(request)
        request.read()
        try:
            answer = self._respond(request)
        except Dropped as dropped:
            raise stack.error(dropped, request) from None
        return stack.response(answer, request)

    @overload
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response: ...
    @overload
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response: ...

    async def handle_async_request(self, request: AnyRequest) -> Any:
        stack = stacks.for_request(request)
        await request.aread()
        try:
            answer = self._respond(request)
        except Dropped as dropped:
            raise stack.error(dropped, request) from None
        return stack.response(answer, request)

    # -- answering --------------------------------------------------------------------------------

    def _respond(self, request: AnyRequest) -> Answer:
        """The answer to ``request``, whichever stack sent it."""
        method = request.method
        path = routes.clean_path(request.url.path)
        content = request.content
        body: Any = None
        invalid_json = False
        overflow = None  # llama.cpp's JSON parser's refusal of what DMR's Go decoder reads (1e400, a lone surrogate)
        if content:
            try:
                body, overflow = encoding.read_request_body(content)
            except ValueError:
                invalid_json = True
        route = routes.match_inference_path(path)
        # the OpenAI inference endpoints are no front-end's: the usual request skips their look-ups
        front = None if route is not None and route.endpoint in inference.HANDLERS else _front_end(self.state, method, path, body, content)
        if front is not None:
            route = None
        recorded = self._record(request, method, path, route, body, content, front[0] if front else None)
        access = cors.cors_answer(path, method, request.headers.get(cors.ORIGIN_HEADER), self.state.origins)
        if access.status == 403:
            answer = responses.plain_error(403, cors.ORIGIN_NOT_ALLOWED)
        elif access.status is not None:  # an allowed preflight
            answer = Answer(access.status, access.headers)
        else:
            answer = self._answer(request, route, recorded, front, invalid_json=invalid_json, overflow=overflow)
            if access.headers:
                answer.headers = [*answer.headers, *access.headers]
        if method == "HEAD" and answer.content_length is None:  # not made headless by _answer (a refusal, a fault's answer)
            return answer.headless()
        return answer

    def _answer(
        self,
        request: AnyRequest,
        route: routes.InferenceRoute | None,
        recorded: RecordedRequest,
        front: tuple[View, frontends.Handler] | None,
        *,
        invalid_json: bool,
        overflow: str | None,
    ) -> Answer:
        """The handler's answer, past the CORS middleware: rules and faults first, then DMR's routes."""
        preload = recorded.headers.get(_PRELOAD) == "true"
        rule = self._rule_for(recorded, preload) if self.rules else None
        fault = rule.fault if rule is not None else None
        if fault is not None and fault.replaces_answer and (front is None or not front[0].upstream):
            return frontends.fault_answer(fault, recorded)
        delivery = AT_ONCE
        if fault is not None and fault.kind in ("slow_first_token", "cut_stream"):
            delivery = Delivery(
                delay=fault.seconds if fault.kind == "slow_first_token" else 0.0,
                cut_after=fault.after if fault.kind == "cut_stream" else None,
                read_timeout=(request.extensions.get("timeout") or {}).get("read"),
            )
        call = None
        if front is not None:
            view, handler = front
            call = Call(request, recorded, view, rule, fault, delivery)
            answer = handler(self.state, call)
        elif route is not None:
            answer = self._inference(request, route, recorded, rule, delivery, invalid_json=invalid_json, overflow=overflow, preload=preload)
        else:
            answer = self._management(request, recorded, fault, delivery)
        tokens = answer.tokens or (call.tokens if call is not None else 0)
        pace = self.state.pace
        if pace is not None and tokens and answer.status == 200:
            paced = pace.applied(answer.delivery if answer.chunks is not None else delivery, streamed=answer.chunks is not None, tokens=tokens)
            if answer.chunks is not None:
                answer.delivery = paced
            delivery = paced
        if request.method == "HEAD":  # before a fault's delivery: a late or cut answer stays late or cut
            answer = answer.headless()
        return answer.delivered(delivery) if delivery.delays_or_cuts else answer

    def _rule_for(self, recorded: RecordedRequest, preload: bool) -> Rule | None:
        """The newest rule that applies to ``recorded`` (one counted use of it), or ``None``."""
        with self.state.lock:
            rule = next(
                (
                    rule
                    for rule in reversed(self.rules)
                    if (not preload or rule.next_fault is not None) and rule.applies_to(recorded)
                ),
                None,
            )
            if rule is not None:
                rule.calls += 1
                rule = rule.answer_for(rule.calls)  # a replies= sequence answers with its next step
        return rule

    def _record(
        self,
        request: AnyRequest,
        method: str,
        path: str,
        route: routes.InferenceRoute | None,
        body: Any,
        content: bytes,
        view: View | None,
    ) -> RecordedRequest:
        is_object = isinstance(body, dict)
        model: str | None = None
        api = "openai" if route is not None else "dmr"
        chat = body if is_object and route is not None else None
        if view is not None:
            api, endpoint, model, chat = view.api, view.endpoint, view.model, view.chat
        elif route is not None:
            endpoint = route.endpoint
            if endpoint.startswith(_MODELS_PREFIX):
                endpoint, model = routes.MODELS, endpoint[len(_MODELS_PREFIX) :]
            elif is_object and isinstance(body.get("model"), str):
                model = body["model"]
        else:
            endpoint = path
            if path == routes.MODELS_CREATE_PATH:
                model = body.get("from") if is_object and isinstance(body.get("from"), str) else None
            elif path.startswith(_MODELS_PREFIX):
                model = path[len(_MODELS_PREFIX) :]
        recorded = RecordedRequest(
            method=method,
            path=path,
            headers=Headers(request.headers.copy()),  # a copy (a list copy, no parsing): a request sent again may be changed
            json=body,
            model=model,
            endpoint=endpoint,
            stream=isinstance(chat, dict) and chat.get("stream") is True,
            last_user_message=openai_api.last_user_message(chat) if isinstance(chat, dict) else "",
            content=content,
            api=api,
            chat=chat if view is not None else None,
        )
        with self.state.lock:
            self.requests.append(recorded)
        return recorded

    def _inference(
        self,
        request: AnyRequest,
        route: routes.InferenceRoute,
        recorded: RecordedRequest,
        rule: Rule | None,
        delivery: Delivery,
        *,
        invalid_json: bool,
        overflow: str | None,
        preload: bool,
    ) -> Answer:
        method = request.method
        endpoint = route.endpoint
        body = recorded.json
        if endpoint == routes.MODELS and method in routes.READ_METHODS:
            return management.openai_models(self.state)
        if endpoint.startswith(_MODELS_PREFIX) and method in routes.READ_METHODS:
            return management.openai_model(self.state, endpoint[len(_MODELS_PREFIX) :])
        handler = inference.HANDLERS.get(endpoint)
        if handler is None or method != "POST":
            return responses.plain_error(404, error_bodies.NOT_FOUND)
        state = self.state
        refusal = state.checks(route.backend, body, len(recorded.content), invalid_json=invalid_json)
        if refusal is not None:
            return refusal
        state.mark_loaded(body["model"], engines_api.mode_for_endpoint(endpoint))
        if preload:
            return responses.empty(200)  # loaded, no inference; reply rules were not used up
        exchange = inference.Exchange(
            recorded=recorded, body=body, endpoint=endpoint, rule=rule, delivery=delivery
        )
        if overflow is not None:  # llama.cpp's JSON parser (nlohmann) refuses what Go read: DMR passes the body on as sent
            answer = responses.backend_json(openai_api.backend_error_body(400, overflow), 400)
        else:
            answer = handler(state, exchange)
        state.log_exchange(recorded, url=engines_url(recorded.path), model=body["model"], body=recorded.content, answer=answer)
        return answer

    def _management(
        self, request: AnyRequest, recorded: RecordedRequest, fault: Fault | None, delivery: Delivery
    ) -> Answer:
        method, path = recorded.method, recorded.path
        if path == routes.ROOT_PATH:
            return management.root()
        if path == routes.VERSION_PATH:
            return management.version()
        if path == routes.METRICS_PATH:
            return management.metrics() if method == "GET" else responses.plain_error(405, "Method Not Allowed")
        if path == routes.MANAGEMENT_MODELS_PATH or path.startswith(_MODELS_PREFIX):
            return self._models(request, recorded, fault, delivery)
        if path == "/engines" or path.startswith("/engines/"):
            if method in routes.READ_METHODS and path == routes.ENGINES_STATUS_PATH:
                return management.engines_status()
            if method in routes.READ_METHODS and path == routes.ENGINES_PS_PATH:
                return management.engines_ps(self.state)
            if method in routes.READ_METHODS and path == routes.ENGINES_DF_PATH:
                return management.engines_df(self.state)
            if method in routes.READ_METHODS and path == request_log.REQUESTS_PATH:
                return management.requests_log(self.state, request)
            if method == "POST" and path == routes.ENGINES_UNLOAD_PATH:
                return management.engines_unload(self.state, recorded.content)
            if method in routes.READ_METHODS and path == routes.ENGINES_CONFIGURE_PATH:
                return management.configurations(self.state, request.url.params.get("model", ""))
            is_configure, backend = routes.match_configure_path(path)
            if method == "POST" and is_configure:
                return management.configure(self.state, backend, recorded.content)
            return responses.plain_error(404, error_bodies.NOT_FOUND)
        return responses.plain_error(404, error_bodies.PAGE_NOT_FOUND)

    def _models(
        self, request: AnyRequest, recorded: RecordedRequest, fault: Fault | None, delivery: Delivery
    ) -> Answer:
        method, path = recorded.method, recorded.path
        if path == routes.MANAGEMENT_MODELS_PATH:
            return management.list_models(self.state) if method in routes.READ_METHODS else responses.plain_error(404, error_bodies.NOT_FOUND)
        if method == "POST" and path == routes.MODELS_CREATE_PATH:
            return management.pull(self.state, recorded, fault=fault, delivery=delivery)
        ref = path[len(_MODELS_PREFIX) :]
        params = request.url.params
        if method == "DELETE" and path == routes.MODELS_PURGE_PATH:
            return management.purge(self.state)
        if method == "DELETE":
            return management.delete_model(self.state, ref, force="force" in params and params["force"] in _GO_TRUE)
        if method in routes.READ_METHODS:
            return management.inspect_model(self.state, ref, remote="remote" in params and params["remote"] in _GO_TRUE)
        return responses.plain_error(404, error_bodies.NOT_FOUND)


def _front_end(state: MockState, method: str, path: str, body: Any, content: bytes) -> tuple[View, frontends.Handler] | None:
    """The front-end that serves ``path``, and its view of the request; ``None`` for the OpenAI
    routes and DMR's own."""
    import pytest_dmr.mock.frontends.responses as responses_frontend
    from pytest_dmr.mock.frontends import anthropic, ollama, rerank

    for module in (responses_frontend, anthropic, ollama, rerank):
        found = module.view(state, method, path, body, content)
        if found is not None:
            return found, module.answer
    return None


def engines_url(path: str) -> str:
    """The path DMR's recorder logs: an alias (``/v1/...``) rewritten to ``/engines/v1/...``."""
    return "/engines" + path if path.startswith(routes.ALIAS_PREFIX + "/") else path


def _usage(rule: Rule) -> str:
    if rule.calls == 0:
        return "never used"
    return f"used {rule.calls} of {rule.times} times"

