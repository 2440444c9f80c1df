"""Property tests with generated hostile input (Hypothesis) for NMF, MiniBatchNMF,
non_negative_factorization, select_rank and nmfkit.load.

The property everywhere: a call either raises ValueError / TypeError whose message names the
problem (the parameter, or what is wrong with X), or returns finite, non-negative W and H
with a ``reconstruction_err_`` equal to ‖X − WH‖_F. Never NaN, never another exception.
"""

import json
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit import NMF, MiniBatchNMF, non_negative_factorization  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------ arrays
DTYPES = [np.float64, np.float32, np.int64, np.bool_, np.complex128]
FORMATS = ["dense", "csr", "csc", "coo", "list"]
DEFECTS = ["none", "nan", "inf", "negative", "complex"]


@st.composite
def matrices(draw):
    """(X, what is wrong with it or None)."""
    n, m = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    scale = 10.0 ** draw(st.integers(-3, 3))
    seed = draw(st.integers(0, 2**16))
    X = np.random.RandomState(seed).rand(n, m) * scale
    dtype = draw(st.sampled_from(DTYPES))
    defect = draw(st.sampled_from(DEFECTS)) if X.size else "none"
    if dtype == np.complex128 and X.size:
        defect = "complex"
    X = X.astype(np.complex128) if defect == "complex" else X
    if defect in ("nan", "inf", "negative"):
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, m - 1))] = {
            "nan": np.nan, "inf": np.inf, "negative": -1.0}[defect]
    if defect == "complex":
        X = X + 1j
    elif dtype in (np.int64, np.bool_):
        X = np.nan_to_num(X, nan=0, posinf=1, neginf=-1).round().astype(dtype)
        defect = "negative" if (X.astype(float) < 0).any() else "none"
    else:
        X = X.astype(dtype)
    fmt = draw(st.sampled_from(FORMATS))
    if fmt == "list":
        X = X.tolist()
    elif fmt != "dense" and defect != "complex":
        X = sp.coo_matrix(X).asformat(fmt)
    return X, (None if defect == "none" else defect)


_WORDS = {"nan": ("nan",), "inf": ("inf",), "negative": ("negative",),
          "complex": ("complex",)}


def _assert_fit_or_clear_error(fit, X, defect):
    Xd = np.asarray(X.toarray() if sp.issparse(X) else X)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, H, err = fit()
    except (ValueError, TypeError) as exc:
        msg = str(exc).lower()
        assert msg, repr(exc)
        if defect is not None:
            assert any(w in msg for w in _WORDS[defect]), (defect, msg)
        elif Xd.size == 0 or min(Xd.shape) == 0 or Xd.ndim != 2:
            assert "sample" in msg or "feature" in msg or "shape" in msg, msg
        else:  # a valid X must fit, unless it is a documented refusal
            assert "zeros" in msg or "all-zero" in msg, msg
        return
    assert defect is None, f"{defect} in X was accepted"
    W, H = np.asarray(W, dtype=float), np.asarray(H, dtype=float)
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(H))
    assert W.min() >= 0 and H.min() >= 0
    if err is not None:
        Xd = Xd.astype(float)
        expected = np.linalg.norm(Xd - W @ H)
        assert math.isclose(err, expected, rel_tol=1e-3, abs_tol=1e-6 * max(1, Xd.max())), \
            (err, expected)


@SETTINGS
@given(matrices(), st.sampled_from(["cd", "mu"]))
def test_nmf_on_generated_arrays(case, solver):
    X, defect = case

    def fit():
        model = NMF(1, solver=solver, max_iter=20, random_state=0)
        W = model.fit_transform(X)
        return W, model.components_, model.reconstruction_err_

    _assert_fit_or_clear_error(fit, X, defect)


@SETTINGS
@given(matrices())
def test_minibatch_on_generated_arrays(case):
    X, defect = case

    def fit():
        model = MiniBatchNMF(1, batch_size=3, max_iter=5, random_state=0)
        W = model.fit_transform(X)
        return W, model.components_, model.reconstruction_err_

    _assert_fit_or_clear_error(fit, X, defect)


