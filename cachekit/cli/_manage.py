"""``cachekit invalidate`` and ``cachekit clear``."""

from __future__ import annotations

from typing import Any

import click

from ._common import (
    check_namespace,
    open_cache,
    redis_url_option,
    run,
)


@click.command()
@click.argument("namespace")
@click.option("--tenant", "-t", help="Only this tenant (default: every tenant of the namespace).")
@redis_url_option
def invalidate(namespace: str, tenant: str | None, redis_url: str) -> None:
    """Make every worker miss NAMESPACE's current entries at once (no SCAN, no delete).

    Old entries stay until their TTL or LRU removes them; use `clear` to delete now.
    """
    check_namespace(namespace)

    async def go() -> tuple[int, bool | None]:
        async with open_cache(redis_url) as cache:
            seen = await _has_stats(cache, namespace, tenant)
            return await cache.invalidate(namespace, tenant), seen

    number, seen = run(go())
    if seen is False:
        scope = f"namespace {namespace!r}" + (f", tenant {tenant!r}" if tenant is not None else "")
        click.echo(
            f"Note: {scope} has no entries or stats yet (a typo? `cachekit stats` lists "
            "the namespaces in use); invalidated anyway.",
            err=True,
        )
    if tenant is None:
        click.echo(f"Invalidated namespace {namespace!r} for every tenant (epoch {number}).")
    else:
        click.echo(
            f"Invalidated namespace {namespace!r} for tenant {tenant!r} (generation {number})."
        )


#: SCAN calls (COUNT 1000 each) spent looking for a namespace's stats before giving up.
_SEEN_SCAN_CALLS = 100


async def _has_stats(cache: Any, namespace: str, tenant: str | None) -> bool | None:
    """Whether the namespace (or its tenant) was ever used; None when it is unknown.

    Every store, hit and counted bypass writes the space's stats hash (``_layout.py``),
    so "never used" is "no stats hash". For a tenant that is one EXISTS. For a whole
    namespace it is a SCAN for ``ck:{ns:*}:stats`` stopped at the first match; on one
    server also after ``_SEEN_SCAN_CALLS`` calls (a huge keyspace gives "unknown", never
    a false alarm). On a cluster it walks every primary, as ``stats`` does.
    """
    from .._layout import Space, encode_tenant
    from ..stats import stats_pattern

    client = cache.redis
    if tenant is not None:
        return bool(await client.exists(Space(namespace, encode_tenant(tenant)).stats_key))
    pattern = stats_pattern(namespace, None)
    if getattr(cache, "cluster", False):
        # redis-py's cluster scan_iter hides the per-node cursors: no call budget here.
        async for _ in client.scan_iter(match=pattern, count=1000):
            return True
        return False
    cursor: Any = 0
    for _ in range(_SEEN_SCAN_CALLS):
        cursor, found = await client.scan(cursor, match=pattern, count=1000)
        if found:
            return True
        if int(cursor) == 0:
            return False
    return None


@click.command()
@click.argument("namespace")
@click.option("--tenant", "-t", help="Only this tenant (default: every tenant of the namespace).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@redis_url_option
def clear(namespace: str, tenant: str | None, yes: bool, redis_url: str) -> None:
    """Delete NAMESPACE's keys (entries, vectors, counters) with SCAN + UNLINK."""
    check_namespace(namespace)
    what = f"namespace {namespace!r}" + (f", tenant {tenant!r}" if tenant is not None else "")
    if not yes and not click.confirm(f"Delete every key of {what}, stats included?"):
        # Declining is an answer, not a failure: exit 0 (1 is for the environment).
        click.echo("Aborted: nothing deleted.")
        return

    async def go() -> int:
        async with open_cache(redis_url) as cache:
            return await cache.clear(namespace, tenant)

    deleted = run(go())
    if deleted:
        click.echo(f"Deleted {deleted} keys of {what}.")
    else:
        click.echo(f"Nothing to delete for {what}. Hint: `cachekit stats` lists namespaces.")
