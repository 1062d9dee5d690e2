"""The ``cachekit`` command line (also ``python -m cachekit``).

Commands: ``stats``, ``inspect``, ``explain``, ``tune``, ``invalidate``, ``clear``,
``proxy``, ``redis``, ``demo``. Each has ``--help``. Exit codes: 0 success (an empty
result and a declined confirmation included), 1 the environment failed (Redis
unreachable, a port in use), 2 bad input.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._clikit import (
    CliError,
    InputError,
    echo_table,
    fmt_age,
    fmt_bytes,
    fmt_count,
    fmt_pct,
    fmt_usd,
    make_embedder,
    open_cache,
    redis_url_option,
    run,
    shorten,
)

if TYPE_CHECKING:
    from ._inspect import Explanation
    from ._tune import NearMiss, Pair, SweepRow
    from .stats import StatsReport, StatsRow

__all__ = ["cli", "main"]

_TOKEN_RE = re.compile(r"^(?:_|b[A-Za-z0-9_-]+|h[0-9a-f]{64})$")
_NAMESPACE_HELP = "Namespace (as given to @cached_llm / the middleware)."
_TENANT_HELP = "Tenant id as your code passes it (it is encoded before it reaches a key)."
_TOKEN_HELP = "Encoded tenant token as shown by `stats --json` (`_` = calls without a tenant)."


def _check_namespace(namespace: str | None) -> None:
    from ._layout import NAMESPACE_RE

    if namespace is not None and not NAMESPACE_RE.match(namespace):
        raise click.BadParameter(
            f"{namespace!r}: 1-64 characters of A-Z a-z 0-9 _ . -", param_hint="namespace"
        )


def _token(tenant: str | None, tenant_token: str | None) -> str | None:
    from ._layout import encode_tenant

    if tenant is not None and tenant_token is not None:
        raise click.UsageError("give --tenant or --tenant-token, not both")
    if tenant is not None:
        return encode_tenant(tenant)
    if tenant_token is not None and not _TOKEN_RE.match(tenant_token):
        raise click.BadParameter(
            f"{tenant_token!r} is not a tenant token (`_`, `b<base64url>` or `h<sha256 hex>`)",
            param_hint="--tenant-token",
        )
    return tenant_token


def _scope_hint(namespace: str | None, tenant: str | None, tenant_token: str | None) -> str:
    parts = []
    if namespace:
        parts.append(f"namespace {namespace!r}")
    if tenant is not None:
        parts.append(f"tenant {tenant!r}")
    if tenant_token is not None:
        parts.append(f"tenant token {tenant_token!r}")
    return " and ".join(parts) if parts else "this Redis"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cachekit")
def cli() -> None:
    """cachekit: exact and semantic caching of LLM calls in Redis."""


# --------------------------------------------------------------------------- stats


@cli.command()
@click.option("--namespace", "-n", help=_NAMESPACE_HELP)
@click.option("--tenant", "-t", help=_TENANT_HELP)
@click.option("--tenant-token", help=_TOKEN_HELP)
@click.option(
    "--pricing",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON file of model prices (USD per 1M tokens) overriding the bundled table.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@redis_url_option
def stats(
    namespace: str | None,
    tenant: str | None,
    tenant_token: str | None,
    pricing: str | None,
    as_json: bool,
    redis_url: str,
) -> None:
    """Hits, misses, tokens and dollars saved, per namespace and tenant (all workers)."""
    from .errors import CacheConfigError
    from .stats import Pricing

    _check_namespace(namespace)
    token = _token(tenant, tenant_token)
    try:
        table = Pricing.load(pricing)
    except CacheConfigError as exc:
        raise InputError(str(exc)) from None
    report, known = run(_stats(redis_url, namespace, token, table))
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
        hint = f"No stats for {_scope_hint(namespace, tenant, tenant_token)}."
        if known:
            hint += f" Namespaces with stats: {', '.join(known[:20])}."
        else:
            hint += " Nothing has been cached in this Redis yet (check --redis-url)."
        click.echo(hint)


async def _stats(
    url: str, namespace: str | None, token: str | None, pricing: Any
) -> tuple[StatsReport, list[str]]:
    import logging

    from .stats import stats as read_stats

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
        f"Hit rate = (exact + semantic) / (exact + semantic + miss). Prices: list prices as of "
        f"{report.pricing_as_of} (override with --pricing)."
    ]
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


# -------------------------------------------------------------------------- inspect


@cli.command("inspect")
@click.option("--namespace", "-n", help=_NAMESPACE_HELP + " Default: all.")
@click.option("--tenant", "-t", help=_TENANT_HELP)
@click.option("--tenant-token", help=_TOKEN_HELP)
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
    namespace: str | None,
    tenant: str | None,
    tenant_token: str | None,
    limit: int,
    sort: str,
    live_only: bool,
    max_scan: int,
    as_json: bool,
    redis_url: str,
) -> None:
    """Cached entries: prompt, model, age, hits, size."""
    from ._inspect import list_entries

    _check_namespace(namespace)
    token = _token(tenant, tenant_token)

    async def go() -> Any:
        async with open_cache(redis_url) as cache:
            return await list_entries(
                cache.redis,
                namespace,
                token,
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
        click.echo(f"No entries for {_scope_hint(namespace, tenant, tenant_token)}.")
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


# --------------------------------------------------------------- invalidate / clear


@cli.command()
@click.argument("namespace")
@click.option("--tenant", "-t", help="Only this tenant (default: every tenant of the namespace).")
@redis_url_option
def invalidate(namespace: str, tenant: str | None, redis_url: str) -> None:
    """Make every worker miss NAMESPACE's current entries at once (no SCAN, no delete).

    Old entries stay until their TTL or LRU removes them; use `clear` to delete now.
    """
    _check_namespace(namespace)

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
    from ._layout import Space, encode_tenant
    from .stats import stats_pattern

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


@cli.command()
@click.argument("namespace")
@click.option("--tenant", "-t", help="Only this tenant (default: every tenant of the namespace).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@redis_url_option
def clear(namespace: str, tenant: str | None, yes: bool, redis_url: str) -> None:
    """Delete NAMESPACE's keys (entries, vectors, counters) with SCAN + UNLINK."""
    _check_namespace(namespace)
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


