"""What the plugin does for the tests that concern it: a plugin fixture, or a dmr marker.

``plugin.py`` loads this module once a collected test (or a module or class) carries a dmr marker
or requests a plugin fixture, or a plugin fixture is set up, or an xdist controller starts: a run
whose tests use nothing of the plugin's never loads it. Here: the markers' validation, the
per-test hooks (:class:`PerTestHooks`: live-only tests, models, cassettes, the body's outcome for
``dmr_mock``), the backend each test ran on (a ``dmr_backend`` user property, JUnit XML carries
it) and the summary's counts (:class:`BackendCounter`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_dmr.session import (
    BODY_PASSED_KEY,
    CASSETTE_KEY,
    COUNTER_KEY,
    LIVE,
    LIVE_AND_MOCK,
    MOCK,
    MOCK_MARKER_OPTIONS,
    NEEDS_LIVE,
    PER_TEST_KEY,
    PLUGIN_FIXTURES,
    REPLAY,
    SESSION_KEY,
    DMRSession,
)

MOCK_MARKER_UNUSED = (
    "{nodeid} is marked dmr_mock but requests none of pytest-dmr's fixtures ({fixtures}), so the marker has no "
    "effect: the test talks to no runner or mock of the plugin's. Request dmr_adapter, dmr_adapter_factory, "
    "dmr_client or dmr_mock to run the test on the mock, or remove the marker."
)
"""Warned (``PytestWarning``) once such a test's body has run (a fixture may request the plugin's with
``request.getfixturevalue``); only for a marker on the test itself, not one a module's ``pytestmark``
or a class gives a group of tests, some of which may not use the plugin."""
FALLBACK_PROPERTY = "dmr_fallback"
"""User property (so JUnit XML carries it) of a test run on the mock although the run asked for a runner."""
ASKED_BUT_MOCK = "asked for a runner {asked} but ran on the mock: {reason}"


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
    if item.get_closest_marker("dmr_cassette"):
        from pytest_dmr import recording

        problem = recording.marker_problem(item)
        if problem is not None:
            return problem
    if item.get_closest_marker("dmr_live") and item.get_closest_marker("dmr_mock"):
        return f"{item.nodeid} is marked both dmr_live (needs a live runner) and dmr_mock (always the mock): keep one"
    if item.get_closest_marker("dmr_live") and "dmr_mock" in getattr(item, "fixturenames", ()):
        return LIVE_AND_MOCK.format(nodeid=item.nodeid)
    return None


def marked_models(item: pytest.Item) -> list[str]:
    """The models the item's (valid) ``dmr_model`` markers name."""
    return [arg.strip() for marker in item.iter_markers("dmr_model") for arg in marker.args]



def concern(config: pytest.Config, dmr: DMRSession, concerned: list[tuple[pytest.Item, bool]]) -> None:
    """The collected tests that concern the plugin, each with whether it carries a dmr marker: check
    those markers (a bad one errors at the test's setup), note the models they name, register the
    per-test hooks for these tests."""
    hooks = per_test_hooks(config)
    for item, marked in concerned:
        hooks.items.add(item)
        if marked:
            problem = marker_problem(item)
            if problem is not None:
                hooks.problems[item] = problem
                continue
            dmr.models_needed.update(marked_models(item))


# --------------------------------------------------------------------------------------------
# Per test: live-only tests, the models they need, the body's outcome
# --------------------------------------------------------------------------------------------


def _uses_plugin(item: pytest.Item) -> bool:
    """A plugin fixture, or a marker that does something without one (dmr_live and dmr_model skip)."""
    return bool(set(getattr(item, "fixturenames", ())) & PLUGIN_FIXTURES) or any(
        item.get_closest_marker(name) for name in ("dmr_live", "dmr_model")
    )


