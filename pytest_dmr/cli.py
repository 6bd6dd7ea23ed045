"""The ``pytest-dmr`` command: ``doctor``, ``models [--running]``, ``pull NAME``, ``cassettes [--unused] [PATH]``.

It finds the runner exactly as the plugin does (pytest's own configuration step reads the ini
file and the environment, then the same discovery runs), so ``pytest-dmr doctor`` explains what a
test run in the current directory would see.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pytest_dmr import errors
from pytest_dmr.protocol import model_names, pull_stream
from pytest_dmr.discovery import Discovery, discover
from pytest_dmr.settings import Settings

if TYPE_CHECKING:
    from pytest_dmr.client import ModelRunnerClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_RUNNER = 0, 1, 2, 3
"""One exit code per kind of outcome: done; a problem found or an operation the runner refused; a bad
command line or setting (argparse's own code); no runner reachable."""
EXIT_CODES_HELP = (
    "exit codes: 0 done; 1 a problem found (doctor) or the runner refused (models, pull); "
    "2 a bad option or setting; 3 no runner reachable"
)
HOW_TO_START = (
    "Start one: Docker Desktop: `docker desktop enable model-runner --tcp 12434`; Docker Engine: "
    "`docker model install-runner`; no Docker at all: the emulator on llama.cpp, "
    "`pip install 'pytest-dmr[llama]' && python -m pytest_dmr.emulator --catalog DIR` (DIR/<name>/<tag>.gguf). "
    "Or point at a runner with --url URL (DMR_URL)."
)
"""What the command line tells someone who has no runner (the plugin's advice names its own flags)."""

_WITHOUT_RUNNER = {
    "auto": "Tests will run on the mock (auto mode), and `pytest --dmr=live` will refuse to start.",
    "live": "The mode is live: pytest will refuse to start.",
    "mock": "The mode is mock: tests use the mock and never look for a runner.",
    "off": "The mode is off: the plugin's fixtures are unavailable.",
}


def _settings(args: argparse.Namespace) -> Settings:
    """The settings pytest would resolve in the current directory: these flags, the environment, and
    the ini file pytest would read here (pytest.ini, pyproject.toml, tox.ini, setup.cfg)."""
    flags = {"--dmr-url": args.url, "--dmr-timeout": args.timeout, "--dmr-discovery": args.discovery}
    return settings_as_pytest_resolves([f"{flag}={value}" for flag, value in flags.items() if value is not None])


def settings_as_pytest_resolves(pytest_args: Sequence[str]) -> Settings:
    """Run pytest's own configuration step with ``pytest_args`` and stop before collection, so the ini
    file, the conftest.py files and the plugin's option handling are exactly those of a test run."""
    import pytest

    from pytest_dmr import plugin

    resolved: list[Settings] = []
    problems: list[str] = []

    class SettingsProbe:
        @pytest.hookimpl(tryfirst=True)
        def pytest_cmdline_main(self, config: pytest.Config) -> int:
            try:
                resolved.append(plugin.resolve_settings(config))
            except pytest.UsageError as exc:
                problems.append(str(exc).removeprefix("pytest-dmr: "))
            return 0  # stop here: no session, no collection

    quiet = ["--capture=no", "--assert=plain", "-p", "no:cacheprovider"]
    code = pytest.main([*quiet, *pytest_args], plugins=[SettingsProbe()])
    if problems:
        raise errors.ConfigurationError(problems[0])
    if not resolved:
        raise errors.ConfigurationError(
            f"pytest could not read its configuration in {os.getcwd()} (exit code {int(code)})",
            hint="Run pytest there to see why, or check that the pytest-dmr plugin is not disabled (-p no:dmr)",
        )
    return resolved[0]


def _client(discovery: Discovery, settings: Settings) -> ModelRunnerClient:
    from pytest_dmr.client import ModelRunnerClient

    assert discovery.address is not None
    transport = None
    if discovery.socket_path:
        import httpx2

        transport = httpx2.HTTPTransport(uds=discovery.socket_path)
    return ModelRunnerClient(discovery.address.root, timeout=settings.timeout, transport=transport)


def _exit_code(exc: errors.DMRError) -> int:
    """A runner that went away after discovery (refused, reset) is "no runner reachable", like none found;
    a server that answers but is not a Docker Model Runner, or refuses the operation, is a failure."""
    gone = isinstance(exc, errors.RunnerUnavailableError) and not isinstance(exc, errors.NotAModelRunnerError)
    return EXIT_NO_RUNNER if gone else EXIT_FAILED


def _find(settings: Settings, out: TextIO) -> Discovery | None:
    found = discover(settings)
    if found.address is None:
        print(f"No runner: {found.explain()}", file=out)
        print(HOW_TO_START, file=out)
        return None
    return found


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def doctor(settings: Settings, out: TextIO) -> int:
    """What is reachable, what is missing, and how to fix it."""
    model_source = "" if settings.model_source == "default" else f" (from {settings.model_source})"
    print(f"settings: mode {settings.mode}, model {settings.model}{model_source}, discovery {','.join(settings.discovery)}"
          + (f", url {settings.url} (from {settings.url_source})" if settings.url else ""), file=out)
    found = discover(settings)
    print(f"discovery ({found.elapsed * 1000:.1f} ms):", file=out)
    for probe in found.probes:
        print(f"  [{probe.result:>8}] {probe.group:<9} {probe.target}: {probe.detail}", file=out)
    for note in found.notes:
        print(f"  [    note] {note}", file=out)
    problems = 0
    if found.address is None:
        problems += 1
        print(f"runner: none found. {_WITHOUT_RUNNER.get(settings.mode, _WITHOUT_RUNNER['auto'])}", file=out)
        print(f"  fix: {HOW_TO_START}", file=out)
    else:
        kind = "Docker Model Runner" if found.kind == "dmr" else "an OpenAI-compatible server (no model management)"
        print(f"runner: {kind} at {found.address.openai_url} (found: {found.source})", file=out)
        names = list(found.models)
        print(f"  models: {', '.join(model_names.short_model_name(name) for name in names) or 'none'}", file=out)
        if not any(model_names.same_model(settings.model, name) for name in names):
            problems += 1
            print(f"  missing: the default model {settings.model}; fix: `pytest-dmr pull {settings.model}` "
                  f"or `docker model pull {settings.model}`", file=out)
        if found.kind == "dmr":
            try:
                with _client(found, settings) as client:
                    for backend, status in client.engines_status().items():
                        print(f"  engine {backend}: {status}", file=out)
            except errors.DMRError as exc:
                print(f"  engines: could not read their status: {exc}", file=out)
    docker = shutil.which("docker")
    print(f"docker CLI: {docker or 'not found'}", file=out)
    has_testcontainers = importlib.util.find_spec("testcontainers") is not None
    print(f"provisioning: testcontainers {'installed' if has_testcontainers else 'missing'}"
          + ("" if has_testcontainers else "; fix: pip install 'pytest-dmr[containers]'"), file=out)
    print("verdict: " + ("ready" if problems == 0 else f"{problems} problem(s), see the fixes above"), file=out)
    if found.address is None:
        return EXIT_NO_RUNNER
    return EXIT_OK if problems == 0 else EXIT_FAILED


def running(settings: Settings, out: TextIO) -> int:
    """``models --running``: what ``/engines/ps`` says is loaded, one line per runner (model and mode)."""
    found = _find(settings, out)
    if found is None or found.address is None:
        return EXIT_NO_RUNNER
    if found.kind != "dmr":
        print(f"{found.address.openai_url} is an OpenAI-compatible server without model management: "
              "it cannot tell which models are loaded", file=out)  # fmt: skip
        return EXIT_FAILED
    with _client(found, settings) as client:
        loaded = client.running_models()
    if not loaded:
        print(f"no models loaded on {found.address.root}", file=out)
        return EXIT_OK
    rows = [
        (
            model_names.short_model_name(entry.model),
            entry.mode,
            "loading" if entry.loading else "in use" if entry.in_use else "idle",
            entry.keep_alive or "default",
            entry.last_used.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if entry.last_used else "-",
        )
        for entry in loaded
    ]
    header = ("MODEL", "MODE", "STATE", "KEEP ALIVE", "LAST USED")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1], file=out)
    return EXIT_OK


