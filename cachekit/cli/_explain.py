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
from ._explain_print import explain_key_command, print_explanation

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
    "--history",
    type=click.Choice(["exact", "similar"]),
    default="exact",
    show_default=True,
    help="The entry point's history= option (earlier turns in the scope, or matched by wording).",
)
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
@click.option(
    "--key",
    "digest",
    metavar="DIGEST",
    help="An X-Cache-Key response header: explain the entry it names (every tenant of "
    "the namespace that holds it, unless --tenant is given).",
)
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
    history: str,
    embedder: str,
    threshold: float | None,
    k: int,
    no_verify: bool,
    as_json: bool,
    digest: str | None,
    redis_url: str,
) -> None:
    """Why a request hits or misses: its key manifest, the exact key, the nearest prompts.

    Give the request as --prompt (a decorated function's arguments, with --arg for the
    rest), --messages-json, --body-file (an HTTP body), or --key (the X-Cache-Key header
    of a response). Nothing is written to Redis.
    """
    from .._manifest import build_manifest, default_normalize
    from ..errors import CacheKeyError

    check_namespace(namespace)
    given = [x for x in (prompt, messages_json, body_file, digest) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --prompt, --messages-json, --body-file, --key")
    if digest is not None:
        return explain_key_command(redis_url, namespace, digest, tenant, as_json)
    arguments: dict[str, Any] = {}
    if body_file is not None:
        try:
            raw = sys.stdin.read() if body_file == "-" else Path(body_file).read_text("utf-8")
            body = json.loads(raw)
        except OSError as exc:
            raise InputError(f"--body-file: {exc}") from None
        except ValueError as exc:
            raise InputError(f"--body-file: invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InputError("--body-file: the body must be a JSON object")
        http_manifest = _body_manifest(
            namespace, tenant, body, function_id, args, model, system, history
        )
        if http_manifest is not None:
            verify = {"verifier": None} if no_verify else {}
            result = run(
                _explain(redis_url, http_manifest, function_id, embedder, threshold, k, verify)
            )
            if as_json:
                click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
            else:
                print_explanation(result)
            return None
        from ..middleware import default_extractor

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
            history=history,
        )
    except CacheKeyError as exc:
        raise InputError(str(exc)) from None
    verify = {"verifier": None} if no_verify else {}
    result = run(_explain(redis_url, manifest, function_id, embedder, threshold, k, verify))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print_explanation(result)


def _body_manifest(
    namespace: str,
    tenant: str | None,
    body: dict[str, Any],
    function_id: str,
    args: Sequence[str],
    model: str | None,
    system: str | None,
    history: str = "exact",
) -> Any:
    """A body for an HTTP path (``--function-id http:<path>``), keyed as the middleware and
    the proxy key it: through the API table (Responses input items, embeddings exact,
    ...). None for a decorated function's id (keyed from its arguments instead). Request
    headers the key reads (``anthropic-version``) are not known here: such a body is
    keyed as if they were absent."""
    if not function_id.startswith("http:"):
        return None
    from ..middleware._options import Config

    body = dict(body)  # --model, --arg and --system change the body, as a client would
    if model is not None:
        body["model"] = model
    for item in args:
        name, value = _parse_arg(item)
        body[name] = value
    if system is not None:
        if isinstance(body.get("messages"), list):
            body["messages"] = [{"role": "system", "content": system}, *body["messages"]]
        else:
            body["system"] = system  # Anthropic Messages

    path, _, query = function_id[len("http:") :].partition("?")
    config = Config(namespace=namespace, allow_global=True, history=history)
    manifest = config.manifest(body, None, tenant, path, query, None)
    if isinstance(manifest, str):
        raise InputError(f"--body-file: the middleware would not cache this request ({manifest})")
    return manifest


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
