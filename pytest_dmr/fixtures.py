"""The plugin's fixtures, and the per-run state they share with the hooks in ``plugin.py``.

The state of one run is a :class:`DMRSession` kept in ``config.stash``. It resolves the settings
once, runs discovery once (or, on an xdist worker, takes the controller's result), and acquires
the run's runner once, in :func:`acquire_runner`: the runner discovery found, else one that
provisioning starts, else the mock (or, in live mode, an error).

The adapter fixtures take their defaults from the overridable ``dmr_config`` fixture; the
plugin's hooks (``hooks.py``) script each test's mock and may name the run's runner.

Heavy modules (httpx2, the adapter, the mock) are imported inside the fixtures, never at import.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dmr import errors, hooks
from pytest_dmr.protocol import addresses, model_names, pull_stream
from pytest_dmr.discovery import HOW_TO_START
from pytest_dmr.settings import Settings

if TYPE_CHECKING:
    from pytest_dmr.adapter import DockerModelRunnerAdapter
    from pytest_dmr.client import ModelRunnerClient
    from pytest_dmr.discovery import Discovery, Probe
    from pytest_dmr.mock import MockModelRunner
    from pytest_dmr.provision.coordination import RunDirectory

LIVE, MOCK = "live", "mock"
WORKER_INPUT_KEY = "dmr_discovery"
RUN_DIRECTORY_KEY = "dmr_run"
"""``workerinput`` key of the run's shared directory (id, path, owner): see :attr:`DMRSession.run_directory`."""
PULL_LOCK_TIMEOUT = 1800.0
"""How long a worker waits for another worker of the run to pull a model: a pull can take minutes."""
NEEDS_LIVE = "needs a live Docker Model Runner"
"""Start of the reason of every skip (or failure) for want of a live runner; the summary counts them."""
PROVISIONING_NOT_AVAILABLE = "provisioning is not available yet"
LIVE_AND_MOCK = "{nodeid} is marked dmr_live but requests dmr_mock, which forces the mock: drop one of them"
MOCK_MARKER_OPTIONS = ("assert_all_rules_used",)
"""The keyword arguments ``@pytest.mark.dmr_mock`` takes (``plugin.py`` checks them at collection)."""
BODY_PASSED_KEY = pytest.StashKey[bool]()
"""Set by ``plugin.py`` once the test's call phase is reported: whether the body passed."""


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


@dataclass
class DMRSession:
    """Everything one run shares: settings, discovery, the runner, counters. One per ``config``."""

    settings: Settings
    worker_input: dict[str, Any] | None = None
    """xdist's ``workerinput`` on a worker, ``None`` on the controller or a plain run."""
    models_needed: set[str] = field(default_factory=set)
    """The default model and every model named by a collected ``dmr_model`` marker."""
    _discovery: Discovery | None = None
    _runner: DMRRunner | None = None
    _model_checks: dict[str, str | None] = field(default_factory=dict)
    _run_directory: RunDirectory | None = None
    runner_url_hook: Callable[[], tuple[str, str] | None] | None = None
    """Asks ``pytest_dmr_runner_url`` implementations for a runner: ``(url, origin)`` or ``None``.
    Set on the controller (or the single process) only: workers are handed discovery's result."""
    _hook_url: tuple[str, str] | None = None
    _hook_asked: bool = False

    @property
    def is_worker(self) -> bool:
        return self.worker_input is not None

    @property
    def run_directory(self) -> RunDirectory:
        """The directory every process of the run shares: pull locks, the provisioned runner's state.

        One per run: its id and path are decided by the controller (or the single process of a run
        without xdist), which hands them to each worker in ``workerinput``; the directory is created
        by whichever process needs it first, and removed by the controller at the end of the run.
        """
        if self._run_directory is None:
            from pytest_dmr.provision.coordination import RunDirectory

            handed = (self.worker_input or {}).get(RUN_DIRECTORY_KEY)
            self._run_directory = RunDirectory.from_json(handed) if handed else RunDirectory.new()
        return self._run_directory

    def remove_run_directory(self) -> None:
        """At the end of the run: the controller (or the single process) removes the run's directory."""
        if self._run_directory is not None:
            self._run_directory.remove()

    def url_from_hook(self) -> tuple[str, str] | None:
        """The runner URL a ``pytest_dmr_runner_url`` implementation names, and its origin for
        messages (``hook conftest.py``). Asked once, and only when the run may use a runner and no
        explicit URL (flag, ini, environment) is set: an explicit URL wins."""
        if not self._hook_asked:
            self._hook_asked = True
            current = self.settings
            if self.runner_url_hook is not None and current.url is None and current.mode in ("auto", LIVE):
                self._hook_url = self.runner_url_hook()
        return self._hook_url

    def discovery(self) -> Discovery:
        """Discovery's result: computed once here, or the controller's on an xdist worker.

        A URL from ``pytest_dmr_runner_url`` is treated as an explicit ``--dmr-url``: probed
        alone, named as the source."""
        if self._discovery is None:
            from pytest_dmr.discovery import Discovery, discover

            shipped = (self.worker_input or {}).get(WORKER_INPUT_KEY)
            if shipped is not None:
                self._discovery = Discovery.from_json(shipped)
            else:
                hooked = self.url_from_hook()
                target = self.settings if hooked is None else replace(self.settings, url=hooked[0], url_source=hooked[1])
                self._discovery = discover(target)
        return self._discovery

    def runner(self, config: pytest.Config) -> DMRRunner:
        if self._runner is None:
            self._runner = acquire_runner(self, config)
        return self._runner

    def check_model(self, config: pytest.Config, runner: DMRRunner, name: str) -> str | None:
        """``None`` when the live runner has ``name`` (pulling it if allowed), else why not. Cached."""
        key = model_names.canonical_model_name(name)
        if key not in self._model_checks:
            self._model_checks[key] = _ensure_model(config, runner, name)
        return self._model_checks[key]


