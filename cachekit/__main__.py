"""The ``cachekit`` command line (also ``python -m cachekit``)."""

from __future__ import annotations

import sys
import time

import click

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cachekit")
def cli() -> None:
    """cachekit: exact and semantic caching of LLM calls in Redis."""


@cli.command()
def demo() -> None:
    """Run the cache in front of an LLM: miss, semantic hit, exact hit, stats.

    Needs no API key: with no REDIS_URL it starts a throwaway Redis 8, and with no
    OPENAI_API_KEY it calls a clearly labelled offline stand-in for the LLM.
    """
    from ._demo import run_demo

    sys.exit(run_demo())


@cli.command()
@click.option("--port", default=6379, show_default=True, help="TCP port on 127.0.0.1.")
@click.option("--search/--no-search", default=False, help="Load the RediSearch module.")
def redis(port: int, search: bool) -> None:
    """Start a local Redis 8 for development (Ctrl-C stops it)."""
    from ._server import RedisServer

    server = RedisServer(port=port, search=search).start()
    click.echo(f"Redis 8 listening on {server.url} (Ctrl-C to stop)")
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
