"""Rank verdicts: a warning when the suggestion sits at the edge of the tried ranks, notes on
unconverged restarts, the table with full names and the way each measure improves, the plot
with the suggested k marked, checked rank parameters, bounded consensus memory, and
``nmfkit rank``'s messages and progress lines."""

import json
import warnings

import numpy as np
import pytest

from nmfkit._consensus import check_consensus_memory, connectivity_matrix, consensus_matrix
from nmfkit.selection import select_rank


def planted(rank, n=40, m=32, noise=0.02, seed=0):
    """Samples in ``rank`` disjoint feature blocks, one block each, small noise."""
    rng = np.random.RandomState(seed)
    W = np.zeros((n, rank))
    W[np.arange(n), np.arange(n) % rank] = rng.uniform(1, 2, n)
    H = np.zeros((rank, m))
    for c, cols in enumerate(np.array_split(np.arange(m), rank)):
        H[c, cols] = rng.uniform(1, 2, cols.size)
    return W @ H + noise * rng.rand(n, m)


FAST = dict(methods=("cv",), cv_folds=2, max_iter=200, random_state=0)


def test_suggestion_at_the_top_edge_warns_and_says_widen():
    X = planted(6)
    with pytest.warns(UserWarning, match="largest rank tried.*Widen the range upward"):
        res = select_rank(X, [2, 3, 4], **FAST)
    assert res.suggested_k == 4 and res.at_edge
    assert any("largest rank tried" in t for t in res.notes)
    assert "note: the suggested k=4 is the largest rank tried" in str(res)


def test_interior_suggestion_says_nothing():
    X = planted(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        res = select_rank(X, [1, 2, 3, 4, 5], **FAST)
    assert res.suggested_k == 3 and not res.at_edge and res.notes == []


def test_unconverged_restarts_are_explained():
    X = planted(3)
    with pytest.warns(UserWarning, match="stopped at max_iter=3"):
        res = select_rank(X, [2, 3, 4], methods=("explained_variance",), n_runs=2, max_iter=3,
                          random_state=0)
    note = next(t for t in res.notes if "max_iter" in t)
    assert "k=2: 2 of 2" in note and "raise max_iter" in note


def test_table_has_full_names_directions_and_the_mark():
    X = planted(3)
    res = select_rank(X, [2, 3, 4], methods=("cv", "consensus"), n_runs=2, cv_folds=2,
                      random_state=0)
    text = str(res).splitlines()
    for name in ("explained_variance", "n_not_converged", "cophenetic", "relative_error"):
        assert name in text[0]
    assert "higher" in text[1] and "lower" in text[1]
    starred = [ln for ln in text if ln[:5].strip().endswith("*")]
    assert len(starred) == 1 and starred[0].startswith(str(res.suggested_k))
    assert res.better["cv_error"] == "lower" and res.better["cophenetic"] == "higher"


def test_plot_marks_the_suggested_k_on_every_panel():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X = planted(3)
    res = select_rank(X, [2, 3, 4], methods=("cv", "consensus"), n_runs=2, cv_folds=2,
                      random_state=0)
    fig = res.plot()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) >= 4
    for ax in panels:
        title = ax.get_title()
        assert "is better" in title or "noise baseline" in title, title
        xs = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert xs == [res.suggested_k]
    assert "cv_error (lower is better)" in [ax.get_title() for ax in panels]


