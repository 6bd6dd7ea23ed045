"""Regular expressions compiled on first use: most runs never need them."""

from __future__ import annotations

import functools
import re



@functools.lru_cache(maxsize=None)
def compiled(pattern: str) -> re.Pattern[str]:
    """Compile on first use: this module is imported on every pytest run, most of which never need these."""
    return re.compile(pattern)
