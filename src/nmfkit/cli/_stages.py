"""Stage messages of long commands (reading, vectorising, fitting, writing, with sizes): one line
each on stderr, so a user knows what runs before and after the progress bar.

They are shown where the progress bar is (stderr a terminal, or ``--progress``) and with
``-v``; ``--quiet`` and ``--no-progress`` turn them off. Piped or scripted runs thus keep the
one-line ``error: ...`` contract on stderr.
"""

from __future__ import annotations

import pathlib
import time

import click


def human_bytes(n: float) -> str:
    """1536 → '1.5 KB' (powers of 1024, as the --max-memory option reads them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GB"


def input_size(path) -> str:
    """The size of a file, or of the files directly in a folder ('3 files, 1.2 MB')."""
    p = pathlib.Path(path)
    try:
        if p.is_dir():
            files = [f for f in p.iterdir() if f.is_file()]
            return f"{len(files)} files, {human_bytes(sum(f.stat().st_size for f in files))}"
        return human_bytes(p.stat().st_size)
    except OSError:
        return "size unknown"


def describe(X) -> str:
    """'15217 × 9503 sparse, 120532 non-zeros (0.08%), float64' or '1797 × 64 dense, float64'."""
    n, m = X.shape
    if hasattr(X, "nnz"):
        share = 100.0 * X.nnz / max(n * m, 1)
        return f"{n} × {m} sparse, {X.nnz} non-zeros ({share:.2g}%), {X.dtype}"
    return f"{n} × {m} dense, {X.dtype}"


class Stages:
    """``stages.say("reading x.csv")`` writes ``[   0.0s] reading x.csv`` on stderr when the
    console shows progress (see the module's docstring); the clock starts with the command."""

    def __init__(self, console):
        self.active = not console.quiet and (console.show_bar or console.verbose > 0)
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        if self.active:
            click.echo(f"[{time.perf_counter() - self.t0:6.1f}s] {text}", err=True)
