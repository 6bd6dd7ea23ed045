"""How many of the fuzz cases' examples escape the DMRError tree, per parser.

Runs every case of ``tests/core/test_protocol_fuzz.py`` with the same derandomized examples as
the test, but counts the escapes (by exception type) instead of failing at the first one. Run it on
a commit before the parsers were hardened, and after, to compare.

    .venv/bin/python benchmarks/fuzz_escapes.py
"""

from __future__ import annotations

import collections
import importlib.util
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> int:
    spec = importlib.util.spec_from_file_location("test_protocol_fuzz", HERE.parent / "tests" / "core" / "test_protocol_fuzz.py")
    assert spec is not None and spec.loader is not None
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz  # dataclasses look their module up
    spec.loader.exec_module(fuzz)
    total = 0
    for case in fuzz.CASES:
        tried = 0
        escapes: collections.Counter[str] = collections.Counter()

        def record(value: Any, result: str, escaped: BaseException | None) -> None:
            nonlocal tried
            tried += 1
            if escaped is not None:
                escapes[type(escaped).__name__] += 1

        fuzz.run_case(case, record)
        kinds = ", ".join(f"{name} {count}" for name, count in escapes.most_common())
        print(f"{case.name}: {sum(escapes.values())} escapes{f' ({kinds})' if kinds else ''}, {tried} examples")
        total += sum(escapes.values())
    print(f"total escapes: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
