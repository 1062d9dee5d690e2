"""Threshold tuning for ``cachekit tune``: labelled pairs or production near misses -> sweep.

A *labelled pair* is two prompts and whether the answer to one may be served for the
other (1) or not (0). For each candidate threshold the sweep reports:

* precision: of the pairs the cache would accept (similarity >= threshold), the share
  that are right to accept: what users see as "the cache answered the wrong question";
* recall: of the pairs that should be accepted, the share that are;
* hit rate: the share of *all* pairs accepted (what the cache would save).

The recommended threshold is the lowest one whose precision, and that of every higher
threshold that accepts anything, reaches the target: the most hits at the wanted quality,
robust to a lucky dip in the curve (moved to the top of its plateau, see ``recommend``).

Near misses (``near_miss_sample=`` on the cache) are prompts that missed within
``near_miss_margin`` of the threshold, with their nearest cached prompt and similarity:
unlabelled, they show how many hits a lower threshold would add; labelled (interactively
or by editing an export), they say whether those hits would be right.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from . import _schema as F
from ._layout import GLOBAL_TENANT, NEAR_MISS, Space, encode_tenant, key_pattern, parse_tag

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .embedders import Embedder

__all__ = [
    "NearMiss",
    "Pair",
    "PairsFileError",
    "SweepRow",
    "embed_similarities",
    "load_pairs",
    "plot_sweep",
    "read_near_misses",
    "recommend",
    "sweep",
    "thresholds_between",
]

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


# ------------------------------------------------------------------------ loading


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


# ------------------------------------------------------------------------ near misses


@dataclass(frozen=True, slots=True)
class NearMiss:
    namespace: str
    tenant_token: str
    id: str
    prompt: str
    nearest: str
    similarity: float
    threshold: float
    model: str


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def read_near_misses(
    client: aioredis.Redis,
    namespace: str,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
    limit: int = 2000,
) -> list[NearMiss]:
    """The newest near misses of a namespace (one tenant's, or every tenant's)."""
    if tenant is not None:
        tenant_token = encode_tenant(tenant)
    if tenant_token is not None:
        keys: list[Any] = [Space(namespace, tenant_token).near_miss_key]
    else:
        pattern = key_pattern(NEAR_MISS, namespace)
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
    out: list[NearMiss] = []
    for key in keys:
        parsed = parse_tag(_text(key))
        token = (parsed[1] if parsed else "") or GLOBAL_TENANT
        entries = await client.xrevrange(key, count=limit) or []
        for entry_id, fields in entries:
            f = {_text(k): _text(v) for k, v in (fields or {}).items()}
            try:
                sim = float(f.get(F.NM_SIMILARITY, "nan"))
                thr = float(f.get(F.NM_THRESHOLD, "nan"))
            except ValueError:
                continue
            if math.isnan(sim):
                continue
            out.append(
                NearMiss(
                    namespace=namespace,
                    tenant_token=token,
                    id=_text(entry_id),
                    prompt=f.get(F.NM_PROMPT, ""),
                    nearest=f.get(F.NM_NEAREST, ""),
                    similarity=sim,
                    threshold=thr,
                    model=f.get(F.NM_MODEL, ""),
                )
            )
    out.sort(key=lambda n: n.id, reverse=True)
    return out[:limit]


# ------------------------------------------------------------------------ the sweep


@dataclass(frozen=True, slots=True)
class SweepRow:
    threshold: float
    accepted: int
    true_pos: int
    false_pos: int
    false_neg: int
    total: int

    @property
    def precision(self) -> float | None:
        return self.true_pos / self.accepted if self.accepted else None

    @property
    def recall(self) -> float | None:
        positives = self.true_pos + self.false_neg
        return self.true_pos / positives if positives else None

    @property
    def hit_rate(self) -> float:
        return self.accepted / self.total if self.total else 0.0

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "accepted": self.accepted,
            "true_positives": self.true_pos,
            "false_positives": self.false_pos,
            "false_negatives": self.false_neg,
            "precision": self.precision,
            "recall": self.recall,
            "hit_rate": self.hit_rate,
            "f1": self.f1,
        }


def thresholds_between(low: float, high: float, step: float) -> list[float]:
    """Candidate thresholds ``low, low+step, ..., high`` rounded to the step's decimals."""
    if not -1.0 <= low <= high <= 1.0:
        raise ValueError(f"need -1 <= min <= max <= 1, got {low}..{high}")
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    decimals = max(0, -math.floor(math.log10(step))) + 1
    count = math.floor((high - low) / step + 1e-9) + 1
    return [round(low + i * step, decimals) for i in range(count)]