SESSION_KEY = pytest.StashKey[DMRSession]()
"""Where ``plugin.py``'s ``pytest_configure`` keeps the run's :class:`DMRSession`."""


def get_session(config: pytest.Config) -> DMRSession:
    try:
        return config.stash[SESSION_KEY]
    except KeyError:
        raise pytest.UsageError(
            "pytest-dmr is not configured in this run (was it disabled with -p no:dmr?)"
        ) from None


# --------------------------------------------------------------------------------------------
# Acquiring the run's runner: discovered, provisioned, or the mock
# --------------------------------------------------------------------------------------------


def _mode_reason(settings: Settings) -> str:
    """``--dmr=mock``, ``DMR_MODE=mock``, ``dmr_mode=mock in the ini file``."""
    source = settings.mode_source
    if source.startswith("--"):
        return f"{source}={settings.mode}"
    if source.endswith("(ini)"):
        return f"{source.split()[0]}={settings.mode} in the ini file"
    return f"{source}={settings.mode}"


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
    return (
        f"{_mode_reason(settings)} needs a Docker Model Runner, and none could be used.\n"
        f"Probed: {why.removeprefix('no runner: ')}\n{HOW_TO_START}"
    )


# --------------------------------------------------------------------------------------------
# Models that tests need on a live runner
# --------------------------------------------------------------------------------------------


def _live_transport(runner: DMRRunner, *, asynchronous: bool) -> Any:
    if runner.socket_path is None:
        return None
    import httpx2

    if asynchronous:
        return httpx2.AsyncHTTPTransport(uds=runner.socket_path)
    return httpx2.HTTPTransport(uds=runner.socket_path)


def _runner_has(client: ModelRunnerClient, runner: DMRRunner, name: str) -> bool:
    if runner.kind == "dmr":
        return client.has_model(name)
    return any(model_names.same_model(name, present) for present in client.list_openai_models())


