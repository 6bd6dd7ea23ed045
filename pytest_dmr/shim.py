"""Keeps a suite's configuration valid when pytest-dmr is disabled (``pytest -p no:dmr``).

Loaded on every run (entry point ``pytest11: dmr_shim``), it does nothing unless the plugin ``dmr`` is
blocked. Then it registers the ``dmr_*`` ini keys and the ``dmr_live``/``dmr_model``/``dmr_mock``
markers, inert, so ``filterwarnings = error`` (unknown ini keys) and ``--strict-markers`` (unknown
markers) do not stop the run. The flags stay unknown: ``--dmr=...`` with the plugin disabled is a usage
error. Importing it costs the option table only (which the plugin imports anyway).
"""

from __future__ import annotations

from typing import Any

from pytest_dmr import options

PLUGIN_NAME = "dmr"
DISABLED = "pytest-dmr is disabled in this run (-p no:dmr): ignored"


def pytest_addoption(parser: Any, pluginmanager: Any) -> None:
    if pluginmanager.is_blocked(PLUGIN_NAME):
        options.register_ini(parser, disabled=DISABLED)


def pytest_configure(config: Any) -> None:
    if config.pluginmanager.is_blocked(PLUGIN_NAME):
        for line in options.MARKERS.values():
            config.addinivalue_line("markers", f"{line} (pytest-dmr is disabled in this run: inert)")