def sweep(
    similarities: npt.ArrayLike, labels: npt.ArrayLike, thresholds: Iterable[float]
) -> list[SweepRow]:
    """Precision/recall/hit rate of accepting ``similarity >= t`` for each ``t``."""
    sims = np.asarray(similarities, dtype=np.float64)
    labs = np.asarray(labels, dtype=np.int8)
    if sims.shape != labs.shape:
        raise ValueError("similarities and labels differ in length")
    positives = int(labs.sum())
    rows: list[SweepRow] = []
    for t in thresholds:
        # A tiny tolerance: float32 similarities of 0.9 are 0.8999999 and must count.
        accept = sims >= t - 1e-6
        tp = int((accept & (labs == 1)).sum())
        fp = int((accept & (labs == 0)).sum())
        rows.append(
            SweepRow(
                threshold=float(t),
                accepted=tp + fp,
                true_pos=tp,
                false_pos=fp,
                false_neg=positives - tp,
                total=int(sims.size),
            )
        )
    return rows


#: Fewer labelled pairs than this and a recommended threshold is mostly noise: a handful
#: of pairs moves the measured precision by several points.
MIN_RELIABLE_PAIRS: Final = 200
#: A precision whose 95% interval is wider than this (hi - lo) is not a measurement yet.
MAX_RELIABLE_CI_WIDTH: Final = 0.10


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% with the default ``z``).

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0/n and n/n,
    which is where a precision measured on few pairs usually sits.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def recommend(rows: Sequence[SweepRow], target_precision: float) -> SweepRow | None:
    """The threshold to use for ``target_precision``, or None if none reaches it.

    The lowest threshold whose precision, and every higher one's, reaches the target
    (the most hits at that quality, robust to a lucky dip in the curve); then, among the
    thresholds that accept exactly the same pairs, the highest: on sparse labels a
    plateau can be wide, and its top keeps the largest margin to the rejected pairs
    below it at no cost in measured hits.
    """
    ordered = sorted(rows, key=lambda r: r.threshold, reverse=True)
    best: int | None = None
    for i, row in enumerate(ordered):
        p = row.precision
        if p is None:
            continue  # accepts nothing: no evidence either way
        if p + 1e-12 < target_precision:
            break
        best = i
    if best is None:
        return None
    while best > 0 and ordered[best - 1].accepted == ordered[best].accepted:
        best -= 1
    return ordered[best]


def embed_similarities(
    embedder: Embedder,
    pairs: Sequence[Pair],
    *,
    batch_size: int = 64,
    run: Callable[[Any], Any],
    progress: Callable[[int], None] | None = None,
) -> npt.NDArray[np.float64]:
    """Cosine similarity of each pair (known similarities are kept, the rest embedded).

    ``run`` drives one embed coroutine to completion (the CLI passes a loop's
    ``run_until_complete``); ``progress(n)`` is told of each batch of ``n`` texts.
    """
    todo = [i for i, p in enumerate(pairs) if p.similarity is None]
    sims = np.array([p.similarity if p.similarity is not None else np.nan for p in pairs])
    if not todo:
        return sims
    index: dict[str, int] = {}
    for i in todo:
        index.setdefault(pairs[i].text_a, len(index))
        index.setdefault(pairs[i].text_b, len(index))
    texts = list(index)
    vectors = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        vectors[start : start + len(chunk)] = np.asarray(run(embedder.embed(chunk)))
        if progress is not None:
            progress(len(chunk))
    ia = np.fromiter((index[pairs[i].text_a] for i in todo), dtype=np.int64, count=len(todo))
    ib = np.fromiter((index[pairs[i].text_b] for i in todo), dtype=np.int64, count=len(todo))
    sims[todo] = np.einsum("ij,ij->i", vectors[ia], vectors[ib]).astype(np.float64)
    return sims


def plot_sweep(
    rows: Sequence[SweepRow],
    out: str | Path,
    *,
    target_precision: float | None,
    recommended: SweepRow | None,
    title: str,
    current: float | None = None,
) -> None:
    """Precision, recall and hit rate against the threshold, as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: this runs on servers and in CI
    import matplotlib.pyplot as plt

    xs = [r.threshold for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    try:
        ax.plot(
            xs, [np.nan if r.precision is None else r.precision for r in rows], label="precision"
        )
        ax.plot(xs, [np.nan if r.recall is None else r.recall for r in rows], label="recall")
        ax.plot(xs, [r.hit_rate for r in rows], label="hit rate", linestyle="--")
        if target_precision is not None:
            ax.axhline(
                target_precision,
                color="grey",
                linewidth=0.8,
                linestyle=":",
                label=f"target precision {target_precision:.2f}",
            )
        if recommended is not None:
            ax.axvline(
                recommended.threshold,
                color="black",
                linewidth=1.2,
                label=f"recommended {recommended.threshold:.2f}",
            )
        if current is not None:
            ax.axvline(
                current, color="red", linewidth=1.0, linestyle="-.", label=f"current {current:.2f}"
            )
        ax.set_xlabel("threshold (cosine similarity)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(str(out), format="png")
    finally:
        plt.close(fig)
