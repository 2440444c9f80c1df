"""``nmfkit rank INPUT --ks 2..10``: measure candidate ranks and suggest one
(:func:`nmfkit.selection.select_rank`); writes a table, JSON and an HTML report with the
rank curves and the consensus map of the suggested k."""

from __future__ import annotations

import time

import click

from .._rank_verdict import format_table
from ..selection import METHODS, select_rank
from ._common import Console, common_options, record_warnings
from ._data import check_values, input_options, load_input, prepare_out_dir
from .fit import LossType, _solver_names

_METHOD_ALIASES = {"cophenetic": "consensus", "dispersion": "consensus", "ev":
                   "explained_variance", "amari": "stability", "perm": "permutation"}


class KsType(click.ParamType):
    """``2..10``, ``2-10``, ``2..10:2`` or ``2,3,5``."""

    name = "ks"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        text = value.replace(" ", "")
        try:
            if ".." in text or "-" in text:
                lo, _, rest = text.partition("..") if ".." in text else text.partition("-")
                hi, _, step = rest.partition(":")
                # a range stays lazy: 2..9999999999 is checked against X, never built
                ks = range(int(lo), int(hi) + 1, int(step or 1))
            else:
                ks = sorted({int(t) for t in text.split(",") if t})
        except ValueError:
            ks = []
        if not len(ks) or min(ks[0], ks[-1]) < 1:
            self.fail(f"{value!r} is not a list of ranks (positive whole numbers); write "
                      "2..10, 2..10:2 or 2,3,5", param, ctx)
        return ks


def check_ks_fit(ks, ds) -> None:
    """--ks against the data: every rank at most min(samples, features)."""
    n, m = ds.shape
    top = max(ks[0], ks[-1]) if isinstance(ks, range) else max(ks)
    if top > min(n, m):
        raise click.BadParameter(
            f"ranks up to {top} but {ds.source!r} is {n}×{m}, so a rank can be at most "
            f"{min(n, m)}; give e.g. --ks 2..{min(n, m, 10)}", param_hint="--ks")


def check_memory_fit(methods, ds, ks, n_runs: int) -> None:
    """--method consensus keeps one samples × samples matrix per k, and the restarts keep
    their factors: refuse what cannot fit, naming the options that change it."""
    from .._consensus import check_consensus_memory
    from .._rank_verdict import check_restarts_memory

    if "consensus" in methods:
        try:
            check_consensus_memory(ds.shape[0], n_matrices=len(ks))
        except MemoryError as exc:
            text = str(exc).split(";")[0]
            raise click.BadParameter(
                f"{text}; leave consensus out (e.g. --method cv,explained_variance) or give "
                "fewer samples (rows)", param_hint="--method") from None
    if set(methods) - {"cv"}:
        top = max(ks[0], ks[-1]) if isinstance(ks, range) else max(ks)
        try:
            check_restarts_memory(ds.shape, top, n_runs)
        except MemoryError as exc:
            text = str(exc).split(";")[0].replace(f"n_runs={n_runs}", f"--n-runs {n_runs}")
            raise click.BadParameter(f"{text}; lower --n-runs or the largest of --ks",
                                     param_hint="--n-runs") from None


def _progress_lines(console, started):
    """One stderr line per finished (k, restarts) batch, for logs and pipes (no bar)."""

    def line(done, total, message):
        click.echo(f"rank: {done}/{total} {message} done ({time.perf_counter() - started:.0f} "
                   "s)", err=True)

    return line


class MethodsType(click.ParamType):
    name = "methods"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        out = []
        for m in (t.strip().lower() for t in value.split(",") if t.strip()):
            m = _METHOD_ALIASES.get(m, m)
            if m not in METHODS:
                self.fail(f"{m!r} is not a method; use a comma list of {', '.join(METHODS)} "
                          "(cophenetic = consensus)", param, ctx)
            if m not in out:
                out.append(m)
        if not out:
            self.fail("give at least one method", param, ctx)
        return tuple(out)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--ks", type=KsType(), default="2..8", show_default=True,
              help="Candidate ranks: 2..10, 2..10:2 or 2,3,5.")
@click.option("--method", "methods", type=MethodsType(), default="cv,consensus",
              show_default=True, help=f"Comma list of {', '.join(METHODS)}.")
@click.option("--n-runs", type=click.IntRange(1), default=10, show_default=True,
              help="Random restarts per k (consensus, stability, explained variance).")
@click.option("--loss", "beta_loss", type=LossType(), default="frobenius", show_default=True)
@click.option("--solver", type=click.Choice(_solver_names()), default="auto", show_default=True,
              help="Solver of every fit; auto is NMF's default (docs/solvers.md).")
