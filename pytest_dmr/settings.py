"""Flags, ini keys and environment variables -> one :class:`Settings` for the run (read-only by convention).

Precedence, for every setting: command-line flag > environment variable > ini key > default, the
order pytest-django uses: a CI matrix sets the environment per job, and a project's ini is its
standing default, so ``DMR_MODE=live`` in a job beats ``dmr_mode = mock`` in pytest.ini.
Empty values count as unset. This module knows nothing of pytest: ``plugin.py`` gathers the flag
and ini values and turns :class:`~pytest_dmr.errors.ConfigurationError` into ``pytest.UsageError``.

| setting      | flag                        | ini                | environment                                  | default |
|--------------|-----------------------------|--------------------|----------------------------------------------|---------|
| mode         | ``--dmr``                   | ``dmr_mode``       | ``DMR_MODE``                                 | ``auto`` |
| url          | ``--dmr-url``               | ``dmr_url``        | ``DMR_URL``, ``MODEL_RUNNER_URL``, ``MODEL_RUNNER_HOST`` | none (discover) |
| model        | ``--dmr-model``             | ``dmr_model``      | ``DMR_MODEL``, ``DEFAULT_LOCAL_MODEL``, then ``<REF>_MODEL`` | ``ai/smollm2`` |
| provision    | ``--dmr-provision``         | ``dmr_provision``  | ``DMR_PROVISION``                            | ``never`` |
| image        | ``--dmr-image``             | ``dmr_image``      | ``DMR_IMAGE``                                | ``docker/model-runner:latest`` |
| pull         | ``--dmr-pull/--dmr-no-pull``| ``dmr_pull``       | ``DMR_PULL``                                 | on for a provisioned runner, off otherwise |
| reuse        | ``--dmr-reuse``             | ``dmr_reuse``      | ``DMR_REUSE``                                | off |
| require_live | ``--dmr-require-live``      | ``dmr_require_live`` | ``DMR_REQUIRE_LIVE``                       | off |
| discovery    | ``--dmr-discovery``         | ``dmr_discovery``  | ``DMR_DISCOVERY``                            | all groups |
| timeout      | ``--dmr-timeout`` (s)       | ``dmr_timeout`` (s) | ``DMR_TIMEOUT`` (s), ``LOCAL_MODEL_TIMEOUT`` (ms) | 120 s |
| compose_refs | (none)                      | ``dmr_compose_refs`` | (none)                                     | ``LLM AI_RUNNER`` |
| assert_all_rules_used | (none: the ``dmr_mock`` marker's keyword) | ``dmr_assert_all_rules_used`` | (none) | off |
| record       | ``--dmr-record``            | ``dmr_record``     | ``DMR_RECORD``                               | ``none`` |
| replay_pacing | ``--dmr-replay-pacing``    | ``dmr_replay_pacing`` | ``DMR_REPLAY_PACING``                     | off |
| replay_unmatched | (none)                  | ``dmr_replay_unmatched`` | (none)                                 | ``fail`` |

:func:`ineffective_settings` says which settings the user gave have no effect in this run (the
plugin warns about them at configure time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_dmr.options import (
    DEFAULT_COMPOSE_REFS,
    DEFAULT_IMAGE,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    DISCOVERY_GROUPS,
    MODES,
    PROVISIONERS,
    RECORD_MODES,
    REPLAY_UNMATCHED,
)

if TYPE_CHECKING:
    from typing import Self

    from pytest_dmr.errors import ConfigurationError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Record:
    """Named fields (the class's ``__slots__``), compared field by field, with a named tuple's ``_asdict``
    and ``_replace``. The settings and discovery's records are these, not named tuples: defining a named
    tuple compiles its constructor from source at import, and every run resolves the settings (and, in
    auto mode, discovers). Read-only by convention; ``_replace`` makes a changed copy."""

    __slots__: tuple[str, ...] = ()

    def _asdict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**(self._asdict() | changes))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._asdict() == other._asdict()

    def __hash__(self) -> int:  # hashable as the named tuples they replaced (fields of lists are not)
        return hash((type(self).__name__, *self._asdict().values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self._asdict().items())})"


class Settings(Record):
    """Every pytest-dmr setting of one run, resolved once. ``*_source`` says where a value came from.

    ``pull``: ``None`` when decided by who owns the runner (see :meth:`pull_for`);
    ``assert_all_rules_used``: the ini's default for ``@pytest.mark.dmr_mock(assert_all_rules_used=...)``;
    ``record``: ``--dmr-record``, what tests do with their cassettes (``pytest_dmr.cassettes.session``);
    ``replay_unmatched``: a request a replayed cassette lacks: ``fail`` the test, or let the test's mock
    answer it; ``replay_pacing``: ``--dmr-replay-pacing``, replayed streams keep their recorded gaps."""

    __slots__ = (
        "mode", "mode_source", "url", "url_source", "model", "model_source", "provision", "provision_source",
        "image", "image_source", "pull", "pull_source", "reuse", "reuse_source", "require_live",
        "require_live_source", "discovery", "timeout", "timeout_source", "compose_refs", "assert_all_rules_used",
        "record", "record_source", "replay_unmatched", "replay_pacing", "replay_pacing_source",
    )

    def __init__(
        self,
        mode: str = "auto", mode_source: str = "default",
        url: str | None = None, url_source: str | None = None,
        model: str = DEFAULT_MODEL, model_source: str = "default",
        provision: str = "never", provision_source: str = "default",
        image: str = DEFAULT_IMAGE, image_source: str = "default",
        pull: bool | None = None, pull_source: str = "default",
        reuse: bool = False, reuse_source: str = "default",
        require_live: bool = False, require_live_source: str = "default",
        discovery: tuple[str, ...] = DISCOVERY_GROUPS,
        timeout: float = DEFAULT_TIMEOUT, timeout_source: str = "default",
        compose_refs: tuple[str, ...] = DEFAULT_COMPOSE_REFS,
        assert_all_rules_used: bool = False,
        record: str = "none", record_source: str = "default",
        replay_unmatched: str = "fail",
        replay_pacing: bool = False, replay_pacing_source: str = "default",
    ) -> None:
        self.mode, self.mode_source, self.url, self.url_source = mode, mode_source, url, url_source
        self.model, self.model_source, self.provision, self.provision_source = model, model_source, provision, provision_source
        self.image, self.image_source, self.pull, self.pull_source = image, image_source, pull, pull_source
        self.reuse, self.reuse_source, self.require_live, self.require_live_source = reuse, reuse_source, require_live, require_live_source
        self.discovery, self.timeout, self.timeout_source, self.compose_refs = discovery, timeout, timeout_source, compose_refs
        self.assert_all_rules_used, self.record, self.record_source = assert_all_rules_used, record, record_source
        self.replay_unmatched, self.replay_pacing, self.replay_pacing_source = replay_unmatched, replay_pacing, replay_pacing_source

    def pull_for(self, *, provisioned: bool) -> bool:
        """Whether to pull missing models: explicit choice, else only on a runner we provisioned."""
        return provisioned if self.pull is None else self.pull

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        values = dict(data)
        for name in ("discovery", "compose_refs"):
            values[name] = tuple(values[name])
        return cls(**values)


def _error(message: str, *, hint: str | None) -> ConfigurationError:
    """A bad value's error (``errors.py`` loads then: a run whose settings are fine never needs it)."""
    from pytest_dmr.errors import ConfigurationError

    return ConfigurationError(message, hint=hint)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return True


def _pick(
    flag_name: str | None,
    ini_name: str | None,
    env_names: Sequence[str],
    options: Mapping[str, Any],
    ini: Mapping[str, Any],
    environ: Mapping[str, str],
) -> tuple[Any, str | None]:
    """The first value present along flag > environment > ini, with a label naming its origin."""
    if flag_name and _present(options.get(flag_name)):
        return options[flag_name], flag_name
    for name in env_names:
        if _present(environ.get(name)):
            return environ[name], name
    if ini_name and _present(ini.get(ini_name)):
        return ini[ini_name], f"{ini_name} (ini)"
    return None, None


def _text(value: Any) -> str:
    return str(value).strip()


def _choice(value: Any, allowed: Sequence[str], source: str) -> str:
    text = _text(value).lower()
    if text not in allowed:
        raise _error(
            f"{source}={_text(value)!r} is not valid",
            hint=f"Use one of: {', '.join(allowed)}",
        )
    return text


def _boolean(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _error(
        f"{source}={_text(value)!r} is not a yes/no value",
        hint=f"Use one of: {', '.join(_TRUE)} (on) or {', '.join(_FALSE)} (off)",
    )


def _number(value: Any, source: str, *, scale: float = 1.0) -> float:
    try:
        number = float(_text(value)) * scale
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        unit, example = ("milliseconds", "30000") if scale != 1.0 else ("seconds", "30 or 2.5")
        raise _error(
            f"{source}={_text(value)!r} is not a positive number of {unit}",
            hint=f"Give a timeout such as {example}",
        )
    return number


def _model(value: Any, source: str) -> str:
    """A model reference as DMR would pull it (``ai/smollm2``, ``hf.co/org/m:Q4_K_M``, an ID)."""
    from pytest_dmr.protocol import model_names  # only for a model given: most runs use the default

    name = _text(value)
    if not model_names.is_valid_reference(model_names.normalize_model_name(name)):
        raise _error(
            f"{source}={name!r} is not a model reference (a path traversal, a space, a '%' or a backslash has no "
            "place in one)",
            hint="Give a model reference such as ai/smollm2, ai/smollm2:360M-Q4_K_M, hf.co/org/model or a model ID",
        )
    return name


def _groups(value: Any, source: str) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else _text(value).replace(" ", ",").split(",")
    groups = tuple(dict.fromkeys(item.strip().lower() for item in items if item.strip()))
    wrong = [group for group in groups if group not in DISCOVERY_GROUPS]
    if wrong or not groups:
        raise _error(
            f"{source}={_text(value)!r} names no valid discovery group"
            if not groups
            else f"{source}={_text(value)!r}: unknown discovery group {', '.join(map(repr, wrong))}",
            hint=f"Give a comma list of: {', '.join(DISCOVERY_GROUPS)}",
        )
    return groups


def _refs(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else _text(value).split()
    return tuple(item.strip() for item in items if item.strip())


def compose_variables(refs: Sequence[str], environ: Mapping[str, str]) -> list[tuple[str, str, str | None]]:
    """``(ref, url, model)`` for each compose ref whose ``<REF>_URL`` is set, in ``refs`` order."""
    found = []
    for ref in refs:
        url = environ.get(f"{ref}_URL", "").strip()
        if url:
            model = environ.get(f"{ref}_MODEL", "").strip() or None
            found.append((ref, url, model))
    return found


def resolve(options: Mapping[str, Any], ini: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Build the run's settings.

    ``options`` maps flag spellings (``"--dmr"``, ``"--dmr-url"``, ...) to their values, ``None``
    when not given; ``ini`` maps ini keys to their values (``""`` when unset); ``environ`` is
    usually ``os.environ``. Raises :class:`~pytest_dmr.errors.ConfigurationError` naming the bad
    value, where it came from and the allowed values.
    """

    def pick(flag: str | None, ini_name: str | None, *env_names: str) -> tuple[Any, str | None]:
        return _pick(flag, ini_name, env_names, options, ini, environ)

    values: dict[str, Any] = {}

    raw, source = pick("--dmr", "dmr_mode", "DMR_MODE")
    if source:
        values["mode"] = _choice(raw, MODES, source)
        values["mode_source"] = source

    raw, source = pick("--dmr-url", "dmr_url", "DMR_URL", "MODEL_RUNNER_URL", "MODEL_RUNNER_HOST")
    if source:
        url = _text(raw)
        from pytest_dmr.errors import ConfigurationError
        from pytest_dmr.protocol import addresses  # only for a URL given: most runs discover

        try:
            addresses.parse_runner_url(url)
        except ConfigurationError as exc:
            raise _error(f"{source}: {exc.message}", hint=exc.hint) from None
        values["url"], values["url_source"] = url, source

    raw, source = pick("--dmr-model", "dmr_model", "DMR_MODEL", "DEFAULT_LOCAL_MODEL")
    refs = _refs(ini["dmr_compose_refs"]) if _present(ini.get("dmr_compose_refs")) else DEFAULT_COMPOSE_REFS
    values["compose_refs"] = refs
    if source is None:
        for ref, _url, model in compose_variables(refs, environ):
            if model:
                raw, source = model, f"{ref}_MODEL"
                break
    if source:
        values["model"], values["model_source"] = _model(raw, source), source

    raw, source = pick("--dmr-provision", "dmr_provision", "DMR_PROVISION")
    if source:
        values["provision"], values["provision_source"] = _choice(raw, PROVISIONERS, source), source

    raw, source = pick("--dmr-image", "dmr_image", "DMR_IMAGE")
    if source:
        values["image"], values["image_source"] = _text(raw), source

    for name, flag, ini_name, env_name in (
        ("pull", "--dmr-pull", "dmr_pull", "DMR_PULL"),
        ("reuse", "--dmr-reuse", "dmr_reuse", "DMR_REUSE"),
        ("require_live", "--dmr-require-live", "dmr_require_live", "DMR_REQUIRE_LIVE"),
        ("replay_pacing", "--dmr-replay-pacing", "dmr_replay_pacing", "DMR_REPLAY_PACING"),
    ):
        raw, source = pick(flag, ini_name, env_name)
        if source:
            values[name], values[f"{name}_source"] = _boolean(raw, source), source

    raw, source = pick(None, "dmr_assert_all_rules_used")
    if source:
        values["assert_all_rules_used"] = _boolean(raw, source)

    raw, source = pick("--dmr-record", "dmr_record", "DMR_RECORD")
    if source:
        values["record"], values["record_source"] = _choice(raw, RECORD_MODES, source), source

    raw, source = pick(None, "dmr_replay_unmatched")
    if source:
        values["replay_unmatched"] = _choice(raw, REPLAY_UNMATCHED, source)

    raw, source = pick("--dmr-discovery", "dmr_discovery", "DMR_DISCOVERY")
    if source:
        values["discovery"] = _groups(raw, source)

    raw, source = pick("--dmr-timeout", "dmr_timeout", "DMR_TIMEOUT")
    if source:
        values["timeout"], values["timeout_source"] = _number(raw, source), source
    elif _present(environ.get("LOCAL_MODEL_TIMEOUT")):
        values["timeout"] = _number(environ["LOCAL_MODEL_TIMEOUT"], "LOCAL_MODEL_TIMEOUT", scale=0.001)
        values["timeout_source"] = "LOCAL_MODEL_TIMEOUT"

    return Settings(**values)


# --------------------------------------------------------------------------------------------
# Settings the user gave that do nothing in this run
# --------------------------------------------------------------------------------------------

REUSE_WITHOUT_PROVISIONING = (
    "pytest-dmr: {setting} has no effect: it keeps a runner that pytest-dmr provisions alive for the next run, "
    "and provisioning is {provision}, so no runner is started. Add --dmr-provision=testcontainers "
    "(ini dmr_provision = testcontainers), or remove {setting}."
)
IMAGE_WITHOUT_PROVISIONING = (
    "pytest-dmr: {setting} has no effect: the image is only used to start a runner, and provisioning is "
    "{provision}, so pytest-dmr starts none (tests get the runner discovery finds, or the mock). Add "
    "--dmr-provision=testcontainers (ini dmr_provision = testcontainers) to start runners from it, or remove {setting}."
)
FLAGS_MOOT_IN_MODE = (
    "pytest-dmr: {flags} {verb} no effect with {mode}: {why}. Remove {them}, or run with --dmr=auto "
    "(or --dmr=live) to use a runner."
)
MOOT_BECAUSE = {
    "mock": "the mock never touches a runner, so nothing is provisioned or pulled",
    "off": "pytest-dmr is off, its fixtures unavailable and its markers inert",
}
REQUIRE_LIVE_ON_THE_MOCK = (
    "pytest-dmr: --dmr-require-live with {mode} fails every dmr_live and dmr_model test, as no test runs live "
    "on the mock. Remove --dmr-require-live, or run with --dmr=auto (or --dmr=live) to use a runner."
)
RECORD_ON_THE_MOCK = (
    "pytest-dmr: {setting} has no effect with {mode}: recording and verifying cassettes need a live runner, which "
    "the mock never touches (tests with a cassette still replay it). Remove {setting}, or run with --dmr=auto "
    "(or --dmr=live) to record."
)


def _flag(source: str | None) -> bool:
    return bool(source) and str(source).startswith("--")


def _flag_or_ini(source: str | None) -> bool:
    return _flag(source) or str(source).endswith("(ini)")


def setting_text(source: str, value: Any) -> str:
    """A setting as the user gave it: ``--dmr-reuse``, ``--dmr-image=me/runner:1``,
    ``dmr_reuse = true in the ini file``, ``DMR_MODE=mock``."""
    shown = {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value
    if source.startswith("--"):
        return source if value is True else f"{source}={shown}"
    if source.endswith("(ini)"):
        return f"{source.split()[0]} = {shown} in the ini file"
    return f"{source}={shown}"


def ineffective_settings(settings: Settings) -> list[str]:
    """Warnings for settings the user gave that have no effect in this run (none for defaults).

    * ``reuse`` on, or an ``image``, while provisioning is ``never``: from a flag or the ini file.
      Not from the environment, where a variable may be machine-wide (a shell profile, a CI job)
      or shared (``docker-compose.yml``'s runner service reads ``DMR_IMAGE`` too).
    * With mode ``mock`` or ``off``, the flags asking for a runner's features
      (``--dmr-provision=testcontainers``, ``--dmr-pull``, ``--dmr-reuse``, ``--dmr-image``,
      ``--dmr-require-live``): only flags, the run's explicit requests. The same settings in the ini
      file or the environment are the suite's standing configuration, which a mock or off mode
      overrides on purpose (``--dmr=mock`` to run without the runner it names); so is a URL.
    """
    warnings: list[str] = []
    mooted: list[str] = []
    provisioning = settings.provision == "testcontainers"
    provision = "never (the default)" if settings.provision_source == "default" else (
        f"never ({setting_text(settings.provision_source, settings.provision)})"
    )
    if settings.reuse and not provisioning and _flag_or_ini(settings.reuse_source):
        warnings.append(REUSE_WITHOUT_PROVISIONING.format(
            setting=setting_text(settings.reuse_source, True), provision=provision))
    if settings.image_source != "default" and not provisioning and _flag_or_ini(settings.image_source):
        warnings.append(IMAGE_WITHOUT_PROVISIONING.format(
            setting=setting_text(settings.image_source, settings.image), provision=provision))
    if settings.mode in MOOT_BECAUSE:
        mode = setting_text(settings.mode_source, settings.mode)
        if provisioning and _flag(settings.provision_source):
            mooted.append(setting_text(settings.provision_source, settings.provision))
        if provisioning and _flag(settings.image_source):  # without provisioning, warned above
            mooted.append(setting_text(settings.image_source, settings.image))
        if provisioning and settings.reuse and _flag(settings.reuse_source):
            mooted.append(setting_text(settings.reuse_source, True))
        if settings.pull and _flag(settings.pull_source):
            mooted.append(setting_text(settings.pull_source, True))
        if settings.require_live and _flag(settings.require_live_source):
            if settings.mode == "mock":
                warnings.append(REQUIRE_LIVE_ON_THE_MOCK.format(mode=mode))
            else:
                mooted.append(setting_text(settings.require_live_source, True))
        if settings.record != "none" and _flag(settings.record_source):
            if settings.mode == "mock":
                warnings.append(RECORD_ON_THE_MOCK.format(mode=mode, setting=setting_text(settings.record_source, settings.record)))
            else:
                mooted.append(setting_text(settings.record_source, settings.record))
        if mooted:
            warnings.append(FLAGS_MOOT_IN_MODE.format(
                flags=", ".join(mooted), verb="has" if len(mooted) == 1 else "have", mode=mode,
                why=MOOT_BECAUSE[settings.mode], them="it" if len(mooted) == 1 else "them"))
    return warnings