def models(settings: Settings, out: TextIO) -> int:
    found = _find(settings, out)
    if found is None or found.address is None:
        return EXIT_NO_RUNNER
    with _client(found, settings) as client:
        if found.kind != "dmr":
            for name in client.list_openai_models():
                print(name, file=out)
            return EXIT_OK
        listed = client.list_models()
    if not listed:
        print(f"no models on {found.address.root}; pull one with `pytest-dmr pull {settings.model}`", file=out)
        return EXIT_OK
    width = max(len(model_names.short_model_name(tag)) for model in listed for tag in model.tags or (model.name,))
    print(f"{'MODEL':<{width}}  {'SIZE':>11}  ID", file=out)
    for model in listed:
        model_id = model.id.removeprefix("sha256:")[:12]
        for tag in model.tags or (model.name,):  # one row per tag, as `docker images` does
            print(f"{model_names.short_model_name(tag):<{width}}  {model.size or '':>11}  {model_id}", file=out)
    return EXIT_OK


class _ProgressPrinter:
    """One line per 10% on a pipe; one line rewritten in place on a terminal."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self.stream = stream
        self.layers: dict[str, int] = {}
        self.last_step = -1
        self.tty = stream.isatty()

    def __call__(self, line: pull_stream.PullProgress) -> None:
        if line.type == "warning":
            print(f"warning: {line.message}", file=self.stream)
            return
        if line.type != "progress" or not line.total:
            return
        if line.layer_id:
            self.layers[line.layer_id] = line.layer_current
        done = sum(self.layers.values())
        text = f"pulling {self.name}: {pull_stream.format_size(done)} of {pull_stream.format_size(line.total)} ({done * 100 // line.total}%)"
        if self.tty:
            print("\r" + text, end="", file=self.stream, flush=True)
            return
        step = done * 10 // line.total
        if step > self.last_step:
            self.last_step = step
            print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        """End the line a terminal's progress was rewriting."""
        if self.tty and self.layers:
            print(file=self.stream)


