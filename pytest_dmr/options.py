"""Every pytest-dmr setting as data: its flag, ini key, environment variables, default and help.

``plugin.py`` registers the flags and ini keys from :data:`OPTIONS`; ``settings.py`` resolves
them (flag > environment > ini > default). The table is plain data, so the same rows can
produce the configuration reference of the documentation. Importing this module costs nothing:
no dataclass, no regular expression, no other pytest-dmr module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

MODES = ("auto", "live", "mock", "off")
PROVISIONERS = ("never", "testcontainers")
DISCOVERY_GROUPS = ("url", "compose", "host", "container", "desktop")
DEFAULT_COMPOSE_REFS = ("LLM", "AI_RUNNER")
DEFAULT_TIMEOUT = 120.0
DEFAULT_MODEL = "ai/smollm2"
"""The run's default model (``protocol.addresses.DEFAULT_MODEL``, the mock's and the adapter's, is the same:
kept here too so that resolving the settings loads no protocol module)."""
DEFAULT_IMAGE = "docker/model-runner:latest"
"""The image of a provisioned runner (as ``protocol.addresses.DEFAULT_IMAGE``)."""
RECORD_MODES = ("none", "once", "new", "all", "verify")
"""``--dmr-record`` (the same tuple as ``pytest_dmr.cassettes.MODES``, kept here so the table stays import-free)."""
REPLAY_UNMATCHED = ("fail", "mock")


if TYPE_CHECKING:

    class Option(TypedDict, total=False):
        """One row: ``setting`` (the ``Settings`` field), ``flag`` (``None``: ini only), ``ini`` (the
        ini key, also the flag's argparse destination), ``env`` (variables, first present wins),
        ``default`` (as the documentation shows it), and what argparse and the ini take."""

        setting: str
        flag: str | None
        ini: str
        env: tuple[str, ...]
        default: str
        metavar: str
        action: str
        help: str
        ini_type: str
        ini_default: Any
        ini_help: str

else:
    Option = dict  # at run time a row is a dict: a TypedDict class would cost its fields' parsing at every import


OPTIONS: tuple[Option, ...] = (
    {
        "setting": "mode", "flag": "--dmr", "ini": "dmr_mode", "env": ("DMR_MODE",), "default": "auto",
        "metavar": "MODE",
        "help": f"{', '.join(MODES)}. auto (default): live when a runner is found, else the mock; live: a runner is "
        "required; mock: never touch a runner; off: fixtures unavailable, markers inert. [ini dmr_mode, env DMR_MODE]",
    },
    {
        "setting": "url", "flag": "--dmr-url", "ini": "dmr_url", "env": ("DMR_URL", "MODEL_RUNNER_URL", "MODEL_RUNNER_HOST"),
        "default": "none (discover)", "metavar": "URL",
        "help": "a runner's base URL; skips discovery. [ini dmr_url, env DMR_URL, MODEL_RUNNER_URL, MODEL_RUNNER_HOST]",
    },
    {
        "setting": "model", "flag": "--dmr-model", "ini": "dmr_model", "env": ("DMR_MODEL", "DEFAULT_LOCAL_MODEL"),
        "default": f"{DEFAULT_MODEL} (or a compose ref's <REF>_MODEL)", "metavar": "NAME",
        "help": f"default model ({DEFAULT_MODEL}). [ini dmr_model, env DMR_MODEL, DEFAULT_LOCAL_MODEL]",
    },
    {
        "setting": "provision", "flag": "--dmr-provision", "ini": "dmr_provision", "env": ("DMR_PROVISION",),
        "default": "never", "metavar": "WHAT",
        "help": f"{', '.join(PROVISIONERS)}: start a runner container when none is found. "
        "[ini dmr_provision, env DMR_PROVISION]",
    },
    {
        "setting": "image", "flag": "--dmr-image", "ini": "dmr_image", "env": ("DMR_IMAGE",),
        "default": DEFAULT_IMAGE, "metavar": "REF",
        "help": f"image of a provisioned runner ({DEFAULT_IMAGE}). [ini dmr_image, env DMR_IMAGE]",
    },
    {
        "setting": "pull", "flag": "--dmr-pull", "ini": "dmr_pull", "env": ("DMR_PULL",),
        "default": "on for a provisioned runner, off otherwise", "action": "store_true",
        "help": "pull models that tests need and the runner lacks (default: only on a provisioned runner). "
        "[ini dmr_pull, env DMR_PULL]",
    },
    {
        "setting": "pull", "flag": "--dmr-no-pull", "ini": "dmr_pull", "action": "store_false",
        "help": "never pull models.",
    },
    {
        "setting": "reuse", "flag": "--dmr-reuse", "ini": "dmr_reuse", "env": ("DMR_REUSE",), "default": "off",
        "action": "store_true",
        "help": "keep a provisioned runner alive for the next run. [ini dmr_reuse, env DMR_REUSE]",
    },
    {
        "setting": "require_live", "flag": "--dmr-require-live", "ini": "dmr_require_live", "env": ("DMR_REQUIRE_LIVE",),
        "default": "off", "action": "store_true",
        "help": "a test that cannot run live fails: a dmr_live or dmr_model test instead of skipping, any other "
        "(dmr_mock tests aside) instead of running on the mock. "
        "[ini dmr_require_live, env DMR_REQUIRE_LIVE]",
    },
    {
        "setting": "discovery", "flag": "--dmr-discovery", "ini": "dmr_discovery", "env": ("DMR_DISCOVERY",),
        "default": "all groups (container only inside a container)", "metavar": "GROUPS",
        "help": f"comma list of the probes discovery runs: {','.join(DISCOVERY_GROUPS)} (default all; "
        "container only inside a container). [ini dmr_discovery, env DMR_DISCOVERY]",
    },
    {
        "setting": "timeout", "flag": "--dmr-timeout", "ini": "dmr_timeout", "env": ("DMR_TIMEOUT", "LOCAL_MODEL_TIMEOUT"),
        "default": "120 s", "metavar": "SECONDS",
        "help": "request timeout in seconds (120). [ini dmr_timeout, env DMR_TIMEOUT (s), LOCAL_MODEL_TIMEOUT (ms)]",
    },
    {
        "setting": "record", "flag": "--dmr-record", "ini": "dmr_record", "env": ("DMR_RECORD",), "default": "none",
        "metavar": "MODE",
        "help": f"{', '.join(RECORD_MODES)}: cassettes of real answers, cassettes/<module>/<test>.json beside each test "
        "module. none (default): a test with a cassette replays it, no runner needed; once: record the tests that have "
        "none; new: add the requests a cassette lacks; all: record every cassette again; verify: run live and fail "
        "tests whose answers drifted from their cassette. [ini dmr_record, env DMR_RECORD]",
    },
    {
        "setting": "replay_pacing", "flag": "--dmr-replay-pacing", "ini": "dmr_replay_pacing", "env": ("DMR_REPLAY_PACING",),
        "default": "off", "action": "store_true",
        "help": "replay cassette streams with their recorded pacing (the recorded gap before each chunk; default: "
        "every chunk at once). [ini dmr_replay_pacing, env DMR_REPLAY_PACING]",
    },
    {
        "setting": "compose_refs", "flag": None, "ini": "dmr_compose_refs", "env": (), "default": "LLM AI_RUNNER",
        "ini_type": "args", "ini_default": list(DEFAULT_COMPOSE_REFS),
        "ini_help": "pytest-dmr: compose model refs whose <REF>_URL / <REF>_MODEL variables point at a runner",
    },
    {
        "setting": "assert_all_rules_used", "flag": None, "ini": "dmr_assert_all_rules_used", "env": (), "default": "off",
        "ini_help": "pytest-dmr: a passing test errors at teardown when a rule it gave dmr_mock answered no request "
        "(default false; @pytest.mark.dmr_mock(assert_all_rules_used=...) wins)",
    },
    {
        "setting": "replay_unmatched", "flag": None, "ini": "dmr_replay_unmatched", "env": (), "default": "fail",
        "ini_help": "pytest-dmr: a request a replayed cassette lacks: fail (default: the test fails, naming the closest "
        "recorded request and what differs) or mock (the test's mock answers it)",
    },
)
"""Flags in the order ``--help`` shows them; each ini key once, at its first row."""

GROUP = ("dmr", "Docker Model Runner (pytest-dmr); each flag has an ini key and an environment variable")
"""The name and description of the options' group in ``pytest --help``."""

FLAG_DESTS: dict[str, str] = {flag: row["ini"] for row in OPTIONS if (flag := row.get("flag")) and row.get("env")}
"""Each flag (``--dmr-no-pull`` aside, which shares ``--dmr-pull``'s) and its argparse destination
(its ini key), as :func:`pytest_dmr.settings.resolve` names the flags."""
INI_KEYS = tuple(dict.fromkeys(row["ini"] for row in OPTIONS))
"""Every ini key: each flag's destination, and two keys without a flag."""

MARKERS = {
    "dmr_live": "dmr_live: the test needs a live Docker Model Runner; it skips (or fails with --dmr-require-live) "
    "where none is available.",
    "dmr_model": "dmr_model(*names): the test needs these models on a live runner (pulled when pulling is on, "
    "else the test skips); the mock serves any model.",
    "dmr_mock": "dmr_mock: the test always runs on the mock, even when a live runner is available. "
    "dmr_mock(assert_all_rules_used=True): also, once the test has passed, it errors at teardown when a rule it "
    "gave dmr_mock answered no request (default: ini dmr_assert_all_rules_used, false); the closest marker wins.",
    "dmr_cassette": "dmr_cassette(name): the test replays (or records) the cassette cassettes/<module>/<name>.json "
    "instead of its own cassettes/<module>/<test>.json; tests naming one cassette share it.",
}
"""The markers and their ``pytest --markers`` lines (the plugin, or the shim when the plugin is disabled, registers them)."""


def register_ini(parser: Any, disabled: str | None = None) -> None:
    """Register every ini key on a ``pytest.Parser``: the plugin's, or the shim's when the plugin is
    disabled (``disabled`` is then every key's help)."""
    first_rows = {row["ini"]: row for row in reversed(OPTIONS)}
    for key in INI_KEYS:
        row = first_rows[key]
        if row.get("flag"):
            parser.addini(key, disabled or f"pytest-dmr: default for {row['flag']}", default="")
        elif "ini_type" in row:
            parser.addini(key, disabled or row["ini_help"], type=row["ini_type"], default=list(row["ini_default"]))
        else:
            parser.addini(key, disabled or row["ini_help"], default="")
