"""The ``nmfkit`` command line (click). One module per subcommand; errors become one line.

Every domain error (ValueError, TypeError, FileNotFoundError, ...) raised by a subcommand is
turned by :func:`main` into ``error: <message>`` on stderr with exit code 2, no traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(2)


def main(argv=None) -> None:
    """Console entry point."""
    try:
        import click  # noqa: F401
    except ImportError:
        _fail('the nmfkit command line needs click: pip install "nmfkit[cli]"')
    from ._app import cli

    try:
        cli.main(args=argv, prog_name="nmfkit", standalone_mode=False)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # noqa: BLE001 - the single top-level handler
        import click

        if isinstance(exc, click.exceptions.Abort):
            _fail("aborted")
        if isinstance(exc, click.ClickException):
            _fail(exc.format_message().replace("\n", " "))
        if isinstance(exc, (ValueError, TypeError, OSError, ImportError, KeyError)):
            _fail(str(exc).replace("\n", " "))
        raise
