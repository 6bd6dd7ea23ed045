"""The plugin's side of record and replay: which cassette a test uses, what it does with it, the
transports its clients get, and the end of its cassette session.

``--dmr-record`` (:mod:`pytest_dmr.cassettes.session` has the table of modes) decides, per test
that uses a plugin fixture talking to a runner (``dmr_adapter``, ``dmr_client``, the SDK clients,
``dmr_environment``):

- the test has a cassette and the mode replays it (``none``, or ``once``): its clients get a
  :class:`~pytest_dmr.cassettes.ReplayTransport`, no runner is needed, its backend is ``replay``;
  a request the cassette lacks fails the test (``dmr_replay_unmatched = fail``, the default) or
  is answered by the test's mock (``mock``);
- the mode records or verifies (``once`` without a cassette, ``new``, ``all``, ``verify``): its
  clients get the live runner's transport wrapped in a
  :class:`~pytest_dmr.cassettes.RecordingTransport`; without a live runner the test skips (fails
  with ``--dmr-require-live``) as a ``dmr_live`` test would;
- otherwise the test runs as it would without cassettes.

A test that forces the mock (``dmr_mock``) never uses a cassette; with ``--dmr=mock`` cassettes
replay but nothing records; a ``dmr_live`` test (or, with ``--dmr-require-live``, a ``dmr_model``
one) replays its cassette unless ``--dmr-require-live`` demands a runner.

``plugin.py``'s per-test hooks call :func:`prepare` at setup, before the fixtures, and
:func:`finish` once the body has run (the cassette is written when the body passed; ``verify``'s
drift and a request the cassette lacked fail the test, showing both answers or the closest
recorded request). Writing sessions take the cassette's lock in the run's shared directory, so two
xdist workers never record one cassette at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dmr.cassettes import listing
from pytest_dmr.cassettes.session import OFF, REPLAY, CassetteSession
from pytest_dmr.session import CASSETTE_KEY, LIVE, MOCK, DMRSession

if TYPE_CHECKING:
    from pytest_dmr.fixtures import DMRRunner

MARKER = "dmr_cassette"
MARKER_TAKES = 'one cassette name, e.g. @pytest.mark.dmr_cassette("greeting") or ("shared/greeting")'


def cassette_name(item: pytest.Item) -> str | None:
    """The name the closest ``dmr_cassette`` marker gives, else ``None`` (the test's own cassette)."""
    marker = item.get_closest_marker(MARKER)
    return None if marker is None else str(marker.args[0])


def cassette_of(item: pytest.Item) -> Path:
    """``cassettes/<module>/<test>.json`` beside the test's module, or the one its marker names."""
    _module, test = listing.split_nodeid(item.nodeid)
    return listing.cassette_path(Path(item.path), test, cassette_name(item))


def marker_problem(item: pytest.Item) -> str | None:
    """What is wrong with the item's ``dmr_cassette`` markers, or ``None``."""
    from pytest_dmr.errors import ConfigurationError

    for marker in item.iter_markers(MARKER):
        if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str):
            return (f"@pytest.mark.{MARKER} takes {MARKER_TAKES}; {item.nodeid} got "
                    f"args={marker.args!r}, kwargs={marker.kwargs!r}")
        try:
            listing.cassette_path(Path(item.path), "test", marker.args[0])
        except ConfigurationError as exc:
            return f"{item.nodeid}: {exc.message}"
    if item.get_closest_marker(MARKER) and item.get_closest_marker("dmr_mock"):
        return f"{item.nodeid} is marked both {MARKER} (replay real answers) and dmr_mock (always the mock): keep one"
    return None


@dataclass
class ActiveCassette:
    """One test's cassette session, and what its clients need from it."""

    session: CassetteSession
    replay_unmatched: str
    """``fail`` or ``mock``: who answers a request the cassette lacks."""
    finished: bool = False

    @property
    def backend(self) -> str:
        """``replay`` when the answers come from the file, else ``live``."""
        return REPLAY if self.session.action == REPLAY else LIVE

    def transport(self, runner: DMRRunner, mock: Any, stack: str, asynchronous: bool) -> Any:
        """A transport of ``stack`` (``httpx2`` or ``httpx``) for one client of the test."""
        from pytest_dmr.fixtures import live_transport

        live = live_transport(runner, stack, asynchronous, always=True) if self.session.needs_live else None
        return self.session.transport(live, mock if self.replay_unmatched == MOCK else None)


def prepare(item: pytest.Item, dmr: DMRSession, *, wants_live: bool) -> ActiveCassette | None:
    """At setup: the test's cassette session, started (a writing one holds the cassette's lock),
    or ``None`` when the test runs as without cassettes. ``wants_live``: the test is marked to need
    a live runner and ``--dmr-require-live`` is on, so it does not replay."""
    __tracebackhide__ = True
    settings = dmr.settings
    mode = "none" if settings.mode == MOCK else settings.record
    path = cassette_of(item)
    writing = mode != "none"
    session = CassetteSession(
        path, mode, pace=settings.replay_pacing,
        run_id=dmr.run_directory.run_id if writing else None,
        lock_dir=dmr.run_directory.path / "cassette-locks" if writing else None,
    )
    if session.action == OFF or (session.action == REPLAY and wants_live):
        return None
    if session.needs_live:
        runner = dmr.runner(item.config)
        if not runner.live:
            from pytest_dmr.fixtures import cannot_run_live

            setting = f"{settings.record_source}={settings.record}" if settings.record_source.startswith("--") else (
                f"record mode {settings.record} ({settings.record_source})")
            cannot_run_live(item, settings.require_live, f"{setting} records or verifies {path} from a live runner; {runner.reason}")
        if writing:
            dmr.run_directory.ensure()
    session.start()  # a writing session takes the lock, then decides again (another worker may have written it)
    active = ActiveCassette(session, settings.replay_unmatched)
    item.stash[CASSETTE_KEY] = active
    return active


def active(item: pytest.Item) -> ActiveCassette | None:
    return item.stash.get(CASSETTE_KEY, None)


def finish(item: pytest.Item, *, passed: bool) -> None:
    """After the body (or at teardown, if the body never ran): write what was recorded when the
    body passed, release the lock; a passed body then fails on drift (``verify``) or on a request
    the cassette lacked (an SDK may have turned that error into its own); a failed one gets them
    as a report section."""
    __tracebackhide__ = True
    cassette = active(item)
    if cassette is None or cassette.finished:
        return
    cassette.finished = True
    result = cassette.session.finish(passed=passed)
    if passed:
        result.raise_for_drift()
        if result.mismatches:
            raise result.mismatches[0]
        return
    notes = [drift.describe() for drift in result.drift] + [str(error) for error in result.mismatches]
    if notes:
        item.add_report_section("call", "dmr cassette", f"cassette {result.path}:\n\n" + "\n\n".join(notes))