@pytest.mark.parametrize("kwargs, match", [
    (dict(ks=[2, 2.5]), "whole numbers"),
    (dict(ks="2..5"), "list or range"),
    (dict(ks=[0, 2]), "positive ranks"),
    (dict(ks=[2, 40]), "at most 32"),
    (dict(ks=range(2, 10**10)), "outside 1..32"),
    (dict(ks=iter(range(2, 10**10))), "more than"),
    (dict(ks=[2, 3], methods="cvx"), "not a method"),
    (dict(ks=[2, 3], methods=["cv", "c", "v"]), "unknown methods"),
    (dict(ks=[2, 3], n_runs=0), "n_runs"),
    (dict(ks=[2, 3], n_runs=True), "n_runs"),
    (dict(ks=[2, 3], cv_folds=1.5), "cv_folds"),
])
def test_rank_parameters_are_checked_before_any_fit(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_rank(planted(3), **kwargs)


def test_one_method_may_be_a_string_and_float_ranks_that_are_whole_pass():
    res = select_rank(planted(3), [2.0, 3, np.int64(4)], methods="cv", cv_folds=2,
                      random_state=0)
    assert res.ks.tolist() == [2, 3, 4] and set(res.suggestions) == {"cv"}


def test_consensus_memory_is_estimated_before_allocating():
    with pytest.raises(MemoryError, match="20000 samples needs about .* leave 'consensus' out"):
        check_consensus_memory(20000, available=8 * 10**9)
    check_consensus_memory(200, available=8 * 10**9)  # small: fine
    rng = np.random.RandomState(0)
    runs = [rng.randint(-1, 4, size=30) for _ in range(5)]
    expected = np.mean([connectivity_matrix(r) for r in runs], axis=0)
    np.testing.assert_allclose(consensus_matrix(runs), expected)


# ---------------------------------------------------------------------------------- the CLI
@pytest.fixture
def csv6(tmp_path):
    pytest.importorskip("click")
    pytest.importorskip("matplotlib")
    p = tmp_path / "p6.csv"
    np.savetxt(p, planted(6), delimiter=",")
    return p


def run(*args):
    from click.testing import CliRunner

    from nmfkit.cli._app import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_rank_edge_warning_progress_lines_and_full_table(csv6, tmp_path):
    out = tmp_path / "r"
    r = run("rank", csv6, "--ks", "2..4", "--n-runs", "2", "--out", out)
    assert r.exit_code == 0, r.output
    # stderr is not a terminal here: one line per (k, batch), then the verdict's warning
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("rank: ")][-1].startswith(
        "rank: 6/6 k=4")
    assert "warning: the suggested k=4 is the largest rank tried" in r.stderr
    assert "explained_variance" in r.stdout and "n_not_converged" in r.stdout
    meta = json.loads((out / "rank.json").read_text())
    assert meta["suggested_k"] == 4 and meta["notes"] and meta["better"]["cv_error"] == "lower"
    quiet = run("rank", csv6, "--ks", "2..4", "--n-runs", "2", "--out", out, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


@pytest.mark.parametrize("args, option", [
    (["--ks", "2..9999999999"], "--ks"),
    (["--ks", "2.5..4"], "--ks"),
    (["--ks", "0..3"], "--ks"),
    (["--seed", "-1"], "--seed"),
    (["--n-jobs", "0"], "--n-jobs"),
    (["--method", "cv,foo"], "--method"),
    (["--n-runs", "100000000000"], "--n-runs 100000000000 restarts"),
])
def test_cli_rank_refuses_with_the_option_named(csv6, tmp_path, args, option):
    r = run("rank", csv6, "--out", tmp_path / "r", *args)
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and option in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_masked_cv_memory_is_checked_before_allocating():
    import scipy.sparse as sp

    from nmfkit._cv import cross_validation_error

    X = sp.csr_matrix((np.ones(3), ([0, 5, 7], [1, 2, 3])), shape=(10**6, 10**6))
    with pytest.raises(MemoryError, match="use cv='bicv'"):
        cross_validation_error(X, 2, method="mask")


def test_restart_factors_are_estimated_before_fitting():
    from nmfkit._rank_verdict import check_restarts_memory

    with pytest.raises(MemoryError, match="lower n_runs"):
        check_restarts_memory((10_000, 5_000), 50, 10**5, available=16 * 10**9)
    check_restarts_memory((10_000, 5_000), 50, 20, available=16 * 10**9)
    with pytest.raises(MemoryError, match="n_runs=10000000000"):
        select_rank(planted(3), [2, 3], methods=("stability",), n_runs=10**10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_folds=1.5), "n_folds"), (dict(n_folds=0), "n_folds"),
    (dict(holdout=float("nan"), method="mask"), "holdout"),
    (dict(holdout="5%", method="mask"), "holdout"),
])
def test_cross_validation_parameters_are_checked(kwargs, match):
    from nmfkit._cv import cross_validation_error

    with pytest.raises(ValueError, match=match):
        cross_validation_error(planted(3), 2, **kwargs)
    with pytest.raises(ValueError, match="whole rank"):
        cross_validation_error(planted(3), 2.5)