# -------------------------------------------------------------------------- explain


def _parse_arg(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="--arg")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw  # a bare string
    return name.strip(), value


def _load_json_option(text: str, what: str) -> Any:
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{what}: cannot read {text[1:]}: {exc}") from None
    try:
        return json.loads(source)
    except ValueError as exc:
        raise InputError(f"{what}: invalid JSON: {exc}") from None


@cli.command()
@click.option("--namespace", "-n", default="proxy", show_default=True, help=_NAMESPACE_HELP)
@click.option("--tenant", "-t", help=_TENANT_HELP + " The proxy's is `key:<digest>`: see `stats`.")
@click.option("--prompt", "-p", help="The prompt argument of a decorated function.")
@click.option(
    "--messages-json",
    help="An OpenAI-style messages list as JSON (or @file.json).",
)
@click.option(
    "--body-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="A JSON request body as sent to the middleware or proxy ('-' for stdin).",
)
@click.option("--model", "-m", help="The model argument / body field.")
@click.option("--system", help="System prompt (an argument with --prompt, a message otherwise).")
@click.option(
    "--arg",
    "args",
    multiple=True,
    metavar="NAME=JSON",
    help="Another bound argument or body field (JSON value, else a string). Repeatable.",
)
@click.option(
    "--prompt-param", default="prompt", show_default=True, help="Name of the prompt argument."
)
@click.option(
    "--function-id",
    default="http:/v1/chat/completions",
    show_default=True,
    help="The scope's function: `http:<path>` for the middleware/proxy, "
    "`<module>.<qualname>` for a decorated function.",
)
@click.option("--ignore", multiple=True, help="Argument names the decorator ignores. Repeatable.")
@click.option("--no-normalize", is_flag=True, help="The decorator was given normalize=None.")
@click.option(
    "--embedder",
    default="auto",
    show_default=True,
    help="auto (the one the index was built with), none, minilm, openai:<model>, "
    "st:<model>, py:<module>:<attribute> (your own Embedder or a factory of one).",
)
@click.option(
    "--threshold", type=click.FloatRange(-1, 1), help="Default: the embedder's calibrated one."
)
@click.option(
    "--k",
    "k",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Neighbours to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@redis_url_option
def explain(
    namespace: str,
    tenant: str | None,
    prompt: str | None,
    messages_json: str | None,
    body_file: str | None,
    model: str | None,
    system: str | None,
    args: Sequence[str],
    prompt_param: str,
    function_id: str,
    ignore: Sequence[str],
    no_normalize: bool,
    embedder: str,
    threshold: float | None,
    k: int,
    as_json: bool,
    redis_url: str,
) -> None:
    """Why a request hits or misses: its key manifest, the exact key, the nearest prompts.

    Give the request as --prompt (a decorated function's arguments, with --arg for the
    rest), --messages-json, or --body-file (an HTTP body). Nothing is written to Redis.
    """
    from ._manifest import build_manifest, default_normalize
    from .errors import CacheKeyError

    _check_namespace(namespace)
    given = [x for x in (prompt, messages_json, body_file) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --prompt, --messages-json, --body-file")
    arguments: dict[str, Any] = {}
    if body_file is not None:
        from .middleware import default_extractor

        try:
            raw = sys.stdin.read() if body_file == "-" else Path(body_file).read_text("utf-8")
            body = json.loads(raw)
        except OSError as exc:
            raise InputError(f"--body-file: {exc}") from None
        except ValueError as exc:
            raise InputError(f"--body-file: invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InputError("--body-file: the body must be a JSON object")
        arguments = dict(default_extractor(body, None))
    elif messages_json is not None:
        messages = _load_json_option(messages_json, "--messages-json")
        if not isinstance(messages, list):
            raise InputError("--messages-json: expected a JSON list of messages")
        arguments["messages"] = messages
    else:
        arguments[prompt_param] = prompt
    if system is not None:
        if prompt is not None:
            arguments["system"] = system
        else:
            msgs = list(arguments.get("messages") or [])
            arguments["messages"] = [{"role": "system", "content": system}, *msgs]
    if model is not None:
        arguments["model"] = model
    for item in args:
        name, value = _parse_arg(item)
        arguments[name] = value
    try:
        manifest = build_manifest(
            namespace,
            tenant,
            arguments,
            function_id=function_id,
            prompt_param=prompt_param if prompt is not None else None,
            ignore=ignore,
            normalize=None if no_normalize else default_normalize,
        )
    except CacheKeyError as exc:
        raise InputError(str(exc)) from None
    result = run(_explain(redis_url, manifest, function_id, embedder, threshold, k))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        _print_explanation(result)


async def _explain(
    url: str, manifest: Any, function_id: str, spec: str, threshold: float | None, k: int
) -> Explanation:
    from ._clikit import embedder_for_model_id
    from ._inspect import explain as explain_request
    from ._layout import META_KEY
    from .errors import EmbedderError

    async with open_cache(url) as cache:
        unknown_model: str | None = None
        if spec == "auto":
            raw = await cache.redis.hget(META_KEY, "model")
            model_id = _as_text(raw) if raw else None
            found = embedder_for_model_id(model_id) if model_id else None
            if model_id and not found:
                unknown_model = model_id
            spec = found or "none"
        emb = make_embedder(spec)
        if threshold is None and emb is not None:
            threshold = emb.default_threshold
        try:
            result = await explain_request(
                cache.redis,
                manifest,
                function_id=function_id,
                embedder=emb,
                threshold=threshold,
                k=k,
            )
        except EmbedderError as exc:
            raise CliError(f"embedder failed: {exc}") from None
        if unknown_model:
            result.semantic_status = (
                f"skipped: the index was built with {unknown_model!r}; pass the same "
                "embedder with --embedder py:<module>:<attribute>"
            )
        return result


def _as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _print_explanation(x: Explanation) -> None:
    m = x.manifest
    tenant = "(none)" if m.tenant is None else repr(m.tenant)
    click.echo("Request")
    for label, value in (
        ("namespace", m.namespace),
        ("tenant", f"{tenant}  [token {shorten(x.tenant_token, 40)}]"),
        ("function", x.function_id),
        ("model", m.model or "-"),
        ("prompt", repr(m.prompt) if m.prompt is not None else "(none: exact layer only)"),
        ("normalized", repr(m.normalized_prompt) if m.normalized_prompt is not None else "-"),
        ("scope digest", m.scope_digest),
        ("exact digest", m.exact_digest),
    ):
        click.echo(f"  {label:<13} {value}")
    click.echo("  scope (must match exactly):")
    for line in json.dumps(dict(m.scope), indent=2, ensure_ascii=False, default=str).splitlines():
        click.echo(f"    {line}")
    click.echo(f"\nRedis: namespace epoch {x.epoch}, tenant generation {x.generation}")
    status = {
        "hit": "present -> exact hit",
        "absent": "absent",
        "dangling": "points to an entry that is gone (expired/evicted): a miss",
        "stale-epoch": "present but stored before the last invalidate(): a miss",
    }.get(x.exact_status, x.exact_status)
    click.echo(f"Exact key {x.exact_key}: {status}")
    if x.exact_entry:
        e = x.exact_entry
        click.echo(f"  entry {e['entry_id']}: age {fmt_age(e['age_s'])}, {e['hits']} hits")
    thr = "-" if x.threshold is None else f"{x.threshold:.4f}"
    click.echo(
        f"\nSemantic layer: embedder {x.embedder or 'none'}, index {x.index_backend or '-'}, "
        f"threshold {thr}: {x.semantic_status}"
    )
    click.echo(f"  entries in this scope: {x.scope_entries}")
    if x.candidates:
        rows = [
            [
                f"{c.similarity:.4f}",
                "HIT" if c.accepted else ("stale" if not c.live else ""),
                fmt_age(c.age_s),
                str(c.hits),
                shorten(c.prompt, 70),
            ]
            for c in x.candidates
        ]
        echo_table(["SIMILARITY", "", "AGE", "HITS", "CACHED PROMPT"], rows, "rlrrl")
    if x.other_scopes:
        click.echo(
            f"\nOther scopes of this namespace+tenant ({x.other_scope_entries} live entries): "
            "a paraphrase is never matched across scopes"
        )
        rows = [
            [
                s.scope_digest,
                str(s.entries),
                shorten(", ".join(s.models) or "-", 24),
                shorten(s.sample_prompt, 50),
            ]
            for s in x.other_scopes
        ]
        echo_table(["SCOPE", "ENTRIES", "MODELS", "EXAMPLE PROMPT"], rows, "lrll")
    click.echo(f"\nVerdict: {x.verdict}")


# ----------------------------------------------------------------------------- tune


@cli.command()
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
@click.option(
    "--target-precision",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Recommend the lowest threshold at least this precise.",
)
@click.option(
    "--min",
    "t_min",
    default=0.5,
    show_default=True,
    type=click.FloatRange(-1, 1),
    help="Lowest threshold swept.",
)
@click.option(
    "--max",
    "t_max",
    default=0.99,
    show_default=True,
    type=click.FloatRange(-1, 1),
    help="Highest threshold swept.",
)
@click.option(
    "--step",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0.001, 0.5),
    help="Threshold step.",
)
@click.option(
    "--plot", type=click.Path(dir_okay=False, writable=True), help="Write a PNG plot here."
)
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
    as_json: bool,
    redis_url: str,
) -> None:
    """Pick a semantic threshold: precision, recall and hit rate per threshold.

    PAIRS_FILE holds labelled prompt pairs (JSONL, JSON list or TSV with text_a, text_b,
    label; 1 = the same answer may be served). Or --from-near-misses reads what missed in
    production just under the threshold: unlabelled it shows the hits a lower threshold
    would add; with --label (or --export, edit, re-run) it shows whether they would be right.
    """
    from ._tune import PairsFileError, load_pairs, thresholds_between

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
        _check_namespace(namespace)
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
    _labelled_sweep(pairs, thresholds, embedder, target_precision, plot, as_json, title, current)


async def _near_misses(url: str, namespace: str, tenant: str | None, limit: int) -> list[NearMiss]:
    from ._tune import read_near_misses

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
    from ._tune import Pair

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


def _labelled_sweep(
    pairs: Sequence[Pair],
    thresholds: Sequence[float],
    embedder_spec: str,
    target: float,
    plot: str | None,
    as_json: bool,
    title: str,
    current: float | None,
) -> None:
    from ._tune import (
        MAX_RELIABLE_CI_WIDTH,
        MIN_RELIABLE_PAIRS,
        plot_sweep,
        recommend,
        sweep,
        wilson_interval,
    )

    sims = _similarities(pairs, embedder_spec)
    labels = [p.label or 0 for p in pairs]  # loaded pairs always carry a label
    rows = sweep(sims, labels, thresholds)
    best = recommend(rows, target)
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
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"{len(pairs)} pairs, {positives} labelled as the same answer.")
        _print_sweep(rows, best)
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
    if plot:
        plot_sweep(
            rows, plot, target_precision=target, recommended=best, title=title, current=current
        )
        if not as_json:
            click.echo(f"Plot written to {plot}")
    if note:
        click.echo(note, err=True)  # last, under the recommendation it qualifies


