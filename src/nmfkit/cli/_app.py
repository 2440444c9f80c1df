"""The ``nmfkit`` click group: the subcommands, each in its own module, added to it here."""

from __future__ import annotations

import click

from .._version import __version__
from . import demo, fit, info, recommend, report, transform
from ._common import NmfkitGroup


@click.group(cls=NmfkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmfkit")
def cli():
    """nmfkit: non-negative matrix factorisation from the shell.

    X (samples × features, non-negative) ≈ W H: W (samples × k) holds the coefficients, H
    (k × features) the parts. Start with `nmfkit demo`, then `nmfkit fit data.csv -k 10`.
    """


for _command in (demo.demo, fit.fit, info.info, recommend.recommend, report.report_cmd,
                 transform.transform):
    cli.add_command(_command)
try:
    from . import rank  # needs nmfkit.selection
except ImportError:
    pass
else:
    cli.add_command(rank.rank)
