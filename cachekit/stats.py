"""Savings and hit statistics, kept in Redis so every worker adds up.

Each (namespace, tenant) pair has one counter hash, ``ck:{ns:T}:stats`` (see
``cachekit/_layout.py``), written in the *same* round trip as the hit or store it counts:

========================  ==============================================================
field                     meaning
========================  ==============================================================
``exact``                 exact-layer hits (the lookup script)
``semantic``              semantic-layer hits (the alias write after a hit)
``miss``                  stores after a miss (the store MULTI)
``bypass`` / ``error``    calls that skipped the cache / where the cache failed; counted
                          in-process and flushed in batches (:class:`OutcomeCounter`)
``tin:<m>`` ``tout:<m>``  input / output tokens hits saved, from the usage the response
                          reported when it was stored (model ``m``)
``ein:<m>`` ``eout:<m>``  the same, for responses that reported no usage: estimated
``since``                 Unix time counting started (first store), for projections
========================  ==============================================================

:func:`stats` reads them all (SCAN, cluster-safe) and prices the saved tokens with
:class:`Pricing`: genai-prices when installed (the ``prices`` extra), else the bundled
``cachekit/pricing.json``, which also prices what genai-prices does not know; overridable.

The code lives in private modules by job, all re-exported here: ``_pricing`` (the price
seam, over ``_price_table`` and ``_prices_genai``), ``_tokens`` (token estimates),
``_stats_report`` (rows, parsing, projection),
``_stats_read`` (reading the hashes from Redis), ``_outcomes`` (bypass/error counting).
"""

from __future__ import annotations

import logging

from ._outcomes import OutcomeCounter, track_outcomes
from ._pricing import ModelPrice, PriceMatch, PriceSource, Pricing
from ._stats_read import stats
from ._stats_read import stats_pattern as stats_pattern
from ._stats_report import COUNTERS as COUNTERS
from ._stats_report import MIN_PROJECTION_WINDOW_S as MIN_PROJECTION_WINDOW_S
from ._stats_report import SkippedKey, StatsReport, StatsRow, decode_tenant_token
from ._stats_report import merge_rows as merge_rows
from ._stats_report import parse_stats_hash as parse_stats_hash
from ._stats_report import tenant_label as tenant_label
from ._tokens import CHARS_PER_TOKEN as CHARS_PER_TOKEN
from ._tokens import TIKTOKEN as TIKTOKEN
from ._tokens import estimate_methods, estimate_tokens, estimate_usage, response_text
from .cache import LLMCache

#: The logger every part of the stats uses (same name as before the split).
log = logging.getLogger("cachekit.stats")

__all__ = [
    "ModelPrice",
    "OutcomeCounter",
    "PriceMatch",
    "PriceSource",
    "Pricing",
    "SkippedKey",
    "StatsReport",
    "StatsRow",
    "decode_tenant_token",
    "estimate_methods",
    "estimate_tokens",
    "estimate_usage",
    "response_text",
    "stats",
    "track_outcomes",
]

# The core never imports the stats (they depend on it, not the other way): every new
# cache counts its bypasses and errors, and ``LLMCache.stats()`` reads, through these.
LLMCache.default_observers.append(OutcomeCounter)
LLMCache.stats_reader = stats