def _print_sweep(rows: Sequence[SweepRow], best: SweepRow | None) -> None:
    stride = max(1, math.ceil(len(rows) / 25))
    shown = [r for i, r in enumerate(rows) if i % stride == 0 or r is best or i == len(rows) - 1]
    table = [
        [
            f"{r.threshold:.2f}",
            str(r.accepted),
            fmt_pct(r.precision),
            fmt_pct(r.recall),
            fmt_pct(r.hit_rate),
            "-" if r.f1 is None else f"{r.f1:.3f}",
            "<- recommended" if r is best else "",
        ]
        for r in shown
    ]
    echo_table(
        ["THRESHOLD", "ACCEPTED", "PRECISION", "RECALL", "HIT RATE", "F1", ""], table, "rrrrrrl"
    )


def _similarities(pairs: Sequence[Pair], spec: str) -> Any:
    from ._tune import embed_similarities
    from .errors import EmbedderError

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


# ---------------------------------------------------------------------------- proxy


@cli.command()
@click.option(
    "--upstream",
    default="https://api.openai.com/v1",
    show_default=True,
    help="The API base URL to forward to (as an OpenAI SDK's base_url).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--namespace", "-n", default="proxy", show_default=True, help=_NAMESPACE_HELP)
@click.option(
    "--embedder",
    default="none",
    show_default=True,
    help="Semantic layer: none (exact only), minilm, openai:<model>, st:<model>, "
    "py:<module>:<attribute>.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1, 1),
    help="Semantic threshold (cosine); default: the embedder's calibrated one.",
)
@click.option("--ttl", type=click.IntRange(1), help="Seconds an entry lives (default: forever).")
@click.option(
    "--timeout", default=600.0, show_default=True, type=click.FloatRange(0, min_open=True)
)
@click.option(
    "--allow-global", is_flag=True, help="Share answers between callers without an API key."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@redis_url_option
def proxy(
    upstream: str,
    host: str,
    port: int,
    namespace: str,
    embedder: str,
    threshold: float | None,
    ttl: int | None,
    timeout: float,
    allow_global: bool,
    log_level: str,
    redis_url: str,
) -> None:
    """Serve an OpenAI-compatible caching proxy (point base_url at http://HOST:PORT/v1)."""
    from .errors import CacheConfigError

    _check_namespace(namespace)
    try:
        from .proxy import run_proxy
    except ImportError as exc:
        raise CliError(
            f"the proxy needs its extra: pip install 'cachekit[proxy]' ({exc})"
        ) from None
    emb = make_embedder(embedder)
    if threshold is not None and emb is None:
        raise click.UsageError(
            "--threshold needs a semantic layer: pass --embedder minilm (or another)"
        )
    options: dict[str, Any] = {}
    if threshold is not None:
        options["threshold"] = threshold
    try:
        run_proxy(
            upstream,
            host=host,
            port=port,
            redis_url=redis_url,
            namespace=namespace,
            ttl=ttl,
            embedder=emb,
            timeout=timeout,
            allow_global=allow_global,
            log_level=log_level,
            **options,
        )
    except CacheConfigError as exc:
        raise InputError(str(exc)) from None


# ------------------------------------------------------------------- redis / demo


@cli.command()
def demo() -> None:
    """Run the cache in front of an LLM: miss, semantic hit, exact hit, stats.

    Needs no API key: with neither CACHEKIT_REDIS_URL nor REDIS_URL set it starts a
    throwaway Redis 8, and with no
    OPENAI_API_KEY it calls a clearly labelled offline stand-in for the LLM.
    """
    from ._demo import run_demo

    sys.exit(run_demo())


@cli.command()
@click.option("--port", default=6379, show_default=True, help="TCP port on 127.0.0.1.")
@click.option("--search/--no-search", default=False, help="Load the RediSearch module.")
def redis(port: int, search: bool) -> None:
    """Start a local Redis 8 for development (Ctrl-C stops it).

    Exits 1 when the port is already in use (by another Redis or any other program)
    or when redis-server cannot be started or stops on its own.
    """
    from ._server import RedisServer
    from .errors import RedisPortInUseError, RedisServerNotFoundError

    try:
        server = RedisServer(port=port, search=search).start()
    except RedisPortInUseError as exc:
        hint = (
            f"use it (redis://127.0.0.1:{port}/0) or pick another --port"
            if exc.redis
            else "stop what holds it or pick another --port"
        )
        raise CliError(f"{exc}: {hint}") from None
    except RedisServerNotFoundError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"Redis 8 listening on {server.url} (Ctrl-C to stop)")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill` stops the server too, not only Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    code: int | None = None
    try:
        while server.process is not None and (code := server.process.poll()) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        code = None
    finally:
        server.stop()
    if code is not None:
        raise CliError(f"redis-server stopped on its own (exit code {code})")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
