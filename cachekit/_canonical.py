"""Canonical JSON for cache keys: same value, same bytes, on every worker.

Only values with an obvious, stable JSON form are accepted. Anything else (a socket, a
lambda, an open file) raises :class:`CacheKeyError` naming the parameter, because a key
built from ``repr()`` would differ between processes and silently never hit.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import CacheKeyError

__all__ = ["MAX_DEPTH", "MISSING", "canonical", "digest", "dumps_canonical", "is_missing"]

#: Deepest nesting of containers a key may have. Real requests (messages, tools, JSON
#: schemas) stay far below it; a hostile body nested hundreds of levels deep would
#: otherwise end in a RecursionError here or in ``json.dumps``. Checked with a counter
#: as the value is walked: no extra pass over the data.
MAX_DEPTH = 128


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Marker for "argument not given" (openai's NOT_GIVEN/Omit collapse to this).
MISSING: Any = _Missing()

_SENTINEL_NAMES = frozenset({"NotGiven", "Omit", "_Missing", "NotGivenOr"})


def is_missing(value: object) -> bool:
    """True for "not given" sentinels: cachekit's MISSING, openai/anthropic NOT_GIVEN and omit."""
    return value is MISSING or type(value).__name__ in _SENTINEL_NAMES


def _too_deep(where: str) -> CacheKeyError:
    name = where.split("[", 1)[0].split("{", 1)[0]
    return CacheKeyError(
        f"cannot build a cache key from {name}: it is nested more than {MAX_DEPTH} levels deep",
        parameter=name,
    )


def _bad_key(where: str, key: object) -> CacheKeyError:
    return CacheKeyError(
        f"cannot build a cache key from {where}: mapping key {key!r} is "
        f"{type(key).__name__}, only str keys are supported",
        parameter=where.split("[", 1)[0],
    )


def canonical(value: object, where: str, depth: int = 0) -> Any:
    """Turn ``value`` into plain JSON data with a stable form, or raise CacheKeyError.

    ``depth`` counts the containers above ``value``; past :data:`MAX_DEPTH` the value
    has no key (CacheKeyError), never a RecursionError.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    # Parsed JSON (request bodies, messages) is dicts and lists of plain scalars: walked
    # without the ABC checks and the per-value path strings of the general case below.
    if type(value) is dict:
        return _plain_dict(value, where, depth)
    if type(value) is list:
        return _plain_list(value, where, depth)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}
    if isinstance(value, enum.Enum):
        return canonical(value.value, where, depth)
    if depth >= MAX_DEPTH:
        raise _too_deep(where)
    depth += 1
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad_key(where, k)
            if is_missing(v):
                continue
            out[k] = canonical(v, f"{where}[{k!r}]", depth)
        return dict(sorted(out.items()))
    if isinstance(value, list | tuple):
        return [canonical(v, f"{where}[{i}]", depth) for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [canonical(v, f"{where}{{}}", depth) for v in value]
        return {"__set__": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        # pydantic v2 models (openai/anthropic params objects, user models)
        return canonical(dump(mode="json", exclude_unset=True), where, depth - 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return canonical(fields, where, depth - 1)
    raise CacheKeyError(
        f"cannot build a cache key from {where}: values of type "
        f"{type(value).__module__}.{type(value).__qualname__} have no stable canonical form; "
        "pass plain data, or list the parameter in ignore=",
        parameter=where.split("[", 1)[0],
    )


_PLAIN = frozenset({str, int, bool, type(None)})


def _plain_dict(value: dict[Any, Any], where: str, depth: int) -> dict[str, Any]:
    if depth >= MAX_DEPTH:
        raise _too_deep(where)
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise _bad_key(where, k)
        if type(v) in _PLAIN or (type(v) is float and math.isfinite(v)):
            out[k] = v
        elif not is_missing(v):
            out[k] = canonical(v, f"{where}[{k!r}]", depth + 1)
    return dict(sorted(out.items()))


def _plain_list(value: list[Any], where: str, depth: int) -> list[Any]:
    if depth >= MAX_DEPTH:
        raise _too_deep(where)
    return [
        v if type(v) in _PLAIN else canonical(v, f"{where}[{i}]", depth + 1)
        for i, v in enumerate(value)
    ]


def dumps_canonical(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest(data: Any) -> str:
    """128-bit BLAKE2b hex digest of the canonical JSON of ``data``."""
    return hashlib.blake2b(dumps_canonical(data), digest_size=16).hexdigest()
