"""Several emulators on one model store (runner containers sharing a models volume): concurrent
pulls of one model all succeed, the blob is written whole once, and no writer's index change is lost."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PULLER = r"""
import sys, time
from pathlib import Path
from pytest_dmr.emulator.catalog import Catalog
from pytest_dmr.emulator.store import ModelStore

store_dir, catalog_dir, go_file, reference = sys.argv[1:5]
store = ModelStore(store_dir, Catalog(catalog_dir))
tag, description = store.check_pull(reference)
while not Path(go_file).exists():
    time.sleep(0.001)
lines = list(store.pull(tag, description))
print(lines[-1].type, lines[-1].message)
"""


def gguf_file(path: Path, size: int) -> Path:
    """A GGUF header (no metadata) padded to ``size`` bytes, so a copy takes many chunks."""
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    path.write_bytes(header + bytes(range(256)) * ((size - len(header)) // 256))
    return path


def test_concurrent_pulls_into_one_store_all_succeed(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    model = gguf_file(catalog / "smollm2" / "latest.gguf", 24 * 1024 * 1024)
    gguf_file(catalog / "qwen3" / "latest.gguf", 3 * 1024 * 1024)
    store, go = tmp_path / "store", tmp_path / "go"
    references = ["ai/smollm2", "ai/smollm2", "ai/smollm2", "ai/qwen3"]
    processes = [
        subprocess.Popen([sys.executable, "-c", PULLER, str(store), str(catalog), str(go), reference],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for reference in references
    ]
    time.sleep(0.5)  # let every process reach its starting line
    go.touch()
    results = [process.communicate(timeout=120) for process in processes]
    for (out, err), process in zip(results, processes):
        assert process.returncode == 0, err
        assert out.split(" ", 1)[0] == "success", out
    index = json.loads((store / "models.json").read_text())
    assert sorted(tag for entry in index for tag in entry["tags"]) == ["docker.io/ai/qwen3:latest", "docker.io/ai/smollm2:latest"]
    blobs = store / "blobs" / "sha256"
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    assert hashlib.sha256((blobs / expected).read_bytes()).hexdigest() == expected
    assert not [name for name in os.listdir(blobs) if name.endswith((".incomplete", ".tmp"))]
