"""pytest-dmr's hooks: implement them in a ``conftest.py`` or a plugin to extend the plugin.

The plugin calls them with keyword arguments (an implementation may take any subset of them, as
with pytest's own hooks). A suite that also runs without pytest-dmr (``-p no:dmr``) marks its
implementations ``@pytest.hookimpl(optionalhook=True)``: pytest rejects an implementation of an
undeclared hook.

These specifications are declared as soon as a plugin or a ``conftest.py``
that implements one of them is registered (``plugin.py``'s ``pytest_plugin_registered``), so
pytest checks the implementation's arguments as usual, and before it checks that every
implemented hook is declared (at the end of collection). A run where nothing implements them
never loads this module: loading it costs every run several million instructions under pytest's
import hook, for hooks few suites implement.

Below the specifications: how the plugin calls them (the order of the mock hook, and which
implementation gave the runner URL, so the header can name it).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pluggy import HookCaller, HookImpl

    from pytest_dmr.mock import MockModelRunner


@pytest.hookspec
def pytest_dmr_configure_mock(config: pytest.Config, mock: MockModelRunner, item: pytest.Item) -> None:
    """Script the mock runner of a test before the test sees it: rules, faults, models.

    When: once for each :class:`~pytest_dmr.MockModelRunner` the plugin makes for a test, that
    is once per test that runs on the mock and requests ``dmr_mock``, ``dmr_adapter``,
    ``dmr_adapter_factory`` or ``dmr_client`` (they share one mock, however many of them the
    test requests), during the setup of those fixtures. Not called for a test on a live runner,
    nor for mocks a test builds itself.

    ``mock`` is the test's mock (``mock.reply(...)``, ``mock.fail(Fault...)``,
    ``mock.add_model(...)``); ``item`` the test, for rules by test (``item.name``,
    ``item.get_closest_marker(...)``). Rules added here are rules like any other: the test's own
    (through ``dmr_mock``) are newer and win; ``mock.reset()`` forgets them too.

    Where: called through the test's ``item.ihook``, so an implementation in a ``conftest.py``
    applies to the tests of its directory and below only; a plugin's applies everywhere.
    Order: broadest first (plugins, however loaded, then ``conftest.py`` files from the rootdir
    down to the test's directory; ``trylast=True`` implementations before, ``tryfirst=True`` ones
    after), so the closest ``conftest.py`` adds the newest rules, and the mock's newest matching
    rule wins. (pytest's usual order, closest first, would let a suite-wide rule beat a
    directory's.) Hook wrappers (``wrapper=True``, ``hookwrapper=True``) wrap them all, as usual.

    xdist: called in the worker that runs the test (the mock lives there).

    Return: nothing; a return value is ignored.
    """


@pytest.hookspec(firstresult=True)
def pytest_dmr_runner_url(config: pytest.Config) -> str | None:
    """Name a runner discovery does not know: a team's shared runner, one a service started.

    Return the runner's URL, in any form ``--dmr-url`` takes (``http://host:12434``,
    ``.../engines/v1``, ``.../v1``), or ``None`` to leave it to the next implementation, then to
    built-in discovery. The first URL returned wins (``firstresult``; a ``conftest.py`` is asked
    before the plugins installed in the environment).

    When: once per run, at session start, before built-in discovery; only when the run may use
    a runner (``--dmr=auto`` or ``live``) and no explicit URL is set: ``--dmr-url``, the
    ``dmr_url`` ini key and ``DMR_URL``/``MODEL_RUNNER_URL``/``MODEL_RUNNER_HOST`` win over this
    hook, which is then not called.

    Where: a global hook (called through ``config.hook``, not per directory): implement it in a
    plugin or in a ``conftest.py`` that pytest loads before the session starts (the rootdir's, or
    one in a directory given on the command line or above it). ``conftest.py`` files found later,
    while collecting, are not asked.

    xdist: called in the controller only; workers get discovery's result (which probed this
    URL) in ``workerinput`` and never call it.

    The URL is then an explicit URL: probed (a Docker Model Runner, or an OpenAI-compatible
    server?) and used alone, without other discovery; the header names it (``found: hook
    conftest.py 127.0.0.1:12434``). A URL where nothing answers does what a dead ``--dmr-url``
    does: the mock on ``auto`` (the header says why), a usage error on ``live``. A value that is
    not a URL, or an exception the implementation raises, stops the run with a usage error naming
    the implementation (with the exception's traceback).
    """


# --------------------------------------------------------------------------------------------
# How the plugin calls them
# --------------------------------------------------------------------------------------------

def _is_wrapper(impl: HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def _conftest_path(impl: HookImpl) -> str | None:
    path = getattr(impl.plugin, "__file__", None)
    return path if path and os.path.basename(path) == "conftest.py" else None


def _broadest_first(impl: HookImpl) -> tuple[int, int]:
    """Sort key of the mock hook's order: ``trylast``, plain, ``tryfirst``; within each, plugins
    (wherever they were registered: installed, ``-p``, a conftest's ``pytest_plugins``), then
    ``conftest.py`` files from the rootdir down. Equal keys keep pluggy's (registration) order."""
    band = 0 if impl.trylast else 2 if impl.tryfirst else 1
    conftest = _conftest_path(impl)
    return band, -1 if conftest is None else len(Path(conftest).parts)


def configure_mock(item: pytest.Item, mock: MockModelRunner) -> None:
    """Call ``pytest_dmr_configure_mock`` for the test's mock: the implementations that apply to
    the test's directory, broadest first, so the closest add the newest rules; wrappers around them."""
    __tracebackhide__ = True  # an implementation's error is the user's: show their code, not this
    if getattr(item.config.hook, "pytest_dmr_configure_mock", None) is None:
        return  # nothing implements it (so nothing declared it either)
    hook: HookCaller = item.ihook.pytest_dmr_configure_mock
    impls = hook.get_hookimpls()
    plain = sorted((impl for impl in impls if not _is_wrapper(impl)), key=_broadest_first)
    wrappers = [impl for impl in impls if _is_wrapper(impl)]
    # pluggy's own executor (arguments, wrappers, exceptions, tracing as in any hook call); it calls
    # a list from its end, so the plain implementations go in reversed.
    hook._hookexec(hook.name, plain[::-1] + wrappers, {"config": item.config, "mock": mock, "item": item}, False)


def implementer(config: pytest.Config, impl: HookImpl) -> str:
    """How messages name an implementation: a conftest.py by its path from the rootdir, else the plugin's name."""
    path = _conftest_path(impl)
    if path is not None:
        try:
            return os.path.relpath(path, config.rootpath)
        except ValueError:  # another drive (Windows)
            return path
    if impl.plugin_name.isdigit():  # an object registered without a name: pluggy names it by id()
        return type(impl.plugin).__name__
    return impl.plugin_name


HOOK_RAISED = "pytest-dmr: pytest_dmr_runner_url in {who} raised an exception, so the run stops:\n{trace}"


def _ask(config: pytest.Config, impl: HookImpl, kwargs: dict[str, Any]) -> Any:
    """One implementation's answer (it gets the arguments it names, as pluggy does). What it raises
    stops the run as a usage error naming it, with its traceback, not as an INTERNALERROR of pytest-dmr's."""
    try:
        return impl.function(*[kwargs[name] for name in impl.argnames])
    except (pytest.UsageError, pytest.exit.Exception):
        raise
    except Exception as exc:
        from_implementation = exc.__traceback__.tb_next if exc.__traceback__ else None  # without this frame
        trace = "".join(traceback.format_exception(type(exc), exc, from_implementation)).rstrip()
        raise pytest.UsageError(HOOK_RAISED.format(who=implementer(config, impl), trace=trace)) from None


def first_runner_url(config: pytest.Config) -> tuple[Any, str | None]:
    """Call ``pytest_dmr_runner_url`` as pluggy would (first non-None answer wins): that answer and
    who gave it (``None`` when no implementation answered, or when a wrapper hides who did)."""
    hook: HookCaller = config.hook.pytest_dmr_runner_url
    impls = hook.get_hookimpls()
    if any(_is_wrapper(impl) for impl in impls):
        return hook(config=config), None  # a wrapper needs pluggy's own call
    kwargs = {"config": config}
    for impl in reversed(impls):  # pluggy's call order
        answer = _ask(config, impl, kwargs)
        if answer is not None:
            return answer, implementer(config, impl)
    return None, None


RUNNER_URL_HOOK = "pytest_dmr_runner_url"
BAD_HOOK_URL = (
    "pytest-dmr: {hook} returned {value!r}: return a runner's URL as a string (http://127.0.0.1:12434, "
    "http://host:12434/engines/v1), or None to leave it to discovery"
)


def runner_url(config: pytest.Config) -> tuple[str, str] | None:
    """Ask ``pytest_dmr_runner_url`` implementations: the URL the first one names, checked, and its
    origin for messages (``hook conftest.py``); ``None`` when none names one. A value that is not a
    runner URL is a ``pytest.UsageError`` naming the implementation."""
    answer, who = first_runner_url(config)
    if answer is None:
        return None
    hook = RUNNER_URL_HOOK if who is None else f"{RUNNER_URL_HOOK} in {who}"
    if not isinstance(answer, str) or not answer.strip():
        raise pytest.UsageError(BAD_HOOK_URL.format(hook=hook, value=answer))
    url = answer.strip()
    from pytest_dmr import errors
    from pytest_dmr.protocol import addresses

    try:
        addresses.parse_runner_url(url)
    except errors.ConfigurationError as exc:
        raise pytest.UsageError(f"pytest-dmr: {hook}: {exc}") from None
    return url, ("hook " + (who or RUNNER_URL_HOOK))
