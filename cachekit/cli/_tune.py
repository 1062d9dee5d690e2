"""``cachekit tune``: pick a semantic threshold (command, near misses)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    F,
    InputError,
    check_namespace,
    open_cache,
    redis_url_option,
    run,
)
from ._format import echo_table, fmt_pct, shorten
from ._sweep import labelled_sweep

if TYPE_CHECKING:
    from .._tune import NearMiss, Pair


def _float_option(
    flag: str, default: float, bounds: tuple[float, float], help: str, *, dest: str | None = None
) -> Callable[[F], F]:
    """A number option with its default shown and its range checked."""
    names = (flag,) if dest is None else (flag, dest)
    kind = click.FloatRange(*bounds)
    return click.option(*names, default=default, show_default=True, type=kind, help=help)


@click.command()
@click.argument("pairs_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--from-near-misses",
    is_flag=True,
    help="Use the near misses recorded in production (needs --namespace).",
)
@click.option("--namespace", "-n", help="Namespace of the near misses.")
@click.option("--tenant", "-t", help="Only this tenant's near misses.")
@click.option(
    "--limit", default=2000, show_default=True, type=click.IntRange(1), help="Near misses to read."
)
@click.option("--label", "interactive", is_flag=True, help="Label the near misses here (y/n/s/q).")
@click.option(
    "--export",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the near misses as JSONL with an empty label, to label and feed back.",
)
@click.option(
    "--embedder",
    default="minilm",
    show_default=True,
    help="Embedder for pairs without a similarity column: minilm, openai:<model>, "
    "st:<model>, py:<module>:<attribute>. Use the one production uses.",
)
@_float_option(
    "--target-precision", 0.95, (0, 1), "Recommend the lowest threshold at least this precise."
)
@_float_option("--min", 0.5, (-1, 1), "Lowest threshold swept.", dest="t_min")
@_float_option("--max", 0.99, (-1, 1), "Highest threshold swept.", dest="t_max")
@_float_option("--step", 0.01, (0.001, 0.5), "Threshold step.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, writable=True), help="Write a PNG plot here."
)
@click.option("--no-verify", is_flag=True, help="Skip the columns with the hit verifier.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON.")
@redis_url_option
def tune(
    pairs_file: str | None,
    from_near_misses: bool,
    namespace: str | None,
    tenant: str | None,
    limit: int,
    interactive: bool,
    export: str | None,
    embedder: str,
    target_precision: float,
    t_min: float,
    t_max: float,
    step: float,
    plot: str | None,
    no_verify: bool,
    as_json: bool,
    redis_url: str,
) -> None:
    """Pick a semantic threshold: precision, recall and hit rate per threshold.

    PAIRS_FILE holds labelled prompt pairs (JSONL, JSON list or TSV with text_a, text_b,
    label; 1 = the same answer may be served). Or --from-near-misses reads what missed in
    production just under the threshold: unlabelled it shows the hits a lower threshold
    would add; with --label (or --export, edit, re-run) it shows whether they would be right.
    """
    from .._tune import PairsFileError, load_pairs, thresholds_between

    if (pairs_file is None) == (not from_near_misses):
        raise click.UsageError("give a PAIRS_FILE or --from-near-misses (one of them)")
    if t_min > t_max:
        raise click.BadParameter("--min must be <= --max")
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("--plot needs matplotlib: pip install matplotlib")
    thresholds = thresholds_between(t_min, t_max, step)
    current: float | None = None
    if pairs_file is not None:
        try:
            pairs = load_pairs(pairs_file)
        except PairsFileError as exc:
            raise InputError(str(exc)) from None
        title = f"{Path(pairs_file).name}: {len(pairs)} labelled pairs"
    else:
        if not namespace:
            raise click.UsageError("--from-near-misses needs --namespace")
        check_namespace(namespace)
        misses = run(_near_misses(redis_url, namespace, tenant, limit))
        if not misses:
            click.echo(
                f"No near misses recorded for namespace {namespace!r}"
                + (f", tenant {tenant!r}" if tenant else "")
                + ". Record them with LLMCache(..., near_miss_sample=0.05) (a share of the "
                "semantic misses within near_miss_margin of the threshold)."
            )
            return
        current = misses[0].threshold
        if export is not None:
            _export_near_misses(misses, export)
            return
        if not interactive:
            _near_miss_summary(misses, thresholds, plot, as_json)
            return
        pairs = _label_interactively(misses)
        if not pairs:
            click.echo("Nothing labelled.")
            return
        title = f"{namespace}: {len(pairs)} labelled near misses"
    labelled_sweep(
        pairs, thresholds, embedder, target_precision, plot, as_json, title, current,
        verify=not no_verify,
    )  # fmt: skip


async def _near_misses(url: str, namespace: str, tenant: str | None, limit: int) -> list[NearMiss]:
    from .._tune import read_near_misses

    async with open_cache(url) as cache:
        return await read_near_misses(cache.redis, namespace, tenant, limit=limit)


def _export_near_misses(misses: Sequence[NearMiss], path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for n in misses:
            row = {
                "text_a": n.prompt,
                "text_b": n.nearest,
                "label": None,
                "similarity": n.similarity,
                "threshold": n.threshold,
                "model": n.model,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    click.echo(
        f"Wrote {len(misses)} near misses to {path}. Set each label to 1 (the cached answer "
        f"would be right) or 0, then run: cachekit tune {path}"
    )


def _label_interactively(misses: Sequence[NearMiss]) -> list[Pair]:
    from .._tune import Pair

    click.echo(
        "For each pair: may the answer cached for the second prompt be served for the first?"
    )
    click.echo("y = yes, n = no, s = skip, q = stop labelling\n")
    pairs: list[Pair] = []
    for i, n in enumerate(misses, start=1):
        click.echo(f"[{i}/{len(misses)}] similarity {n.similarity:.4f}")
        click.echo(f"  asked : {shorten(n.prompt, 200)}")
        click.echo(f"  cached: {shorten(n.nearest, 200)}")
        answer = click.prompt(
            "  same answer?", type=click.Choice(["y", "n", "s", "q"]), show_choices=True
        )
        if answer == "q":
            break
        if answer in ("y", "n"):
            pairs.append(Pair(n.prompt, n.nearest, int(answer == "y"), n.similarity))
    return pairs


def _near_miss_summary(
    misses: Sequence[NearMiss], thresholds: Sequence[float], plot: str | None, as_json: bool
) -> None:
    import numpy as np

    sims = np.array([n.similarity for n in misses])
    current = misses[0].threshold
    rows = []
    for t in thresholds:
        if t > current + 1e-9 or t < float(sims.min()) - 0.01:
            continue
        added = int((sims >= t - 1e-6).sum())
        rows.append({"threshold": t, "extra_hits": added, "share": added / len(sims)})
    if as_json:
        payload = {
            "near_misses": len(misses),
            "current_threshold": current,
            "similarity": {
                "min": float(sims.min()),
                "median": float(np.median(sims)),
                "max": float(sims.max()),
            },
            "lower_threshold_to": rows,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(
            f"{len(misses)} near misses (unlabelled), recorded at threshold {current:.4f}; "
            f"similarity min {sims.min():.4f}, median {np.median(sims):.4f}, max {sims.max():.4f}"
        )
        table = [
            [f"{r['threshold']:.2f}", str(r["extra_hits"]), fmt_pct(float(r["share"]))]
            for r in rows
        ]
        echo_table(["THRESHOLD", "WOULD HIT", "OF NEAR MISSES"], table, "rrr")
        click.echo(
            "Near misses are sampled: these are shares, not totals. Whether the extra hits "
            "would be right needs labels: --label, or --export FILE and `cachekit tune FILE`."
        )
    if plot:
        _plot_near_misses(sims, current, plot)
        if not as_json:
            click.echo(f"Plot written to {plot}")


def _plot_near_misses(sims: Any, current: float, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    try:
        ax.hist(sims, bins=min(40, max(5, len(sims) // 5)), color="tab:blue", alpha=0.7)
        ax.axvline(current, color="red", linestyle="-.", label=f"current threshold {current:.2f}")
        ax.set_xlabel("similarity to the nearest cached prompt")
        ax.set_ylabel("near misses")
        ax.set_title(f"{len(sims)} near misses")
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
