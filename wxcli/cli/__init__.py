"""The ``wx`` command: a thin Typer layer over the wxcli library.

Each module in this package adds its commands through ``register(app)``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from wxcli.cli import _i18n

_i18n.install()

app = typer.Typer(
    help="wxcli：用一个 git 仓库管理银行公众号与微站。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{module.name}").register(app)


_register_commands()


def main() -> None:
    app()