@SETTINGS
@given(matrices())
def test_function_on_generated_arrays(case):
    X, defect = case

    def fit():
        W, H, _ = non_negative_factorization(X, n_components=1, max_iter=20, random_state=0)
        return W, H, None

    _assert_fit_or_clear_error(fit, X, defect)


# ------------------------------------------------------------------------------ parameters
X_POS = np.random.RandomState(0).rand(8, 5) + 0.1  # strictly positive: every β is allowed

HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1, -1e-300, 0, 1e308, 2.5, -2.5, 1e6,
                     "1", None, [1], True]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(2**40), 2**40),
)
NMF_PARAMS = ["n_components", "tol", "max_iter", "alpha_W", "alpha_H", "l1_ratio",
              "beta_loss", "max_time", "n_init", "n_jobs", "random_state", "graph_weight",
              "smoothness", "verbose", "device"]
MB_PARAMS = ["n_components", "tol", "max_iter", "alpha_W", "l1_ratio", "beta_loss",
             "batch_size", "forget_factor", "max_no_improvement", "fresh_restarts_max_iter",
             "transform_max_iter", "random_state", "device"]
# values that are valid but would make the fit long: kept out of the generated runs
_SLOW = {"max_iter": 60, "n_init": 3, "n_components": 5, "transform_max_iter": 60,
         "fresh_restarts_max_iter": 60, "max_no_improvement": 10 ** 9, "batch_size": 10 ** 9}


def _fast(name, value) -> bool:
    limit = _SLOW.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and limit is not None:
        return not (math.isfinite(value) and value > limit)
    return True


def _assert_param_named(make, name, value):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
            W = model.fit_transform(X_POS)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert name in msg or (name == "n_jobs" and "n_jobs" in msg), (name, value, msg)
        return
    H = np.asarray(model.components_)
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(H)), (name, value)
    assert W.min() >= 0 and H.min() >= 0, (name, value)
    err = model.reconstruction_err_
    expected = _sklearn_error(X_POS, W, H, model.beta_loss)
    assert math.isfinite(err) and math.isclose(err, expected, rel_tol=1e-6, abs_tol=1e-9), \
        (name, value, err, expected)


def _sklearn_error(X, W, H, beta):
    """scikit-learn's reconstruction_err_ (the oracle): ‖X − WH‖_F, or √(2·D_β)."""
    from sklearn.decomposition._nmf import _beta_divergence

    return float(_beta_divergence(X, W, H, beta, square_root=True))


@SETTINGS
@given(st.sampled_from(NMF_PARAMS), HOSTILE)
def test_nmf_parameter_finite_in_range_or_named(name, value):
    if not _fast(name, value):
        return
    extra = {"graph": "binary", "graph_neighbors": 2} if name == "graph_weight" else {}
    beta = {"solver": "mu"} if name == "beta_loss" else {}
    _assert_param_named(lambda: NMF(**{"n_components": 2, "max_iter": 30, **extra, **beta,
                                       name: value}), name, value)


@SETTINGS
@given(st.sampled_from(MB_PARAMS), HOSTILE)
def test_minibatch_parameter_finite_in_range_or_named(name, value):
    if not _fast(name, value):
        return
    _assert_param_named(lambda: MiniBatchNMF(**{"n_components": 2, "max_iter": 5,
                                               "batch_size": 4, name: value}), name, value)


@SETTINGS
@given(st.sampled_from(["tol", "max_iter", "alpha_W", "l1_ratio", "beta_loss"]), HOSTILE)
def test_function_parameter_finite_in_range_or_named(name, value):
    if not _fast(name, value):
        return
    kwargs = {"n_components": 2, "max_iter": 30, "solver": "mu", name: value}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, H, _ = non_negative_factorization(X_POS, **kwargs)
    except (ValueError, TypeError) as exc:
        assert name in str(exc), (name, value, str(exc))
        return
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(H)) and min(W.min(), H.min()) >= 0


