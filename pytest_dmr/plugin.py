"""pytest-dmr's pytest hooks (entry point ``pytest11: dmr``). The fixtures live in ``fixtures.py``.

Read top to bottom: options, hook specifications (``hooks.py``), configuration (settings,
settings that do nothing, markers), xdist hand-over, session start (the runner URL hook, live
mode's check), report header, collection (marker validation), test setup (live-only tests,
models), the test's call (a dmr_mock marker that did nothing; the body's outcome, for dmr_mock's
teardown), and reporting (user property, terminal summary).

This module is imported on every pytest run: it imports no httpx, mock or container library.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator
from typing import Any

import pytest

from pytest_dmr import errors, hooks, settings as settings_module
from pytest_dmr.protocol import addresses
from pytest_dmr.fixtures import (
    LIVE,
    MOCK,
    BODY_PASSED_KEY,
    LIVE_AND_MOCK,
    MOCK_MARKER_OPTIONS,
    NEEDS_LIVE,
    RUN_DIRECTORY_KEY,
    SESSION_KEY,
    WORKER_INPUT_KEY,
    DMRSession,
    _dmr_backend,
    _mode_reason,
    cannot_run_live,
    dmr_adapter,
    dmr_adapter_factory,
    dmr_client,
    dmr_config,
    dmr_mock,
    dmr_runner,
    no_live_runner_message,
    record_backend,
    recorded_backend,
)

__all__ = ["dmr_adapter", "dmr_adapter_factory", "dmr_client", "dmr_config", "dmr_mock", "dmr_runner", "_dmr_backend"]

COUNTER_KEY = pytest.StashKey["BackendCounter"]()

PLUGIN_FIXTURES = frozenset({"dmr_runner", "dmr_adapter", "dmr_adapter_factory", "dmr_mock", "dmr_client"})
MARKERS = {
    "dmr_live": "dmr_live: the test needs a live Docker Model Runner; it skips (or fails with --dmr-require-live) "
    "where none is available.",
    "dmr_model": "dmr_model(*names): the test needs these models on a live runner (pulled when pulling is on, "
    "else the test skips); the mock serves any model.",
    "dmr_mock": "dmr_mock: the test always runs on the mock, even when a live runner is available. "
    "dmr_mock(assert_all_rules_used=True): also, once the test has passed, it errors at teardown when a rule it "
    "gave dmr_mock answered no request (default: ini dmr_assert_all_rules_used, false); the closest marker wins.",
}
MOCK_MARKER_UNUSED = (
    "{nodeid} is marked dmr_mock but requests none of pytest-dmr's fixtures ({fixtures}), so the marker has no "
    "effect: the test talks to no runner or mock of the plugin's. Request dmr_adapter, dmr_adapter_factory, "
    "dmr_client or dmr_mock to run the test on the mock, or remove the marker."
)
"""Warned (``PytestWarning``) once such a test's body has run (a fixture may request the plugin's with
``request.getfixturevalue``); only for a marker on the test itself, not one a module's ``pytestmark``
or a class gives a group of tests, some of which may not use the plugin."""
RUNNER_URL_HOOK = "pytest_dmr_runner_url"
BAD_HOOK_URL = (
    "pytest-dmr: {hook} returned {value!r}: return a runner's URL as a string (http://127.0.0.1:12434, "
    "http://host:12434/engines/v1), or None to leave it to discovery"
)

# Flag spellings, as settings.resolve() names them, and their argparse destinations.
FLAG_DESTS = {
    "--dmr": "dmr_mode",
    "--dmr-url": "dmr_url",
    "--dmr-model": "dmr_model",
    "--dmr-provision": "dmr_provision",
    "--dmr-image": "dmr_image",
    "--dmr-pull": "dmr_pull",
    "--dmr-reuse": "dmr_reuse",
    "--dmr-require-live": "dmr_require_live",
    "--dmr-discovery": "dmr_discovery",
    "--dmr-timeout": "dmr_timeout",
}
INI_KEYS = (*FLAG_DESTS.values(), "dmr_compose_refs", "dmr_assert_all_rules_used")
"""Each flag's destination is also its ini key; two keys have no flag."""


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dmr", "Docker Model Runner (pytest-dmr); each flag has an ini key and an environment variable")
    modes = ", ".join(settings_module.MODES)
    group.addoption(
        "--dmr",
        dest="dmr_mode",
        metavar="MODE",
        default=None,
        help=f"{modes}. auto (default): live when a runner is found, else the mock; live: a runner is required; "
        "mock: never touch a runner; off: fixtures unavailable, markers inert. [ini dmr_mode, env DMR_MODE]",
    )
    group.addoption(
        "--dmr-url",
        dest="dmr_url",
        metavar="URL",
        default=None,
        help="a runner's base URL; skips discovery. [ini dmr_url, env DMR_URL, MODEL_RUNNER_URL, MODEL_RUNNER_HOST]",
    )
    group.addoption(
        "--dmr-model",
        dest="dmr_model",
        metavar="NAME",
        default=None,
        help="default model (ai/smollm2). [ini dmr_model, env DMR_MODEL, DEFAULT_LOCAL_MODEL]",
    )
    group.addoption(
        "--dmr-provision",
        dest="dmr_provision",
        metavar="WHAT",
        default=None,
        help=f"{', '.join(settings_module.PROVISIONERS)}: start a runner container when none is found. "
        "[ini dmr_provision, env DMR_PROVISION]",
    )
    group.addoption(
        "--dmr-image",
        dest="dmr_image",
        metavar="REF",
        default=None,
        help="image of a provisioned runner (docker/model-runner:latest). [ini dmr_image, env DMR_IMAGE]",
    )
    group.addoption(
        "--dmr-pull",
        dest="dmr_pull",
        action="store_true",
        default=None,
        help="pull models that tests need and the runner lacks (default: only on a provisioned runner). "
        "[ini dmr_pull, env DMR_PULL]",
    )
    group.addoption("--dmr-no-pull", dest="dmr_pull", action="store_false", default=None, help="never pull models.")
    group.addoption(
        "--dmr-reuse",
        dest="dmr_reuse",
        action="store_true",
        default=None,
        help="keep a provisioned runner alive for the next run. [ini dmr_reuse, env DMR_REUSE]",
    )
    group.addoption(
        "--dmr-require-live",
        dest="dmr_require_live",
        action="store_true",
        default=None,
        help="a dmr_live or dmr_model test that cannot run live fails instead of skipping. "
        "[ini dmr_require_live, env DMR_REQUIRE_LIVE]",
    )
    group.addoption(
        "--dmr-discovery",
        dest="dmr_discovery",
        metavar="GROUPS",
        default=None,
        help=f"comma list of the probes discovery runs: {','.join(settings_module.DISCOVERY_GROUPS)} (default all; "
        "container only inside a container). [ini dmr_discovery, env DMR_DISCOVERY]",
    )
    group.addoption(
        "--dmr-timeout",
        dest="dmr_timeout",
        metavar="SECONDS",
        default=None,
        help="request timeout in seconds (120). [ini dmr_timeout, env DMR_TIMEOUT (s), LOCAL_MODEL_TIMEOUT (ms)]",
    )
    for flag, key in FLAG_DESTS.items():
        parser.addini(key, f"pytest-dmr: default for {flag}", default="")
    parser.addini(
        "dmr_compose_refs",
        "pytest-dmr: compose model refs whose <REF>_URL / <REF>_MODEL variables point at a runner",
        type="args",
        default=list(settings_module.DEFAULT_COMPOSE_REFS),
    )
    parser.addini(
        "dmr_assert_all_rules_used",
        "pytest-dmr: a passing test errors at teardown when a rule it gave dmr_mock answered no request "
        "(default false; @pytest.mark.dmr_mock(assert_all_rules_used=...) wins)",
        default="",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """pytest-dmr's hooks: ``pytest_dmr_configure_mock``, ``pytest_dmr_runner_url`` (see ``hooks.py``)."""
    pluginmanager.add_hookspecs(hooks)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def resolve_settings(config: pytest.Config) -> settings_module.Settings:
    """The run's settings from flags, ini and environment; a bad value is a ``pytest.UsageError``."""
    options = {flag: config.getoption(dest) for flag, dest in FLAG_DESTS.items()}
    ini = {key: config.getini(key) for key in INI_KEYS}
    try:
        return settings_module.resolve(options, ini, os.environ)
    except errors.ConfigurationError as exc:
        raise pytest.UsageError(f"pytest-dmr: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    worker_input = getattr(config, "workerinput", None)
    settings = resolve_settings(config)
    if worker_input is None:  # the controller (or the single process) says it once
        for message in settings_module.ineffective_settings(settings):
            config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
    # The controller (or the single process) asks pytest_dmr_runner_url; workers are handed discovery's result.
    url_hook = None if worker_input is not None else functools.partial(runner_url_from_hook, config)
    dmr = DMRSession(settings, worker_input=worker_input, runner_url_hook=url_hook)
    config.stash[SESSION_KEY] = dmr
    if settings.provision == "testcontainers" and settings.mode in ("auto", LIVE):
        from pytest_dmr import provision  # cheap: docker and testcontainers load only when a runner is started

        provision.register(config, dmr.run_directory)  # the run's containers are removed at unconfigure
    counter = BackendCounter()
    config.stash[COUNTER_KEY] = counter
    config.pluginmanager.register(counter, "dmr-backend-counter")


def runner_url_from_hook(config: pytest.Config) -> tuple[str, str] | None:
    """Ask ``pytest_dmr_runner_url`` implementations: the URL the first one names, checked, and its
    origin for messages (``hook conftest.py``); ``None`` when none names one. A value that is not a
    runner URL is a ``pytest.UsageError`` naming the implementation."""
    answer, who = hooks.first_runner_url(config)
    if answer is None:
        return None
    hook = RUNNER_URL_HOOK if who is None else f"{RUNNER_URL_HOOK} in {who}"
    if not isinstance(answer, str) or not answer.strip():
        raise pytest.UsageError(BAD_HOOK_URL.format(hook=hook, value=answer))
    url = answer.strip()
    try:
        addresses.parse_runner_url(url)
    except errors.ConfigurationError as exc:
        raise pytest.UsageError(f"pytest-dmr: {hook}: {exc}") from None
    return url, ("hook " + (who or RUNNER_URL_HOOK))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand each worker the run's shared directory (id, path, owner; created
    later by whichever process needs it first) and discovery's result, so workers never probe."""
    session = node.config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    node.workerinput[RUN_DIRECTORY_KEY] = session.run_directory.to_json()
    if session.settings.mode in ("auto", "live"):
        node.workerinput[WORKER_INPUT_KEY] = session.discovery().to_json()


@pytest.hookimpl(trylast=True)  # after provisioning removed the run's containers (their state is in it)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller (or the single process) removes the directory the run's processes shared."""
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.remove_run_directory()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller asks ``pytest_dmr_runner_url`` (before discovery, before xdist starts workers);
    ``--dmr=live`` with no runner (and no provisioning to start one) stops the run here."""
    dmr = session.config.stash.get(SESSION_KEY, None)
    if dmr is None or dmr.is_worker:
        return
    dmr.url_from_hook()  # now, so a bad answer is a usage error before any test
    current = dmr.settings
    if current.mode == LIVE and current.provision == "never":
        discovery = dmr.discovery()
        if not discovery.found:
            raise pytest.UsageError(no_live_runner_message(current, f"no runner: {discovery.explain()}"))
    if current.mode == LIVE and current.provision == "testcontainers" and not dmr.discovery().found:
        # Live needs the runner anyway: provision it now, so a failure is one error before any test
        # (xdist workers then find it in the run's state; they pull their dmr_model models lazily).
        dmr.runner(session.config)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    dmr = config.stash.get(SESSION_KEY, None)
    if dmr is None:
        return None
    return [header_line(dmr)]


def header_line(dmr: DMRSession) -> str:
    current = dmr.settings
    if current.mode == "off":
        return "dmr: off"
    if current.mode == MOCK:
        return f"dmr: mock ({_mode_reason(current)})"
    discovery = dmr.discovery()
    if discovery.address is not None:
        count = len(discovery.models)
        models = f"{count} model" + ("" if count == 1 else "s")
        if discovery.kind == "openai":
            models += ", OpenAI-compatible server without model management"
        return f"dmr: live at {discovery.address.openai_url}, {models} (found: {discovery.source})"
    if current.provision == "testcontainers":
        return (
            f"dmr: {current.mode}, no runner found ({discovery.explain()}); "
            "a runner will be provisioned with testcontainers when a test needs one"
        )
    return f"dmr: mock (no runner: {discovery.explain()})"


# --------------------------------------------------------------------------------------------
# Collection: markers
# --------------------------------------------------------------------------------------------


MARKER_PROBLEM_KEY = pytest.StashKey[str]()
MARKED_MODELS_KEY = pytest.StashKey[list[str]]()


def _marker_message(item: pytest.Item, marker: pytest.Mark, takes: str) -> str:
    return f"@pytest.mark.{marker.name} takes {takes}; {item.nodeid} got args={marker.args!r}, kwargs={marker.kwargs!r}"


MOCK_MARKER_TAKES = "no positional arguments and one keyword argument, assert_all_rules_used=True or False"


def marker_problem(item: pytest.Item) -> str | None:
    """What is wrong with the item's dmr markers (naming the marker and what it got), or ``None``."""
    for marker in item.iter_markers("dmr_live"):
        if marker.args or marker.kwargs:
            return _marker_message(item, marker, "no arguments")
    for marker in item.iter_markers("dmr_mock"):
        if marker.args or set(marker.kwargs) - set(MOCK_MARKER_OPTIONS) or not all(
            isinstance(value, bool) for value in marker.kwargs.values()
        ):
            return _marker_message(item, marker, MOCK_MARKER_TAKES)
    for marker in item.iter_markers("dmr_model"):
        if not marker.args or marker.kwargs or not all(isinstance(arg, str) and arg.strip() for arg in marker.args):
            return _marker_message(
                item, marker, 'one or more model names as strings, e.g. @pytest.mark.dmr_model("ai/smollm2")'
            )
    if item.get_closest_marker("dmr_live") and item.get_closest_marker("dmr_mock"):
        return f"{item.nodeid} is marked both dmr_live (needs a live runner) and dmr_mock (always the mock): keep one"
    if item.get_closest_marker("dmr_live") and "dmr_mock" in getattr(item, "fixturenames", ()):
        return LIVE_AND_MOCK.format(nodeid=item.nodeid)
    return None


def marked_models(item: pytest.Item) -> list[str]:
    """The models the item's (valid) ``dmr_model`` markers name."""
    return [arg.strip() for marker in item.iter_markers("dmr_model") for arg in marker.args]


def _markers_apply(config: pytest.Config) -> bool:
    dmr = config.stash.get(SESSION_KEY, None)
    return dmr is not None and dmr.settings.mode != "off"


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    """Validate the dmr markers of each test function as it is collected.

    A bad marker is a collection error of the test's file, with one message naming the marker
    and what it got, as pytest reports a bad ``parametrize``. Under xdist every worker reports
    the same text and the controller shows it once.
    """
    result = yield
    if result is None or not _markers_apply(collector.config):
        return result
    for made in result if isinstance(result, list) else [result]:
        if isinstance(made, pytest.Item):
            problem = marker_problem(made)
            if problem is not None:
                raise collector.CollectError(problem)
            made.stash[MARKED_MODELS_KEY] = marked_models(made)
    return result


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dmr = config.stash.get(SESSION_KEY, None)
    if dmr is None or dmr.settings.mode == "off":
        return
    for item in items:
        models = item.stash.get(MARKED_MODELS_KEY, None)
        if models is None:
            # Test functions were validated as they were collected; other kinds of items (a
            # plugin's own, a unittest method) are checked here: a bad marker errors at setup.
            problem = marker_problem(item)
            if problem is not None:
                item.stash[MARKER_PROBLEM_KEY] = problem
                continue
            models = marked_models(item)
        dmr.models_needed.update(models)


# --------------------------------------------------------------------------------------------
# Test setup: live-only tests and the models they need
# --------------------------------------------------------------------------------------------


def _uses_plugin(item: pytest.Item) -> bool:
    """A plugin fixture, or a marker that does something without one (dmr_live and dmr_model skip)."""
    return bool(set(getattr(item, "fixturenames", ())) & PLUGIN_FIXTURES) or any(
        item.get_closest_marker(name) for name in ("dmr_live", "dmr_model")
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    __tracebackhide__ = True
    dmr = item.config.stash.get(SESSION_KEY, None)
    if dmr is None or dmr.settings.mode == "off":
        return
    problem = item.stash.get(MARKER_PROBLEM_KEY, None)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    if not _uses_plugin(item):
        return
    current = dmr.settings
    wants_live = item.get_closest_marker("dmr_live") is not None
    models = marked_models(item)
    forced_mock = item.get_closest_marker("dmr_mock") is not None or "dmr_mock" in getattr(item, "fixturenames", ())
    if forced_mock:
        record_backend(item, MOCK)
        return
    if current.mode == MOCK and not (wants_live or (models and current.require_live)):
        record_backend(item, MOCK)
        return
    runner = dmr.runner(item.config)
    if not runner.live:
        if wants_live or (models and current.require_live):
            cannot_run_live(item, current.require_live, runner.reason)
        record_backend(item, MOCK)
        return
    for name in models:
        problem = dmr.check_model(item.config, runner, name)
        if problem is not None:
            cannot_run_live(item, current.require_live, problem)
    # The adapter's model (dmr_config's, or the run's default) is checked by dmr_adapter_factory.
    record_backend(item, LIVE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Once the test's body has passed: a ``dmr_mock`` marker on a test that ran on none of the plugin's
    backends (no plugin fixture, not even one a fixture requested with ``request.getfixturevalue``)
    did nothing, so say so."""
    __tracebackhide__ = True  # under -W error the warning is the test's error: show it, not this code
    result = yield
    dmr = item.config.stash.get(SESSION_KEY, None)
    marked = any(marker.name == "dmr_mock" for marker in item.own_markers)
    if marked and dmr is not None and dmr.settings.mode != "off" and recorded_backend(item) is None:
        fixtures = ", ".join(sorted(PLUGIN_FIXTURES))
        item.warn(pytest.PytestWarning(MOCK_MARKER_UNUSED.format(nodeid=item.nodeid, fixtures=fixtures)))
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note whether the test's body passed: ``dmr_mock``'s teardown checks its rules only then (a
    failing test already says what went wrong; its unused rules would only repeat it)."""
    report = yield
    if report.when == "call":
        item.stash[BODY_PASSED_KEY] = report.passed
    return report


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


class BackendCounter:
    """Counts tests run live, run on the mock, and skipped (or failed) for want of a live runner.

    Registered in ``pytest_configure``; on an xdist controller it sees the workers' reports, whose
    ``dmr_backend`` user property travels with them, so the counts cover the whole run.
    """

    def __init__(self) -> None:
        self.counts = {LIVE: 0, MOCK: 0, "skipped": 0, "failed": 0}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        backend = dict(report.user_properties).get("dmr_backend")
        if report.when == "call" and backend in (LIVE, MOCK):
            self.counts[backend] += 1
        elif report.when == "setup" and report.skipped and _skip_reason(report).startswith(NEEDS_LIVE):
            self.counts["skipped"] += 1
        elif report.when == "setup" and report.failed and NEEDS_LIVE in report.longreprtext:
            self.counts["failed"] += 1

    def summary(self) -> str | None:
        counts = self.counts
        if not any(counts.values()):
            return None
        parts = [f"{counts[LIVE]} live", f"{counts[MOCK]} on the mock"]
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped for want of a live runner")
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed for want of a live runner")
        return "dmr: tests run " + ", ".join(parts)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counter = config.stash.get(COUNTER_KEY, None)
    line = counter.summary() if counter is not None else None
    if line:
        terminalreporter.write_line(line)
