"""Provisioning: a runner container for the run when discovery finds none (``--dmr-provision=testcontainers``).

The plugin calls two things, both with the run's shared directory (``coordination.RunDirectory``,
which ``session.DMRSession`` holds and hands to xdist workers):

* :func:`register` in ``pytest_configure`` (cheap: no docker, no testcontainers import). In the
  run's owner (the xdist controller, or the single process) it removes the run's containers at
  ``pytest_unconfigure`` (passing run, failing run, Ctrl-C alike), before ``plugin.py`` removes
  the run's directory.
* :func:`acquire_runner` when a test first needs a runner: the first process of the run to call
  it starts the container and pulls the models, under a file lock; the others reuse it. It first
  removes the containers of earlier runs that were killed before their end (``owner.py``).

While a container may exist, the process that removes it turns SIGTERM into ``KeyboardInterrupt``,
so a terminated run ends as Ctrl-C does: through ``pytest_unconfigure``, container removed.

Modules: ``engine`` (Docker there? image there?), ``container`` (the testcontainers class),
``coordination`` (run directory, state file, locks), ``pull`` (progress lines), ``runner`` (the
orchestration), ``labels`` (our ``io.pytest-dmr.*`` labels), ``owner`` (is a run's owner gone?).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dmr.protocol import addresses, model_names
from pytest_dmr.errors import ProvisioningError

if TYPE_CHECKING:
    from pytest_dmr.provision.coordination import RunDirectory
    from pytest_dmr.provision.owner import Owner
    from pytest_dmr.provision.runner import ProvisionedRunner
    from pytest_dmr.settings import Settings

__all__ = ["ProvisionPlugin", "ProvisioningError", "acquire_runner", "register"]

PLUGIN_NAME = "dmr-provision"
SIGTERM_MESSAGE = "SIGTERM, ending the run as for Ctrl-C so that pytest-dmr removes its runner container"


class ProvisionPlugin:
    """The run's provisioning state in one process, and the hooks that share and end it."""

    def __init__(self, config: pytest.Config, run_dir: RunDirectory) -> None:
        self.config = config
        self.run_dir = run_dir
        """The run's shared directory: the runner's state file and lock live there."""
        self.runner: ProvisionedRunner | None = None

    @property
    def owner(self) -> bool:
        """The controller, or the single process of a run without xdist: it removes the containers."""
        return self.run_dir.owned

    @property
    def controller(self) -> Owner | None:
        """The process that removes the run's containers (recorded on them, see ``owner.py``)."""
        return self.run_dir.owner

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: any worker may start the container from now on."""
        catch_sigterm()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.owner or not self.run_dir.exists:
            return
        state = self.run_dir.read()
        if state.runner is not None:
            from pytest_dmr.provision.runner import ProvisionedRunner

            runner = ProvisionedRunner.from_state(state)
            line = f"dmr: {runner.description} at {runner.url}"
            if state.pulled:
                line += "; models: " + ", ".join(f"{name} ({summary})" for name, summary in state.pulled.items())
            terminalreporter.write_line(line)
        for name, reason in state.pull_failures.items():
            terminalreporter.write_line(f"dmr: could not pull {name}: {reason}")

    @pytest.hookimpl(tryfirst=True)  # before plugin.py's pytest_unconfigure removes the run's directory
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.owner:
            self.release()

    def release(self) -> list[str]:
        """Remove this run's containers (not a ``--dmr-reuse`` runner); returns their ids."""
        restore_sigterm()
        if not self.run_dir.exists:
            return []  # no process of the run ever tried to start one
        from pytest_dmr.provision.runner import release

        try:
            return release(self.run_dir)
        except ProvisioningError as exc:
            sys.stderr.write(f"dmr: could not remove the run's runner container: {exc}\n")
            return []


def register(config: pytest.Config, run_dir: RunDirectory) -> ProvisionPlugin:
    """The run's :class:`ProvisionPlugin`, registered once (call it from ``pytest_configure``)."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = ProvisionPlugin(config, run_dir)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin


def acquire_runner(
    settings: Settings, config: pytest.Config, models: Sequence[str], run_dir: RunDirectory
) -> addresses.RunnerAddress:
    """The run's provisioned runner (started on first use, shared by every worker), with ``models`` pulled.

    ``run_dir`` is the run's shared directory, where the runner's state and lock live.

    Raises :class:`ProvisioningError` saying why there is no runner (no Docker, no image, the
    container never answered); ``--dmr=auto`` falls back to the mock with that reason.
    """
    from pytest_dmr.provision.runner import ProvisionRequest, acquire

    plugin = register(config, run_dir)
    request = ProvisionRequest(
        image=settings.image,
        models=tuple(dict.fromkeys(model_names.normalize_model_name(name) or name for name in models)),
        pull=settings.pull_for(provisioned=True),
        reuse=settings.reuse,
        timeout=settings.timeout,
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
        owner=plugin.controller,
    )
    if plugin.owner:
        catch_sigterm()
    write, interactive = _terminal(config)
    plugin.runner = acquire(request, plugin.run_dir, write=write, interactive=interactive)
    return addresses.parse_runner_url(plugin.runner.url)


def catch_sigterm() -> None:
    """Until :func:`restore_sigterm`, SIGTERM raises ``KeyboardInterrupt`` (as SIGINT does in pytest).

    Only SIGTERM's default action is replaced (a handler someone else set is kept), only from the
    main thread, where Python runs signal handlers.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)


def restore_sigterm() -> None:
    if signal.getsignal(signal.SIGTERM) is _sigterm_as_ctrl_c and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_as_ctrl_c(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    raise KeyboardInterrupt(SIGTERM_MESSAGE)


def _terminal(config: pytest.Config) -> tuple[Any, bool]:
    """``write(line, transient)`` to the terminal, outside output capture, and whether it is a tty.

    On an xdist worker there is no terminal reporter: lines go to the worker's stderr, which xdist
    leaves connected to the controller's terminal.
    """
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = None if hasattr(config, "workerinput") else config.pluginmanager.get_plugin("terminalreporter")
    interactive = bool(reporter is not None and getattr(reporter, "isatty", False))
    pending = [False]

    def write(line: str, transient: bool) -> None:
        suspended = capture.global_and_fixture_disabled() if capture is not None else nullcontext()
        with suspended:
            if reporter is None:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            elif interactive:
                if not pending[0]:
                    reporter.ensure_newline()
                reporter.rewrite(line, erase=True)
                if not transient:
                    reporter.write("\n")
                pending[0] = transient
            else:
                reporter.write_line(line)

    return write, interactive
