"""What a rank selection means to its reader: checked inputs, the direction of every measure,
notes on the verdict (a suggestion at the edge of the tried range, restarts that did not
converge), the text table and the curves with the suggested k marked (behind selection.py)."""

from __future__ import annotations

import itertools
import operator

import numpy as np

# which way each measure of RankSelection.table improves
BETTER = {
    "cv_error": "lower", "cv_se": "lower", "cophenetic": "higher", "dispersion": "higher",
    "amari": "lower", "explained_variance": "higher", "relative_error": "lower",
    "objective": "lower", "perm_explained_variance": "lower (noise baseline)",
    "perm_cophenetic": "lower (noise baseline)", "n_not_converged": "lower",
}
METHODS = ("cv", "consensus", "stability", "explained_variance", "permutation")


def check_methods(methods) -> tuple:
    """``methods`` as a tuple of known names; a single name may be given as a string."""
    if isinstance(methods, str):
        if methods not in METHODS:
            raise ValueError(
                f"methods={methods!r} is not a method; give one of {list(METHODS)} or a list "
                "of them, e.g. methods=['cv', 'consensus']."
            )
        return (methods,)
    try:
        methods = tuple(methods)
    except TypeError:
        raise ValueError(f"methods must be a list of {list(METHODS)}, got {methods!r}.") \
            from None
    bad = [m for m in methods if not isinstance(m, str) or m not in METHODS]
    if bad or not methods:
        raise ValueError(f"unknown methods {bad!r}; choose among {list(METHODS)}.")
    return tuple(dict.fromkeys(methods))


def _as_rank(k) -> int:
    if isinstance(k, (bool, np.bool_)) or isinstance(k, (str, bytes)):
        raise ValueError(f"ks must hold whole numbers (ranks); got {k!r}.")
    try:
        i = operator.index(k)
    except TypeError:
        f = float(k) if isinstance(k, (float, np.floating)) else None
        if f is None or not np.isfinite(f) or not f.is_integer():
            raise ValueError(f"ks must hold whole numbers (ranks); got {k!r}.") from None
        i = int(f)
    return int(i)


def check_ks(ks, shape) -> np.ndarray:
    """The candidate ranks as a sorted int array, refused before they are built when they
    cannot fit X: each must be a whole number in 1..min(n_samples, n_features)."""
    limit = int(min(shape))
    if isinstance(ks, (str, bytes)):
        raise ValueError(f"ks must be a list or range of ranks, e.g. range(2, 9); got {ks!r}.")
    if isinstance(ks, range):
        if len(ks) and (min(ks[0], ks[-1]) < 1 or max(ks[0], ks[-1]) > limit):
            raise ValueError(
                f"ks={ks!r} goes outside 1..{limit}: X is {shape[0]}×{shape[1]}, so a rank can "
                f"be at most {limit}; give ranks in that range."
            )
    elif not np.iterable(ks):
        ks = [ks]
    # read at most one more candidate than there can be distinct ranks
    items = list(itertools.islice(iter(ks), 4 * limit + 1))
    if len(items) > 4 * limit:
        raise ValueError(f"ks holds more than {4 * limit} candidates but X ({shape[0]}×"
                         f"{shape[1]}) allows ranks 1..{limit} only.")
    out = sorted({_as_rank(k) for k in items})
    if not out:
        raise ValueError("ks is empty; give at least one rank, e.g. range(2, 9).")
    if out[0] < 1 or out[-1] > limit:
        bad = out[0] if out[0] < 1 else out[-1]
        raise ValueError(f"ks must be positive ranks of at most {limit} (X is {shape[0]}×"
                         f"{shape[1]}); got {bad}. Give ranks in 1..{limit}.")
    return np.array(out, dtype=int)


