"""The ``nmfkit`` command line (click). One module per subcommand; errors become one line.

Every user mistake raised by a subcommand (ValueError, TypeError, OSError, click's usage
errors, ...) is turned by the group's ``main`` (:class:`nmfkit.cli._common.NmfkitGroup`) into
``error: <message>`` on stderr with exit code 2 and no traceback; Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv=None) -> None:
    """Console entry point (``nmfkit`` and ``python -m nmfkit``)."""
    try:
        import click  # noqa: F401
    except ImportError:
        sys.stderr.write('error: the nmfkit command line needs click: pip install "nmfkit[cli]"\n')
        raise SystemExit(2)
    from ._app import cli

    cli.main(args=argv, prog_name="nmfkit")
