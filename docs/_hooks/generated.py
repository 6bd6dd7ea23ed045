"""MkDocs hook: the pages that are generated from the code at build time, so they cannot drift.

* ``<!-- generated: options -->``: a section per setting, from ``pytest_dmr.options.OPTIONS``
  (the rows ``plugin.py`` registers the flags and ini keys from);
* ``<!-- generated: markers -->``: the markers, from ``pytest_dmr.options.MARKERS`` (the lines
  ``pytest --markers`` shows);
* ``<!-- generated: fixtures -->``: the fixtures, their scope and docstring, read (not imported)
  from ``pytest_dmr/plugin.py``;
* ``<!-- generated: cli -->``: ``pytest-dmr --help`` and each subcommand's, from ``pytest_dmr.cli``'s parser
  (this one imports the package: the docs extra installs it);
* ``<!-- generated: errors -->``: the error tree from ``pytest_dmr/errors.py``'s docstring;
* ``<!-- generated: changelog -->``: ``CHANGELOG.md`` at the repository's root, its title left out.

``options.py`` imports nothing of pytest-dmr, so it is loaded from its file: the docs build needs
only mkdocs and mkdocs-material, not the package's dependencies.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _options_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_pytest_dmr_options", ROOT / "pytest_dmr" / "options.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(text: str) -> str:
    """Plain text for a table cell: ``<module>`` is a placeholder, not an HTML tag; ``_`` is no emphasis."""
    parts = text.replace("\n", " ").split("`")  # odd parts are code spans: left as they are
    for index in range(0, len(parts), 2):
        parts[index] = html.escape(parts[index], quote=False).replace("_", "\\_")
    return "`".join(parts).replace("|", "\\|")


def options_table() -> str:
    """One section per setting (headed by its ini key): flags, environment variables, default, meaning."""
    options = _options_module()
    rows: dict[str, dict[str, Any]] = {}
    for row in options.OPTIONS:  # --dmr-pull and --dmr-no-pull share the ini key dmr_pull: one section
        merged = rows.setdefault(row["ini"], {"flags": [], "env": (), "default": "", "help": ""})
        if row.get("flag"):
            merged["flags"].append(row["flag"] + (f"={row['metavar']}" if row.get("metavar") else ""))
        merged["env"] = merged["env"] or _environment(row)
        merged["default"] = merged["default"] or row.get("default", "")
        merged["help"] = merged["help"] or _meaning(row)
    sections = []
    for ini, row in rows.items():
        flags = ", ".join(f"`{flag}`" for flag in row["flags"]) or "none (ini only)"
        facts = [f"**Flag:** {flags}", f"**Environment:** {row['env'] or 'none'}", f"**Default:** {_cell(row['default'])}"]
        sections.append(f"### `{ini}`\n\n" + " · ".join(facts) + f"\n\n{_cell(_sentence(row['help']))}")
    return "\n\n".join(sections)


def _sentence(text: str) -> str:
    text = text.strip()
    return text + ("" if text.endswith(".") else ".")


def _environment(row: dict[str, Any]) -> str:
    """The variables as the help's ``[... env A (s), B (ms)]`` names them (units included), else the row's."""
    shown = re.search(r"\benv ([^\]]+)\]", row.get("help", ""))
    text = shown.group(1) if shown else ", ".join(row.get("env", ()))
    return re.sub(r"\b([A-Z][A-Z0-9_]+)\b", r"`\1`", text)


def _meaning(row: dict[str, Any]) -> str:
    """The flag's ``--help`` text without its trailing ``[ini ..., env ...]`` (the table has columns for
    those), or the ini key's help without its ``pytest-dmr:`` prefix."""
    text = row.get("help") or row.get("ini_help", "")
    text = text.split(" [ini ")[0]
    return text.removeprefix("pytest-dmr: ")


def markers_table() -> str:
    options = _options_module()
    lines = ["| marker | what `pytest --markers` says |", "|---|---|"]
    for name, line in options.MARKERS.items():
        signature, _, meaning = line.partition(": ")
        lines.append(f"| `@pytest.mark.{signature}` | {_cell(meaning)} |")
    return "\n".join(lines)


def fixtures_table() -> str:
    """Every public fixture ``plugin.py`` defines (``@pytest.fixture`` on a function not starting with ``_``)."""
    tree = ast.parse((ROOT / "pytest_dmr" / "plugin.py").read_text(encoding="utf-8"))
    lines = ["| fixture | scope | what it gives |", "|---|---|---|"]
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if ast.unparse(target) != "pytest.fixture":
                continue
            scope = next((ast.literal_eval(k.value) for k in (call.keywords if call else []) if k.arg == "scope"), "function")
            doc = inspect.cleandoc(ast.get_docstring(node) or "").split("\n\n")[0]
            lines.append(f"| `{node.name}` | {scope} | {_cell(_rst_to_md(doc))} |")
    return "\n".join(lines)


def _rst_to_md(text: str) -> str:
    return text.replace("``", "`")


def cli_help() -> str:
    """``pytest-dmr --help`` and every subcommand's ``--help``, as fenced text blocks."""
    import argparse
    import os

    from pytest_dmr.cli import build_parser

    os.environ["COLUMNS"] = "84"  # argparse wraps at the terminal's width: the same page on every machine
    parser = build_parser()
    blocks = [("pytest-dmr --help", parser.format_help())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            blocks += [(f"pytest-dmr {name} --help", sub.format_help()) for name, sub in action.choices.items()]
    return "\n\n".join(f"### `{title}`\n\n```text\n{text.rstrip()}\n```" for title, text in blocks)


def error_tree() -> str:
    """The tree drawn in ``errors.py``'s docstring (the block after its ``::`` line)."""
    doc = ast.get_docstring(ast.parse((ROOT / "pytest_dmr" / "errors.py").read_text(encoding="utf-8"))) or ""
    tree = doc.split("::\n", 1)[1]
    lines = [line[4:] for line in tree.splitlines() if line.strip()]
    return "```text\n" + "\n".join(lines).replace("``", "") + "\n```"


def changelog() -> str:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1] if text.startswith("# ") else text  # the page has its own title


GENERATORS = {
    "<!-- generated: options -->": options_table,
    "<!-- generated: markers -->": markers_table,
    "<!-- generated: fixtures -->": fixtures_table,
    "<!-- generated: cli -->": cli_help,
    "<!-- generated: errors -->": error_tree,
    "<!-- generated: changelog -->": changelog,
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