def check_count(name: str, value, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def check_restarts_memory(shape, k_max: int, n_runs: int, available=None) -> None:
    """The restarts of one k are all kept (W and H of every run, for consensus and
    stability): refuse, before fitting, a number of runs whose factors cannot fit in half of
    the memory available."""
    from ._validation import require_memory

    require_memory(8 * n_runs * k_max * (shape[0] + shape[1]),
                   f"n_runs={n_runs} restarts at k={k_max} keep about {{gb}} GB of factors (W "
                   "and H of every run)", "lower n_runs or the largest k.",
                   available)


def notes(ks, table, suggested_k: int, crit: str, n_runs: int, nmf_params: dict) -> list:
    """Plain-language warnings about a verdict (empty when there is nothing to say)."""
    out = []
    ks = np.asarray(ks)
    if ks.size > 1 and suggested_k == ks[-1]:
        step = int(ks[-1] - ks[-2])
        out.append(
            f"the suggested k={suggested_k} is the largest rank tried: the best rank may be "
            f"higher. Widen the range upward (e.g. ks up to {suggested_k + 3 * max(step, 1)}) "
            "and run again."
        )
    floor = 1 if crit == "cv" else 2
    if ks.size > 1 and suggested_k == ks[0] and ks[0] > floor:
        out.append(
            f"the suggested k={suggested_k} is the smallest rank tried: the best rank may be "
            f"lower. Widen the range downward (ks from {floor}) and run again."
        )
    nc = np.nan_to_num(np.asarray(table.get("n_not_converged"), dtype=float))
    if nc.size and nc.sum() > 0:
        where = ", ".join(f"k={k}: {int(c)} of {n_runs}" for k, c in zip(ks, nc) if c > 0)
        mi = nmf_params.get("max_iter", 200)
        out.append(
            f"some restarts stopped at max_iter={mi} before their relative improvement fell "
            f"below tol ({where}). Their factors are still used, but consensus and stability "
            "at those k may reflect unfinished fits; raise max_iter (or tol) to be sure."
        )
    return out


def format_table(curves: dict, suggested_k: int, reason: str, notes_: list) -> str:
    """The measures over k with full column names, the suggested k marked with '*'."""
    names = [n for n in curves if n != "k"]
    widths = [max(len(n), 9) for n in names]
    head = "k    " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths))
    way = {n: "baseline" if "baseline" in BETTER.get(n, "") else BETTER.get(n, "")
           for n in names}
    better = "     " + "  ".join(f"{way[n]:>{w}}" for n, w in zip(names, widths))
    lines = [head, better.rstrip()]
    for i, k in enumerate(curves["k"]):
        vals = ("" if curves[n][i] is None else f"{curves[n][i]:.4g}" for n in names)
        mark = "*" if k == suggested_k else " "
        lines.append(f"{k:<3d}{mark} " + "  ".join(f"{v:>{w}}" for v, w in zip(vals, widths)))
    lines.append("(second row: which way is better, or a column-permuted noise baseline; "
                 "* marks the suggested k)")
    lines.append(f"suggested k = {suggested_k}: {reason}")
    lines += [f"note: {t}" for t in notes_]
    return "\n".join(lines)


def plot(result, *, title: str = "Rank selection"):
    """One panel per measured criterion, each titled with the way it improves, the suggested
    k marked by a dashed line on every panel; a column-permuted baseline is drawn (dotted)
    in its measure's panel. Returns a matplotlib Figure."""
    from .plot import _plt

    plt = _plt()
    curves = result.curves()
    names = [n for n in curves if n not in ("k", "cv_se", "n_not_converged")
             and not n.startswith("perm_")]  # the noise baselines share their measure's panel
    if not names:
        raise ValueError("nothing to plot: no criterion was measured")
    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11.0, 3.0 * rows), squeeze=False)
    ks = curves["k"]
    for ax, name in zip(axes.ravel(), names):
        y = np.array([np.nan if v is None else v for v in curves[name]], dtype=float)
        if name == "cv_error" and "cv_se" in curves:
            se = np.array([np.nan if v is None else v for v in curves["cv_se"]], dtype=float)
            ax.errorbar(ks, y, yerr=se, marker="o", capsize=3)
        else:
            ax.plot(ks, y, marker="o", label="X")
        base = curves.get(f"perm_{name}")
        if base is not None:
            ax.plot(ks, [np.nan if v is None else v for v in base], marker=".", color="0.5",
                    linestyle=":", label="X, columns permuted (noise)")
            ax.legend(fontsize=7)
        ax.axvline(result.suggested_k, color="tab:red", linestyle="--", linewidth=1)
        way = BETTER.get(name, "")
        ax.set_title(f"{name} (noise baseline)" if "baseline" in way else
                     f"{name} ({way} is better)", fontsize=9)
        ax.set_xlabel("k")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{title}: suggested k = {result.suggested_k} (dashed line)")
    fig.tight_layout()
    return fig
