"""Every option reaches every path, or is refused: the capability matrix.

For each entry point (NMF on dense and sparse X, with missing values or a mask, with restarts,
the public function, MiniBatchNMF, torch, out-of-core, Dask, the CLI) and each option
(penalties, sample graph, nsNMF smoothness, frozen components, Hoyer sparseness targets, each
loss, each solver), the option either changes the fit as it should — asserted by a property
of the result, not only "it ran" — or the call is refused with a ValueError / TypeError that
names the option. A combination that runs and returns the plain fit bit for bit is the bug
this module exists to catch: a silently ignored parameter.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF, MiniBatchNMF, non_negative_factorization
from nmfkit.penalties import L1, Graph
from nmfkit.metrics import hoyer_sparseness

K = 3
N, M = 24, 16


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((N, K)) @ rng.random((K, M)) + 0.05 * rng.random((N, M))
    return X


def _with_nan(X, seed=1):
    rng = np.random.default_rng(seed)
    Xn = X.copy()
    Xn[rng.random(X.shape) < 0.15] = np.nan
    return Xn


def _mask(seed=2):
    rng = np.random.default_rng(seed)
    return (rng.random((N, M)) < 0.8).astype(float)


FROZEN = np.full((1, M), 0.5)
AFFINITY = sp.csr_matrix(np.kron(np.eye(N // 4), np.ones((4, 4))))

#: option name -> (NMF keyword arguments, check(model, plain_model) that it was honoured)
def _check_l1(m, plain):
    # a strong L1 on H: fewer non-zeros in H, or a visibly smaller ‖H‖₁ share
    nz, nz0 = np.count_nonzero(m.components_), np.count_nonzero(plain.components_)
    assert nz < nz0 or m.components_.sum() < 0.95 * plain.components_.sum()


def _check_graph(m, plain):
    assert not np.allclose(m.components_, plain.components_)


def _check_smooth(m, plain):
    S = m.smoothing_matrix_
    np.testing.assert_allclose(m.components_, S @ m.components_unsmoothed_, rtol=1e-12)


def _check_frozen(m, plain):
    np.testing.assert_array_equal(m.components_[:1], FROZEN.astype(m.components_.dtype))


def _check_sparseness(m, plain):
    s = np.mean([hoyer_sparseness(h) for h in m.components_])
    assert s == pytest.approx(0.7, abs=0.02)


OPTIONS = {
    "penalty_l1_H": (dict(penalties=[L1(50.0, "H")]), _check_l1),
    "graph_affinity": (dict(graph=AFFINITY, graph_weight=100.0), _check_graph),
    "graph_knn": (dict(graph="binary", graph_weight=100.0, graph_neighbors=3), _check_graph),
    "smoothness": (dict(smoothness=0.5), _check_smooth),
    "frozen": (dict(frozen_components=FROZEN), _check_frozen),
    "sparseness_H": (dict(solver="nmfsc", sparseness_H=0.7), _check_sparseness),
    # a random coordinate order: every path's default solver is a coordinate descent
    "shuffle": (dict(shuffle=True), lambda m, plain: None),
    # a key no solver reads: refused on every path (never run as the plain fit)
    "solver_options_unknown": (dict(solver_options={"no_such_option": 1}),
                               lambda m, plain: pytest.fail("an unknown option was run")),
}

SOLVERS = ["cd", "mu", "auto", "anls", "pgd"]


def _fit(path: str, params: dict, X=None):
    """Fit on the entry point ``path``; returns a model-like object (components_ etc.)."""
    X = _data() if X is None else X
    base = dict(n_components=K, random_state=0, max_iter=30, init="nndsvda")
    base.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path == "dense":
            return NMF(**base).fit(X)
        if path == "sparse":
            return NMF(**base).fit(sp.csr_matrix(X))
        if path == "missing":
            return NMF(missing_values=np.nan, **base).fit(_with_nan(X))
        if path == "mask":
            return NMF(**base).fit(X, mask=_mask())
        if path == "n_init":
            return NMF(n_init=2, **base).fit(X)
        if path == "torch":
            pytest.importorskip("torch")
            return NMF(backend="torch", **base).fit(X)
    raise AssertionError(path)


PATHS = ["dense", "sparse", "missing", "mask", "n_init", "torch"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_option_is_honoured_or_refused(path, option):
    params, check = OPTIONS[option]
    try:
        model = _fit(path, params)
    except (ValueError, TypeError) as exc:
        # refused: the message names the option the path cannot honour
        words = {"penalty_l1_H": ("penalt", "L1"), "graph_affinity": ("graph", "Graph"),
                 "graph_knn": ("graph", "Graph"), "smoothness": ("smoothness",),
                 "frozen": ("frozen",), "sparseness_H": ("sparseness", "nmfsc"),
                 "shuffle": ("shuffle",),
                 "solver_options_unknown": ("solver_options",)}[option]
        assert any(w in str(exc) for w in words), str(exc)
        return
    # the same solver without the option (nmfsc needs a target: its plain fit is the default)
    plain = _fit(path, {"solver": params["solver"]}
                 if "solver" in params and option != "sparseness_H" else {})
    assert not np.array_equal(model.components_, plain.components_), (
        f"{option} on the {path} path gave the plain fit bit for bit: silently ignored")
    check(model, plain)
    assert np.isfinite(model.components_).all() and (model.components_ >= 0).all()


def test_the_known_silent_drops_now_work_on_missing_values():
    # penalties, an affinity graph (masked MU) and frozen components (masked MU / CD) are
    # honoured on observed entries; smoothness and Hoyer targets are refused
    _check_l1(_fit("missing", OPTIONS["penalty_l1_H"][0]), _fit("missing", {}))
    m = _fit("missing", dict(graph=AFFINITY, graph_weight=100.0, solver="mu"))
    _check_graph(m, _fit("missing", dict(solver="mu")))
    for solver in ("mu", "masked_cd"):
        _check_frozen(_fit("missing", dict(frozen_components=FROZEN, solver=solver)), None)
    with pytest.raises(ValueError, match="smoothness"):
        _fit("missing", dict(smoothness=0.5))
    with pytest.raises(ValueError, match="sparseness_H"):
        _fit("missing", dict(solver="nmfsc", sparseness_H=0.7))
    with pytest.raises(ValueError, match="frozen_components.*masked solvers that can"):
        _fit("missing", dict(frozen_components=FROZEN, solver="cd"))


def test_auto_picks_a_masked_solver_that_honours_a_graph():
    m = _fit("missing", dict(graph=AFFINITY, graph_weight=100.0, solver="auto"))
    _check_graph(m, _fit("missing", dict(solver="auto")))
    assert m.n_iter_ >= 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_auto_with_kl_and_a_graph_runs_on_every_backend(backend):
    """One auto rule: KL + a graph penalty picks the same honouring solver on numpy and torch
    (the Newton KL kernel takes only L1/L2; multiplicative updates take the graph)."""
    if backend == "torch":
        pytest.importorskip("torch")
    X = _data()
    m = NMF(K, solver="auto", beta_loss="kullback-leibler", graph=AFFINITY, graph_weight=10.0,
            max_iter=20, random_state=0, backend=backend).fit(X)
    assert m._solver == "mu"
    plain = NMF(K, solver="mu", beta_loss="kullback-leibler", max_iter=20,
                random_state=0, backend=backend).fit(X)
    assert not np.allclose(m.components_, plain.components_)


def test_the_public_function_honours_penalties_on_missing_values():
    X = _with_nan(_data())
    kw = dict(n_components=K, random_state=0, max_iter=30, init="nndsvda", missing_values=np.nan)
    _, H0, _ = non_negative_factorization(X, **kw)
    _, H1, _ = non_negative_factorization(X, penalties=[L1(50.0, "H")], **kw)
    assert np.count_nonzero(H1) < np.count_nonzero(H0) or H1.sum() < 0.95 * H0.sum()


def test_auto_rule_is_one_function():
    from nmfkit.solvers._auto import resolve_solver

    g = Graph(1.0, "W", affinity=AFFINITY)
    assert resolve_solver(2.0) == "cd"
    assert resolve_solver(1.0) == "cd"
    assert resolve_solver(1.0, penalties=[g]) == "mu"
    assert resolve_solver(0.5) == "mu"
    assert resolve_solver(2.0, masked=True) == "masked_als"
    assert resolve_solver(2.0, masked=True, penalties=[g]) == "masked_mu"
    assert resolve_solver(1.0, masked=True) == "masked_mu"
    assert resolve_solver(2.0, masked=True, backend="torch") == "masked_mu"


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("beta", ["frobenius", "kullback-leibler", 0.5])
def test_each_solver_and_loss_runs_or_is_refused_by_name(solver, beta):
    X = _data() + 0.1
    try:
        m = NMF(K, solver=solver, beta_loss=beta, max_iter=20, random_state=0).fit(X)
    except ValueError as exc:
        assert solver in str(exc) and "beta_loss" in str(exc), str(exc)
        return
    # the loss reached the solver: the fit differs from the Frobenius one unless it is that
    if beta != "frobenius":
        fro = NMF(K, solver="mu", max_iter=20, random_state=0).fit(X)
        assert not np.allclose(m.components_, fro.components_)
    assert np.isfinite(m.components_).all()


@pytest.mark.parametrize("option", ["graph", "smoothness", "sparseness_H", "missing"])
def test_minibatch_refuses_what_it_cannot_honour(option):
    X = _data()
    kw = {"graph": dict(graph="binary", graph_weight=1.0), "smoothness": dict(smoothness=0.5),
          "sparseness_H": dict(sparseness_H=0.7), "missing": dict(missing_values=np.nan)}[option]
    try:
        m = MiniBatchNMF(K, batch_size=8, max_iter=5, random_state=0, **kw)
    except TypeError as exc:  # not a parameter of MiniBatchNMF at all
        assert list(kw)[0] in str(exc)
        return
    if option == "missing":  # MiniBatchNMF fits missing values: must honour them
        W = m.fit_transform(_with_nan(X))
        assert np.isfinite(W).all()
        return
    raise AssertionError(f"MiniBatchNMF accepted {kw}")


def test_minibatch_honours_penalties_and_frozen():
    X = _data()
    base = dict(n_components=K, batch_size=8, max_iter=5, random_state=0, init="nndsvda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MiniBatchNMF(**base).fit(X)
        pen = MiniBatchNMF(penalties=[L1(50.0, "H")], **base).fit(X)
        fr = MiniBatchNMF(frozen_components=FROZEN, **base).fit(X)
    _check_l1(pen, plain)
    _check_frozen(fr, plain)


BAD_SCALED = [dict(graph="binary"), dict(smoothness=0.5), dict(frozen_components=FROZEN),
              dict(penalties=[L1(1.0, "H")]), dict(missing_values=np.nan)]


@pytest.mark.parametrize("bad", BAD_SCALED, ids=lambda d: list(d)[0])
def test_dask_refuses_options_it_has_no_parameter_for(bad):
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    import dask.array as da

    from nmfkit.distributed import fit_dask

    with pytest.raises(TypeError, match=list(bad)[0]):  # before any cluster is contacted
        fit_dask(da.from_array(_data(), chunks=(8, M)), K, **bad)


def test_out_of_core_refuses_unknown_options_and_honours_penalties(tmp_path):
    from nmfkit.outofcore import fit_out_of_core

    src = tmp_path / "X.npy"
    np.save(src, _data())

    def call(**kw):
        return fit_out_of_core(str(src), K, max_iter=10, random_state=0, **kw)

    for bad in BAD_SCALED:
        with pytest.raises(TypeError, match=list(bad)[0]):
            call(**bad)
    plain, pen = call(), call(alpha_H=0.5, l1_ratio=1.0)
    assert np.count_nonzero(pen.H) < np.count_nonzero(plain.H) or pen.H.sum() < plain.H.sum()


CLI_REFUSALS = [
    (["--batch-size", "8", "--loss", "huber"], "--batch-size"),
    (["--max-memory", "100MB", "--outliers", "sparse"], "--max-memory"),
    (["--batch-size", "8", "--graph", "binary", "--graph-weight", "1"], "--batch-size"),
    (["--batch-size", "8", "--smoothness", "0.5"], "--batch-size"),
    (["--max-memory", "100MB", "--smoothness", "0.5"], "--max-memory"),
    (["--max-memory", "100MB", "--graph", "binary", "--graph-weight", "1"], "--max-memory"),
]


@pytest.mark.parametrize("extra,flag", CLI_REFUSALS)
def test_cli_refuses_combinations_it_cannot_honour(tmp_path, extra, flag):
    pytest.importorskip("click")
    from click.testing import CliRunner

    from nmfkit.cli._app import cli

    src = tmp_path / "X.npy"
    np.save(src, _data())
    res = CliRunner().invoke(cli, ["fit", str(src), "-k", "2", "--max-iter", "5", "--quiet",
                                   "--no-report", "--out", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2, res.output
    assert flag in res.output


# ------------------------------------------------------------------ robust losses
ROBUST = {"huber": dict(loss="huber"), "cauchy": dict(loss="cauchy"), "l21": dict(loss="l21"),
          "sparse_outliers": dict(outliers="sparse"),
          # groups of three consecutive features (the last group the remainder)
          "group_outliers": dict(outliers="groups", outlier_groups=np.arange(M) // 3)}


def _corrupt(X, seed=3):
    """X with a few gross outliers (entries at 10× the maximum) and one outlying row."""
    rng = np.random.default_rng(seed)
    Xc = X.copy()
    Xc[rng.random(X.shape) < 0.05] = 10 * X.max()
    Xc[0] = 5 * X.max() * rng.random(X.shape[1])
    return Xc


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("loss", sorted(ROBUST))
def test_robust_loss_is_honoured_on_every_path(path, loss):
    """Every in-memory path fits the robust loss: the fit differs from the plain one, it has
    the outlier scores of its loss, and its objective is the robust one (recorded history
    non-increasing)."""
    X = _corrupt(_data())
    model = _fit(path, ROBUST[loss], X)
    plain = _fit(path, {}, X)
    H = np.asarray(model.components_)
    assert not np.allclose(H, np.asarray(plain.components_)), f"{loss} ignored on {path}"
    assert model.outlier_scores_.shape == (N,)
    assert (model.outlier_entry_scores_ is None) == (loss == "l21")
    assert np.all(np.diff(model.loss_curve_) <= 1e-9 * abs(model.loss_curve_[0]))
    assert np.isfinite(H).all() and (H >= 0).all()


def test_robust_loss_is_refused_where_it_cannot_run(tmp_path):
    """MiniBatchNMF, out-of-core and Dask fits have no robust loss: refused by name."""
    X = _data()
    with pytest.raises(TypeError, match="loss"):
        MiniBatchNMF(K, loss="huber")
    from nmfkit.outofcore import fit_out_of_core

    src = tmp_path / "X.npy"
    np.save(src, X)
    for bad in ROBUST.values():
        with pytest.raises(TypeError, match=list(bad)[0]):
            fit_out_of_core(str(src), K, max_iter=5, **bad)
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    import dask.array as da

    from nmfkit.distributed import fit_dask

    for bad in ROBUST.values():
        with pytest.raises(TypeError, match=list(bad)[0]):
            fit_dask(da.from_array(X, chunks=(8, M)), K, **bad)


@pytest.mark.parametrize("loss", sorted(ROBUST))
def test_robust_loss_refuses_every_extension(loss):
    # (shuffle is honoured by the robust losses' HALS: tests/test_shuffle.py)
    for option in sorted(set(OPTIONS) - {"shuffle"}):
        params = {**OPTIONS[option][0], **ROBUST[loss]}
        with pytest.raises(ValueError) as exc:
            _fit("dense", params)
        words = {"penalty_l1_H": "penalties", "graph_affinity": "graph", "graph_knn": "graph",
                 "smoothness": "smoothness", "frozen": "frozen_components",
                 "sparseness_H": "solver='nmfsc'",
                 "solver_options_unknown": "solver_options"}[option]
        assert words in str(exc.value), str(exc.value)

