"""``cachekit inspect``: the cached entries."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ._common import NAMESPACE_HELP, ScopeArgs, open_cache, redis_url_option, run, scope_options
from ._format import echo_table, fmt_age, fmt_bytes, shorten


@click.command("inspect")
@scope_options(NAMESPACE_HELP + " Default: all.")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1), help="Entries to show."
)
@click.option(
    "--sort",
    type=click.Choice(["recent", "oldest", "hits", "size"]),
    default="recent",
    show_default=True,
)
@click.option("--live-only", is_flag=True, help="Hide entries an invalidate() made unreachable.")
@click.option(
    "--max-scan",
    default=10_000,
    show_default=True,
    type=click.IntRange(1),
    help="Read at most this many entries (sorting needs them all in hand).",
)
@click.option("--json", "as_json", is_flag=True, help="Print entries as JSON (full prompts).")
@redis_url_option
def inspect_cmd(
    scope: ScopeArgs,
    limit: int,
    sort: str,
    live_only: bool,
    max_scan: int,
    as_json: bool,
    redis_url: str,
) -> None:
    """Cached entries: prompt, model, age, hits, size."""
    from .._inspect import list_entries

    async def go() -> Any:
        async with open_cache(redis_url) as cache, cache.reader() as client:
            return await list_entries(
                client,
                scope.namespace,
                scope.token,
                limit=limit,
                sort=sort,
                max_scan=max_scan,
                include_stale=not live_only,
            )

    entries, scanned, truncated = run(go())
    now = time.time()
    if as_json:
        click.echo(json.dumps([e.to_dict(now) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"No entries for {scope.hint}.")
        click.echo("Hint: `cachekit stats` lists the namespaces and tenants that have data.")
        return
    rows = [
        [
            e.namespace,
            shorten(e.tenant, 20),
            shorten(e.model, 24),
            fmt_age(e.age_s(now)),
            str(e.hits),
            fmt_bytes(e.size_bytes),
            fmt_age(e.ttl_s) if e.ttl_s is not None else "never",
            "yes" if e.live else "no",
            shorten(e.prompt, 60),
        ]
        for e in entries
    ]
    headers = ["NAMESPACE", "TENANT", "MODEL", "AGE", "HITS", "SIZE", "EXPIRES", "LIVE", "PROMPT"]
    echo_table(headers, rows, "lllrrrrll")
    more = f" (first {scanned} read: --max-scan)" if truncated else f" of {scanned}"
    click.echo(f"{len(entries)} entries shown{more}, sorted by {sort}.")
