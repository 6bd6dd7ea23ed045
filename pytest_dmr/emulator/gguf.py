"""Read a GGUF file's header: its key/value metadata and parameter count, without the weights.

Only the header is read (a few hundred kilobytes even for large models), so describing a
catalogue of multi-gigabyte files stays cheap. Values are turned into strings the way DMR's
packager writes its ``gguf`` config map: arrays over 50 items are dropped, shorter arrays are
joined with ``", "``, floats use Go's ``%f``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pytest_dmr import errors

GGUF_MAGIC = b"GGUF"
MAX_ARRAY_ITEMS = 50
MAX_ARRAY_DEPTH = 8
"""Arrays of arrays nested deeper than this are not a model's metadata: the header is refused."""

_SCALARS = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING, _ARRAY = 8, 9
_FLOATS = (6, 12)

# llama.cpp's ``general.file_type`` values (enum llama_ftype) and the names DMR shows.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}


class GGUFError(errors.DMRError, ValueError):
    """The file is not a GGUF file, or its header is cut short or malformed."""


@dataclass(frozen=True)
class GGUFHeader:
    """What a GGUF header says: metadata as strings, typed values, and the parameter count."""

    metadata: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    parameters: int = 0

    @property
    def architecture(self) -> str | None:
        value = self.values.get("general.architecture")
        return str(value) if value is not None else None

    @property
    def context_length(self) -> int | None:
        value = self.values.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None

    @property
    def quantization(self) -> str | None:
        value = self.values.get("general.file_type")
        return FILE_TYPES.get(value) if isinstance(value, int) else None

    @property
    def has_pooling(self) -> bool:
        """Whether the model names its own pooling (embedding models do; chat models do not)."""
        return f"{self.architecture}.pooling_type" in self.values


def format_parameters(count: int) -> str:
    """A parameter count as older Hub artifacts write it: ``134.52 M``, ``1.24 B``."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)


class _Reader:
    """Reads a header's values; every size and count is checked against the bytes left, so a
    corrupt header is a :class:`GGUFError`, not a huge allocation or seek."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        start = stream.tell()
        self.end = stream.seek(0, 2)
        stream.seek(start)

    def _advance(self, size: int) -> None:
        if self.stream.tell() + size > self.end:
            raise GGUFError("the GGUF header is cut short")

    def read(self, size: int) -> bytes:
        self._advance(size)
        return self.stream.read(size)

    def skip(self, size: int) -> None:
        self._advance(size)
        self.stream.seek(size, 1)

    def scalar(self, kind: int) -> Any:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.read(self.scalar(10)).decode("utf-8", errors="replace")

    def value(self, kind: int, depth: int = 0) -> Any:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.array_header(depth)
            if count > MAX_ARRAY_ITEMS:
                self.skip_array(item_kind, count, depth + 1)
                return None
            return [self.value(item_kind, depth + 1) for _ in range(count)]
        return self.scalar(self.scalar_kind(kind))

    def array_header(self, depth: int) -> tuple[int, int]:
        if depth >= MAX_ARRAY_DEPTH:
            raise GGUFError(f"GGUF arrays nested more than {MAX_ARRAY_DEPTH} deep")
        return self.scalar(4), self.scalar(10)

    @staticmethod
    def scalar_kind(kind: int) -> int:
        if kind not in _SCALARS:
            raise GGUFError(f"unknown GGUF value type {kind}")
        return kind

    def skip_array(self, kind: int, count: int, depth: int) -> None:
        if kind == _STRING:
            for _ in range(count):
                self.skip(self.scalar(10))
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array(*self.array_header(depth), depth + 1)
        else:
            self.skip(struct.calcsize(_SCALARS[self.scalar_kind(kind)]) * count)


def _as_text(kind: int, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) or kind in _FLOATS:
        return f"{value:f}"
    if isinstance(value, list):
        return ", ".join(_as_text(-1, item) for item in value)
    return str(value)


def read_header(path: str | Path) -> GGUFHeader:
    """Parse the metadata and tensor table of a GGUF file (versions 2 and 3)."""
    with open(path, "rb") as stream:
        return parse_header(stream, name=str(path))


def parse_header(stream: BinaryIO, *, name: str = "the file") -> GGUFHeader:
    """Parse a GGUF header from an open binary stream; :class:`GGUFError` if it is not one."""
    reader = _Reader(stream)
    if reader.read(4) != GGUF_MAGIC:
        raise GGUFError(f"{name} is not a GGUF file (no GGUF magic number)")
    version = reader.scalar(4)
    if version < 2:
        raise GGUFError(f"{name} is GGUF version {version}; versions 2 and 3 are supported")
    tensor_count, kv_count = reader.scalar(10), reader.scalar(10)
    metadata: dict[str, str] = {}
    values: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string()
        kind = reader.scalar(4)
        value = reader.value(kind)
        if value is None:
            continue
        values[key] = value
        metadata[key] = _as_text(kind, value)
    parameters = 0
    for _ in range(tensor_count):
        reader.skip(reader.scalar(10))  # the tensor's name
        dimensions = [reader.scalar(10) for _ in range(reader.scalar(4))]
        reader.scalar(4)  # tensor type
        reader.scalar(10)  # offset
        elements = 1
        for dimension in dimensions:
            elements *= dimension
        parameters += elements
    return GGUFHeader(metadata=metadata, values=values, parameters=parameters)
