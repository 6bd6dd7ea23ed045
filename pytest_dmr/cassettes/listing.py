"""Where a test's cassette lives, and which cassettes no test uses any more.

A test's cassette is ``cassettes/<module>/<test>.json`` beside its module: ``tests/test_chat.py::
TestChat::test_hi[short]`` -> ``tests/cassettes/test_chat/TestChat.test_hi[short].json``;
``@pytest.mark.dmr_cassette("greeting")`` -> ``tests/cassettes/test_chat/greeting.json`` (a name
with ``/`` makes subdirectories, ``shared/greeting``; it never leaves the module's directory).
Characters a file name should not hold become ``_``; a very long name is cut and ends with a hash.

``pytest-dmr cassettes [--unused] [PATH]`` is :func:`list_cassettes` given the cassettes the
collected tests would use (:func:`cassette_for_nodeid`, or the plugin's own paths when markers
name them) and the roots to search.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_dmr.cassettes.format import EXTENSION, FORMAT_KEY
from pytest_dmr.cassettes.storage import is_leftover
from pytest_dmr.errors import ConfigurationError

CASSETTE_DIR = "cassettes"
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]=,+@]+")
_MAX_NAME = 120


def safe_name(name: str) -> str:
    """``name`` as a portable file name: unsafe runs become ``_``, long names are cut and hashed."""
    safe = _UNSAFE.sub("_", name).strip(".") or "_"
    if len(safe) > _MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        safe = f"{safe[: _MAX_NAME - 13]}-{digest}"
    return safe


def cassette_path(module: Path, test: str, name: str | None = None) -> Path:
    """The cassette of test ``test`` (``Class.test[param]``) in ``module`` (a ``.py`` path), or the
    one ``dmr_cassette(name)`` names."""
    parts = (name or test).split("/") if name else [test]
    if name is not None and (not name.strip("/") or any(part in ("", ".", "..") for part in parts)):
        raise ConfigurationError(f"@pytest.mark.dmr_cassette({name!r}): a cassette name is a plain name, "
                                 "or names joined by '/', without '.' or '..' parts")
    *folders, last = [safe_name(part) for part in parts]
    return module.parent.joinpath(CASSETTE_DIR, module.stem, *folders, last + EXTENSION)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``tests/test_a.py::TestX::test_y[1]`` -> ``("tests/test_a.py", "TestX.test_y[1]")``."""
    module, _, rest = nodeid.partition("::")
    if not rest:
        raise ValueError(f"{nodeid!r} is not a test's node id (no '::')")
    return module, rest.replace("::", ".")


def cassette_for_nodeid(nodeid: str, rootdir: Path, name: str | None = None) -> Path:
    """The cassette a collected test uses (``rootdir``: pytest's, which node ids are relative to)."""
    module, test = split_nodeid(nodeid)
    return cassette_path(rootdir / module, test, name)


def _is_cassette(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return f'"{FORMAT_KEY}"'.encode() in file.read(256)
    except OSError:
        return False


def find_cassettes(roots: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Every cassette under a ``cassettes`` directory below ``roots``, and leftover temporary files."""
    cassettes: set[Path] = set()
    leftovers: set[Path] = set()
    for root in roots:
        for directory in [root] if root.name == CASSETTE_DIR else root.rglob(CASSETTE_DIR):
            if not directory.is_dir():
                continue
            for path in directory.rglob("*"):
                if is_leftover(path):
                    leftovers.add(path.resolve())
                elif path.suffix == EXTENSION and path.is_file() and _is_cassette(path):
                    cassettes.add(path.resolve())
    return sorted(cassettes), sorted(leftovers)


@dataclass
class CassetteListing:
    """Cassettes found, split by whether a collected test uses them; ``leftovers``: temporary files
    of writes that never finished (safe to delete)."""

    used: list[Path] = field(default_factory=list)
    unused: list[Path] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)

    def lines(self, *, unused_only: bool = False, relative_to: Path | None = None) -> list[str]:
        """The command's output: ``used PATH``/``unused PATH``/``leftover PATH`` (only unused ones and
        leftovers with ``unused_only``)."""

        def shown(path: Path) -> str:
            if relative_to is not None and path.is_relative_to(relative_to):
                return str(path.relative_to(relative_to))
            return str(path)

        rows = [] if unused_only else [("used", path) for path in self.used]
        rows += [("unused", path) for path in self.unused] + [("leftover", path) for path in self.leftovers]
        return [f"{kind:8} {shown(path)}" for kind, path in sorted(rows, key=lambda row: row[1])]


def list_cassettes(roots: Iterable[Path], used: Iterable[Path]) -> CassetteListing:
    """The cassettes under ``roots``, split by whether they are in ``used`` (the paths collected tests use)."""
    wanted = {path.resolve() for path in used}
    found, leftovers = find_cassettes(roots)
    return CassetteListing(
        used=[path for path in found if path in wanted],
        unused=[path for path in found if path not in wanted],
        leftovers=leftovers,
    )
