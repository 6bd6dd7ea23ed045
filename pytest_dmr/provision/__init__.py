"""Provisioning: a runner container for the run when discovery finds none (``--dmr-provision=testcontainers``).

The plugin calls two things:

* :func:`register` in ``pytest_configure`` (cheap: no docker, no testcontainers import). On an
  xdist controller it creates the run's shared directory and hands it to every worker; it removes
  the run's containers at ``pytest_unconfigure`` (passing run, failing run, Ctrl-C alike).
* :func:`acquire_runner` when a test first needs a runner: the first process of the run to call
  it starts the container and pulls the models, under a file lock; the others reuse it. It first
  removes the containers of earlier runs that were killed before their end (``owner.py``).

While a container may exist, the process that removes it turns SIGTERM into ``KeyboardInterrupt``,
so a terminated run ends as Ctrl-C does: through ``pytest_unconfigure``, container removed.

Modules: ``engine`` (Docker there? image there?), ``container`` (the testcontainers class),
``coordination`` (run directory, state file, locks), ``pull`` (progress lines), ``runner`` (the
orchestration), ``labels`` (our ``io.pytest-dmr.*`` labels).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dmr import protocol
from pytest_dmr.errors import ProvisioningError
from pytest_dmr.provision.coordination import RunDirectory
from pytest_dmr.provision.owner import Owner

if TYPE_CHECKING:
    from pytest_dmr.provision.runner import ProvisionedRunner
    from pytest_dmr.settings import Settings

__all__ = ["ProvisionPlugin", "ProvisioningError", "acquire_runner", "register"]

PLUGIN_NAME = "dmr-provision"
WORKER_INPUT_KEY = "dmr_provision"
SIGTERM_MESSAGE = "SIGTERM, ending the run as for Ctrl-C so that pytest-dmr removes its runner container"


class ProvisionPlugin:
    """The run's provisioning state in one process, and the hooks that share and end it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        shared = (getattr(config, "workerinput", None) or {}).get(WORKER_INPUT_KEY)
        self.owner = shared is None
        """The controller, or the single process of a run without xdist: it removes the containers."""
        self.run_id: str = shared["run_id"] if shared else uuid.uuid4().hex[:12]
        self._run_dir: RunDirectory | None = RunDirectory(Path(shared["run_dir"]), self.run_id) if shared else None
        self.controller = Owner.from_labels(shared["owner"]) if shared else Owner.current()
        """The process that removes the run's containers (recorded on them, see ``owner.py``)."""
        self.runner: ProvisionedRunner | None = None

    @property
    def run_dir(self) -> RunDirectory:
        if self._run_dir is None:
            self._run_dir = RunDirectory.create(self.run_id)
        return self._run_dir

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker shares this run's directory, id and owner."""
        owner = self.controller.to_labels() if self.controller else {}
        node.workerinput[WORKER_INPUT_KEY] = {"run_id": self.run_id, "run_dir": str(self.run_dir.path), "owner": owner}
        catch_sigterm()  # any worker may start the container now

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.owner or self._run_dir is None:
            return
        state = self._run_dir.read()
        if state.runner is not None:
            from pytest_dmr.provision.runner import ProvisionedRunner

            runner = ProvisionedRunner.from_state(state)
            line = f"dmr: {runner.description} at {runner.url}"
            if state.pulled:
                line += "; models: " + ", ".join(f"{name} ({summary})" for name, summary in state.pulled.items())
            terminalreporter.write_line(line)
        for name, reason in state.pull_failures.items():
            terminalreporter.write_line(f"dmr: could not pull {name}: {reason}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.owner:
            self.release()

    def release(self) -> list[str]:
        """Remove this run's containers (not a ``--dmr-reuse`` runner) and its shared directory."""
        restore_sigterm()
        if self._run_dir is None:
            return []
        from pytest_dmr.provision.runner import release

        try:
            removed = release(self._run_dir)
        except ProvisioningError as exc:
            sys.stderr.write(f"dmr: could not remove the run's runner container: {exc}\n")
            return []
        shutil.rmtree(self._run_dir.path, ignore_errors=True)
        return removed


def register(config: pytest.Config) -> ProvisionPlugin:
    """The run's :class:`ProvisionPlugin`, registered once (call it from ``pytest_configure``)."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = ProvisionPlugin(config)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin


def acquire_runner(settings: Settings, config: pytest.Config, models: Sequence[str]) -> protocol.RunnerAddress:
    """The run's provisioned runner (started on first use, shared by every worker), with ``models`` pulled.

    Raises :class:`ProvisioningError` saying why there is no runner (no Docker, no image, the
    container never answered); ``--dmr=auto`` falls back to the mock with that reason.
    """
    from pytest_dmr.provision.runner import ProvisionRequest, acquire

    plugin = register(config)
    request = ProvisionRequest(
        image=settings.image,
        models=tuple(dict.fromkeys(protocol.normalize_model_name(name) or name for name in models)),
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
    return protocol.parse_runner_url(plugin.runner.url)


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