def pull(settings: Settings, name: str, out: TextIO, err: TextIO) -> int:
    """Progress and failures go to ``err``, the outcome to ``out``."""
    found = _find(settings, out)
    if found is None or found.address is None:
        return EXIT_NO_RUNNER
    if found.kind != "dmr":
        print(f"{found.address.openai_url} is an OpenAI-compatible server without model management: it cannot pull", file=out)
        return EXIT_FAILED
    printer = _ProgressPrinter(name, err)
    try:
        with _client(found, settings) as client:
            result = client.pull(name, progress=printer)
    except errors.DMRError as exc:
        printer.finish()
        print(f"pull failed: {exc}", file=err)
        return _exit_code(exc)
    printer.finish()
    print(f"{model_names.normalize_model_name(name)}: {result.message}", file=out)
    return EXIT_OK


def collected_cassettes(pytest_args: Sequence[str]) -> tuple[list[Path], Path]:
    """The cassettes the tests pytest collects with ``pytest_args`` use (each test's own, or the one
    its ``dmr_cassette`` marker names), and pytest's root directory: pytest's own collection, in
    this process, its output kept quiet."""
    import pytest

    from pytest_dmr import recording

    used: list[Path] = []
    roots: list[Path] = []

    class CassetteProbe:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            roots.append(session.config.rootpath)
            used.extend(recording.cassette_of(item) for item in session.items if "::" in item.nodeid)

    shown = io.StringIO()
    # --assert=plain: pytest_dmr is imported already, so an installed (not editable) pytest-dmr would get
    # "Module already imported so cannot be rewritten", an error in a suite with filterwarnings = error.
    with contextlib.redirect_stdout(shown):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--assert=plain", *pytest_args],
                           plugins=[CassetteProbe()])
    if int(code) not in (0, 5) or not roots:  # 5: no tests collected
        raise errors.ConfigurationError(
            f"pytest could not collect the tests (exit code {int(code)}):\n{shown.getvalue().strip()}",
            hint="Fix what pytest --collect-only reports, then list the cassettes again",
        )
    return used, roots[0]


