"""The cache's vector-index options, checked once (a value object, like httpx's Timeout).

Every index is built as ``factory(client, options)``; each backend reads the options that
apply to it. Part of :mod:`cachekit._index`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..errors import CacheConfigError

__all__ = ["DEFAULT_EF_RUNTIME", "QUANTIZATIONS", "IndexOptions"]

#: cachekit option -> VADD quantization token (vector sets).
QUANTIZATIONS: Final[Mapping[str, str]] = {"int8": "Q8", "fp32": "NOQUANT", "bin": "BIN"}
#: Default search-time exploration factor (VSIM EF / FT EF_RUNTIME), the knee of the
#: recall/latency curve in benchmarks/RESULTS.md ("Search-time EF"): at 100k QQP vectors
#: EF 100 keeps recall@1 at 0.992 (384-d int8 vector set; 0.993 at 200) for ~30% less
#: search time than 200, while 50 drops it to 0.985 and RediSearch's own 10 far lower.
DEFAULT_EF_RUNTIME: Final = 100


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """``quantization`` ("int8" | "fp32" | "bin") of vector sets (the other built-ins store
    float32), ``ef_runtime`` the search-time exploration factor of the HNSW backends,
    ``index_name`` the search backend's FT index. All are checked whatever the backend,
    so a typo fails even while another backend runs."""

    quantization: str = "int8"
    ef_runtime: int = DEFAULT_EF_RUNTIME
    index_name: str = "cachekit"

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise CacheConfigError(
                f"unknown quantization {self.quantization!r}; valid: {', '.join(QUANTIZATIONS)}"
            )
        if isinstance(self.ef_runtime, bool) or not isinstance(self.ef_runtime, int):
            raise CacheConfigError(f"ef_runtime must be an integer, got {self.ef_runtime!r}")
        if self.ef_runtime < 1:
            raise CacheConfigError(f"ef_runtime must be >= 1, got {self.ef_runtime}")
        name = self.index_name
        if not isinstance(name, str) or not name or any(ch.isspace() for ch in name):
            raise CacheConfigError(f"bad search index name {name!r}")
