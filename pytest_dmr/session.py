"""The state one run shares between the plugin's hooks and its fixtures: a :class:`DMRSession`.

``plugin.py`` makes it at configure time and keeps it in ``config.stash``. It holds the settings,
runs discovery once (or, on an xdist worker, takes the controller's result), and acquires the
run's runner once (``fixtures.acquire_runner``). Cheap to import, as every run does: discovery,
the runner's machinery and the model checks load when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from pytest_dmr.discovery import Discovery
    from pytest_dmr.fixtures import DMRRunner
    from pytest_dmr.per_test import BackendCounter, PerTestHooks
    from pytest_dmr.provision.coordination import RunDirectory
    from pytest_dmr.settings import Settings

LIVE, MOCK, REPLAY = "live", "mock", "replay"
WORKER_INPUT_KEY = "dmr_discovery"
ASKED_KEY = "dmr_asked"
"""``workerinput`` key of :meth:`DMRSession.asked_for_runner`'s answer (the controller asks the URL hook)."""
RUN_DIRECTORY_KEY = "dmr_run"
"""``workerinput`` key of the run's shared directory (id, path, owner): see :attr:`DMRSession.run_directory`."""
NEEDS_LIVE = "needs a live Docker Model Runner"
"""Start of the reason of every skip (or failure) for want of a live runner; the summary counts them."""
LIVE_AND_MOCK = "{nodeid} is marked dmr_live but requests dmr_mock, which forces the mock: drop one of them"
MOCK_MARKER_OPTIONS = ("assert_all_rules_used",)
"""The keyword arguments ``@pytest.mark.dmr_mock`` takes (``plugin.py`` checks them at collection)."""
SDK_FIXTURES = frozenset(
    {"dmr_openai", "dmr_async_openai", "dmr_anthropic", "dmr_async_anthropic", "dmr_ollama", "dmr_async_ollama", "dmr_environment"}
)
PLUGIN_FIXTURES = frozenset({"dmr_runner", "dmr_adapter", "dmr_adapter_factory", "dmr_mock", "dmr_client"}) | SDK_FIXTURES
"""A test requesting one of these concerns the plugin (the per-test hooks look at it)."""

# The stash keys are typed by annotation, not by subscription (``StashKey[bool]()``): a subscription
# builds a typing alias at import, and this module is imported on every run.
CASSETTE_KEY: pytest.StashKey[Any] = pytest.StashKey()
"""A test's cassette (``recording.ActiveCassette``), set by the per-test hooks when the test has one to use."""
BODY_PASSED_KEY: pytest.StashKey[bool] = pytest.StashKey()
"""Set by the per-test hooks once the call phase of a test that uses ``dmr_mock`` is reported: whether the body passed."""
PER_TEST_KEY: pytest.StashKey[PerTestHooks] = pytest.StashKey()
COUNTER_KEY: pytest.StashKey[BackendCounter] = pytest.StashKey()