@settings(max_examples=15, deadline=None, derandomize=True)
@given(ks=st.one_of(st.just([2]), st.just([2.5]), st.just(["2"]), st.just([0]), st.just(2),
                    st.just([2, 10 ** 12]), st.just([])),
       methods=st.one_of(st.just("explained_variance"), st.just(["explained_variance"]),
                         st.just(["nope"]), st.just(5), st.just([])))
def test_select_rank_checks_ranks_and_methods(ks, methods):
    from nmfkit.selection import select_rank

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = select_rank(X_POS, ks, methods=methods, n_runs=2, random_state=0,
                                 max_iter=20)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert "ks" in msg or "rank" in msg or "method" in msg, msg
        return
    assert list(ks) == [2] and result is not None


# ------------------------------------------------------------------------------ model files
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=5), children, max_size=3),
    max_leaves=8)
FIELDS = [("class",), ("format_version",), ("params",), ("params", "max_iter"),
          ("params", "tol"), ("params", "beta_loss"), ("params", "n_components"),
          ("params", "device"), ("params", "backend"), ("attributes",),
          ("attributes", "n_iter_"), ("attributes", "n_components_"),
          ("attributes", "reconstruction_err_"), ("shapes",), ("shapes", "components_"),
          ("feature_names",), ("metadata",), ("metadata", "image_shape"), ("dtype",)]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NMF(2, max_iter=30, random_state=0).fit(X_POS).save(
            path, feature_names=[f"f{j}" for j in range(5)], metadata={"image_shape": [1, 5]})
    return path


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_load_validates_every_metadata_field(saved_model, tmp_path_factory, field, value):
    z = np.load(saved_model)
    arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__metadata__"]))
    target = meta
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    arrays["__metadata__"] = np.array(json.dumps(meta))
    path = tmp_path_factory.mktemp("bad") / "bad.npz"
    np.savez(path, **arrays)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = nmfkit.load(path)
            W = model.transform(X_POS)
    except ValueError as exc:
        assert "bad.npz" in str(exc), str(exc)
        return
    assert np.all(np.isfinite(W)) and W.min() >= 0 and W.shape == (8, 2)


# ------------------------------------------------------------------------------ silent acceptance
def test_masked_array_mask_is_honoured_and_list_mask_works():
    X = np.random.RandomState(1).rand(12, 6)
    hidden = X < 0.2
    Xm = np.ma.masked_array(np.where(hidden, 1e3, X), mask=hidden)  # huge values under the mask
    a = NMF(2, random_state=0, max_iter=50).fit(Xm)
    b = NMF(2, random_state=0, max_iter=50).fit(X, mask=~hidden)
    np.testing.assert_allclose(a.components_, b.components_)
    c = NMF(2, random_state=0, max_iter=50).fit(X, mask=(~hidden).tolist())
    np.testing.assert_allclose(c.components_, b.components_)
    m = MiniBatchNMF(2, random_state=0, max_iter=5, batch_size=4).fit(Xm)
    assert np.all(np.isfinite(m.components_)) and m.components_.max() < 100
    with pytest.raises(ValueError, match="masked array .* fit with a mask"):
        a.transform(Xm)
    with pytest.raises(ValueError, match="masked array and a mask"):
        NMF(2).fit(Xm, mask=~hidden)


def test_solver_options_must_be_finite():
    with pytest.raises(ValueError, match=r"solver_options\['block_columns'\] of NMF must be a "
                                         "finite number; got nan"):
        NMF(2, solver_options={"block_columns": math.nan}).fit(X_POS)


def test_device_is_honoured_or_refused():
    with pytest.raises(ValueError, match="device='cuda' needs the torch backend"):
        NMF(2, device="cuda").fit(X_POS)
    with pytest.raises(ValueError, match="device='cuda' needs the torch backend"):
        MiniBatchNMF(2, device="cuda").fit(X_POS)
    with pytest.raises(ValueError, match="'device' parameter of NMF must be a torch device"):
        NMF(2, backend="torch", device="banana").fit(X_POS)
    with pytest.raises(ValueError, match="numpy backend runs on the CPU only"):
        NMF(2, backend="numpy", device="cuda:0").fit(X_POS)


