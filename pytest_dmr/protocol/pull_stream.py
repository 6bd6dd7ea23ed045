"""Pull progress lines (``POST /models/create``, DMR-PROTOCOL.md section 2.4)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_dmr import errors
from pytest_dmr.protocol import _shapes
from pytest_dmr.protocol._regex import compiled
from pytest_dmr.protocol.encoding import JSON_CONTENT_TYPE, dumps, loads


PULL_SUCCESS_MESSAGE = "Model pulled successfully"
_HTML_ESCAPES = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;"}
_HTML_UNESCAPES = {escaped: raw for raw, escaped in _HTML_ESCAPES.items()} | {"&quot;": '"', "&#x27;": "'"}
_HTML_ENTITY = "|".join(re.escape(entity) for entity in _HTML_UNESCAPES)


def html_escape(text: str) -> str:
    """Go's ``html.EscapeString``: the five characters ``& ' < > "``, nothing else."""
    return "".join(_HTML_ESCAPES.get(char, char) for char in text)


def html_unescape(text: str) -> str:
    """Undo :func:`html_escape` (what DMR's CLI does to each line of a text/plain pull)."""
    return compiled(_HTML_ENTITY).sub(lambda found: _HTML_UNESCAPES[found.group(0)], text)


def pull_wants_raw_json(accept: str | None) -> bool:
    """DMR sends raw JSON lines only when ``Accept`` is exactly ``application/json``."""
    return accept == JSON_CONTENT_TYPE


def pull_content_type(accept: str | None) -> str:
    return JSON_CONTENT_TYPE if pull_wants_raw_json(accept) else "text/plain"


def downloaded_message(transferred: int) -> str:
    """The (deprecated, still sent) progress message: ``Downloaded: 12.50 MB`` (MB = bytes/1024/1024)."""
    return f"Downloaded: {transferred / 1024 / 1024:.2f} MB"


def format_size(size: int) -> str:
    """A size as DMR's configs write it: ``256.35 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    raise AssertionError("unreachable")


def cached_model_message(size: str) -> str:
    return f"Using cached model: {size}"


@dataclass(frozen=True)
class PullProgress:
    """One line of a pull stream. ``layer_id`` is ``None`` on lines about no particular layer."""

    type: str
    message: str = ""
    total: int = 0
    layer_id: str | None = None
    layer_size: int = 0
    layer_current: int = 0
    mode: str = "pull"

    @property
    def is_error(self) -> bool:
        return self.type == "error"

    def to_json(self) -> dict[str, Any]:
        layer: dict[str, Any] = {}
        if self.layer_id:
            layer["id"] = self.layer_id
        layer["size"] = self.layer_size
        layer["current"] = self.layer_current
        return {"type": self.type, "message": self.message, "total": self.total, "layer": layer, "mode": self.mode}


def encode_pull_line(progress: PullProgress, *, raw_json: bool) -> bytes:
    """One line of a pull stream, HTML-escaped unless the client asked for raw JSON."""
    line = dumps(progress.to_json())
    return ((line if raw_json else html_escape(line)) + "\n").encode()


def parse_pull_line(line: str, *, escaped: bool) -> PullProgress | None:
    """Parse one pull line; ``None`` for a blank or non-JSON line (DMR appends plain text after an
    error), or one that is not a progress object (no string ``type``, a number that is not one).

    Accepts both layer key casings: ``id/size/current`` (current) and ``ID/Size/Current`` (before
    v1.0.12).
    """
    text = line.strip()
    if escaped:
        text = html_unescape(text)
    if not text.startswith("{"):
        return None
    try:
        data = loads(text)
    except ValueError:
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        return None
    layer = data.get("layer")
    if not isinstance(layer, Mapping):
        layer = {}

    def field_of(name: str) -> Any:
        return layer.get(name, layer.get(name.capitalize() if name != "id" else "ID"))

    try:
        return PullProgress(
            type=data["type"],
            message=_shapes.plain(data.get("message")) or "",
            total=_shapes.integer(data.get("total"), "total"),
            layer_id=_shapes.plain(field_of("id")) or None,
            layer_size=_shapes.integer(field_of("size"), "layer size"),
            layer_current=_shapes.integer(field_of("current"), "layer current"),
            mode=_shapes.plain(data.get("mode")) or "pull",
        )
    except errors.MalformedResponseError:  # a number that is not one: not a line we can use
        return None


def pull_error_progress(error: str) -> PullProgress:
    """The ``type: error`` line of a pull that failed after streaming began."""
    return PullProgress(type="error", message=f"Error: {error}")


def pull_failure_text(error: str) -> str:
    """The plain-text line DMR appends after a pull's error line."""
    return f"error while pulling model: {error}"
