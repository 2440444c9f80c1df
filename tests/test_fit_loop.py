"""The shared outer loop: stopping rules, history, callbacks, time limit, Ctrl-C."""

import signal
import warnings

import numpy as np
import pytest

from nmfkit import NMF
from nmfkit.losses import beta_divergence


@pytest.fixture
def X():
    return np.abs(np.random.RandomState(0).randn(40, 25))


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_history_is_recorded_and_matches_exact_objective(X, solver):
    m = NMF(4, solver=solver, tol=0, max_iter=30, random_state=0, init="random")
    W = m.fit_transform(X)
    h = m.history_
    assert h["n_iter"][0] == 0 and h["n_iter"][-1] == 30
    assert len(h["objective"]) == len(h["n_iter"]) == len(h["time"]) == 31
    assert m.loss_curve_ == h["objective"]
    # the cheap Gram-product objective agrees with the exact one at the end
    assert h["objective"][-1] == pytest.approx(beta_divergence(X, W, m.components_, 2), rel=1e-9)
    assert np.all(np.diff(h["objective"]) <= 1e-12 * np.array(h["objective"][:-1]))
    assert m.stop_reason_ == "max_iter"


def test_tol_stops_at_a_multiple_of_ten(X):
    # the error rule (scikit-learn's MU rule; the default auto stops by the violation instead)
    m = NMF(4, solver="mu", tol=1e-2, max_iter=500, random_state=0).fit(X)
    assert m.stop_reason_ == "tol" and m.n_iter_ % 10 == 0 and m.n_iter_ < 500


def test_convergence_warning_only_when_max_iter_reached(X):
    with pytest.warns(Warning, match="Maximum number of iterations 5 reached"):
        NMF(4, max_iter=5).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NMF(4, max_iter=5, tol=0).fit(X)  # tol=0 asks for exactly max_iter


def test_callback_can_stop_and_sees_progress(X):
    seen = []

    def cb(info):
        seen.append((info.n_iter, info.objective, info.W.shape, info.H.shape))
        return info.n_iter == 7

    m = NMF(4, tol=0, max_iter=100, callback=cb, random_state=0).fit(X)
    assert m.n_iter_ == 7 and m.stop_reason_ == "callback"
    assert [s[0] for s in seen] == list(range(1, 8))
    assert seen[0][2] == (40, 4) and seen[0][3] == (4, 25)


def test_max_time(X):
    m = NMF(4, tol=0, max_iter=10**6, max_time=0.05, random_state=0, solver="mu").fit(X)
    assert m.stop_reason_ == "max_time" and m.n_iter_ < 10**6


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_keyboard_interrupt_keeps_last_complete_iterate(X, solver, monkeypatch):
    """Ctrl-C in the middle of an update: the factors of the last complete iteration return."""
    from nmfkit import solvers

    cls = solvers.SOLVERS[solver]
    original = cls.step
    calls = {"n": 0}

    def flaky_step(self):
        calls["n"] += 1
        if calls["n"] == 6:
            # corrupt the factors half-way, then get interrupted
            self.W[...] = 123.0
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(cls, "step", flaky_step)
    # a caller's own SIGINT handler (as the CLI installs) keeps the snapshot fallback
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        with pytest.warns(RuntimeWarning, match="interrupted by the user after 5 complete"):
            m = NMF(4, solver=solver, tol=0, max_iter=50, random_state=0, init="random")
            W = m.fit_transform(X)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(cls, "step", original)
    ref = NMF(4, solver=solver, tol=0, max_iter=5, random_state=0, init="random")
    W_ref = ref.fit_transform(X)
    assert m.stop_reason_ == "interrupted" and m.n_iter_ == 5
    np.testing.assert_allclose(W, W_ref)
    np.testing.assert_allclose(m.components_, ref.components_)


def _with_default_sigint(fn):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn()
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_sigint_is_deferred_to_the_end_of_the_iteration(X, solver, monkeypatch):
    """A real SIGINT during iteration 6 ends the fit after iteration 6 completes, without the
    per-iteration snapshot (get_factors is never called), and the handler is restored."""
    from nmfkit import solvers

    cls = solvers.SOLVERS[solver]
    original = cls.step
    calls = {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == 6:
            signal.raise_signal(signal.SIGINT)  # arrives mid-iteration
        return original(self)

    def no_snapshot(self):
        raise AssertionError("the deferred path must not snapshot the factors")

    monkeypatch.setattr(cls, "step", step)
    monkeypatch.setattr(cls, "get_factors", no_snapshot)

    def fit():
        with pytest.warns(RuntimeWarning, match="after 6 complete iterations"):
            m = NMF(4, solver=solver, tol=0, max_iter=50, random_state=0, init="random")
            W = m.fit_transform(X)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        return m, W

    m, W = _with_default_sigint(fit)
    monkeypatch.undo()
    ref = NMF(4, solver=solver, tol=0, max_iter=6, random_state=0, init="random")
    W_ref = ref.fit_transform(X)
    assert m.stop_reason_ == "interrupted" and m.n_iter_ == 6
    np.testing.assert_allclose(W, W_ref)
    np.testing.assert_allclose(m.components_, ref.components_)


def test_second_sigint_abandons_the_fit(X, monkeypatch):
    """Two Ctrl-C within one iteration: KeyboardInterrupt propagates; the default handler
    is back afterwards."""
    from nmfkit import solvers

    cls = solvers.SOLVERS["cd"]
    original = cls.step

    def step(self):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        return original(self)

    monkeypatch.setattr(cls, "step", step)

    def fit():
        with pytest.raises(KeyboardInterrupt):
            NMF(4, solver="cd", tol=0, max_iter=50, random_state=0, init="random").fit(X)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    _with_default_sigint(fit)


def test_exact_data_stops_immediately():
    X = np.zeros((5, 4))
    m = NMF(2, random_state=0, init="random").fit(X)
    assert m.stop_reason_ == "exact" and m.n_iter_ == 1
    assert m.reconstruction_err_ == 0.0


def test_verbose_logs_to_stderr(X, capsys):
    NMF(3, verbose=1, max_iter=20, random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "iteration 10" in err


def _count_snapshots(monkeypatch, solver="cd"):
    from nmfkit import solvers

    cls = solvers.SOLVERS[solver]
    original, calls = cls.get_factors, {"n": 0}

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(cls, "get_factors", counting)
    return calls


def test_no_snapshot_where_sigint_is_ignored(X, monkeypatch):
    """A background job (SIG_IGN) cannot be interrupted by Ctrl-C: no per-iteration copy of
    the factors (the W6 memory benchmark read 64.7 instead of 45.5 MiB at k=50 because of it)."""
    calls = _count_snapshots(monkeypatch)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        NMF(4, solver="cd", tol=0, max_iter=10, random_state=0, init="random").fit(X)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls["n"] == 0


def test_no_snapshot_in_a_worker_thread(X, monkeypatch):
    """Signals reach the main thread only: a fit on another thread copies nothing per
    iteration (n_init restarts run on joblib threads)."""
    import threading

    calls = _count_snapshots(monkeypatch)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)  # would need one
    try:
        t = threading.Thread(target=lambda: NMF(4, solver="cd", tol=0, max_iter=10,
                                                random_state=0, init="random").fit(X))
        t.start()
        t.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls["n"] == 0
