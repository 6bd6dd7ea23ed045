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

# The process that removes a run's containers (see ``owner.py``): on ``RUN`` containers only.
OWNER_BOOT = f"{PREFIX}.owner.boot-id"
"""The kernel's boot id (``/proc/sys/kernel/random/boot_id``) where the owner runs."""
OWNER_PID_NAMESPACE = f"{PREFIX}.owner.pid-namespace"
"""The owner's pid namespace (``/proc/self/ns/pid``), e.g. ``pid:[4026531836]``."""
OWNER_PID = f"{PREFIX}.owner.pid"
OWNER_STARTED = f"{PREFIX}.owner.started"
"""The owner's start time, in clock ticks after boot (field 22 of ``/proc/<pid>/stat``)."""
