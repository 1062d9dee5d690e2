"""Adaptive, verified thresholds (cachekit.adaptive) against static thresholds, on the test
split of the development set (benchmarks/verify_devset.py), with real MiniLM cosines.

Each labelled pair is one request: its cached prompt ``a`` is in the cache and the new
prompt ``b`` arrives; the pair's label says whether ``a``'s answer is right for ``b``. The
pairs arrive in a random order (``--seeds`` orders, results averaged). A pair whose cosine
is below the floor is a miss for every policy. Above it:

- *static t*: served when the cosine is at least t (and, "+verifier", the default hit
  verifier accepts);
- *adaptive δ*: the policy of :class:`cachekit.adaptive.AdaptiveThreshold` itself (the
  same ``Evidence`` and ``serve``), over the verifier's accepted candidates above the
  floor. A check calls the "LLM": its answer agrees with the cached one exactly when the
  pair's label is 1 (a perfect comparator; a real one adds its own error), and the outcome
  is added to the evidence. Each data source (QQP, MRPC, GPTCache, traps, variants,
  everyday) is one scope with evidence of its own, as one application function would be.

Measured per policy: *served* (share of requests answered from the cache), *error* (share
of served answers that are wrong: the guarantee is about this), *recall* (share of the
label-1 requests above the floor that were served), *checks* (share of requests that
called the LLM only to check). No timing: the policy is a few dict reads.

    python benchmarks/adaptive_threshold.py          # writes its section of RESULTS.md
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _embcache import EmbeddingCache  # noqa: E402
from _report import machine, versions, write_section  # noqa: E402
from verify_devset import DEFAULT_DATA, build, check_data  # noqa: E402

from cachekit.adaptive import AdaptiveThreshold, Evidence  # noqa: E402
from cachekit.verify import VerifyScope, default_verifier  # noqa: E402


@dataclass
class Tally:
    requests: int = 0
    served: int = 0
    wrong: int = 0
    positives: int = 0
    served_positive: int = 0
    checks: int = 0

    def row(self, name: str) -> str:
        served = self.served / self.requests
        error = self.wrong / self.served if self.served else 0.0
        recall = self.served_positive / self.positives if self.positives else 0.0
        checks = self.checks / self.requests
        return f"| {name} | {served:.1%} | {error:.2%} | {recall:.1%} | {checks:.1%} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--floor", type=float, default=0.85, help="the static threshold floor")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--window", type=float, default=0.02, help="AdaptiveThreshold(window=)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    check_data(args.data)
    started = time.time()
    pairs = [x for x in build(args.data) if x.split == "test"]
    sims = EmbeddingCache().cosines([x.a for x in pairs], [x.b for x in pairs])
    verifier, scope = default_verifier(), VerifyScope()
    candidates = [i for i, s in enumerate(sims) if s >= args.floor]
    accepted = {i: verifier.verify(pairs[i].b, pairs[i].a, float(sims[i]), scope).accept
                for i in candidates}  # fmt: skip
    print(f"{len(pairs)} test pairs, {len(candidates)} at cosine >= {args.floor}", file=sys.stderr)

    deltas = (0.01, 0.02, 0.05)
    names = ["static 0.92", "static 0.92 + verifier", f"static {args.floor} + verifier"]
    names += [f"adaptive δ={d} (floor {args.floor}) + verifier" for d in deltas]
    names += [f"adaptive δ={d} (floor {args.floor}), no verifier" for d in deltas]
    # The same without the window's local bound (window 1.0: the pooled bound alone).
    pooled = f"adaptive δ=0.05 (floor {args.floor}) + verifier, pooled bound only"
    names.append(pooled)
    totals = {n: Tally() for n in names}
    per_source: dict[str, dict[str, Tally]] = defaultdict(lambda: {n: Tally() for n in names})
    for seed in range(args.seeds):
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        rng = random.Random(1000 + seed)
        policies = {
            d: AdaptiveThreshold(delta=d, bin_width=0.005, audit=0.02, window=args.window)
            for d in deltas
        }
        no_window = AdaptiveThreshold(delta=0.05, bin_width=0.005, audit=0.02, window=1.0)
        pooled_evidence = {src: Evidence(0.005) for src in {x.source for x in pairs}}
        evidence = {
            (d, v, src): Evidence(0.005)
            for d in deltas
            for v in (True, False)
            for src in {x.source for x in pairs}
        }
        for i in order:
            pair, sim, label = pairs[i], float(sims[i]), pairs[i].label
            above = sim >= args.floor
            decisions: dict[str, tuple[bool, bool]] = {}  # name -> (served, checked)
            decisions[names[0]] = (sim >= 0.92, False)
            decisions[names[1]] = (sim >= 0.92 and accepted.get(i, False), False)
            decisions[names[2]] = (above and accepted.get(i, False), False)
            for d in deltas:
                for with_verifier in (True, False):
                    name = (
                        f"adaptive δ={d} (floor {args.floor}) + verifier"
                        if with_verifier
                        else f"adaptive δ={d} (floor {args.floor}), no verifier"
                    )
                    eligible = above and (accepted.get(i, False) if with_verifier else True)
                    if not eligible:
                        decisions[name] = (False, False)
                        continue
                    ev = evidence[(d, with_verifier, pair.source)]
                    if policies[d].serve(ev, sim, rng.random()):
                        decisions[name] = (True, False)
                    else:
                        ev.add(sim, label == 1)  # the check's answer agrees iff label 1
                        decisions[name] = (False, True)
            if above and accepted.get(i, False):
                ev = pooled_evidence[pair.source]
                if no_window.serve(ev, sim, rng.random()):
                    decisions[pooled] = (True, False)
                else:
                    ev.add(sim, label == 1)
                    decisions[pooled] = (False, True)
            else:
                decisions[pooled] = (False, False)
            for name, (served, checked) in decisions.items():
                for tally in (totals[name], per_source[pair.source][name]):
                    tally.requests += 1
                    tally.positives += int(above and label == 1)
                    tally.served += int(served)
                    tally.wrong += int(served and label == 0)
                    tally.served_positive += int(served and label == 1)
                    tally.checks += int(checked)

    head = "| policy | served | error of served | recall (label 1 above floor) | checks |"
    rule = "|---|---|---|---|---|"
    lines = [
        "## Adaptive thresholds (`benchmarks/adaptive_threshold.py`)",
        "",
        f"Machine: {machine()}. Versions: {versions('cachekit', 'sentence-transformers')}.",
        f"Command: `python benchmarks/adaptive_threshold.py` ({args.seeds} random orders, "
        f"floor {args.floor}, bins 0.005, window {args.window}, audit 2%, 95% one-sided "
        "bound). Test split of the "
        f"development set: {len(pairs)} labelled pairs ({len(candidates)} at cosine >= "
        f"{args.floor}), real MiniLM cosines; a check's answer agrees exactly when the "
        "pair's label is 1 (a perfect comparator). Shares are of all requests, summed over "
        "the orders. No timing is measured (the policy is a few dict reads).",
        "",
        head,
        rule,
        *(totals[n].row(n) for n in names),
        "",
        "Per source (each one scope with its own evidence), error of served / served:",
        "",
        "| policy | " + " | ".join(sorted(per_source)) + " |",
        "|---|" + "---|" * len(per_source),
    ]
    for n in names:
        cells = []
        for src in sorted(per_source):
            t = per_source[src][n]
            err = t.wrong / t.served if t.served else 0.0
            cells.append(f"{err:.1%} / {t.served / t.requests:.1%}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", f"Run time {time.time() - started:.0f} s."]
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        write_section("adaptive_threshold", md)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