class PerTestHooks:
    """The hooks that act on each test, for the tests that concern the plugin (:attr:`items`) only.

    Registered (as ``dmr-per-test``) by :func:`per_test_hooks` once there is such a test: a run
    whose tests use nothing of the plugin's never calls them.
    """

    def __init__(self, dmr: DMRSession) -> None:
        self.dmr = dmr
        self.items: set[pytest.Item] = set()
        """Tests with a plugin fixture or a dmr marker, and tests a plugin fixture was set up for."""
        self.problems: dict[pytest.Item, str] = {}
        """Bad markers of items no Python collector made: each errors at its setup."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Live-only tests and the models they need: skip (or fail) where they cannot run live."""
        __tracebackhide__ = True
        if item not in self.items:
            return
        problem = self.problems.get(item)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        if not _uses_plugin(item):
            return
        from pytest_dmr.fixtures import cannot_run_live

        dmr = self.dmr
        current = dmr.settings
        wants_live = item.get_closest_marker("dmr_live") is not None
        models = marked_models(item)
        forced_mock = item.get_closest_marker("dmr_mock") is not None or "dmr_mock" in getattr(item, "fixturenames", ())
        if forced_mock:
            record_backend(item, MOCK)
            return
        if "_dmr_backend" in getattr(item, "fixturenames", ()):
            from pytest_dmr import recording

            strict = current.require_live and (wants_live or bool(models))
            cassette = recording.prepare(item, dmr, wants_live=strict)
            if cassette is not None and cassette.backend == REPLAY:
                record_backend(item, REPLAY)
                return
        if current.mode == MOCK and not (wants_live or (models and current.require_live)):
            record_backend(item, MOCK)
            return
        runner = dmr.runner(item.config)
        if not runner.live:
            if wants_live or current.require_live:
                cannot_run_live(item, current.require_live, runner.reason)
            record_fallback(item, dmr, runner.reason)
            return
        for name in models:
            problem = dmr.check_model(item.config, runner, name)
            if problem is not None:
                cannot_run_live(item, current.require_live, problem)
        # The adapter's model (dmr_config's, or the run's default) is checked by dmr_adapter_factory.
        record_backend(item, LIVE)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Once the test's body has passed: a ``dmr_mock`` marker on a test that ran on none of the plugin's
        backends (no plugin fixture, not even one a fixture requested with ``request.getfixturevalue``)
        did nothing, so say so."""
        __tracebackhide__ = True  # under -W error the warning is the test's error: show it, not this code
        if CASSETTE_KEY in item.stash:
            from pytest_dmr import recording

            try:
                outcome = yield
            except BaseException:
                recording.finish(item, passed=False)
                raise
            recording.finish(item, passed=True)  # drift (verify), or a request the cassette lacked: a failure
            return outcome
        result = yield
        marked = item in self.items and any(marker.name == "dmr_mock" for marker in item.own_markers)
        if marked and recorded_backend(item) is None:
            fixtures = ", ".join(sorted(PLUGIN_FIXTURES))
            item.warn(pytest.PytestWarning(MOCK_MARKER_UNUSED.format(nodeid=item.nodeid, fixtures=fixtures)))
        return result

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        """A test whose body never ran (a fixture failed) still releases its cassette's lock."""
        if CASSETTE_KEY in item.stash:
            from pytest_dmr import recording

            recording.finish(item, passed=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Note whether the test's body passed: ``dmr_mock``'s teardown checks its rules only then (a
        failing test already says what went wrong; its unused rules would only repeat it)."""
        report = yield
        if report.when == "call" and item in self.items:
            item.stash[BODY_PASSED_KEY] = report.passed
        return report


def per_test_hooks(config: pytest.Config) -> PerTestHooks:
    """The run's :class:`PerTestHooks`, and its :class:`BackendCounter`: registered on the first call."""
    hooks = config.stash.get(PER_TEST_KEY, None)
    if hooks is None:
        hooks = config.stash[PER_TEST_KEY] = PerTestHooks(config.stash[SESSION_KEY])
        config.pluginmanager.register(hooks, "dmr-per-test")
        counter = config.stash[COUNTER_KEY] = BackendCounter()
        config.pluginmanager.register(counter, "dmr-backend-counter")
    return hooks


def watch(item: pytest.Item) -> None:
    """From now on the per-test hooks and the summary look at this test (a plugin fixture was set up for it)."""
    if SESSION_KEY in item.config.stash:
        per_test_hooks(item.config).items.add(item)


def record_backend(item: pytest.Item, backend: str) -> None:
    """Mark the test as run on ``backend``: a ``dmr_backend`` user property (JUnit XML carries it)."""
    watch(item)
    if recorded_backend(item) is None:
        item.user_properties.append(("dmr_backend", backend))


def record_fallback(item: pytest.Item, dmr: DMRSession, reason: str) -> None:
    """The test runs on the mock for want of a runner. If the run asked for one (a URL from the environment,
    the ini file or the hook; provisioning), say so: a ``dmr_fallback`` user property (JUnit XML), a
    ``PytestWarning`` once per process (an error under ``-W error``), and the summary's line."""
    __tracebackhide__ = True  # under -W error the warning is the test's error: show it, not this code
    if recorded_backend(item) is not None:
        return
    record_backend(item, MOCK)
    asked = dmr.asked_for_runner()
    if asked is None:
        return
    from pytest_dmr.redaction import redact_text

    message = ASKED_BUT_MOCK.format(asked=asked, reason=redact_text(reason))
    item.user_properties.append((FALLBACK_PROPERTY, message))
    if not dmr.fallback_warned:
        dmr.fallback_warned = True
        item.warn(pytest.PytestWarning(f"pytest-dmr: {message}"))


def recorded_backend(item: pytest.Item) -> str | None:
    """``live``, ``replay`` or ``mock`` once the plugin has decided where the test runs, else ``None``."""
    return next((str(value) for name, value in item.user_properties if name == "dmr_backend"), None)




# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


class BackendCounter:
    """Counts tests run live, replayed from a cassette, run on the mock, and skipped (or failed) for want
    of a live runner (``replayed`` is shown once there is one).

    Registered with the per-test hooks; on an xdist controller (at session start) it sees the
    workers' reports, whose ``dmr_backend`` user property travels with them, so the counts cover
    the whole run.
    """

    def __init__(self) -> None:
        self.counts = {LIVE: 0, REPLAY: 0, MOCK: 0, "skipped": 0, "failed": 0}
        self.fallbacks: dict[str, int] = {}
        """``dmr_fallback`` messages, and how many tests each concerns."""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.passed and not report.user_properties:
            return  # most reports: nothing to count
        properties = dict(report.user_properties)
        backend = properties.get("dmr_backend")
        fallback = properties.get(FALLBACK_PROPERTY)
        if report.when == "setup" and fallback is not None:
            self.fallbacks[str(fallback)] = self.fallbacks.get(str(fallback), 0) + 1
        if report.when == "call" and backend in (LIVE, REPLAY, MOCK):
            self.counts[backend] += 1
        elif report.when == "setup" and report.skipped and _skip_reason(report).startswith(NEEDS_LIVE):
            self.counts["skipped"] += 1
        elif report.when == "setup" and report.failed and NEEDS_LIVE in report.longreprtext:
            self.counts["failed"] += 1

    def summary(self) -> str | None:
        counts = self.counts
        if not any(counts.values()):
            return None
        parts = [f"{counts[LIVE]} live"]
        if counts[REPLAY]:
            parts.append(f"{counts[REPLAY]} replayed")
        parts.append(f"{counts[MOCK]} on the mock")
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped for want of a live runner")
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed for want of a live runner")
        return "dmr: tests run " + ", ".join(parts)

    def fallback_lines(self) -> list[str]:
        """One line per way the run asked for a runner and got the mock: CI logs show it next to the counts."""
        return [
            f"dmr: {message} ({count} test{'' if count == 1 else 's'})" for message, count in self.fallbacks.items()
        ]
