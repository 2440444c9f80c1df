"""The click group; subcommands register themselves on it from their own modules."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmfkit")
def cli():
    """nmfkit: non-negative matrix factorisation from the shell."""


from . import demo as _demo  # noqa: E402,F401  (registers `nmfkit demo`)
