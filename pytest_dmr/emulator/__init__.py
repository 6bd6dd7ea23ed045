"""A Docker Model Runner stand-in: DMR's HTTP API over real llama.cpp (or the mock).

``python -m pytest_dmr.emulator --catalog DIR`` serves it; in tests,
``with EmulatorServer(catalog=DIR, port=0) as server: server.url``. Models are "pulled" from a
local catalogue of GGUF files (:mod:`pytest_dmr.emulator.catalog` describes its layout).
"""

from __future__ import annotations

from pytest_dmr.emulator.server import VERSION, EmulatorServer

__all__ = ["VERSION", "EmulatorServer"]
