"""``cachekit proxy`` configured from the environment: ``CACHEKIT_PROXY_<OPTION>``.

Every option of the command can be set as ``CACHEKIT_PROXY_`` + its name in capitals
(``--redis-url`` is ``CACHEKIT_PROXY_REDIS_URL``, ``--only-if-cached`` is
``CACHEKIT_PROXY_ONLY_IF_CACHED=1``): what a container platform passes. An option given on
the command line wins over the environment. A value the option would refuse is an error
that names the variable, not the flag nobody typed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

import click
from click.core import ParameterSource

from ._common import InputError

__all__ = ["PREFIX", "ProxyEnv"]

PREFIX: Final = "CACHEKIT_PROXY_"


class ProxyEnv:
    """The command's values with the environment applied, and where each came from."""

    def __init__(self, ctx: click.Context, environ: Mapping[str, str]) -> None:
        self.values: dict[str, Any] = dict(ctx.params)
        #: option name -> the variable its value came from (options set by the environment)
        self.variables: dict[str, str] = {}
        for param in ctx.command.params:
            name = param.name
            if name is None or not isinstance(param, click.Option):
                continue
            variable = PREFIX + name.upper()
            raw = environ.get(variable)
            if raw is None or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                continue  # not set, or given on the command line: the flag wins
            kind = click.BOOL if param.is_flag else param.type
            try:
                self.values[name] = kind.convert(raw.strip(), param, ctx)
            except click.BadParameter as exc:
                raise InputError(f"{variable}={_shown(name, raw)}: {exc.message}") from None
            self.variables[name] = variable

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @contextlib.contextmanager
    def naming(self, name: str) -> Iterator[None]:
        """Checks of option ``name`` inside the block name its variable when it came
        from the environment (``click`` errors and :class:`CacheConfigError` alike)."""
        from ..errors import CacheConfigError

        variable = self.variables.get(name)
        try:
            yield
        except (click.BadParameter, CacheConfigError) as exc:
            if variable is None:
                raise
            message = exc.message if isinstance(exc, click.BadParameter) else str(exc)
            shown = _shown(name, self.values[name])
            raise InputError(f"{variable}={shown}: {message}") from None


def _shown(name: str, value: Any) -> str:
    """A value for an error line; a Redis URL without its password."""
    if name == "redis_url" and isinstance(value, str):
        from .._clients import redact

        value = redact(value)
    return repr(value)