def _ensure_model(config: pytest.Config, runner: DMRRunner, name: str) -> str | None:
    from pytest_dmr.client import ModelRunnerClient

    session = get_session(config)
    transport = _live_transport(runner, asynchronous=False)
    with ModelRunnerClient(runner.root_url, timeout=session.settings.timeout, transport=transport) as client:
        try:
            if _runner_has(client, runner, name):
                return None
        except errors.DMRError as exc:
            return f"could not list the runner's models: {exc}"
        if not runner.pull:
            return (
                f"model {name} is not on the runner at {runner.root_url}: pull it with "
                f"`docker model pull {name}`, or run with --dmr-pull"
            )
        if runner.kind != "dmr":
            return f"model {name} is not on the server at {runner.root_url}, which cannot pull (no management API)"
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
    """What the adapter and client fixtures of one test talk to."""

    runner: DMRRunner
    backend: str
    mock: MockModelRunner | None = None


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
    message = f"{NEEDS_LIVE}: {reason}"
    if require_live:
        pytest.fail(f"{message} (--dmr-require-live)", pytrace=False)
    try:  # report the skip at the test's location, as a skip marker would
        raise pytest.skip.Exception(message, _use_item_location=True)
    except TypeError:  # pragma: no cover - a pytest without that keyword
        pytest.skip(message)


def record_backend(item: pytest.Item, backend: str) -> None:
    """Mark the test as run on ``backend``: a ``dmr_backend`` user property (JUnit XML carries it)."""
    if recorded_backend(item) is None:
        item.user_properties.append(("dmr_backend", backend))


def recorded_backend(item: pytest.Item) -> str | None:
    """``live`` or ``mock`` once the plugin has decided where the test runs, else ``None``."""
    return next((str(value) for name, value in item.user_properties if name == "dmr_backend"), None)


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


@pytest.fixture(scope="session")
def dmr_runner(pytestconfig: pytest.Config) -> DMRRunner:
    """The run's runner: mode, backend (live or mock), base URL, source, models present, reason, probes."""
    session = get_session(pytestconfig)
    if session.settings.mode == "off":
        _off_error(session.settings)
    return session.runner(pytestconfig)


@pytest.fixture
def dmr_mock(request: pytest.FixtureRequest, dmr_config: Mapping[str, Any]) -> Iterator[MockModelRunner]:
    """The mock's controller for this test (rules, replies, faults, recorded requests).

    Requesting it forces the mock for this test: ``dmr_adapter`` and ``dmr_client`` use this mock.
    ``pytest_dmr_configure_mock`` implementations have scripted it already.

    With ``@pytest.mark.dmr_mock(assert_all_rules_used=True)`` (or the ini's
    ``dmr_assert_all_rules_used = true``), a test whose body passed errors at teardown when a rule
    it added answered no request (or fewer than its ``times``): ``mock.assert_all_rules_used()``.
    The hook's rules are not checked. (The ``_dmr_backend`` fixture's own mock has only those, so
    only this fixture checks.)
    """
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


@pytest.fixture
def _dmr_backend(request: pytest.FixtureRequest, dmr_runner: DMRRunner, dmr_config: Mapping[str, Any]) -> _TestBackend:
    """Decide, for this test, live or mock; on mock, the test's one mock."""
    session = get_session(request.config)
    item = request.node
    forced_mock = "dmr_mock" in request.fixturenames or item.get_closest_marker("dmr_mock") is not None
    if forced_mock or not dmr_runner.live:
        if "dmr_mock" in request.fixturenames:
            mock = request.getfixturevalue("dmr_mock")  # the test's one mock, configured once
        else:
            mock = new_mock(session.settings, item, config_options(dmr_config).get("model"))
        record_backend(item, MOCK)
        return _TestBackend(dmr_runner, MOCK, mock)
    record_backend(item, LIVE)
    return _TestBackend(dmr_runner, LIVE)


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


