"""The process that owns a run's containers, and whether it is gone.

A run's containers are removed by its owner (the xdist controller, or the one process of a run
without xdist) at ``pytest_unconfigure``. A run killed with SIGKILL never gets there, so its
containers carry their owner in labels, and the next run that provisions removes those whose
owner is certainly gone (``runner.sweep_dead_runs``).

An owner is a pid seen from a pid namespace during one boot of the kernel:

* the boot id (``/proc/sys/kernel/random/boot_id``, new at every boot) and the pid namespace
  (``/proc/self/ns/pid``) say whether this process can see the owner's pid at all: containers on
  one kernel share the boot id but not their pids. (A host name would not do: it changes with
  neither, and two machines sharing an engine through ``DOCKER_HOST`` can have the same one.)
* the start time (field 22 of ``/proc/<pid>/stat``, in clock ticks after boot) tells the owner
  from a later process the kernel gave the same pid.

So an owner is judged gone only where that is certain: same boot, same pid namespace, and no
process with that pid and start time (or only a zombie). Anything else (another machine or
container, a container without these labels) is left alone. Without ``/proc`` (macOS, Windows)
nothing is recorded, so nothing is ever removed there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_dmr.provision import labels

PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    """A process, as labels can record it and another process can check it."""

    boot_id: str
    pid_namespace: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> Owner | None:
        """This process, or ``None`` where ``/proc`` cannot say (not Linux)."""
        try:
            boot_id = (PROC / "sys/kernel/random/boot_id").read_text().strip()
            pid_namespace = os.readlink(PROC / "self/ns/pid")
        except OSError:
            return None
        started = process_start_time(os.getpid())
        if not boot_id or started is None:
            return None
        return cls(boot_id, pid_namespace, os.getpid(), started)

    @classmethod
    def from_labels(cls, values: Mapping[str, str]) -> Owner | None:
        """The owner a container's labels record (``None`` if they record none)."""
        try:
            return cls(
                values[labels.OWNER_BOOT],
                values[labels.OWNER_PID_NAMESPACE],
                int(values[labels.OWNER_PID]),
                values[labels.OWNER_STARTED],
            )
        except (KeyError, ValueError):
            return None

    def to_labels(self) -> dict[str, str]:
        return {
            labels.OWNER_BOOT: self.boot_id,
            labels.OWNER_PID_NAMESPACE: self.pid_namespace,
            labels.OWNER_PID: str(self.pid),
            labels.OWNER_STARTED: self.started,
        }

    def is_gone(self, observer: Owner) -> bool:
        """Whether this owner has certainly ended, as ``observer`` (this process) can tell."""
        if (self.boot_id, self.pid_namespace) != (observer.boot_id, observer.pid_namespace):
            return False  # another machine or container: its pids are not ours to look at
        return process_start_time(self.pid) != self.started


def process_start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time), or ``None``: no such process, or a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", which may hold spaces
    state, started = fields[0], fields[19]  # fields 3 and 22
    return None if state in ("Z", "X") else started
