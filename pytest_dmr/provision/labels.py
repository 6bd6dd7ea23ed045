"""Labels on the containers pytest-dmr starts (its own namespace, never ``org.testcontainers.*``).

``docker ps --filter label=io.pytest-dmr.managed`` lists them all.
"""

from __future__ import annotations

PREFIX = "io.pytest-dmr"
MANAGED = f"{PREFIX}.managed"
"""On every container pytest-dmr starts."""
RUN = f"{PREFIX}.run"
"""The id of the run that started it; the run removes it at its end."""
REUSE = f"{PREFIX}.reuse"
"""A ``--dmr-reuse`` runner, kept between runs: the key of its image and engine."""
IMAGE = f"{PREFIX}.image"
KIND = f"{PREFIX}.kind"
"""``runner`` or ``desktop-proxy``."""
