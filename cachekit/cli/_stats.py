"""``cachekit stats``: hits, misses, tokens and dollars saved."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ._common import InputError, ScopeArgs, open_cache, redis_url_option, run, scope_options
from ._format import echo_table, fmt_count, fmt_pct, fmt_usd, shorten

if TYPE_CHECKING:
    from ..stats import StatsReport, StatsRow


@click.command()
@scope_options()
@click.option(
    "--pricing",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON file of model prices (USD per 1M tokens) overriding the bundled table.",
)
@click.option(
    "--price-source",
    type=click.Choice(["auto", "bundled", "genai-prices"]),
    default="auto",
    show_default=True,
    help="Where prices come from: genai-prices (the 'prices' extra), the bundled table, "
    "or auto (genai-prices when installed). The bundled table prices what it does not know.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@redis_url_option
def stats(
    scope: ScopeArgs, pricing: str | None, price_source: Any, as_json: bool, redis_url: str
) -> None:
    """Hits, misses, tokens and dollars saved, per namespace and tenant (all workers)."""
    from ..errors import CacheConfigError
    from ..stats import Pricing

    try:
        table = Pricing.load(pricing, source=price_source)
    except CacheConfigError as exc:
        raise InputError(str(exc)) from None
    report, known = run(_stats(redis_url, scope.namespace, scope.token, table))
    if report.skipped_keys:
        # stderr, so --json output stays parseable; the keys are in the JSON too.
        n = len(report.skipped_keys)
        click.echo(
            f"warning: skipped {n} stats key{'s' if n != 1 else ''} (or their malformed "
            "fields) that cachekit did not write as it expects:",
            err=True,
        )
        for skipped in report.skipped_keys[:50]:
            click.echo(f"  {skipped.key}: {skipped.reason}", err=True)
        if n > 50:
            click.echo(f"  ... and {n - 50} more (see --json)", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_stats(report)
    if not report.rows:
        hint = f"No stats for {scope.hint}."
        if known:
            hint += f" Namespaces with stats: {', '.join(known[:20])}."
        else:
            hint += " Nothing has been cached in this Redis yet (check --redis-url)."
        click.echo(hint)


async def _stats(
    url: str, namespace: str | None, token: str | None, pricing: Any
) -> tuple[StatsReport, list[str]]:
    import logging

    from ..stats import stats as read_stats

    def not_skipped(record: logging.LogRecord) -> bool:
        # The command prints its own, fuller warning about skipped keys.
        return not record.getMessage().startswith("cachekit: stats skipped")

    logger = logging.getLogger("cachekit")
    logger.addFilter(not_skipped)
    try:
        async with open_cache(url) as cache:
            report = await read_stats(cache, namespace, tenant_token=token, pricing=pricing)
            known: list[str] = []
            if not report.rows and (namespace or token):
                everything = await read_stats(cache, pricing=pricing)
                known = sorted({r.namespace for r in everything.rows})
            return report, known
    finally:
        logger.removeFilter(not_skipped)


def _stats_cells(row: StatsRow, first: str, second: str) -> list[str]:
    tokens = f"{fmt_count(row.tokens_in)}/{fmt_count(row.tokens_out)}"
    saved = fmt_usd(row.usd_saved) + ("*" if row.usd_saved_estimated else "")
    if row.unpriced_models and not row.usd_saved:
        saved = "?"
    return [
        first,
        second,
        fmt_count(row.exact),
        fmt_count(row.semantic),
        fmt_count(row.miss),
        fmt_count(row.bypass),
        fmt_count(row.error),
        fmt_pct(row.hit_rate),
        tokens + ("*" if row.has_estimates else ""),
        saved,
        fmt_usd(row.projected_monthly_usd),
    ]


def _print_stats(report: StatsReport) -> None:
    headers = [
        "NAMESPACE",
        "TENANT",
        "EXACT",
        "SEMANTIC",
        "MISS",
        "BYPASS",
        "ERROR",
        "HIT RATE",
        "TOKENS IN/OUT",
        "SAVED",
        "PER MONTH",
    ]
    rows = [_stats_cells(r, r.namespace, shorten(r.tenant, 32)) for r in report.rows]
    if len(report.rows) > 1:
        rows.append(_stats_cells(report.totals, "TOTAL", ""))
    echo_table(headers, rows, "llrrrrrrrrr")
    if not report.rows:
        return
    t = report.totals
    notes = [
        "Hit rate = (exact + semantic) / (exact + semantic + miss). Prices: list prices as of "
        f"{report.pricing_as_of} from {report.pricing_source} (override with --pricing).",
    ]
    by_source: dict[str, list[str]] = {}
    for model, source in sorted(t.priced_by.items()):
        by_source.setdefault(source, []).append(model)
    if by_source:
        notes.append(
            "Priced by: "
            + "; ".join(f"{src} ({', '.join(by_source[src])})" for src in sorted(by_source))
            + "."
        )
    if t.has_estimates:
        notes.append("* includes token counts estimated from the text (no usage was reported).")
    if t.unpriced_models:
        notes.append(
            f"No price for: {', '.join(sorted(t.unpriced_models))} (their tokens count, "
            "their dollars do not; add them with --pricing)."
        )
    if any(r.since is None for r in report.rows):
        notes.append("PER MONTH needs a start time in the stats (written by the first store).")
    elif t.projected_monthly_usd is None:
        notes.append("PER MONTH appears after an hour of data (saved per day so far x 30).")
    else:
        notes.append("PER MONTH = saved per day since counting started x 30.")
    for note in notes:
        click.echo(note)
