"""What every subcommand shares: the group's single error handler, common options, the console,
exit codes. The group itself (``_app.cli``) imports the subcommands; they import this module."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
import threading
import warnings

import click

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BUG = 1


def _as_ctrl_c(signum, frame):
    """Hand SIGTERM to whatever answers Ctrl-C at this moment (a fit loop's deferred stop,
    the ``fit`` command's two-stage handler, or Python's KeyboardInterrupt)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        return handler(signal.SIGINT, frame)
    raise KeyboardInterrupt  # SIGINT ignored (a background job): still stop


def _sigterm_as_ctrl_c():
    """SIGTERM (what ``timeout``, ``kill`` and batch schedulers send) acts as Ctrl-C in every
    subcommand and fit mode: the fit stops and writes its last complete iterate. Returns the
    previous handler, or None where none can be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _as_ctrl_c)


# "The 'random_state' parameter of NMF must be ..." → "--seed must be ..."
_PARAM_PHRASE = re.compile(r"[Tt]he '(\w+)' parameter of \w+")
_PARAM_ASSIGN = re.compile(r"\b(\w+) ?==? ?(?=[\w'\"(\[-])")


def _option_names(group: click.Group) -> dict:
    """Python parameter name → the option that sets it (first seen over all subcommands)."""
    names = {}
    for command in group.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in names:
                names[param.name] = max(param.opts, key=len)
    return names


def cli_wording(message: str, group: click.Group) -> str:
    """A library message in the words of the command line: parameters become options."""
    names = _option_names(group)
    message = _PARAM_PHRASE.sub(lambda m: names.get(m.group(1), m.group(0)), message)
    message = _PARAM_ASSIGN.sub(
        lambda m: f"{names[m.group(1)]} " if m.group(1) in names else m.group(0), message)
    return message.replace(", an instance of 'numpy.random.mtrand.RandomState'", "")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class NmfkitGroup(click.Group):
    """A click group whose ``main`` turns every user mistake into ``error: ...`` and exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        previous = _sigterm_as_ctrl_c()
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
            _stderr(f"error: {cli_wording(str(msg), self) or type(exc).__name__}")
            sys.exit(EXIT_USER_ERROR)
        except Exception as exc:  # a bug: still one line (the traceback with -vv)
            logging.getLogger("nmfkit").debug("details", exc_info=True)
            _stderr(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))[:300]} "
                    "(a bug in nmfkit: rerun with -vv for the traceback and report it)")
            sys.exit(EXIT_BUG)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
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


@contextlib.contextmanager
def record_warnings():
    """Record every warning raised inside, in a list (``Console.replay`` shows them, one line
    each)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
