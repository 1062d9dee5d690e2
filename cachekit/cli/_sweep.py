"""The labelled threshold sweep of ``cachekit tune``."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    CliError,
    make_embedder,
)
from ._format import echo_table, fmt_pct

if TYPE_CHECKING:
    from .._tune import Pair, SweepRow


def labelled_sweep(
    pairs: Sequence[Pair],
    thresholds: Sequence[float],
    embedder_spec: str,
    target: float,
    plot: str | None,
    as_json: bool,
    title: str,
    current: float | None,
    verify: bool = True,
) -> None:
    from .._tune import (
        MAX_RELIABLE_CI_WIDTH,
        MIN_RELIABLE_PAIRS,
        plot_sweep,
        recommend,
        sweep,
        verify_pairs,
        wilson_interval,
    )

    sims = _similarities(pairs, embedder_spec)
    labels = [p.label or 0 for p in pairs]  # loaded pairs always carry a label
    rows = sweep(sims, labels, thresholds)
    best = recommend(rows, target)
    checked: list[SweepRow] = []
    if verify:
        from ..verify import default_verifier

        decisions = verify_pairs(pairs, sims, default_verifier())
        checked = sweep(sims, labels, thresholds, verified=decisions)
    best_checked = recommend(checked, target) if checked else None
    positives = sum(1 for x in labels if x == 1)
    ci = None if best is None else wilson_interval(best.true_pos, best.accepted)
    small = len(pairs) < MIN_RELIABLE_PAIRS or (
        ci is not None and ci[1] - ci[0] > MAX_RELIABLE_CI_WIDTH
    )
    note = ""
    if small:
        # stderr: a warning about the evidence, not part of the result (--json stays JSON).
        note = f"warning: only {len(pairs)} labelled pairs ({positives} positive)"
        if ci is not None and best is not None:
            note += (
                f"; precision at {best.threshold:.2f} is {fmt_pct(best.precision)} from "
                f"{best.accepted} accepted pairs, 95% Wilson interval "
                f"{fmt_pct(ci[0])}..{fmt_pct(ci[1])}"
            )
        note += (
            f". Treat the recommendation as a rough guide; label at least "
            f"{MIN_RELIABLE_PAIRS} pairs from your own traffic for a reliable threshold."
        )
    if as_json:
        payload = {
            "pairs": len(pairs),
            "positives": positives,
            "target_precision": target,
            "recommended_threshold": None if best is None else best.threshold,
            "precision_ci95": None if ci is None else [round(ci[0], 4), round(ci[1], 4)],
            "small_sample": small,
            "sweep": [r.to_dict() for r in rows],
            # With the hit verifier (the cache's default): what it serves at each threshold.
            "recommended_threshold_verified": (
                None if best_checked is None else best_checked.threshold
            ),
            "sweep_verified": [r.to_dict() for r in checked],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"{len(pairs)} pairs, {positives} labelled as the same answer.")
        _print_sweep(rows, best, checked)
        if best is None:
            click.echo(
                f"No threshold in {thresholds[0]:.2f}..{thresholds[-1]:.2f} reaches precision "
                f"{target:.2f}; raise --max, lower --target-precision, or check the labels."
            )
        else:
            assert ci is not None
            click.echo(
                f"Recommended threshold: {best.threshold:.2f} "
                f"(precision {fmt_pct(best.precision)}, 95% CI {fmt_pct(ci[0])}.."
                f"{fmt_pct(ci[1])}; recall {fmt_pct(best.recall)}, "
                f"hit rate {fmt_pct(best.hit_rate)}) for target precision {target:.2f}, "
                f"from {len(pairs)} pairs."
            )
        if verify:
            click.echo(
                "VERIFIED columns: with the hit verifier on (the cache's default), a pair "
                "above the threshold counts only if the verifier accepts it too. "
                + (
                    f"Recommended threshold with it: {best_checked.threshold:.2f} (precision "
                    f"{fmt_pct(best_checked.precision)}, recall {fmt_pct(best_checked.recall)}, "
                    f"hit rate {fmt_pct(best_checked.hit_rate)})."
                    if best_checked is not None
                    else "No threshold reaches the target with it either."
                )
            )
    if plot:
        plot_sweep(
            rows, plot, target_precision=target, recommended=best, title=title, current=current
        )
        if not as_json:
            click.echo(f"Plot written to {plot}")
    if note:
        click.echo(note, err=True)  # last, under the recommendation it qualifies


def _print_sweep(
    rows: Sequence[SweepRow], best: SweepRow | None, checked: Sequence[SweepRow]
) -> None:
    stride = max(1, math.ceil(len(rows) / 25))
    shown = [i for i, r in enumerate(rows) if i % stride == 0 or r is best or i == len(rows) - 1]
    table = []
    for i in shown:
        r = rows[i]
        line = [f"{r.threshold:.2f}", str(r.accepted), fmt_pct(r.precision), fmt_pct(r.recall)]
        line += [fmt_pct(r.hit_rate), "-" if r.f1 is None else f"{r.f1:.3f}"]
        if checked:
            v = checked[i]
            line += [fmt_pct(v.precision), fmt_pct(v.recall), fmt_pct(v.hit_rate)]
        table.append([*line, "<- recommended" if r is best else ""])
    head = ["THRESHOLD", "ACCEPTED", "PRECISION", "RECALL", "HIT RATE", "F1"]
    if checked:
        head += ["VERIFIED PREC", "VERIFIED RECALL", "VERIFIED HIT"]
    echo_table([*head, ""], table, "r" * len(head) + "l")


def _similarities(pairs: Sequence[Pair], spec: str) -> Any:
    from .._tune import embed_similarities
    from ..errors import EmbedderError

    if all(p.similarity is not None for p in pairs):
        return [p.similarity for p in pairs]
    emb = make_embedder(spec)
    if emb is None:
        raise click.UsageError("pairs without a similarity column need an --embedder")
    texts = len({t for p in pairs if p.similarity is None for t in (p.text_a, p.text_b)})
    loop = asyncio.new_event_loop()
    try:
        with click.progressbar(length=texts, label="embedding", file=sys.stderr) as bar:
            return embed_similarities(emb, pairs, run=loop.run_until_complete, progress=bar.update)
    except EmbedderError as exc:
        raise CliError(f"embedder failed: {exc}") from None
    finally:
        loop.close()