@click.option("--max-iter", type=click.IntRange(1), default=200, show_default=True)
@click.option("--tol", type=click.FloatRange(0), default=1e-4, show_default=True)
@click.option("--seed", "random_state", type=click.IntRange(0, 2**32 - 1), default=0,
              show_default=True)
@click.option("--n-jobs", type=int, default=None,
              help="Parallel workers for the restarts (-1: all cores).")
@click.option("--out", "out_dir", default="nmfkit-rank", show_default=True,
              help="Output folder (created).")
@click.option("--report/--no-report", default=True, show_default=True)
@input_options
@common_options
def rank(input_path, ks, methods, n_runs, beta_loss, solver, max_iter, tol, random_state,
         n_jobs, out_dir, report, quiet, progress, verbose, **read):
    """Measure each candidate rank k of INPUT and suggest one.

    Criteria: cross-validated error (cv), cophenetic correlation and dispersion of the
    consensus matrix (consensus), stability of the components over restarts, the
    explained-variance elbow, and a column-permuted baseline (permutation).
    """
    from ..io import write_json, write_matrix

    console = Console(quiet, progress, verbose)
    if n_jobs is not None and (n_jobs == 0 or n_jobs < -1):
        raise click.BadParameter(f"{n_jobs} is not a number of workers; give a positive "
                                 "number or -1 (all cores)", param_hint="--n-jobs")
    ds = load_input(input_path, **read)
    check_values(ds)
    check_ks_fit(ks, ds)
    check_memory_fit(methods, ds, ks, n_runs)
    out = prepare_out_dir(out_dir)
    solver = solver or "auto"  # the library's default, as NMF(k)
    bar = console.bar(0, "rank")
    lines = None
    if not console.show_bar and not quiet and progress is not False:
        lines = _progress_lines(console, time.perf_counter())

    def on_step(done, total, message):
        if lines is not None:
            lines(done, total, message)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        bar.set_postfix_str(message, refresh=False)

    try:
        with record_warnings() as caught:
            result = select_rank(ds.X, ks, methods=methods, n_runs=n_runs,
                                 random_state=random_state, n_jobs=n_jobs, progress=on_step,
                                 beta_loss=beta_loss, solver=solver, max_iter=max_iter, tol=tol)
    finally:
        bar.close()
    # unconverged restarts are explained once, in a note, not one warning per fit
    console.replay([w for w in caught if "Maximum number of iterations" not in str(w.message)])
    curves = result.curves()
    names = [n for n in curves if n != "k"]
    table = [[float("nan") if curves[n][i] is None else curves[n][i] for n in names]
             for i in range(len(curves["k"]))]
    files = [write_matrix(out / "rank", table, fmt="csv",
                          row_names=[f"k={k}" for k in curves["k"]], col_names=names)]
    files.append(write_json(out / "rank.json", {
        "input": ds.source, "shape": list(ds.shape), "methods": list(methods),
        "n_runs": n_runs, "suggested_k": int(result.suggested_k), "reason": result.reason,
        "suggestions": {k: int(v) for k, v in result.suggestions.items()},
        "cv_method": result.cv_method, "notes": result.notes,
        "better": {n: result.better.get(n) for n in names}, "curves": curves}))
    if report:
        try:
            files.append(_report(out, result, curves, ds))
        except ImportError as exc:
            console.warn(f"no report.html: {exc}")
    console.say(format_table(curves, result.suggested_k, result.reason, []))  # notes: stderr
    console.say("wrote " + ", ".join(str(p) for p in files))


def _report(out, result, curves, ds):
    from ..plot import figure_to_png, plot_consensus
    from ..report import Section, write_report

    sec = Section(title=f"Rank selection for {ds.source}",
                  metrics={"suggested k": int(result.suggested_k), "reason": result.reason,
                           **{f"suggested by {k}": int(v) for k, v in
                              result.suggestions.items()},
                           **{f"note {i + 1}": t for i, t in enumerate(result.notes)}})
    sec.figures.append(("Criteria against k (dashed line: the suggested k)",
                        figure_to_png(result.plot(title=f"Rank selection for {ds.source}"))))
    for k in (int(result.suggested_k),):
        if k in result.consensus:
            sec.figures.append((f"Consensus matrix at k={k}", figure_to_png(plot_consensus(
                result.consensus[k]["matrix"], labels=ds.row_names,
                title=f"Consensus, k={k}"))))
    return write_report(out / "report.html", [sec], title="nmfkit rank",
                        subtitle=f"{ds.source} ({ds.shape[0]}×{ds.shape[1]})")
