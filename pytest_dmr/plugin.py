"""pytest-dmr's pytest hooks and fixtures (entry point ``pytest11: dmr``).

This module is imported on every pytest run, so it imports only what registering the options,
hooks, fixtures and markers needs: ``options.py`` (a table) and ``session.py`` (the run's state).
The settings load at configure time; discovery when the header (or a test) needs the runner;
what the plugin does for the tests that concern it (``per_test.py``) once a collected test
requests a plugin fixture or carries a dmr marker; the fixtures' machinery (``fixtures.py``, and
through it httpx, the mock, the adapter) when a test first requests a fixture: the fixtures at
the end of this module are thin wrappers. Hence the few names at module level: pytest and
pluggy look at each of them when they register the plugin.

A test that concerns no part of the plugin costs next to nothing: the per-test hooks
(``per_test.PerTestHooks``: live-only tests, models, the body's outcome for ``dmr_mock``) and the
summary's ``per_test.BackendCounter`` are registered only once a collected test requests a plugin
fixture or carries a dmr marker (or a plugin fixture is set up), and act on those tests only.
Markers are validated per collected module or class, looking only at tests that carry one.

Read top to bottom: how the modules every run needs are imported (``import_plainly``: past pytest's
assertion-rewriting hook), options, hook specifications (``hooks.py``, declared once something
implements one), configuration (settings, settings that do nothing, markers), xdist hand-over,
session start (the runner URL hook, live mode's check), report header, collection (marker
validation, the tests that concern the plugin), the terminal summary, the fixtures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import pytest_dmr
from pytest_dmr import options


def import_plainly(name: str) -> None:
    """Import a module of this package as Python does, not through pytest's assertion-rewriting hook
    (the recipe "approximating ``importlib.import_module()``" of Python's documentation).

    For the modules every run loads after this one (the run's state, the settings, discovery): pytest
    marks an installed plugin's package for rewriting, and its hook reads each module's cached byte
    code through a Python file object, a method call per object read: ~0.8M instructions per module
    and ~2K per code object, name or constant read, several million per module at every run. These
    modules hold no ``assert`` statement (a test checks), so rewriting them changes nothing. Later
    imports find the module in ``sys.modules``, as usual.
    """
    import sys

    if name in sys.modules:
        return
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec(name, pytest_dmr.__path__)
    if spec is None or spec.loader is None:  # not files on a path (a frozen application...): as usual
        importlib.import_module(name)
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    setattr(pytest_dmr, name.rpartition(".")[2], module)


import_plainly("pytest_dmr.session")
from pytest_dmr.session import COUNTER_KEY, LIVE, MOCK, PLUGIN_FIXTURES, SESSION_KEY, DMRSession

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping

    from _pytest.nodes import Node

    from pytest_dmr.adapter import DockerModelRunnerAdapter
    from pytest_dmr.client import ModelRunnerClient
    from pytest_dmr.clients import DMREnvironment
    from pytest_dmr.fixtures import DMRRunner, _TestBackend
    from pytest_dmr.mock import MockModelRunner
    from pytest_dmr.settings import Settings

__all__ = [
    "dmr_adapter", "dmr_adapter_factory", "dmr_anthropic", "dmr_async_anthropic", "dmr_async_ollama", "dmr_async_openai",
    "dmr_client", "dmr_config", "dmr_environment", "dmr_mock", "dmr_ollama", "dmr_openai", "dmr_runner", "_dmr_backend",
]

_ELSEWHERE = {
    "cannot_run_live": "fixtures", "no_live_runner_message": "fixtures",
    "record_backend": "per_test", "record_fallback": "per_test", "recorded_backend": "per_test", "watch": "per_test",
    "per_test_hooks": "per_test", "PerTestHooks": "per_test", "BackendCounter": "per_test",
    "marker_problem": "per_test", "marked_models": "per_test",
}
"""Names this module has offered that live in ``fixtures.py`` or ``per_test.py``: loaded on first access."""


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_dmr.plugin' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pytest_dmr.{module}"), name)


DMR_MARKERS = frozenset(options.MARKERS)
TYPED_URL_UNUSABLE = (
    "pytest-dmr: --dmr-url={url} names a runner, and none could be used there: {why}\n"
    "Start that runner or correct the URL; to run on the mock, drop --dmr-url (or add --dmr=mock)."
)
NEEDS_CONTAINERS_EXTRA = (
    "pytest-dmr: {setting} needs testcontainers and docker, and {missing} cannot be imported here: "
    "pip install 'pytest-dmr[containers]' (or set provisioning to never)"
)
WARNING_AS_ERROR = "{message}\n(a warning, made an error by this run's warning filters: -W or filterwarnings)"


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """The flags and ini keys of :data:`pytest_dmr.options.OPTIONS`."""
    group = parser.getgroup(*options.GROUP)
    for row in options.OPTIONS:
        flag = row.get("flag")
        if flag:
            how = {"action": row["action"]} if "action" in row else {"metavar": row["metavar"]}
            group.addoption(flag, dest=row["ini"], default=None, help=row["help"], **how)
    options.register_ini(parser)


def pytest_plugin_registered(manager: pytest.PytestPluginManager) -> None:
    """Declare pytest-dmr's hooks (``hooks.py``: ``pytest_dmr_configure_mock``, ``pytest_dmr_runner_url``)
    once a plugin or a ``conftest.py`` implementing one is registered (pluggy gives an implemented,
    undeclared hook an attribute on ``manager.hook``). Called for every plugin, earlier ones included;
    a run that implements neither never loads ``hooks.py``."""
    callers = [getattr(manager.hook, name, None) for name in ("pytest_dmr_configure_mock", "pytest_dmr_runner_url")]
    if any(caller is not None and caller.has_spec() for caller in callers):
        return  # declared; a declaration that failed on a bad implementation is not tried again: its error stands
    if any(caller is not None for caller in callers):
        from pytest_dmr import hooks

        manager.add_hookspecs(hooks)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def resolve_settings(config: pytest.Config) -> Settings:
    """The run's settings from flags, ini and environment; a bad value is a ``pytest.UsageError``."""
    from os import environ

    import_plainly("pytest_dmr.settings")
    from pytest_dmr import settings

    flags = {flag: config.getoption(dest) for flag, dest in options.FLAG_DESTS.items()}
    ini = {key: ini_value(config, key) for key in options.INI_KEYS}
    try:
        return settings.resolve(flags, ini, environ)
    except Exception as exc:
        from pytest_dmr.errors import ConfigurationError  # loaded by then: only a bad value raises one

        if isinstance(exc, ConfigurationError):
            raise pytest.UsageError(f"pytest-dmr: {exc}") from None
        raise


def ini_value(config: pytest.Config, key: str) -> Any:
    """An ini key's value. pytest warns of a value that is not a string for a string key (a TOML list:
    ``dmr_discovery = ["url", "host"]``) and will refuse it; where the run's filters make that warning an
    error, a usage error naming the key, not an INTERNALERROR."""
    try:
        return config.getini(key)
    except (Warning, TypeError) as exc:
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise pytest.UsageError(
            f'pytest-dmr: the ini key {key} takes one string: write its value in quotes ({key} = "..."; a list of '
            f'discovery groups is one comma list, dmr_discovery = "url,host"). pytest said: {said}'
        ) from None


def pytest_configure(config: pytest.Config) -> None:
    for line in options.MARKERS.values():
        config.addinivalue_line("markers", line)
    worker_input = getattr(config, "workerinput", None)
    settings = resolve_settings(config)
    if worker_input is None:  # the controller (or the single process) says it once
        from pytest_dmr.settings import ineffective_settings

        for message in ineffective_settings(settings):
            config_warning(config, message)
    # The controller (or the single process) asks pytest_dmr_runner_url; workers are handed discovery's result.
    url_hook = None if worker_input is not None else (lambda: runner_url_from_hook(config))
    dmr = DMRSession(settings, worker_input=worker_input, runner_url_hook=url_hook)
    config.stash[SESSION_KEY] = dmr
    if settings.provision == "testcontainers" and settings.mode in ("auto", LIVE):
        check_containers_extra(settings)
        from pytest_dmr import provision  # cheap: docker and testcontainers load only when a runner is started

        provision.register(config, dmr.run_directory)  # the run's containers are removed at unconfigure


def config_warning(config: pytest.Config, message: str) -> None:
    """A ``PytestConfigWarning`` at configure time, through pytest's own channel; where the run's filters make
    it an error (``-W error``, ``filterwarnings = error``), a usage error with the message, not an INTERNALERROR."""
    try:
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=3)
    except Warning:
        raise pytest.UsageError(WARNING_AS_ERROR.format(message=message)) from None


def check_containers_extra(settings: Settings) -> None:
    """Provisioning needs the ``containers`` extra: without it, a usage error naming the fix (not the mock)."""
    import importlib.util

    missing = [name for name in ("testcontainers", "docker") if importlib.util.find_spec(name) is None]
    if missing:
        from pytest_dmr.settings import setting_text

        raise pytest.UsageError(NEEDS_CONTAINERS_EXTRA.format(
            setting=setting_text(settings.provision_source, settings.provision), missing=" and ".join(missing)))


def runner_url_from_hook(config: pytest.Config) -> tuple[str, str] | None:
    """``hooks.runner_url``: the URL a ``pytest_dmr_runner_url`` implementation names, and its origin;
    ``None`` at once when nothing implements the hook."""
    if not hasattr(config.hook, "pytest_dmr_runner_url"):
        return None
    from pytest_dmr import hooks

    return hooks.runner_url(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand each worker the run's shared directory (id, path, owner; created
    later by whichever process needs it first) and discovery's result, so workers never probe."""
    from pytest_dmr.session import ASKED_KEY, RUN_DIRECTORY_KEY, WORKER_INPUT_KEY

    session = node.config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    node.workerinput[RUN_DIRECTORY_KEY] = session.run_directory.to_json()
    if session.settings.mode in ("auto", "live"):
        node.workerinput[WORKER_INPUT_KEY] = session.discovery().to_json()
        node.workerinput[ASKED_KEY] = session.asked_for_runner()


@pytest.hookimpl(trylast=True)  # after provisioning removed the run's containers (their state is in it)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller (or the single process) removes the directory the run's processes shared."""
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.remove_run_directory()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller asks ``pytest_dmr_runner_url`` (before discovery, before xdist starts workers);
    ``--dmr=live`` with no runner (and no provisioning to start one), or a ``--dmr-url`` where no runner
    answers, stops the run here: the user asked for a runner on the command line."""
    dmr = session.config.stash.get(SESSION_KEY, None)
    if dmr is None or dmr.is_worker:
        return
    if dmr.settings.mode != "off" and session.config.pluginmanager.has_plugin("dsession"):
        from pytest_dmr.per_test import per_test_hooks

        per_test_hooks(session.config)  # an xdist controller: the summary counts the workers' reports
    dmr.url_from_hook()  # now, so a bad answer is a usage error before any test
    current = dmr.settings
    if current.mode == LIVE and current.provision == "never":
        discovery = dmr.discovery()
        if not discovery.found:
            from pytest_dmr.fixtures import no_live_runner_message

            raise pytest.UsageError(no_live_runner_message(current, f"no runner: {discovery.explain()}"))
    if current.url is not None and current.url_source == "--dmr-url" and current.mode in ("auto", LIVE):
        discovery = dmr.discovery()
        if not discovery.found:  # neither the mock nor a provisioned runner: the URL typed is the one wanted
            from pytest_dmr.redaction import redact_url

            raise pytest.UsageError(TYPED_URL_UNUSABLE.format(url=redact_url(current.url), why=discovery.explain()))
    if current.mode == LIVE and current.provision == "testcontainers" and not dmr.discovery().found:
        # Live needs the runner anyway: provision it now, so a failure is one error before any test
        # (xdist workers then find it in the run's state; they pull their dmr_model models lazily).
        dmr.runner(session.config)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    dmr = config.stash.get(SESSION_KEY, None)
    if dmr is None:
        return None
    line = header_line(dmr)
    current = dmr.settings
    if current.record != "none" and current.mode != "off":
        line += f"; cassettes: record mode {current.record} ({current.record_source})"
        if current.mode == MOCK:
            line += ", replay only on the mock"
    return [line]


def header_line(dmr: DMRSession) -> str:
    current = dmr.settings
    if current.mode == "off":
        return "dmr: off"
    if current.mode == MOCK:
        from pytest_dmr.session import _mode_reason

        return f"dmr: mock ({_mode_reason(current)})"
    discovery = dmr.discovery()
    if discovery.address is not None:
        count = len(discovery.models)
        models = f"{count} model" + ("" if count == 1 else "s")
        if discovery.kind == "openai":
            models += ", OpenAI-compatible server without model management"
        from pytest_dmr.redaction import redact_text, redact_url

        return f"dmr: live at {redact_url(discovery.address.openai_url)}, {models} (found: {redact_text(str(discovery.source))})"
    if current.provision == "testcontainers":
        return (
            f"dmr: {current.mode}, no runner found ({discovery.explain()}); "
            "a runner will be provisioned with testcontainers when a test needs one"
        )
    return f"dmr: mock (no runner: {discovery.explain()})"


# --------------------------------------------------------------------------------------------
# Collection: markers, and the tests that concern the plugin
# --------------------------------------------------------------------------------------------


def _markers_apply(config: pytest.Config) -> bool:
    dmr = config.stash.get(SESSION_KEY, None)
    return dmr is not None and dmr.settings.mode != "off"


def _chain_marked(node: Node) -> bool:
    """Whether the node, or a node above it, carries a dmr marker."""
    return any(mark.name in DMR_MARKERS for each in node.listchain() for mark in each.own_markers)


def _own_marked(item: pytest.Item) -> bool:
    return bool(item.own_markers) and any(mark.name in DMR_MARKERS for mark in item.own_markers)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Validate the dmr markers of the test functions a module or a class collects.

    A bad marker is a collection error of the test's file, with one message naming the marker
    and what it got, as pytest reports a bad ``parametrize``. Under xdist every worker reports
    the same text and the controller shows it once. Only tests that carry a dmr marker are looked at.
    """
    report = yield
    if not report.passed or not isinstance(collector, (pytest.Module, pytest.Class)) or not _markers_apply(collector.config):
        return report
    chain = _chain_marked(collector)
    marked = [made for made in report.result if isinstance(made, pytest.Function) and (chain or _own_marked(made))]
    if marked:
        from pytest_dmr.per_test import marker_problem

        for made in marked:
            problem = marker_problem(made)
            if problem is not None:
                return pytest.CollectReport(report.nodeid, "failed", problem, None)
    return report


@pytest.hookimpl(trylast=True)  # after other plugins changed the items or their markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note the tests that concern the plugin (a plugin fixture, a dmr marker): if there are any,
    ``per_test.concern`` checks their markers, notes the models they name and registers the
    per-test hooks. Items other than test functions (a plugin's own, a unittest method) get their
    markers checked there: a bad one errors at setup."""
    dmr = config.stash.get(SESSION_KEY, None)
    if dmr is None or dmr.settings.mode == "off":
        return
    chains: dict[Node | None, bool] = {}
    concerned: list[tuple[pytest.Item, bool]] = []
    for item in items:
        parent = item.parent
        chain = chains.get(parent)
        if chain is None:
            chain = chains[parent] = parent is not None and _chain_marked(parent)
        marked = chain or _own_marked(item)
        if marked or not PLUGIN_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            concerned.append((item, marked))
    if concerned:
        from pytest_dmr import per_test

        per_test.concern(config, dmr, concerned)


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The backend counts, and how the run asked for a runner but got the mock (``per_test.BackendCounter``,
    registered once a test concerns the plugin)."""
    counter = config.stash.get(COUNTER_KEY, None)
    if counter is None:
        return
    line = counter.summary()
    if line:
        terminalreporter.write_line(line)
    for fallback in counter.fallback_lines():
        terminalreporter.write_line(fallback, yellow=True, bold=True)


# --------------------------------------------------------------------------------------------
# Fixtures: thin wrappers; fixtures.py (and httpx, the mock, the adapter) loads on first use
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dmr_runner(pytestconfig: pytest.Config) -> DMRRunner:
    """The run's runner: mode, backend (live or mock), base URL, source, models present, reason, probes."""
    from pytest_dmr import fixtures

    return fixtures.dmr_runner(pytestconfig)


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
    __tracebackhide__ = True
    from pytest_dmr import fixtures

    yield from fixtures.dmr_mock(request, dmr_config)


@pytest.fixture
def _dmr_backend(request: pytest.FixtureRequest, dmr_config: Mapping[str, Any]) -> _TestBackend:
    """Decide, for this test, live, mock or its cassette; on mock, the test's one mock."""
    from pytest_dmr import fixtures

    return fixtures._dmr_backend(request, dmr_config)


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
    __tracebackhide__ = True
    from pytest_dmr import fixtures

    yield from fixtures.dmr_adapter_factory(request, _dmr_backend, dmr_config)


@pytest.fixture
def dmr_adapter(dmr_adapter_factory: Callable[..., DockerModelRunnerAdapter]) -> DockerModelRunnerAdapter:
    """A ready ``DockerModelRunnerAdapter`` for the default model (``dmr_config``'s, else the run's):
    live, or on a fresh mock."""
    return dmr_adapter_factory()


@pytest.fixture
def dmr_client(request: pytest.FixtureRequest, _dmr_backend: _TestBackend) -> Iterator[ModelRunnerClient]:
    """A ``ModelRunnerClient`` (list, inspect, pull, delete) on the live runner, or on this test's mock."""
    from pytest_dmr import fixtures

    yield from fixtures.dmr_client(request, _dmr_backend)


# --------------------------------------------------------------------------------------------
# SDK clients and the environment (clients.py; each SDK is imported on first use)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def dmr_openai(_dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``openai.OpenAI`` client on this test's backend (``.../engines/v1``): the live runner, its
    cassette, or its mock. Skips when the openai package is not installed."""
    from pytest_dmr import clients

    yield from clients.dmr_openai(_dmr_backend)


@pytest.fixture
def dmr_async_openai(_dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``openai.AsyncOpenAI`` client on this test's backend, as ``dmr_openai``."""
    from pytest_dmr import clients

    yield from clients.dmr_async_openai(_dmr_backend)


@pytest.fixture
def dmr_anthropic(_dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``anthropic.Anthropic`` client on this test's backend (DMR's root: ``/v1/messages``).
    Skips when the anthropic package is not installed."""
    from pytest_dmr import clients

    yield from clients.dmr_anthropic(_dmr_backend)


@pytest.fixture
def dmr_async_anthropic(_dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``anthropic.AsyncAnthropic`` client on this test's backend, as ``dmr_anthropic``."""
    from pytest_dmr import clients

    yield from clients.dmr_async_anthropic(_dmr_backend)


@pytest.fixture
def dmr_ollama(request: pytest.FixtureRequest, _dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``ollama.Client`` on this test's backend (DMR's root: ``/api/...``). Skips when the ollama
    package is not installed."""
    from pytest_dmr import clients

    yield from clients.dmr_ollama(request, _dmr_backend)


@pytest.fixture
def dmr_async_ollama(request: pytest.FixtureRequest, _dmr_backend: _TestBackend) -> Iterator[Any]:
    """An ``ollama.AsyncClient`` on this test's backend, as ``dmr_ollama``."""
    from pytest_dmr import clients

    yield from clients.dmr_async_ollama(request, _dmr_backend)


@pytest.fixture
def dmr_environment(
    request: pytest.FixtureRequest, _dmr_backend: _TestBackend, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DMREnvironment]:
    """``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST`` and ``MODEL_RUNNER_URL`` (and
    placeholder API keys) set for this test, for code that builds its own client from the
    environment: the live runner's URLs, or a server on 127.0.0.1 serving this test's mock (the one
    ``dmr_mock`` controls) or cassette."""
    from pytest_dmr import clients

    yield from clients.dmr_environment(request, _dmr_backend, monkeypatch)
