"""The machinery of the plugin's fixtures: the run's runner, the models tests need, each test's backend.

``plugin.py`` defines the fixtures as thin wrappers that import this module on first use, so a
run whose tests request none of them never loads it. The run's state is a
:class:`~pytest_dmr.session.DMRSession` (``session.py``, cheap, made at configure time); here
it acquires the run's runner once, in :func:`acquire_runner`: the runner discovery found, else
one that provisioning starts, else the mock (or, in live mode, an error).

The adapter fixtures take their defaults from the overridable ``dmr_config`` fixture; the
plugin's hooks (``hooks.py``) script each test's mock and may name the run's runner.

Heavy modules (httpx2, the adapter, the mock) are imported inside the functions, never at import.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dmr import errors, hooks
from pytest_dmr.protocol import addresses, model_names, pull_stream
from pytest_dmr.discovery import HOW_TO_START
from pytest_dmr.redaction import redact_text, redact_url
from pytest_dmr.per_test import record_backend as record_backend
from pytest_dmr.per_test import record_fallback as record_fallback
from pytest_dmr.per_test import recorded_backend as recorded_backend
from pytest_dmr.session import BODY_PASSED_KEY as BODY_PASSED_KEY
from pytest_dmr.session import LIVE as LIVE
from pytest_dmr.session import LIVE_AND_MOCK as LIVE_AND_MOCK
from pytest_dmr.session import MOCK as MOCK
from pytest_dmr.session import MOCK_MARKER_OPTIONS as MOCK_MARKER_OPTIONS
from pytest_dmr.session import REPLAY as REPLAY
from pytest_dmr.session import NEEDS_LIVE as NEEDS_LIVE
from pytest_dmr.session import RUN_DIRECTORY_KEY as RUN_DIRECTORY_KEY
from pytest_dmr.session import SESSION_KEY as SESSION_KEY
from pytest_dmr.session import WORKER_INPUT_KEY as WORKER_INPUT_KEY
from pytest_dmr.session import DMRSession as DMRSession
from pytest_dmr.session import _mode_reason as _mode_reason
from pytest_dmr.session import get_session as get_session
from pytest_dmr.settings import Settings

if TYPE_CHECKING:
    from pytest_dmr.recording import ActiveCassette
    from pytest_dmr.adapter import DockerModelRunnerAdapter
    from pytest_dmr.client import ModelRunnerClient
    from pytest_dmr.discovery import Probe
    from pytest_dmr.mock import MockModelRunner

PULL_LOCK_TIMEOUT = 1800.0
"""How long a worker waits for another worker of the run to pull a model: a pull can take minutes."""
PROVISIONING_NOT_AVAILABLE = "provisioning is not available yet"


@dataclass(frozen=True)
class DMRRunner:
    """What ``dmr_runner`` gives: which backend this run uses, where, and why."""

    mode: str
    """auto | live | mock (the setting; ``off`` never gets this far)."""
    backend: str
    """live | mock: what tests get."""
    base_url: str
    """The OpenAI-compatible base URL (``http://127.0.0.1:12434/engines/v1``; the mock's own on mock)."""
    root_url: str
    """The runner's root URL (management API)."""
    source: str
    """What found the runner (``127.0.0.1:12434``, ``--dmr-url 127.0.0.1:5000``, ``testcontainers``)
    or why the mock is used (``--dmr=mock``, ``no runner``)."""
    reason: str
    """Why this backend: what discovery found, or why nothing was found."""
    models: tuple[str, ...] = ()
    """Models present on the runner when the run started."""
    probes: tuple[Probe, ...] = ()
    kind: str | None = None
    """dmr | openai (an OpenAI-compatible server without model management) | None on the mock."""
    provisioned: bool = False
    pull: bool = False
    """Whether models that tests name and the runner lacks get pulled."""
    socket_path: str | None = None
    """Set when the runner is reached over Docker Desktop's API socket."""

    @property
    def live(self) -> bool:
        return self.backend == LIVE

    @property
    def address(self) -> addresses.RunnerAddress:
        return addresses.parse_runner_url(self.base_url)

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI client takes (``.../engines/v1``): :attr:`base_url`."""
        return self.base_url

    @property
    def anthropic_base_url(self) -> str:
        """The base URL an Anthropic client takes: the root (the SDK appends ``/v1/messages``)."""
        return self.root_url

    @property
    def ollama_base_url(self) -> str:
        """The host an Ollama client takes: the root (the SDK appends ``/api/...``)."""
        return self.root_url


# --------------------------------------------------------------------------------------------
# Acquiring the run's runner: discovered, provisioned, or the mock
# --------------------------------------------------------------------------------------------


def mock_runner(settings: Settings, *, source: str, reason: str, probes: tuple[Probe, ...] = ()) -> DMRRunner:
    address = addresses.parse_runner_url(addresses.MOCK_BASE_URL)
    return DMRRunner(
        mode=settings.mode,
        backend=MOCK,
        base_url=address.openai_url,
        root_url=address.root,
        source=source,
        reason=reason,
        models=(settings.model,),
        probes=probes,
    )


def live_runner(
    settings: Settings,
    address: addresses.RunnerAddress,
    *,
    source: str,
    reason: str,
    models: tuple[str, ...] = (),
    probes: tuple[Probe, ...] = (),
    kind: str | None = "dmr",
    provisioned: bool = False,
    socket_path: str | None = None,
) -> DMRRunner:
    return DMRRunner(
        mode=settings.mode,
        backend=LIVE,
        base_url=address.openai_url,
        root_url=address.root,
        source=source,
        reason=reason,
        models=models,
        probes=probes,
        kind=kind,
        provisioned=provisioned,
        pull=settings.pull_for(provisioned=provisioned),
        socket_path=socket_path,
    )


def _provision(session: DMRSession, config: pytest.Config, models: set[str]) -> addresses.RunnerAddress | str:
    """Ask ``pytest_dmr.provision`` for a runner: its address, or why there is none.

    Contract: ``acquire_runner(settings, config, models, run_dir) -> RunnerAddress``, raising a
    :class:`~pytest_dmr.errors.DMRError` whose message says why no runner could be had (no
    Docker, no image, ...). It owns the container's lifetime and its xdist coordination.
    """
    try:
        from pytest_dmr.provision import acquire_runner as provision_runner
    except ImportError:
        return PROVISIONING_NOT_AVAILABLE
    try:
        return provision_runner(session.settings, config, sorted(models), session.run_directory)
    except errors.DMRError as exc:
        return str(exc)


def acquire_runner(session: DMRSession, config: pytest.Config) -> DMRRunner:
    """The run's runner: discovered, else provisioned (when asked for), else the mock.

    In live mode, no runner at all is an error (:class:`pytest.UsageError`); ``plugin.py``
    checks this at session start, so it only surfaces here when provisioning failed.
    """
    settings = session.settings
    if settings.mode == MOCK:
        return mock_runner(settings, source=_mode_reason(settings), reason=_mode_reason(settings))
    discovery = session.discovery()
    if discovery.address is not None:
        return live_runner(
            settings,
            discovery.address,
            source=discovery.source or discovery.address.authority,
            reason=f"found: {discovery.source}",
            models=discovery.models,
            probes=discovery.probes,
            kind=discovery.kind,
            socket_path=discovery.socket_path,
        )
    why = f"no runner: {discovery.explain()}"
    if settings.provision == "testcontainers":
        outcome = _provision(session, config, session.models_needed | {settings.model})
        if isinstance(outcome, addresses.RunnerAddress):
            return live_runner(
                settings,
                outcome,
                source="testcontainers",
                reason=f"provisioned with testcontainers ({why})",
                probes=discovery.probes,
                provisioned=True,
            )
        why += f"; provisioning failed: {outcome}"
    if settings.mode == LIVE:
        raise pytest.UsageError(no_live_runner_message(settings, why))
    return mock_runner(settings, source="no runner", reason=why, probes=discovery.probes)


def no_live_runner_message(settings: Settings, why: str) -> str:
    how = HOW_TO_START
    if settings.provision == "testcontainers":  # asked for already, and ``why`` says how it failed: not advice
        how = how.replace(" let pytest-dmr start one with --dmr-provision=testcontainers,", "")
    return (
        f"{_mode_reason(settings)} needs a Docker Model Runner, and none could be used.\n"
        f"Probed: {why.removeprefix('no runner: ')}\n{how}"
    )


# --------------------------------------------------------------------------------------------
# Models that tests need on a live runner
# --------------------------------------------------------------------------------------------


def live_transport(runner: DMRRunner, stack: str = "httpx2", asynchronous: bool = False, *, always: bool = False) -> Any:
    """A real transport of ``stack`` (``httpx2`` or ``httpx``) to the live runner, over Docker
    Desktop's socket when it is reached so; ``None`` where the client's own default does (a TCP
    runner), unless ``always``."""
    if runner.socket_path is None and not always:
        return None
    import importlib

    module = importlib.import_module(stack)
    options = {"uds": runner.socket_path} if runner.socket_path else {}
    return module.AsyncHTTPTransport(**options) if asynchronous else module.HTTPTransport(**options)


def _runner_has(client: ModelRunnerClient, runner: DMRRunner, name: str) -> bool:
    if runner.kind == "dmr":
        return client.has_model(name)
    return any(model_names.same_model(name, present) for present in client.list_openai_models())


def _ensure_model(config: pytest.Config, runner: DMRRunner, name: str) -> str | None:
    from pytest_dmr.client import ModelRunnerClient

    session = get_session(config)
    transport = live_transport(runner)
    with ModelRunnerClient(runner.root_url, timeout=session.settings.timeout, transport=transport) as client:
        try:
            if _runner_has(client, runner, name):
                return None
        except errors.DMRError as exc:
            return f"could not list the runner's models: {exc}"
        if not runner.pull:
            return (
                f"model {name} is not on the runner at {redact_url(runner.root_url)}: pull it with "
                f"`docker model pull {name}`, or run with --dmr-pull"
            )
        if runner.kind != "dmr":
            return f"model {name} is not on the server at {redact_url(runner.root_url)}, which cannot pull (no management API)"
        return _pull_once(config, session, client, runner, name)


def _pull_once(
    config: pytest.Config, session: DMRSession, client: ModelRunnerClient, runner: DMRRunner, name: str
) -> str | None:
    """Pull ``name`` once for the whole run, however many xdist workers need it; ``None`` or why not.

    The run's processes take a file lock per model in the run's shared directory; whoever holds
    it checks again whether the runner has the model (another worker may just have pulled it),
    and pulls only if not. A failed pull is written down, so the workers after it report the
    same failure instead of pulling again.
    """
    import hashlib

    from filelock import FileLock, Timeout

    key = hashlib.sha256(model_names.canonical_model_name(name).encode()).hexdigest()[:16]
    directory = session.run_directory.path
    lock = FileLock(str(directory / f"pull-{key}.lock"))
    try:
        session.run_directory.ensure()
        lock.acquire(timeout=PULL_LOCK_TIMEOUT)
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
        return (
            f"waited {PULL_LOCK_TIMEOUT:g} s for another process of this run to pull {name} (lock {lock.lock_file}); "
            "if no other pytest run is active, delete that file and retry"
        )
    except OSError:  # no shared directory here: pull unguarded (at worst, twice)
        locked = False
    else:
        locked = True
    try:
        return _pull_if_missing(config, client, runner, name, directory / f"pull-{key}.failed")
    finally:
        if locked:
            lock.release()


def _pull_if_missing(
    config: pytest.Config, client: ModelRunnerClient, runner: DMRRunner, name: str, failure_path: Path
) -> str | None:
    """Under the model's lock: the failure an earlier pull wrote down, or a check, then a pull."""
    with contextlib.suppress(OSError):
        return failure_path.read_text(encoding="utf-8")
    try:
        if _runner_has(client, runner, name):
            return None  # another process of the run pulled it while this one waited
    except errors.DMRError as exc:
        return f"could not list the runner's models: {exc}"
    try:
        _pull_with_progress(config, client, name)
    except errors.DMRError as exc:
        problem = f"pulling {name} failed: {exc}"
        with contextlib.suppress(OSError):
            failure_path.write_text(problem, encoding="utf-8")
        return problem
    return None


def _pull_with_progress(config: pytest.Config, client: ModelRunnerClient, name: str) -> None:
    """Pull ``name``, with a progress line in the terminal (outside output capture)."""
    from pytest_dmr.client import PullResult

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    layers: dict[str, tuple[int, int]] = {}

    def show(text: str) -> None:
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(text)
        else:
            reporter.write_line(text)

    last_shown = [-1]

    def progress(line: pull_stream.PullProgress) -> None:
        if line.layer_id:
            layers[line.layer_id] = (line.layer_current, line.layer_size)
        done = sum(current for current, _ in layers.values())
        step = done * 10 // line.total if line.total else -1
        if step > last_shown[0]:
            last_shown[0] = step
            show(f"dmr: pulling {name}: {pull_stream.format_size(done)} of {pull_stream.format_size(line.total)}")

    result: PullResult = client.pull(name, progress=progress)
    show(f"dmr: pulled {name}: {result.message}")


# --------------------------------------------------------------------------------------------
# Per test: live or mock
# --------------------------------------------------------------------------------------------


@dataclass
class _TestBackend:
    """What the adapter, client and SDK fixtures of one test talk to: the live runner, the test's
    mock, or its cassette (replayed, or recorded from the live runner). On ``replay``, ``runner`` is
    a runner-less stand-in (the mock's addresses: a cassette answers whatever the host)."""

    runner: DMRRunner
    backend: str
    mock: MockModelRunner | None = None
    cassette: ActiveCassette | None = None

    @property
    def root_url(self) -> str:
        return self.mock.base_url if self.mock is not None and self.cassette is None else self.runner.root_url

    @property
    def openai_url(self) -> str:
        return self.mock.openai_base_url if self.mock is not None and self.cassette is None else self.runner.base_url

    def transport(self, stack: str = "httpx2", *, asynchronous: bool = False) -> Any:
        """A transport of ``stack`` (``httpx2`` or ``httpx``) for one client of the test: the mock, a
        cassette's, or the live runner's (``None``: the client's default, a TCP connection)."""
        if self.cassette is not None:
            return self.cassette.transport(self.runner, self.mock, stack, asynchronous)
        if self.mock is not None:
            return self.mock
        return live_transport(self.runner, stack, asynchronous)


def _off_error(settings: Settings) -> None:
    __tracebackhide__ = True
    pytest.fail(
        f"pytest-dmr is off ({_mode_reason(settings)}): its fixtures are unavailable. "
        "Run with --dmr=auto (or mock, live) to use dmr_runner, dmr_adapter, dmr_adapter_factory, "
        "dmr_mock and dmr_client.",
        pytrace=False,
    )


def cannot_run_live(item: pytest.Item, require_live: bool, reason: str) -> None:
    """Skip the test for want of a live runner (or a model on it); fail it with ``--dmr-require-live``."""
    __tracebackhide__ = True
    message = f"{NEEDS_LIVE}: {redact_text(reason)}"
    if require_live:
        pytest.fail(f"{message} (--dmr-require-live)", pytrace=False)
    try:  # report the skip at the test's location, as a skip marker would
        raise pytest.skip.Exception(message, _use_item_location=True)
    except TypeError:  # pragma: no cover - a pytest without that keyword
        pytest.skip(message)


def new_mock(settings: Settings, item: pytest.Item, config_model: str | None = None) -> MockModelRunner:
    """The test's mock: it lists the default model, ``dmr_config``'s model and every model the
    test's ``dmr_model`` markers name; then ``pytest_dmr_configure_mock`` implementations script it.

    Their rules are the suite's canned answers, not the test's expectations: they are marked
    background, so ``assert_all_rules_used`` leaves them out."""
    from pytest_dmr.mock import MockModelRunner

    names = [settings.model]
    if config_model is not None:
        names.append(config_model)
    for marker in item.iter_markers("dmr_model"):
        names.extend(marker.args)
    mock = MockModelRunner(models=tuple(dict.fromkeys(names)))
    hooks.configure_mock(item, mock)
    mock.mark_background_rules()
    return mock


def mock_marker_options(item: pytest.Item) -> dict[str, Any]:
    """The keyword arguments of the item's ``dmr_mock`` markers, the closest marker winning key by key."""
    options: dict[str, Any] = {}
    for marker in item.iter_markers("dmr_mock"):  # closest first
        options = {**marker.kwargs, **options}
    return options


def asserts_all_rules_used(item: pytest.Item, settings: Settings) -> bool:
    """``@pytest.mark.dmr_mock(assert_all_rules_used=...)``, else the ini's ``dmr_assert_all_rules_used``."""
    return bool(mock_marker_options(item).get("assert_all_rules_used", settings.assert_all_rules_used))


def dmr_runner(pytestconfig: pytest.Config) -> DMRRunner:
    """The run's runner: mode, backend (live or mock), base URL, source, models present, reason, probes."""
    session = get_session(pytestconfig)
    if session.settings.mode == "off":
        _off_error(session.settings)
    return session.runner(pytestconfig)


def dmr_mock(request: pytest.FixtureRequest, dmr_config: Mapping[str, Any]) -> Iterator[MockModelRunner]:
    """``plugin.dmr_mock``: the test's mock, scripted by the hooks; at teardown, its unused rules when asked."""
    session = get_session(request.config)
    if session.settings.mode == "off":
        _off_error(session.settings)
    if request.node.get_closest_marker("dmr_live") is not None:
        pytest.fail(LIVE_AND_MOCK.format(nodeid=request.node.nodeid), pytrace=False)
    options = config_options(dmr_config)
    record_backend(request.node, MOCK)
    mock = new_mock(session.settings, request.node, options.get("model"))
    yield mock
    item = request.node
    if item.stash.get(BODY_PASSED_KEY, False) and asserts_all_rules_used(item, session.settings):
        __tracebackhide__ = True  # the message is the error: no need to show this fixture's code
        mock.assert_all_rules_used()


def _test_mock(request: pytest.FixtureRequest, session: DMRSession, dmr_config: Mapping[str, Any]) -> MockModelRunner:
    if "dmr_mock" in request.fixturenames:
        return request.getfixturevalue("dmr_mock")  # type: ignore[no-any-return]  # the test's one mock, configured once
    return new_mock(session.settings, request.node, config_options(dmr_config).get("model"))


def _dmr_backend(request: pytest.FixtureRequest, dmr_config: Mapping[str, Any]) -> _TestBackend:
    """Decide, for this test, live, mock or its cassette; on mock, the test's one mock. A replayed
    cassette needs no runner: the run's runner is acquired only for the other cases."""
    from pytest_dmr import recording

    session = get_session(request.config)
    item = request.node
    cassette = recording.active(item)
    if cassette is not None:
        runner = (mock_runner(session.settings, source="cassette", reason=f"replays {cassette.session.path}")
                  if cassette.backend == REPLAY else dmr_runner(request.config))
        mock = _test_mock(request, session, dmr_config) if cassette.replay_unmatched == MOCK else None
        record_backend(item, cassette.backend)
        return _TestBackend(runner, cassette.backend, mock, cassette)
    runner = dmr_runner(request.config)
    forced_mock = "dmr_mock" in request.fixturenames or item.get_closest_marker("dmr_mock") is not None
    if forced_mock or not runner.live:
        if not forced_mock and session.settings.mode != MOCK:  # for want of a runner (the per-test hooks did this already for most tests)
            if session.settings.require_live and recorded_backend(item) is None:
                cannot_run_live(item, True, runner.reason)
            record_fallback(item, session, runner.reason)
        record_backend(item, MOCK)
        return _TestBackend(runner, MOCK, _test_mock(request, session, dmr_config))
    record_backend(item, LIVE)
    return _TestBackend(runner, LIVE)


# --------------------------------------------------------------------------------------------
# Adapters: dmr_config, the factory's defaults, and the adapter fixtures
# --------------------------------------------------------------------------------------------

NOT_THIS_RUNNER = (
    "{who} takes no {key}: its adapters talk to this test's runner (live or mock); "
    "for another runner, build a DockerModelRunnerAdapter yourself"
)
BAD_DMR_CONFIG = (
    "dmr_config returned {value!r}: {problem}. It must return a mapping of adapter options and default "
    "request options, e.g. {{'model': 'ai/smollm2', 'temperature': 0, 'timeout': 30}}"
)
FROM_DMR_CONFIG = "dmr_config"
"""``AdapterDefaults.model_source`` when the model comes from ``dmr_config``."""


def dmr_config() -> Mapping[str, Any]:
    """``plugin.dmr_config``: no default options (a conftest overrides the fixture to give some)."""
    return {}


def _bad_config(value: object, problem: str) -> NoReturn:
    __tracebackhide__ = True
    pytest.fail(BAD_DMR_CONFIG.format(value=value, problem=problem), pytrace=False)


def config_options(value: object) -> dict[str, Any]:
    """``dmr_config``'s value, checked: a mapping of option names, no runner address, a model name,
    a timeout in seconds.

    A wrong value fails the test's setup with a message saying what is wrong."""
    __tracebackhide__ = True
    if not isinstance(value, Mapping):
        _bad_config(value, f"a {type(value).__name__}, not a mapping")
    if not all(isinstance(key, str) for key in value):
        _bad_config(value, "its keys must be strings (option names)")
    for key in ("base_url", "self"):
        if key in value:
            _bad_config(value, NOT_THIS_RUNNER.format(who="dmr_config", key=key))
    model = value.get("model")
    if "model" in value and not (isinstance(model, str) and model.strip()):
        _bad_config(value, "its model must be a model name (a non-empty string)")
    timeout = value.get("timeout")
    if "timeout" in value and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        _bad_config(value, "its timeout must be a positive number of seconds (30, not '30')")
    if not isinstance(value.get("default_options", {}), Mapping):
        _bad_config(value, "its default_options must be a mapping of request options")
    options = dict(value)
    if isinstance(model, str):
        options["model"] = model.strip()
    return options


@dataclass(frozen=True)
class AdapterDefaults:
    """What an adapter of this test gets when the factory call does not say: the precedence of
    :func:`dmr_config` applied to the run's settings and ``dmr_config``'s value."""

    model: str
    model_source: str
    """``dmr_config``, or where the run's setting came from (``--dmr-model``, ``DMR_MODEL``, ``default``)."""
    options: dict[str, Any]
    """Adapter arguments and request options, ``timeout`` included."""


def adapter_defaults(settings: Settings, config: Mapping[str, Any]) -> AdapterDefaults:
    options = dict(config)
    config_model = options.pop("model", None)
    if config_model is not None and settings.model_source != "--dmr-model":
        model, source = config_model, FROM_DMR_CONFIG
    else:
        model, source = settings.model, settings.model_source
    if "timeout" not in options or settings.timeout_source == "--dmr-timeout":
        options["timeout"] = settings.timeout
    return AdapterDefaults(model, source, options)


def _split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(adapter arguments, request options)``: keys the adapter takes, and every other key
    (with ``default_options``' entries, which the loose keys override)."""
    from pytest_dmr.adapter import DockerModelRunnerAdapter

    accepted = inspect.signature(DockerModelRunnerAdapter.__init__).parameters
    constructor = {key: value for key, value in options.items() if key in accepted and key != "default_options"}
    request = {**options.get("default_options", {})}
    request.update((key, value) for key, value in options.items() if key not in accepted)
    return constructor, request


def _make_adapter(
    backend: _TestBackend, defaults: AdapterDefaults, model: str | None, options: dict[str, Any]
) -> DockerModelRunnerAdapter:
    """An adapter on the test's backend: the call's ``model`` and ``options`` over ``defaults``."""
    from pytest_dmr.adapter import DockerModelRunnerAdapter, check_request_options

    for key in ("base_url", "self"):
        if key in options:
            raise TypeError(NOT_THIS_RUNNER.format(who="dmr_adapter_factory()", key=key))
    default_constructor, default_request = _split_options(defaults.options)
    call_constructor, call_request = _split_options(options)
    check_request_options(default_request, "dmr_config")  # a typo named where the user wrote it, not "default_options"
    check_request_options(call_request, "dmr_adapter_factory()")
    constructor = {**default_constructor, **call_constructor}
    request = {**default_request, **call_request}
    if request:
        constructor["default_options"] = request
    if "transport" not in constructor:
        transport = backend.transport(asynchronous=True)
        if transport is not None:
            constructor["transport"] = transport
    return DockerModelRunnerAdapter(backend.openai_url, model or defaults.model, **constructor)


def _check_default_model(request: pytest.FixtureRequest, session: DMRSession, runner: DMRRunner,
                         defaults: AdapterDefaults) -> None:
    """On a live runner, the adapters' default model (``dmr_config``'s; the run's, for ``dmr_adapter``) is
    handled as a ``dmr_model`` marker's: pulled when pulling is on, else the test skips (fails with
    ``--dmr-require-live``), instead of failing at its first request."""
    __tracebackhide__ = True
    config, settings = request.config, session.settings
    if runner.kind != "dmr":  # an OpenAI-compatible server (a bare llama.cpp) serves its one model whatever the name
        return
    if defaults.model_source == FROM_DMR_CONFIG or "dmr_adapter" in request.fixturenames:
        problem = session.check_model(config, runner, defaults.model)
        if problem is not None:
            if defaults.model_source == FROM_DMR_CONFIG:
                whose = "the model dmr_config chooses"
            else:
                source = defaults.model_source.replace(" (ini)", " in the ini file")
                whose = "the run's default model" + ("" if source == "default" else f", from {source}")
            cannot_run_live(request.node, settings.require_live, f"{problem} ({whose})")


def dmr_adapter_factory(
    request: pytest.FixtureRequest, _dmr_backend: _TestBackend, dmr_config: Mapping[str, Any]
) -> Iterator[Callable[..., DockerModelRunnerAdapter]]:
    """``plugin.dmr_adapter_factory``: adapters on the test's backend, closed at teardown."""
    session = get_session(request.config)
    defaults = adapter_defaults(session.settings, config_options(dmr_config))
    if _dmr_backend.backend == LIVE:
        _check_default_model(request, session, _dmr_backend.runner, defaults)
    made: list[DockerModelRunnerAdapter] = []

    def factory(model: str | None = None, **options: Any) -> DockerModelRunnerAdapter:
        adapter = _make_adapter(_dmr_backend, defaults, model, options)
        made.append(adapter)
        return adapter

    yield factory
    for adapter in made:
        adapter.close()


def dmr_adapter(dmr_adapter_factory: Callable[..., DockerModelRunnerAdapter]) -> DockerModelRunnerAdapter:
    """A ready ``DockerModelRunnerAdapter`` for the default model (``dmr_config``'s, else the run's):
    live, or on a fresh mock."""
    return dmr_adapter_factory()


def dmr_client(request: pytest.FixtureRequest, _dmr_backend: _TestBackend) -> Iterator[ModelRunnerClient]:
    """A ``ModelRunnerClient`` (list, inspect, pull, delete) on the live runner, or on this test's mock."""
    from pytest_dmr.client import ModelRunnerClient

    settings = get_session(request.config).settings
    client = ModelRunnerClient(_dmr_backend.root_url, timeout=settings.timeout, transport=_dmr_backend.transport())
    with client:
        yield client
