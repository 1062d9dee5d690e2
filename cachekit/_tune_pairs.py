"""Labelled pairs for ``cachekit tune``: JSONL, a JSON list, or TSV/CSV, with line numbers.

A *labelled pair* is two prompts and whether the answer to one may be served for the
other (1) or not (0); an optional similarity column skips embedding. Field names of the
usual data sets (QQP, MRPC, GPTCache) are understood. Part of :mod:`cachekit._tune`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["Pair", "PairsFileError", "load_pairs"]


_A_NAMES: Final = ("text_a", "a", "origin", "question1", "sentence1", "#1 string", "prompt")
_B_NAMES: Final = ("text_b", "b", "similar", "question2", "sentence2", "#2 string", "nearest")
_LABEL_NAMES: Final = ("label", "is_duplicate", "quality", "duplicate", "match")
_TRUE: Final = frozenset({"1", "true", "yes", "y"})
_FALSE: Final = frozenset({"0", "false", "no", "n"})


class PairsFileError(ValueError):
    """A labelled-pairs file that cannot be used; ``line`` is 1-based."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Pair:
    text_a: str
    text_b: str
    label: int | None
    #: A similarity already known (near misses, or a ``similarity`` column): not re-embedded.
    similarity: float | None = None
    line: int = 0


def _pick(row: Mapping[str, Any], names: Sequence[str]) -> tuple[str | None, Any]:
    lowered = {str(k).strip().lower(): k for k in row}
    for name in names:
        if name in lowered:
            key = lowered[name]
            return str(key), row[key]
    return None, None


def _label(value: Any, where: str, path: str, line: int) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return int(value.strip().lower() in _TRUE)
    raise PairsFileError(path, line, f"{where} must be 0/1 (or true/false), got {value!r}")


def _pair_of(row: Any, path: str, line: int, *, require_label: bool) -> Pair:
    if not isinstance(row, Mapping):
        raise PairsFileError(
            path, line, f"expected an object with text_a, text_b, label; got {type(row).__name__}"
        )
    a_key, a = _pick(row, _A_NAMES)
    b_key, b = _pick(row, _B_NAMES)
    if a_key is None or b_key is None:
        raise PairsFileError(
            path, line, f"missing text_a/text_b (fields: {', '.join(map(str, row))})"
        )
    if not isinstance(a, str) or not isinstance(b, str):
        raise PairsFileError(path, line, f"{a_key} and {b_key} must be strings")
    label_key, raw_label = _pick(row, _LABEL_NAMES)
    label: int | None = None
    if label_key is None or raw_label is None or raw_label == "":
        if require_label:
            raise PairsFileError(path, line, "missing label (0 or 1)")
    else:
        label = _label(raw_label, label_key, path, line)
    sim: float | None = None
    sim_key, raw_sim = _pick(row, ("similarity", "score", "cosine"))
    if sim_key is not None and raw_sim not in (None, ""):
        try:
            sim = float(raw_sim)
        except (TypeError, ValueError):
            raise PairsFileError(
                path, line, f"{sim_key} must be a number, got {raw_sim!r}"
            ) from None
        if not -1.0 - 1e-6 <= sim <= 1.0 + 1e-6 or math.isnan(sim):
            raise PairsFileError(path, line, f"{sim_key} must be a cosine in [-1, 1], got {sim}")
    return Pair(a, b, label, sim, line)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _load_json_array(text: str, path: str, require_label: bool) -> list[Pair]:
    """A JSON list of objects, with the line each object starts on (for error messages)."""
    decoder = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if text[i : i + 1] == "{":
        # {"pairs": [...]} wrapper: find the list and continue from there.
        try:
            whole = json.loads(text)
        except ValueError as exc:
            raise PairsFileError(path, getattr(exc, "lineno", 1), f"invalid JSON: {exc}") from None
        rows = whole.get("pairs") if isinstance(whole, Mapping) else None
        if not isinstance(rows, list):
            raise PairsFileError(path, 1, 'expected a JSON list of pairs (or {"pairs": [...]})')
        return [_pair_of(r, path, 1, require_label=require_label) for r in rows]
    if text[i : i + 1] != "[":
        raise PairsFileError(path, _line_of(text, i), "expected a JSON list of pairs")
    i += 1
    pairs: list[Pair] = []
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if text[i : i + 1] == "]":
            return pairs
        if pairs:
            if text[i : i + 1] != ",":
                raise PairsFileError(path, _line_of(text, i), "expected ',' or ']' between pairs")
            i += 1
            while i < len(text) and text[i] in " \t\r\n":
                i += 1
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError as exc:
            lineno = getattr(exc, "lineno", _line_of(text, i))
            raise PairsFileError(
                path, lineno, f"invalid JSON: {getattr(exc, 'msg', exc)}"
            ) from None
        pairs.append(_pair_of(obj, path, _line_of(text, i), require_label=require_label))
        i = end


def _load_jsonl(text: str, path: str, require_label: bool) -> list[Pair]:
    pairs: list[Pair] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise PairsFileError(
                path, lineno, f"invalid JSON: {getattr(exc, 'msg', exc)}"
            ) from None
        pairs.append(_pair_of(obj, path, lineno, require_label=require_label))
    return pairs


def _load_delimited(text: str, path: str, delimiter: str, require_label: bool) -> list[Pair]:
    reader = csv.reader(
        io.StringIO(text),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
    )
    rows = [(reader.line_num, row) for row in reader]
    rows = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    first = [c.strip().lower() for c in rows[0][1]]
    has_header = any(name in first for name in (*_A_NAMES, *_LABEL_NAMES))
    if has_header:
        header = [c.strip() for c in rows[0][1]]
        body = rows[1:]
    else:
        header = ["text_a", "text_b", "label"]
        body = rows
    pairs: list[Pair] = []
    for lineno, row in body:
        if len(row) != len(header):
            raise PairsFileError(
                path,
                lineno,
                f"expected {len(header)} fields ({', '.join(header)}), got {len(row)}",
            )
        pairs.append(
            _pair_of(dict(zip(header, row, strict=True)), path, lineno, require_label=require_label)
        )
    return pairs


def load_pairs(path: str | Path, *, require_label: bool = True) -> list[Pair]:
    """Labelled pairs from JSONL, a JSON list, or TSV/CSV (header optional).

    Field names: ``text_a``/``text_b``/``label`` (also QQP's ``question1``/``question2``/
    ``is_duplicate``, MRPC's ``Quality``/``#1 String``/``#2 String``, GPTCache's
    ``origin``/``similar``); an optional ``similarity`` column skips embedding. Raises
    :class:`PairsFileError` naming the line of the first bad row.
    """
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PairsFileError(name, 1, f"not UTF-8 text: {exc}") from None
    suffix = p.suffix.lower()
    stripped = text.lstrip()
    if suffix in (".jsonl", ".ndjson"):
        pairs = _load_jsonl(text, name, require_label)
    elif suffix == ".json" or (
        suffix not in (".tsv", ".tab", ".csv", ".txt") and stripped[:1] == "["
    ):
        pairs = _load_json_array(text, name, require_label)
    elif suffix not in (".tsv", ".tab", ".csv", ".txt") and stripped[:1] == "{":
        pairs = _load_jsonl(text, name, require_label)
    else:
        pairs = _load_delimited(text, name, "," if suffix == ".csv" else "\t", require_label)
    if not pairs:
        raise PairsFileError(name, 1, "no pairs in the file")
    return pairs
