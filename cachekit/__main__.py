"""``python -m cachekit``: the ``cachekit`` command line (see :mod:`cachekit.cli`)."""

from .cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
