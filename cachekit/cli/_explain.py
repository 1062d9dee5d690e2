"""``cachekit explain``: why a request hits or misses."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    NAMESPACE_HELP,
    TENANT_HELP,
    CliError,
    InputError,
    check_namespace,
    embedder_for_model_id,
    make_embedder,
    open_cache,
    redis_url_option,
    run,
)
from ._format import echo_table, fmt_age, shorten

if TYPE_CHECKING:
    from .._explanation import Explanation


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


@click.command()
@click.option("--namespace", "-n", default="proxy", show_default=True, help=NAMESPACE_HELP)
@click.option("--tenant", "-t", help=TENANT_HELP + " The proxy's is `key:<digest>`: see `stats`.")
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
@click.option("--no-verify", is_flag=True, help="The app's cache has verifier=None.")
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
    no_verify: bool,
    as_json: bool,
    redis_url: str,
) -> None:
    """Why a request hits or misses: its key manifest, the exact key, the nearest prompts.

    Give the request as --prompt (a decorated function's arguments, with --arg for the
    rest), --messages-json, or --body-file (an HTTP body). Nothing is written to Redis.
    """
    from .._manifest import build_manifest, default_normalize
    from ..errors import CacheKeyError

    check_namespace(namespace)
    given = [x for x in (prompt, messages_json, body_file) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --prompt, --messages-json, --body-file")
    arguments: dict[str, Any] = {}
    if body_file is not None:
        from ..middleware import default_extractor

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
    verify = {"verifier": None} if no_verify else {}
    result = run(_explain(redis_url, manifest, function_id, embedder, threshold, k, verify))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        _print_explanation(result)


async def _explain(
    url: str,
    manifest: Any,
    function_id: str,
    spec: str,
    threshold: float | None,
    k: int,
    options: dict[str, Any],
) -> Explanation:
    from .._explanation import explain as explain_request
    from ..errors import EmbedderError

    async with open_cache(url, **options) as cache:
        unknown_model: str | None = None
        if spec == "auto":
            model_id = (await cache.index_meta()).get("model")
            found = embedder_for_model_id(model_id) if model_id else None
            if model_id and not found:
                unknown_model = model_id
            spec = found or "none"
        emb = make_embedder(spec)
        if threshold is None and emb is not None:
            threshold = emb.default_threshold
        try:
            result = await explain_request(
                cache,
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
        "stale-generation": "present but stored before the tenant's last invalidate(): a miss",
        "corrupt": "points to an entry cachekit did not write: a miss",
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
