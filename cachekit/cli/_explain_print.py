"""What ``cachekit explain`` prints, and its ``--key`` form (the entry an
``X-Cache-Key`` header names)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ._common import InputError, open_cache, run
from ._format import echo_table, fmt_age, shorten

if TYPE_CHECKING:
    from .._explain_key import KeyExplanation
    from .._explanation import Explanation


def explain_key_command(
    url: str, namespace: str, digest: str, tenant: str | None, as_json: bool
) -> None:
    """``explain --key``: every tenant holding ``digest`` unless ``tenant`` is given."""
    from .._explain_key import DIGEST_RE, explain_key
    from .._stats_report import decode_tenant_token

    digest = digest.strip().lower()
    if not DIGEST_RE.match(digest):
        raise InputError(
            f"--key {digest[:40]!r}: expected the 32 hex digits of an X-Cache-Key header"
        )

    async def go() -> KeyExplanation:
        async with open_cache(url) as cache:
            return await explain_key(cache, namespace, digest, tenant=tenant, search=tenant is None)

    result = run(go())
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    click.echo(f"Key {digest} in namespace {namespace!r}")
    for m in result.matches:
        ttl = "never expires" if m.ttl_s is None else f"{m.ttl_s:.0f} s left"
        who = decode_tenant_token(m.tenant_token)
        tenant = "(none)" if m.tenant_token == "_" else repr(who) if who else "(hashed id)"
        token = shorten(m.tenant_token, 48)
        click.echo(f"\nTenant {tenant} [token {token}] (generation {m.generation})")
        click.echo(f"  exact key: {m.status}")
        if m.entry_id is not None and m.prompt is not None:
            click.echo(f"  entry {m.entry_id}: age {fmt_age(m.age_s)}, {m.hits} hits, {ttl}")
            click.echo(f"  model {m.model or '-'}, scope {m.scope_digest or '-'}")
            click.echo(f"  prompt {shorten(repr(m.prompt), 90)}")
        if m.older_generations:
            olds = ", ".join(map(str, m.older_generations))
            click.echo(f"  also under invalidated generations: {olds}")
        click.echo(f"  -> {m.verdict}")
    click.echo(f"\nVerdict: {result.verdict}")


def print_explanation(x: Explanation) -> None:
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
        "dangling": "the entry (or its body) is gone (expired/evicted): a miss",
        "stale-epoch": "present but stored before the last invalidate(): a miss",
        "stale-generation": "present but stored before the tenant's last invalidate(): a miss",
        "corrupt": "an entry cachekit did not write: a miss",
    }.get(x.exact_status, x.exact_status)
    click.echo(f"Exact lookup {x.exact_key}: {status}")
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
