"""The ``cachekit`` command line (also ``python -m cachekit``).

Commands: ``stats``, ``inspect``, ``explain``, ``tune``, ``invalidate``, ``clear``,
``proxy``, ``redis``, ``demo``, ``console``. Each has ``--help``. Exit codes: 0 success (an empty
result and a declined confirmation included), 1 the environment failed (Redis
unreachable, a port in use), 2 bad input.

One module per job: ``_stats``, ``_inspect``, ``_explain``, ``_tune`` (with ``_sweep``),
``_manage`` (invalidate, clear) and ``_server`` (proxy, redis, demo); ``_common`` and
``_format`` hold what they share. The library never imports this package.
"""

from __future__ import annotations

import click

from ._console import console
from ._explain import explain
from ._inspect import inspect_cmd
from ._manage import clear, invalidate
from ._server import demo, proxy, redis
from ._stats import stats
from ._tune import tune

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cachekit")
def cli() -> None:
    """cachekit: exact and semantic caching of LLM calls in Redis."""


for _command in (stats, inspect_cmd, invalidate, clear, explain, tune, proxy, demo, redis, console):
    cli.add_command(_command)


def main() -> None:
    cli()
