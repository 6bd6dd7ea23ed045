"""The one error provisioning adds to :mod:`pytest_dmr.errors`."""

from __future__ import annotations

from pytest_dmr.errors import RunnerUnavailableError


class ProvisioningError(RunnerUnavailableError):
    """No runner could be provisioned: no Docker, no image, or the container never answered.

    The message is the reason a run's header shows when it falls back to the mock (``--dmr=auto``),
    or the one error a ``--dmr=live`` run stops with.
    """
