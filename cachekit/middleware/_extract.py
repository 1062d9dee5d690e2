"""Compatibility: the names this module held before it was split (no code of its own).

``cachekit.proxy`` and older callers import from here; new code imports from
:mod:`._options`, :mod:`._request`, :mod:`._state` and :mod:`._steps`.
"""

from __future__ import annotations

from ._options import (
    DEFAULT,
    DEFAULT_METHODS,
    DEFAULT_PATHS,
    Default,
    Extractor,
    TenantFn,
)
from ._request import (
    EXTRACT_IGNORE,
    RequestControl,
    api_key_tenant,
    default_extractor,
    is_json_type,
    parse_body,
    parse_cache_control,
)
from ._state import RequestState, result_headers
from ._steps import Options

__all__ = [
    "DEFAULT",
    "DEFAULT_METHODS",
    "DEFAULT_PATHS",
    "EXTRACT_IGNORE",
    "Default",
    "Extractor",
    "Options",
    "RequestControl",
    "RequestState",
    "TenantFn",
    "api_key_tenant",
    "default_extractor",
    "is_json_type",
    "parse_body",
    "parse_cache_control",
    "result_headers",
]