@pytest.fixture
def dmr_config() -> Mapping[str, Any]:
    """Default options of the adapters ``dmr_adapter`` and ``dmr_adapter_factory`` make: ``{}`` here.

    Override it in a ``conftest.py`` or a test module (any scope) to give the tests there a model
    and options, e.g. ``{"model": "ai/qwen3:0.6B-Q4_0", "temperature": 0, "seed": 7,
    "max_tokens": 64, "timeout": 30}``. Keys the adapter takes (``timeout``, ``max_retries``,
    ``headers``, ...) configure it; any other key is a default request option, as with the
    factory's keyword arguments.

    Precedence, key by key, highest first:

    1. the factory's call arguments: ``dmr_adapter_factory(model=..., temperature=...)``;
    2. the command line: ``--dmr-model``, ``--dmr-timeout`` (what the person running the suite
       typed for this run);
    3. ``dmr_config`` (the override closest to the test, as for any fixture);
    4. the ini file, then the environment, then the default (``dmr_model``, ``DMR_MODEL``,
       ``DEFAULT_LOCAL_MODEL``, ``ai/smollm2``; ``dmr_timeout``, ``DMR_TIMEOUT``, 120 s).

    The ``dmr_model`` marker names models a test needs on a live runner; it does not choose the
    adapter's model. On a live runner, a model ``dmr_config`` chooses must be there, as for that
    marker: pulled when pulling is on, else the test skips (fails with ``--dmr-require-live``).
    On the mock, the mock lists it.
    """
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
    from pytest_dmr.adapter import DockerModelRunnerAdapter

    for key in ("base_url", "self"):
        if key in options:
            raise TypeError(NOT_THIS_RUNNER.format(who="dmr_adapter_factory()", key=key))
    default_constructor, default_request = _split_options(defaults.options)
    call_constructor, call_request = _split_options(options)
    constructor = {**default_constructor, **call_constructor}
    request = {**default_request, **call_request}
    if request:
        constructor["default_options"] = request
    if backend.mock is not None:
        constructor.setdefault("transport", backend.mock)
        base_url = backend.mock.base_url
    else:
        transport = _live_transport(backend.runner, asynchronous=True)
        if transport is not None:
            constructor.setdefault("transport", transport)
        base_url = backend.runner.base_url
    return DockerModelRunnerAdapter(base_url, model or defaults.model, **constructor)


def _check_default_model(request: pytest.FixtureRequest, session: DMRSession, runner: DMRRunner,
                         defaults: AdapterDefaults) -> None:
    """On a live runner: ``dmr_config``'s model must be there, as a ``dmr_model`` marker's (pulled
    when pulling is on, else skip); with pulling on, ``dmr_adapter`` makes sure of the run's default model."""
    __tracebackhide__ = True
    config, settings = request.config, session.settings
    if defaults.model_source == FROM_DMR_CONFIG:
        problem = session.check_model(config, runner, defaults.model)
        if problem is not None:
            cannot_run_live(request.node, settings.require_live, f"{problem} (the model dmr_config chooses)")
    elif runner.pull and "dmr_adapter" in request.fixturenames:
        problem = session.check_model(config, runner, defaults.model)
        if problem is not None:
            pytest.fail(f"the default model is not usable on the live runner: {problem}", pytrace=False)


@pytest.fixture
def dmr_adapter_factory(
    request: pytest.FixtureRequest, _dmr_backend: _TestBackend, dmr_config: Mapping[str, Any]
) -> Iterator[Callable[..., DockerModelRunnerAdapter]]:
    """``factory(model=None, **options) -> DockerModelRunnerAdapter`` on this test's backend.

    ``options`` are the adapter's keyword arguments (``timeout``, ``max_retries``, ``headers``,
    ...); any other key (``temperature=0``, ``seed=1``) becomes a default request option. What
    the call leaves out comes from ``dmr_config`` and the run's settings (see ``dmr_config`` for
    the precedence). Every adapter made is closed at teardown.
    """
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


@pytest.fixture
def dmr_adapter(dmr_adapter_factory: Callable[..., DockerModelRunnerAdapter]) -> DockerModelRunnerAdapter:
    """A ready ``DockerModelRunnerAdapter`` for the default model (``dmr_config``'s, else the run's):
    live, or on a fresh mock."""
    return dmr_adapter_factory()


@pytest.fixture
def dmr_client(request: pytest.FixtureRequest, _dmr_backend: _TestBackend) -> Iterator[ModelRunnerClient]:
    """A ``ModelRunnerClient`` (list, inspect, pull, delete) on the live runner, or on this test's mock."""
    from pytest_dmr.client import ModelRunnerClient

    settings = get_session(request.config).settings
    if _dmr_backend.mock is not None:
        client = ModelRunnerClient(_dmr_backend.mock.base_url, timeout=settings.timeout, transport=_dmr_backend.mock)
    else:
        runner = _dmr_backend.runner
        client = ModelRunnerClient(
            runner.root_url, timeout=settings.timeout, transport=_live_transport(runner, asynchronous=False)
        )
    with client:
        yield client
