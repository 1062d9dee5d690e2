"""Values in the cache: JSON with a small typed registry. Never pickle.

An encoded value is an envelope ``{"t": tag, "v": data}`` (plus ``"c"`` naming a
registered class). Decoding only ever instantiates classes from the in-process
registry: a name in cached data is looked up, never imported, so a value written by
someone else cannot make us run code.

Supported: ``str``; JSON data (dict with str keys, list, int, float, bool, None; tuples
come back as lists); pydantic v2 models and dataclasses whose class is registered.
openai's ``ChatCompletion``/``Completion``/``CreateEmbeddingResponse`` and anthropic's
``Message`` are registered when those SDKs are installed; classes named in a decorated
function's return annotation are registered at decoration time; anything else with
:func:`register_type`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
from typing import Any

from .errors import CodecError

__all__ = ["decode", "decode_stream", "encode", "encode_stream", "register_type", "registered_name"]

log = logging.getLogger("cachekit.codec")

_registry: dict[str, type[Any]] = {}
_lock = threading.Lock()
_defaults_loaded = False

_DEFAULT_TYPES = (
    ("openai.types.chat", "ChatCompletion"),
    ("openai.types.chat", "ChatCompletionChunk"),
    ("openai.types", "Completion"),
    ("openai.types", "CreateEmbeddingResponse"),
    ("anthropic.types", "Message"),
)


def registered_name(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_pydantic(cls: type[Any]) -> bool:
    return callable(getattr(cls, "model_validate", None)) and callable(
        getattr(cls, "model_dump_json", None)
    )


def register_type(cls: type[Any]) -> type[Any]:
    """Allow instances of ``cls`` (a pydantic model or dataclass) to be cached.

    Usable as a class decorator. Returns ``cls`` unchanged.
    """
    if not isinstance(cls, type) or not (_is_pydantic(cls) or dataclasses.is_dataclass(cls)):
        raise CodecError(
            f"register_type() takes a pydantic model class or a dataclass, not {cls!r}"
        )
    with _lock:
        _registry[registered_name(cls)] = cls
    return cls


def _load_defaults() -> None:
    """Register the SDK response types of SDKs this process has already imported.

    Never imports: importing openai/anthropic takes seconds and a decode runs on the
    event loop inside the lookup budget. A process that never imported an SDK cannot
    have asked for one of its types (decorated functions register their return
    annotation at decoration time, outside the loop).
    """
    global _defaults_loaded
    if _defaults_loaded:
        return
    complete = True
    for module, name in _DEFAULT_TYPES:
        mod = sys.modules.get(module)
        if mod is None:
            complete = False
            continue
        cls = getattr(mod, name, None)
        if isinstance(cls, type):
            with _lock:
                _registry.setdefault(registered_name(cls), cls)
    _defaults_loaded = complete


def _lookup(name: str) -> type[Any]:
    cls = _registry.get(name)
    if cls is not None:
        return cls
    _load_defaults()
    try:
        return _registry[name]
    except KeyError:
        raise CodecError(f"cached value has type {name!r}, which is not registered") from None


def _json_data_ok(value: Any, depth: int = 0) -> bool:
    if depth > 200:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_json_data_ok(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_data_ok(v, depth + 1) for k, v in value.items())
    return False


def encode(value: Any) -> str:
    """Encode ``value`` to the envelope's JSON text; raise CodecError if it has no codec."""
    if isinstance(value, str):
        return json.dumps({"t": "str", "v": value}, ensure_ascii=False, separators=(",", ":"))
    cls = type(value)
    if _is_pydantic(cls):
        name = registered_name(cls)
        with _lock:
            _registry.setdefault(name, cls)
        # exclude_unset keeps the exact shape the API sent (and pydantic equality).
        body: str = value.model_dump_json(exclude_unset=True)
        return '{"t":"pydantic","c":' + json.dumps(name) + ',"v":' + body + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = registered_name(cls)
        with _lock:
            _registry.setdefault(name, cls)
        from pydantic import TypeAdapter

        try:
            data = TypeAdapter(cls).dump_python(value, mode="json")
        except Exception as exc:
            raise CodecError(f"cannot encode dataclass {name}: {exc}") from exc
        return json.dumps({"t": "dataclass", "c": name, "v": data}, separators=(",", ":"))
    if _json_data_ok(value):
        try:
            return json.dumps(
                {"t": "json", "v": value},
                ensure_ascii=False,
                separators=(",", ":"),
                allow_nan=False,
            )
        except ValueError as exc:
            raise CodecError(f"cannot encode {cls.__qualname__}: {exc}") from exc
    raise CodecError(
        f"cannot cache a value of type {cls.__module__}.{cls.__qualname__}: supported are str, "
        "JSON data, pydantic models and dataclasses (see cachekit.register_type)"
    )


def decode(text: str | bytes) -> Any:
    """Decode an envelope; raise CodecError for anything malformed or unregistered."""
    try:
        env = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CodecError(f"cached value is not valid JSON: {exc}") from exc
    if not isinstance(env, dict) or "t" not in env or "v" not in env:
        raise CodecError("cached value is not a cachekit envelope")
    tag, data = env["t"], env["v"]
    if tag == "str":
        if not isinstance(data, str):
            raise CodecError("cached str value is not a string")
        return data
    if tag == "json":
        return data
    if tag in ("pydantic", "dataclass"):
        name = env.get("c")
        if not isinstance(name, str):
            raise CodecError("cached value names no class")
        cls = _lookup(name)
        try:
            if tag == "pydantic":
                return cls.model_validate(data)
            from pydantic import TypeAdapter

            return TypeAdapter(cls).validate_python(data)
        except Exception as exc:
            raise CodecError(f"cached {name} does not validate: {exc}") from exc
    raise CodecError(f"cached value has unknown codec tag {tag!r}")


def encode_stream(items: list[Any]) -> str:
    """Encode the items of a finished stream (generator output, SSE chunks) in order."""
    parts = [encode(item) for item in items]
    return '{"t":"stream","v":[' + ",".join(parts) + "]}"


def decode_stream(text: str | bytes) -> list[Any]:
    """Decode what :func:`encode_stream` wrote; CodecError for anything else."""
    try:
        env = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CodecError(f"cached stream is not valid JSON: {exc}") from exc
    if not isinstance(env, dict) or env.get("t") != "stream" or not isinstance(env.get("v"), list):
        raise CodecError("cached value is not a stream envelope")
    try:
        return [decode(json.dumps(item)) for item in env["v"]]
    except RecursionError as exc:
        raise CodecError("cached stream is nested too deeply") from exc