class DMRSession:
    """Everything one run shares: settings, discovery, the runner, counters. One per ``config``."""

    def __init__(
        self,
        settings: Settings,
        worker_input: dict[str, Any] | None = None,
        runner_url_hook: Callable[[], tuple[str, str] | None] | None = None,
    ) -> None:
        self.settings = settings
        self.worker_input = worker_input
        """xdist's ``workerinput`` on a worker, ``None`` on the controller or a plain run."""
        self.runner_url_hook = runner_url_hook
        """Asks ``pytest_dmr_runner_url`` implementations for a runner: ``(url, origin)`` or ``None``.
        Set on the controller (or the single process) only: workers are handed discovery's result."""
        self.models_needed: set[str] = set()
        """The default model and every model named by a collected ``dmr_model`` marker."""
        self._discovery: Discovery | None = None
        self._runner: DMRRunner | None = None
        self._model_checks: dict[str, str | None] = {}
        self._run_directory: RunDirectory | None = None
        self._hook_url: tuple[str, str] | None = None
        self._hook_asked = False
        self.fallback_warned = False
        """Whether this process has warned that a test runs on the mock although the run asked for a runner."""

    @property
    def is_worker(self) -> bool:
        return self.worker_input is not None

    @property
    def run_directory(self) -> RunDirectory:
        """The directory every process of the run shares: pull locks, the provisioned runner's state.

        One per run: its id and path are decided by the controller (or the single process of a run
        without xdist), which hands them to each worker in ``workerinput``; the directory is created
        by whichever process needs it first, and removed by the controller at the end of the run.
        """
        if self._run_directory is None:
            from pytest_dmr.provision.coordination import RunDirectory

            handed = (self.worker_input or {}).get(RUN_DIRECTORY_KEY)
            self._run_directory = RunDirectory.from_json(handed) if handed else RunDirectory.new()
        return self._run_directory

    def remove_run_directory(self) -> None:
        """At the end of the run: the controller (or the single process) removes the run's directory."""
        if self._run_directory is not None:
            self._run_directory.remove()

    def url_from_hook(self) -> tuple[str, str] | None:
        """The runner URL a ``pytest_dmr_runner_url`` implementation names, and its origin for
        messages (``hook conftest.py``). Asked once, and only when the run may use a runner and no
        explicit URL (flag, ini, environment) is set: an explicit URL wins."""
        if not self._hook_asked:
            self._hook_asked = True
            current = self.settings
            if self.runner_url_hook is not None and current.url is None and current.mode in ("auto", LIVE):
                self._hook_url = self.runner_url_hook()
        return self._hook_url

    def asked_for_runner(self) -> str | None:
        """How the run asked for a runner, for the warning when a test runs on the mock instead:
        ``at http://host:1 (from DMR_URL)``, ``to be provisioned (dmr_provision = testcontainers in the
        ini file)``; ``None`` when it asked for none (``auto`` with discovery alone, ``mock``)."""
        if self.worker_input is not None and ASKED_KEY in self.worker_input:
            return str(self.worker_input[ASKED_KEY]) if self.worker_input[ASKED_KEY] else None
        current = self.settings
        if current.mode not in ("auto", LIVE):
            return None
        from pytest_dmr.redaction import redact_url

        url, source = (current.url, current.url_source) if current.url is not None else (self.url_from_hook() or (None, None))
        if url is not None:
            return f"at {redact_url(url)} (from {str(source).replace(' (ini)', ' in the ini file')})"
        if current.provision == "testcontainers":
            from pytest_dmr.settings import setting_text

            return f"to be provisioned ({setting_text(current.provision_source, current.provision)})"
        return None

    def discovery(self) -> Discovery:
        """Discovery's result: computed once here, or the controller's on an xdist worker.

        A URL from ``pytest_dmr_runner_url`` is treated as an explicit ``--dmr-url``: probed
        alone, named as the source."""
        if self._discovery is None:
            from pytest_dmr.plugin import import_plainly

            import_plainly("pytest_dmr.discovery")  # not through pytest's assertion-rewriting hook: see there
            from pytest_dmr.discovery import Discovery, discover

            shipped = (self.worker_input or {}).get(WORKER_INPUT_KEY)
            if shipped is not None:
                self._discovery = Discovery.from_json(shipped)
            else:
                hooked = self.url_from_hook()
                target = self.settings if hooked is None else self.settings._replace(url=hooked[0], url_source=hooked[1])
                self._discovery = discover(target)
        return self._discovery

    def runner(self, config: pytest.Config) -> DMRRunner:
        if self._runner is None:
            from pytest_dmr.fixtures import acquire_runner

            self._runner = acquire_runner(self, config)
        return self._runner

    def check_model(self, config: pytest.Config, runner: DMRRunner, name: str) -> str | None:
        """``None`` when the live runner has ``name`` (pulling it if allowed), else why not. Cached."""
        from pytest_dmr.fixtures import _ensure_model
        from pytest_dmr.protocol import model_names

        key = model_names.canonical_model_name(name)
        if key not in self._model_checks:
            self._model_checks[key] = _ensure_model(config, runner, name)
        return self._model_checks[key]


SESSION_KEY: pytest.StashKey[DMRSession] = pytest.StashKey()
"""Where ``plugin.py``'s ``pytest_configure`` keeps the run's :class:`DMRSession`."""


def get_session(config: pytest.Config) -> DMRSession:
    try:
        return config.stash[SESSION_KEY]
    except KeyError:
        raise pytest.UsageError(
            "pytest-dmr is not configured in this run (was it disabled with -p no:dmr?)"
        ) from None


def _mode_reason(settings: Settings) -> str:
    """``--dmr=mock``, ``DMR_MODE=mock``, ``dmr_mode=mock in the ini file``."""
    source = settings.mode_source
    if source.startswith("--"):
        return f"{source}={settings.mode}"
    if source.endswith("(ini)"):
        return f"{source.split()[0]}={settings.mode} in the ini file"
    return f"{source}={settings.mode}"