def test_messages_speak_of_the_users_data():
    model = NMF(2, random_state=0, max_iter=50).fit(X_POS)
    W32 = model.transform(X_POS.astype(np.float32))  # a float64 model on float32 data
    assert W32.dtype == np.float32
    np.testing.assert_allclose(W32, model.transform(X_POS), rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match=r"inverse_transform takes coefficients W of shape "
                                         r"\(n_samples, 2\).*got shape \(3, 5\)"):
        model.inverse_transform(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"init='custom' starts from your W and H"):
        NMF(2, init="custom").fit(X_POS)
    with pytest.raises(ValueError, match=r"init='custom' starts from your W and H"):
        MiniBatchNMF(2, init="custom").fit(X_POS)


def _patched_steps(monkeypatch, at, action):
    """MiniBatchNMF whose step number ``at`` runs ``action(H)`` first; returns the H after
    each complete step."""
    calls, after = {"n": 0}, []
    real = MiniBatchNMF._minibatch_step

    def step(self, Xb, Wb, H, update_H, obs=None):
        calls["n"] += 1
        if calls["n"] == at:
            action(H)
        out = real(self, Xb, Wb, H, update_H, obs)
        after.append(np.array(H))
        return out

    monkeypatch.setattr(MiniBatchNMF, "_minibatch_step", step)
    return after


def test_minibatch_ctrl_c_stops_after_the_current_step(monkeypatch):
    """A real SIGINT during step 7 (Python's default handler): the step completes, the fit
    stops there with the factors of that step, and no copies were needed."""
    import os
    import signal

    X = np.random.RandomState(2).rand(40, 6)
    after = _patched_steps(monkeypatch, 7, lambda H: os.kill(os.getpid(), signal.SIGINT))
    with pytest.warns(RuntimeWarning, match="interrupted by the user after 7 complete"):
        m = MiniBatchNMF(2, batch_size=5, max_iter=10, random_state=0, tol=0)
        W = m.fit_transform(X)
    assert m.stop_reason_ == "interrupted" and m.n_steps_ == 7
    np.testing.assert_array_equal(m.components_, after[-1])
    assert np.all(np.isfinite(W)) and W.min() >= 0


def test_minibatch_interrupt_mid_step_is_rolled_back(monkeypatch):
    """A caller's SIGINT handler that raises KeyboardInterrupt in the middle of step 7: that
    step is rolled back and the factors of step 6 are returned."""
    import signal

    X = np.random.RandomState(2).rand(40, 6)

    def half_way(H):
        H *= 0.5  # half-way through the step ...
        raise KeyboardInterrupt  # ... Ctrl-C

    def callers_handler(signum, frame):  # e.g. an application's own Ctrl-C handling
        raise KeyboardInterrupt

    after = _patched_steps(monkeypatch, 7, half_way)
    previous = signal.signal(signal.SIGINT, callers_handler)
    try:
        with pytest.warns(RuntimeWarning, match="interrupted by the user after 6 complete"):
            m = MiniBatchNMF(2, batch_size=5, max_iter=10, random_state=0, tol=0)
            W = m.fit_transform(X)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert m.stop_reason_ == "interrupted" and m.n_steps_ == 6
    np.testing.assert_array_equal(m.components_, after[-1])
    assert np.all(np.isfinite(W)) and W.min() >= 0


@pytest.mark.parametrize("make", [lambda k: NMF(k, max_iter=5),
                                  lambda k: MiniBatchNMF(k, max_iter=2)])
def test_a_rank_beyond_memory_is_refused_before_allocating(make):
    with pytest.raises(ValueError, match=r"n_components=1000000000 needs W .* more than this "
                                         r"machine's .* Choose n_components <= .* = 5"):
        make(10**9).fit(X_POS)
