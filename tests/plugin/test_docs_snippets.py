"""The documentation's test snippets run as written.

Every Python block in ``docs/`` that follows a ``<!-- docs-snippet: NAME -->`` line is a test
module a user could paste: each becomes ``test_NAME.py`` in one pytester directory, with the
pytest-asyncio settings the quickstart tells users to add, and the run must pass every test, on
the mock (no runner), with warnings as errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
SNIPPET = re.compile(r"<!-- docs-snippet: ([\w-]+) -->\n```python\n(.*?)\n```", re.DOTALL)
QUICKSTART_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def snippets() -> dict[str, str]:
    found: dict[str, str] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for name, code in SNIPPET.findall(page.read_text(encoding="utf-8")):
            assert name not in found, f"two snippets are named {name!r} ({page})"
            found[name] = code
    return found


def test_the_docs_have_snippets() -> None:
    assert {"quickstart", "rules-order", "tool-call", "agent-loop", "faults", "recorded"} <= set(snippets())


def test_every_snippet_passes_on_the_mock(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    pytest.importorskip("anthropic")  # the formats snippet uses dmr_anthropic and dmr_openai
    pytest.importorskip("openai")
    found = snippets()
    pytester.makeini(QUICKSTART_INI)
    pytester.makepyfile(**{f"test_{name.replace('-', '_')}": code for name, code in found.items()})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock", "-W", "error", "-rs")
    tests = sum(len(re.findall(r"^(?:async )?def test_", code, re.MULTILINE)) for code in found.values())
    skipped = sum(code.count("@pytest.mark.dmr_live") for code in found.values())  # --dmr=mock: they skip
    result.assert_outcomes(passed=tests - skipped, skipped=skipped)
