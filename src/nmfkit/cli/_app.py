"""The click group, its single error handler, and the options every subcommand shares."""

from __future__ import annotations

import logging
import sys
import warnings

import click

from .. import __version__

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class NmfkitGroup(click.Group):
    """A click group whose ``main`` turns every user mistake into ``error: ...`` and exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except KeyboardInterrupt:
            _stderr("error: interrupted by the user (Ctrl-C)")
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Abort:
            _stderr("error: interrupted by the user (Ctrl-C)")
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            msg = exc.format_message()
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                msg += f" (see: {exc.ctx.command_path} --help)"
            _stderr(f"error: {_one_line(msg)}")
            sys.exit(EXIT_USER_ERROR)
        except (ValueError, TypeError, OSError, ImportError, KeyError, MemoryError) as exc:
            if logging.getLogger("nmfkit").isEnabledFor(logging.DEBUG):
                logging.getLogger("nmfkit").exception("details")
            msg = _one_line(exc.args[0] if len(exc.args) == 1 else exc)
            if isinstance(exc, MemoryError):
                msg = f"not enough memory ({msg or 'MemoryError'}); try --float32, a smaller -k " \
                      "or a smaller input"
            _stderr(f"error: {msg or type(exc).__name__}")
            sys.exit(EXIT_USER_ERROR)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _stderr(text: str) -> None:
    click.echo(text, err=True)


def setup_logging(verbose: int) -> None:
    """``-v`` logs nmfkit's INFO messages on stderr, ``-vv`` DEBUG (with tracebacks on error)."""
    logger = logging.getLogger("nmfkit")
    if verbose <= 0:
        return
    level = logging.INFO if verbose == 1 else logging.DEBUG
    if not any(getattr(h, "_nmfkit_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._nmfkit_cli = True
        logger.addHandler(handler)
    logger.setLevel(level)


def common_options(f):
    """``-q/--quiet``, ``--progress`` and ``-v`` on every subcommand."""
    f = click.option("-v", "--verbose", count=True,
                     help="Log progress (logger 'nmfkit') on stderr; -vv for debug.")(f)
    f = click.option("--progress/--no-progress", "progress", default=None,
                     help="Force the progress bar on or off (default: on when stderr is a "
                          "terminal).")(f)
    f = click.option("-q", "--quiet", is_flag=True,
                     help="No progress bar, warnings or messages; only errors.")(f)
    return f


class Console:
    """Where a subcommand writes: messages on stdout, warnings on stderr, both off with -q."""

    def __init__(self, quiet: bool, progress, verbose: int):
        self.quiet = quiet
        self.verbose = verbose
        self.show_bar = False if quiet else (progress if progress is not None
                                             else sys.stderr.isatty())
        setup_logging(verbose)

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)

    def warn(self, text: str) -> None:
        if not self.quiet:
            _stderr(f"warning: {_one_line(text)}")

    def replay(self, caught) -> None:
        """Show warnings caught during a fit as one line each (deduplicated)."""
        seen = set()
        for w in caught:
            msg = _one_line(str(w.message))
            if msg not in seen:
                seen.add(msg)
                self.warn(msg)

    def bar(self, total: int, desc: str):
        """A tqdm bar on stderr (a no-op object when off or when tqdm is missing)."""
        if self.show_bar:
            try:
                from tqdm.auto import tqdm

                return tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                            dynamic_ncols=True)
            except ImportError:
                pass
        return _NoBar()


class _NoBar:
    n = 0
    total = 0

    def update(self, n=1):
        self.n += n

    def set_postfix_str(self, *a, **k):
        pass

    def set_description(self, *a, **k):
        pass

    def reset(self, total=None):
        self.n = 0

    def close(self):
        pass


def catch_warnings():
    """A context manager recording every warning (the CLI replays them as one line each)."""
    ctx = warnings.catch_warnings(record=True)
    return ctx


@click.group(cls=NmfkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmfkit")
def cli():
    """nmfkit: non-negative matrix factorisation from the shell.

    X (samples × features, non-negative) ≈ W H: W (samples × k) holds the coefficients, H
    (k × features) the parts. Start with `nmfkit demo`, then `nmfkit fit data.csv -k 10`.
    """


def _register() -> None:
    from . import demo, fit, info, recommend, report, transform  # noqa: F401  (each registers)

    try:
        from . import rank  # noqa: F401  (needs nmfkit.selection)
    except ImportError:
        pass


_register()
