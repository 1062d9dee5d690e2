"""Threshold tuning for ``cachekit tune``: labelled pairs or production near misses -> sweep.

A *labelled pair* is two prompts and whether the answer to one may be served for the
other (1) or not (0). For each candidate threshold the sweep reports:

* precision: of the pairs the cache would accept (similarity >= threshold), the share
  that are right to accept: what users see as "the cache answered the wrong question";
* recall: of the pairs that should be accepted, the share that are;
* hit rate: the share of *all* pairs accepted (what the cache would save);

each also with the hit verifier (:mod:`cachekit.verify`, on by default in the cache): a
pair above the threshold counts as accepted only when the verifier accepts it too.

The recommended threshold is the lowest one whose precision, and that of every higher
threshold that accepts anything, reaches the target: the most hits at the wanted quality,
robust to a lucky dip in the curve (moved to the top of its plateau, see ``recommend``).

Near misses (``near_miss_sample=`` on the cache) are prompts that missed within
``near_miss_margin`` of the threshold, with their nearest cached prompt and similarity:
unlabelled, they show how many hits a lower threshold would add; labelled (interactively
or by editing an export), they say whether those hits would be right.

One module per job, re-exported here: ``_tune_pairs`` (loading labelled pairs),
``_tune_near_misses`` (reading production near misses) and ``_tune_sweep`` (sweep,
recommendation, similarities, plot).
"""

from __future__ import annotations

from ._tune_near_misses import NearMiss, read_near_misses
from ._tune_pairs import Pair, PairsFileError, load_pairs
from ._tune_sweep import (
    MAX_RELIABLE_CI_WIDTH,
    MIN_RELIABLE_PAIRS,
    SweepRow,
    embed_similarities,
    plot_sweep,
    recommend,
    sweep,
    thresholds_between,
    verify_pairs,
    wilson_interval,
)

__all__ = [
    "MAX_RELIABLE_CI_WIDTH",
    "MIN_RELIABLE_PAIRS",
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
    "verify_pairs",
    "wilson_interval",
]