def cassettes(path: str | None, unused_only: bool, out: TextIO) -> int:
    """``cassettes [--unused] [PATH]``: each cassette under PATH (default: pytest's root directory),
    ``used`` or ``unused`` by the tests pytest collects there, and temporary files of interrupted
    writes (``leftover``). With ``--unused``, only those two kinds, and exit 1 when there are any."""
    from pytest_dmr.cassettes import list_cassettes

    used, rootdir = collected_cassettes([path] if path else [])
    root = Path(path) if path else rootdir
    found = list_cassettes([root if root.is_dir() else root.parent], used)
    lines = found.lines(unused_only=unused_only, relative_to=Path.cwd().resolve())
    for line in lines:
        print(line, file=out)
    if not lines:
        print("no unused cassettes" if unused_only else f"no cassettes under {root}", file=out)
    return EXIT_FAILED if unused_only and lines else EXIT_OK


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _runner_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    # Each flag also takes the plugin's spelling, which is how error messages name it.
    parser.add_argument("--url", "--dmr-url", default=default,
                        help="a runner's URL (skips discovery); default: DMR_URL, the ini file, or discovery")
    parser.add_argument("--timeout", "--dmr-timeout", metavar="SECONDS", default=default, help="request timeout in seconds")
    parser.add_argument("--discovery", "--dmr-discovery", metavar="GROUPS", default=default,
                        help="comma list of url,compose,host,container,desktop")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-dmr",
        description="Docker Model Runner for tests: check the set-up, list and pull models. Settings are "
        "resolved as pytest would resolve them here: these options, then the environment (DMR_URL, "
        "DMR_MODEL, DMR_DISCOVERY, ...), then the ini file.",
        epilog=EXIT_CODES_HELP,
    )
    _runner_options(parser, default=None)
    # The same options after the subcommand (`pytest-dmr models --url URL`); SUPPRESS keeps a value
    # given before the subcommand when none is given after it.
    after = argparse.ArgumentParser(add_help=False)
    _runner_options(after, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("doctor", parents=[after], help="what is reachable, what is missing, how to fix it",
                        epilog=EXIT_CODES_HELP)
    models_parser = commands.add_parser("models", parents=[after], help="the models on the runner, one row per tag",
                                        epilog=EXIT_CODES_HELP)
    models_parser.add_argument("--running", action="store_true", help="the models loaded now (DMR's /engines/ps)")
    pull_parser = commands.add_parser("pull", parents=[after], help="pull a model, with progress", epilog=EXIT_CODES_HELP)
    pull_parser.add_argument("name", help="a model reference, e.g. ai/smollm2 or smollm2:135M-Q4_0")
    cassettes_parser = commands.add_parser(
        "cassettes", help="the cassettes under PATH, used or unused by the tests collected there")
    cassettes_parser.add_argument("--unused", action="store_true",
                                  help="only cassettes no collected test uses (and leftovers); exit 1 if any")
    cassettes_parser.add_argument("path", nargs="?", help="a test directory or file (default: pytest's root directory)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "cassettes":
        if args.path is not None and not Path(args.path).exists():
            print(f"pytest-dmr: cassettes: no file or directory {args.path!r}; give a test directory or file, or none for "
                  "pytest's root directory", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        try:
            return cassettes(args.path, args.unused, sys.stdout)
        except errors.DMRError as exc:
            print(f"pytest-dmr: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        settings = _settings(args)
    except errors.ConfigurationError as exc:
        print(f"pytest-dmr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "doctor":
            return doctor(settings, sys.stdout)
        if args.command == "models":
            return running(settings, sys.stdout) if args.running else models(settings, sys.stdout)
        return pull(settings, args.name, sys.stdout, sys.stderr)
    except errors.DMRError as exc:
        print(f"pytest-dmr: {exc}", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
