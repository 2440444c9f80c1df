"""The nmfkit command line: every command on small files of every format, every error case
(exit 2, one line ``error: ...``), the progress bar, Ctrl-C, and a real subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

click = pytest.importorskip("click")
pytest.importorskip("matplotlib")
from click.testing import CliRunner  # noqa: E402
from scipy.io import mmwrite  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit.cli._app import cli  # noqa: E402
from nmfkit.io import read_matrix  # noqa: E402


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _data(n=12, m=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.rand(n, 3) @ rng.rand(3, m)


@pytest.fixture
def csv_file(tmp_path):
    X = _data()
    lines = ["," + ",".join(f"f{j}" for j in range(X.shape[1]))]
    lines += [f"r{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(X)]
    p = tmp_path / "data.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, X


def test_fit_csv_writes_everything(tmp_path, csv_file):
    path, X = csv_file
    out = tmp_path / "out"
    r = invoke("fit", path, "-k", 3, "--out", out, "--max-iter", 50)
    assert r.exit_code == 0, r.output
    for name in ("W.csv", "H.csv", "model.npz", "summary.json", "report.html"):
        assert (out / name).exists(), name
    W = read_matrix(out / "W.csv")
    assert W.row_names == [f"r{i}" for i in range(12)] and W.X.shape == (12, 3)
    H = read_matrix(out / "H.csv")
    assert H.feature_names == [f"f{j}" for j in range(6)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["n_components"] == 3 and summary["n_iter"] >= 1
    assert summary["metrics"]["relative_error"] < 0.1
    assert summary["versions"]["nmfkit"] == nmfkit.__version__
    model = nmfkit.load(out / "model.npz")
    np.testing.assert_allclose(model.components_, H.X, rtol=1e-12)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and "http" not in html.split("<body>")[1]
    assert '<table class="top">' in html  # top features as text, not a picture
    assert "relative error" in r.output


@pytest.mark.parametrize("kind", ["tsv", "npy", "npz-dense", "npz-sparse", "mtx", "npy-images"])
def test_fit_each_format(tmp_path, kind):
    X = _data()
    if kind == "tsv":
        p = tmp_path / "d.tsv"
        p.write_text("\n".join("\t".join(repr(float(v)) for v in row) for row in X))
    elif kind == "npy":
        np.save(p := tmp_path / "d.npy", X)
    elif kind == "npz-dense":
        np.savez(p := tmp_path / "d.npz", X=X)
    elif kind == "npz-sparse":
        sp.save_npz(p := tmp_path / "d.npz", sp.csr_matrix(X))
    elif kind == "mtx":
        mmwrite(str(p := tmp_path / "d.mtx"), sp.csr_matrix(X))
    else:
        np.save(p := tmp_path / "d.npy", X.reshape(12, 2, 3))
    out = tmp_path / "out"
    r = invoke("fit", p, "-k", 2, "--out", out, "--max-iter", 30, "--no-report")
    assert r.exit_code == 0, r.output
    ext = {"tsv": "tsv", "npy": "npy", "npy-images": "npy"}.get(kind, "npz")
    W = read_matrix(out / f"W.{ext}")
    assert W.X.shape == (12, 2)
    meta = nmfkit.model_io.read_metadata(out / "model.npz")
    if kind == "npy-images":
        assert meta["metadata"]["image_shape"] == [2, 3]


def test_fit_text_and_transform_reuses_vocabulary(tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("apples pears apples\nplums pears\ncars trucks\ntrucks buses cars\n"
                    "apples plums\nbuses cars\n")
    out = tmp_path / "out"
    r = invoke("fit", docs, "-k", 2, "--loss", "kl", "--out", out, "--max-iter", 50,
               "--text", "counts", "--top", 3)
    assert r.exit_code == 0, r.output
    H = read_matrix(out / "H.csv")
    assert set(H.feature_names) == {"apples", "pears", "plums", "cars", "trucks", "buses"}
    assert json.loads((out / "summary.json").read_text())["parameters"]["solver"] == "auto"
    new = tmp_path / "new.txt"
    new.write_text("apples pears unknownword\ntrucks\n")
    r = invoke("transform", out / "model.npz", new, "--out", tmp_path / "t")
    assert r.exit_code == 0, r.output
    W = read_matrix(tmp_path / "t" / "W.csv").X
    assert W.shape == (2, 2) and np.argmax(W[0]) != np.argmax(W[1])


def test_transpose(tmp_path, csv_file):
    path, X = csv_file
    r = invoke("fit", path, "-k", 2, "--transpose", "--out", tmp_path / "o", "--no-report")
    assert r.exit_code == 0, r.output
    W = read_matrix(tmp_path / "o" / "W.csv")
    assert W.X.shape == (6, 2) and W.row_names == [f"f{j}" for j in range(6)]


def test_transform_matches_model_and_reorders_columns(tmp_path, csv_file):
    path, X = csv_file
    invoke("fit", path, "-k", 3, "--out", tmp_path / "o", "--no-report")
    model = nmfkit.load(tmp_path / "o" / "model.npz")
    r = invoke("transform", tmp_path / "o" / "model.npz", path, "--out", tmp_path / "t")
    assert r.exit_code == 0, r.output
    W = read_matrix(tmp_path / "t" / "W.csv").X
    np.testing.assert_allclose(W, model.transform(X), rtol=1e-10, atol=1e-12)
    # the same table with its columns in another order gives the same W
    order = [5, 0, 3, 1, 4, 2]
    lines = ["," + ",".join(f"f{j}" for j in order)]
    lines += [f"r{i}," + ",".join(repr(float(row[j])) for j in order) for i, row in enumerate(X)]
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join(lines))
    r = invoke("transform", tmp_path / "o" / "model.npz", shuffled, "--out", tmp_path / "t2")
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(read_matrix(tmp_path / "t2" / "W.csv").X, W, rtol=1e-10)


def test_report_command(tmp_path, csv_file):
    path, _ = csv_file
    invoke("fit", path, "-k", 2, "--out", tmp_path / "o", "--no-report")
    r = invoke("report", tmp_path / "o" / "model.npz", "--out", tmp_path / "a.html")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "a.html").read_text()  # convergence figure, top features as a table
    assert html.count("data:image/png") == 1 and '<table class="top">' in html
    r = invoke("report", tmp_path / "o" / "model.npz", path)
    assert r.exit_code == 0, r.output
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count("data:image/png") == 2 and "explained variance" in html


def test_info():
    r = invoke("info")
    assert r.exit_code == 0 and "numpy" in r.output and "solvers" in r.output
    data = json.loads(invoke("info", "--json").output)
    assert data["versions"]["nmfkit"] == nmfkit.__version__ and "numpy" in data["backends"]


def test_demo_digits_only(tmp_path):
    r = invoke("demo", "--only-digits", "-k", 4, "--out", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert "explained variance" in r.output
    for name in ("W.npy", "H.npy", "summary.json", "parts.png", "report.html"):
        assert (tmp_path / "d" / name).exists()


def test_progress_bar_and_quiet(tmp_path, csv_file):
    path, _ = csv_file
    args = ["fit", path, "-k", 2, "--out", tmp_path / "o", "--no-report", "--tol", 0,
            "--max-iter", 20]
    r = invoke(*args, "--progress")
    assert "fit:" in r.stderr and "/20 [" in r.stderr
    r = invoke(*args, "--progress", "--quiet")
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == ""
    r = invoke(*args)  # not a terminal: no bar by default
    assert "/20 [" not in r.stderr


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def _blocked_dir(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    return f / "sub"


ERROR_CASES = {
    "missing file": (lambda t: ["fit", t / "nope.csv", "-k", 2], "does not exist"),
    "unparsable cell": (lambda t: ["fit", _write(t, "b.csv", "a,b\n1,2\n3,oops\n"), "-k", 1],
                        "cannot read cell 'oops' at line 3, column 2"),
    "negative value": (lambda t: ["fit", _write(t, "n.csv", ",a,b\nx,1,2\ny,3,-4\n"), "-k", 1],
                       "negative value (-4) at row 2 ('y'), column 2 ('b')"),
    "infinite value": (lambda t: ["fit", _write(t, "f.csv", "1,2\n3,inf\n"), "-k", 1],
                       "has an infinite value (inf) at row 2, column 2"),
    "NaN": (lambda t: ["fit", _write(t, "m.csv", "a,b\n1,NA\n3,4\n"), "-k", 1],
            "missing value (NaN) at row 1, column 2"),
    "k too large": (lambda t: ["fit", _write(t, "k.csv", "1,2\n3,4\n5,6\n"), "-k", 5],
                    "-k 5 is larger than the data allow: X is 3×2"),
    "unknown loss": (lambda t: ["fit", _write(t, "l.csv", "1,2\n3,4\n"), "-k", 1, "--loss",
                                "fancy"], "'fancy' is not a loss"),
    "unknown solver": (lambda t: ["fit", _write(t, "s.csv", "1,2\n3,4\n"), "-k", 1,
                                  "--solver", "magic"], "Invalid value for '--solver'"),
    "unknown option": (lambda t: ["fit", "x.csv", "-k", 1, "--frobnicate"],
                       "No such option '--frobnicate'"),
    "missing -k": (lambda t: ["fit", "x.csv"], "Missing option '-k'"),
    "unwritable output": (lambda t: ["fit", _write(t, "w.csv", "1,2\n3,4\n"), "-k", 1,
                                     "--out", _blocked_dir(t)],
                          "cannot write to the output folder"),
    "bad image shape": (lambda t: ["fit", _write(t, "i.csv", "1,2\n3,4\n"), "-k", 1,
                                   "--image-shape", "3x3"], "--image-shape 3x3 has 9 pixels"),
    "solver cannot do loss": (lambda t: ["fit", _write(t, "c.csv", "1,2\n3,4\n"), "-k", 1,
                                         "--loss", "0.5", "--solver", "cd"], "beta_loss"),
    "model not a model": (lambda t: ["transform", _write(t, "m.npz", "zz"),
                                     _write(t, "d.csv", "1,2\n")], "not an .npz archive"),
    "unknown format": (lambda t: ["fit", _write(t, "d.xyz", "1,2\n"), "-k", 1],
                       "cannot tell the format"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_cases_exit_2_one_line(tmp_path, case):
    make_args, message = ERROR_CASES[case]
    r = invoke(*make_args(tmp_path))
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.output


def test_transform_feature_mismatch(tmp_path, csv_file):
    path, _ = csv_file
    invoke("fit", path, "-k", 2, "--out", tmp_path / "o", "--no-report")
    bad = _write(tmp_path, "bad.csv", ",f0,zz,f2,f3,f4,f5\nr,1,2,3,4,5,6\n")
    r = invoke("transform", tmp_path / "o" / "model.npz", bad)
    assert r.exit_code == 2 and "lacks 1 of the model's features, e.g. ['f1']" in r.stderr
    np.save(tmp_path / "narrow.npy", np.ones((3, 4)))
    r = invoke("transform", tmp_path / "o" / "model.npz", tmp_path / "narrow.npy")
    assert r.exit_code == 2 and "has 4 features (columns) but the model was fitted on 6" in r.stderr


def test_ctrl_c_writes_last_iterate(tmp_path, csv_file, monkeypatch):
    from nmfkit.solvers import SOLVERS

    path, _ = csv_file
    cls = SOLVERS["cd"] if isinstance(SOLVERS["cd"], type) else type(SOLVERS["cd"])
    step = cls.step
    calls = {"n": 0}

    def interrupting_step(self):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(cls, "step", interrupting_step)
    out = tmp_path / "o"
    r = invoke("fit", path, "-k", 2, "--solver", "cd", "--out", out, "--no-report",
               "--tol", 0, "--max-iter", 50)
    assert r.exit_code == 130
    assert "interrupted after 3 iterations: wrote the factors of the last complete" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["n_iter"] == 3
    assert np.all(np.isfinite(read_matrix(out / "W.csv").X))


def test_real_subprocess(tmp_path, csv_file):
    path, _ = csv_file
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ok = subprocess.run([sys.executable, "-m", "nmfkit", "fit", str(path), "-k", "2", "--out",
                         str(tmp_path / "o"), "--no-report"], capture_output=True, text=True,
                        env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "model.npz").exists()
    bad = subprocess.run([sys.executable, "-m", "nmfkit", "fit", str(tmp_path / "none.csv"),
                          "-k", "2"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: input") and "Traceback" not in bad.stderr


def _has_param(name):
    return name in nmfkit.NMF().get_params()


@pytest.mark.parametrize("args, param, expected", [
    (["--n-init", "2"], "n_init", 2),
    (["--l1", "H=0.5"], "penalties", "L1"),
    (["--graph", "knn", "--graph-neighbors", "3"], "graph", "binary"),
    (["--smoothness", "0.3"], "smoothness", 0.3),
])
def test_extension_options_reach_the_estimator(tmp_path, csv_file, args, param, expected):
    if not _has_param(param):
        pytest.skip(f"NMF has no {param!r} in this tree")
    path, _ = csv_file
    r = invoke("fit", path, "-k", 2, "--out", tmp_path / "o", "--no-report", "--max-iter", 30,
               *args)
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o" / "summary.json").read_text())["parameters"][param]
    assert (expected in str(got)) if isinstance(expected, str) else got == expected


def test_missing_nan_option(tmp_path):
    if not _has_param("missing_values"):
        pytest.skip("NMF has no missing_values in this tree")
    X = _data()
    X[2, 3] = np.nan
    p = tmp_path / "m.csv"
    p.write_text("\n".join(",".join("NA" if np.isnan(v) else repr(float(v)) for v in row)
                           for row in X))
    r = invoke("fit", p, "-k", 3, "--missing", "nan", "--out", tmp_path / "o", "--max-iter", 100)
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["metrics"]["n_observed"] == X.size - 1 and s["metrics"]["relative_error"] < 0.2
    W = read_matrix(tmp_path / "o" / "W.csv").X
    assert np.all(np.isfinite(W))
    r = invoke("fit", p, "-k", 3, "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "pass --missing nan" in r.stderr


def test_gpu_asked_but_absent(tmp_path, csv_file):
    if not _has_param("device"):
        pytest.skip("NMF has no device parameter in this tree")
    torch = sys.modules.get("torch")
    try:
        import torch  # noqa: F811
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    path, _ = csv_file
    r = invoke("fit", path, "-k", 2, "--backend", "torch", "--device", "cuda",
               "--out", tmp_path / "o")
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
    assert ("asked for a GPU but PyTorch sees none" in r.stderr
            or "needs PyTorch" in r.stderr)


def test_bad_penalty_value(tmp_path, csv_file):
    if not _has_param("penalties"):
        pytest.skip("NMF has no penalties in this tree")
    path, _ = csv_file
    r = invoke("fit", path, "-k", 2, "--l1", "Q=1", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "'Q=1' is not λ, W=λ or H=λ" in r.stderr


def test_rank_command(tmp_path):
    pytest.importorskip("nmfkit.selection")
    X = _data(n=24, m=10)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r"
    r = invoke("rank", tmp_path / "x.npy", "--ks", "2..4", "--method", "cv,cophenetic",
               "--n-runs", 3, "--max-iter", 60, "--out", out)
    assert r.exit_code == 0, r.output
    result = json.loads((out / "rank.json").read_text())
    assert result["curves"]["k"] == [2, 3, 4] and result["suggested_k"] in (2, 3, 4)
    assert "cophenetic" in result["curves"] and "cv_error" in result["curves"]
    assert read_matrix(out / "rank.csv").row_names == ["k=2", "k=3", "k=4"]
    assert (out / "report.html").read_text().count("data:image/png") == 2
    assert "suggested k" in r.output


@pytest.mark.parametrize("args, message", [
    (["--ks", "5..x"], "is not a list of ranks"),
    (["--method", "vibes"], "'vibes' is not a method"),
    (["--ks", "2..40"], "--ks: ranks up to 40 but"),
])
def test_rank_errors(tmp_path, args, message):
    pytest.importorskip("nmfkit.selection")
    np.save(tmp_path / "x.npy", _data())
    r = invoke("rank", tmp_path / "x.npy", *args, "--out", tmp_path / "r")
    assert r.exit_code == 2 and message in r.stderr and r.stderr.startswith("error: ")


def test_real_sigint_writes_last_iterate(tmp_path):
    """A real SIGINT to a running `nmfkit fit` (not a mocked exception)."""
    import signal

    np.save(tmp_path / "x.npy", np.random.RandomState(0).rand(300, 40))
    # a shell may start children with SIGINT ignored; restore Python's default handler
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from nmfkit.cli import main; main()")
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-c", code, "fit", str(tmp_path / "x.npy"), "-k", "4",
                          "--tol", "1e-300", "--max-iter", "10000000", "--out", str(out),
                          "--no-report", "-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        import re

        seen = []
        for _ in range(2000):  # "-v" logs iterations: wait until the fit has run 10 of them
            seen.append(p.stderr.readline())
            done = re.search(r"iteration (\d+)", seen[-1])
            if (done and int(done.group(1)) >= 10) or not seen[-1]:
                break
        assert "iteration" in seen[-1], seen
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "wrote the factors of the last complete iteration" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["n_iter"] >= 10
    assert np.all(np.isfinite(np.load(out / "H.npy")))


def test_memory_error_is_one_line(tmp_path, csv_file, monkeypatch):
    import nmfkit.cli.fit as fit_mod

    def boom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(fit_mod, "run_fit", boom)
    r = invoke("fit", csv_file[0], "-k", 2, "--out", tmp_path / "o")
    assert r.exit_code == 2 and r.stderr.startswith("error: not enough memory (MemoryError)")


def test_batch_size_uses_minibatch(tmp_path, csv_file):
    if not hasattr(nmfkit, "MiniBatchNMF"):
        pytest.skip("no MiniBatchNMF in this tree")
    path, X = csv_file
    r = invoke("fit", path, "-k", 2, "--batch-size", 4, "--max-iter", 30, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    model = nmfkit.load(tmp_path / "o" / "model.npz")
    assert type(model).__name__ == "MiniBatchNMF" and model.batch_size == 4
    r = invoke("transform", tmp_path / "o" / "model.npz", path, "--out", tmp_path / "t")
    assert r.exit_code == 0, r.output
    r = invoke("fit", path, "-k", 2, "--batch-size", 4, "--max-time", 5, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "cannot be combined with max_time" in r.stderr


def test_frozen_components_from_a_file(tmp_path, csv_file):
    """--frozen FILE keeps the given components bit-identical in the saved model."""
    path, X = csv_file
    known = np.random.RandomState(3).rand(1, X.shape[1])
    np.save(tmp_path / "known.npy", known)
    r = invoke("fit", path, "-k", 3, "--frozen", tmp_path / "known.npy", "--out", tmp_path / "o",
               "--no-report", "--max-iter", 30, "--quiet")
    assert r.exit_code == 0, r.output
    model = nmfkit.load(tmp_path / "o" / "model.npz")
    assert np.array_equal(model.components_[:1], known)
    np.save(tmp_path / "bad.npy", np.ones((1, X.shape[1] + 1)))
    r = CliRunner().invoke(cli, ["fit", str(path), "-k", "3", "--frozen", str(tmp_path / "bad.npy"),
                                 "--out", str(tmp_path / "o2"), "--quiet"])
    assert r.exit_code != 0


# --- --max-memory (streamed from disk) and --dask -------------------------------------------

def _scale_data(tmp_path):
    X = np.random.default_rng(0).random((60, 12))
    np.save(tmp_path / "x.npy", X)
    return X


def test_fit_max_memory_streams_blocks_and_matches_in_memory_fit(tmp_path):
    X = _scale_data(tmp_path)
    out = tmp_path / "o"
    r = invoke("fit", tmp_path / "x.npy", "-k", 3, "--max-memory", "20KB", "--max-iter", 30,
               "--tol", 0, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["scale"]["mode"] == "out-of-core" and s["scale"]["block_rows"] < 30  # ≥ 3 blocks
    ref = nmfkit.NMF(3, init="random", random_state=0, solver="cd", max_iter=30, tol=0,
                     solver_options={"inner": False})
    W_ref = ref.fit_transform(X)
    np.testing.assert_allclose(np.load(out / "H.npy"), ref.components_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.load(out / "W.npy"), W_ref, rtol=1e-9, atol=1e-12)
    assert s["n_iter"] == 30
    assert s["reconstruction_err"] == pytest.approx(ref.reconstruction_err_, rel=1e-9)
    assert (out / "report.html").exists()
    model = nmfkit.load(out / "model.npz")
    np.testing.assert_allclose(model.components_, ref.components_, rtol=1e-9, atol=1e-12)
    assert model.n_features_in_ == 12 and model.n_iter_ == 30


def test_fit_max_memory_folder_of_npz_chunks(tmp_path):
    X = _scale_data(tmp_path)
    folder = tmp_path / "chunks"
    folder.mkdir()
    for i in range(3):
        sp.save_npz(folder / f"part-{i:03d}.npz", sp.csr_matrix(X[20 * i:20 * (i + 1)]))
    out = tmp_path / "o"
    r = invoke("fit", folder, "-k", 3, "--max-memory", "64KB", "--max-iter", 20, "--tol", 0,
               "--out", out, "--quiet", "--no-report")
    assert r.exit_code == 0, r.output
    ref = nmfkit.NMF(3, init="random", random_state=0, solver="cd", max_iter=20, tol=0,
                     solver_options={"inner": False}).fit(X)
    H = read_matrix(out / "H.npz").X
    np.testing.assert_allclose(H, ref.components_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("extra, message", [
    (("--n-init", 3), "--n-init"),
    (("--missing", "nan"), "--missing"),
    (("--graph", "knn"), "--graph"),
    (("--solver", "anls"), "--solver cd or mu"),
    (("--init", "nndsvd"), "--init random"),
    (("--dask", "local"), "two different fits"),
    (("--batch-size", 10), "--batch-size"),
    (("--float32",), "--float32"),
    (("--transpose",), "--transpose"),
])
def test_fit_max_memory_refuses_what_it_cannot_honour(tmp_path, extra, message):
    _scale_data(tmp_path)
    r = CliRunner().invoke(cli, ["fit", str(tmp_path / "x.npy"), "-k", "3", "--max-memory",
                                 "1MB", "--out", str(tmp_path / "o"),
                                 *[str(e) for e in extra]])
    assert r.exit_code == 2
    assert "error:" in r.output and message in r.output
    assert "Traceback" not in r.output


def test_fit_max_memory_refuses_unstreamable_input_and_bad_size(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("1,2\n3,4\n")
    r = CliRunner().invoke(cli, ["fit", str(p), "-k", "1", "--max-memory", "1MB",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "streams a .npy file" in r.output
    _scale_data(tmp_path)
    r = CliRunner().invoke(cli, ["fit", str(tmp_path / "x.npy"), "-k", "3", "--max-memory",
                                 "lots", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "error:" in r.output and "lots" in r.output


def test_fit_dask_local_matches_in_memory_fit(tmp_path):
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    X = _scale_data(tmp_path)
    out = tmp_path / "o"
    r = invoke("fit", tmp_path / "x.npy", "-k", 3, "--dask", "local", "--max-iter", 20,
               "--tol", 0, "--out", out, "--quiet", "--no-report")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["scale"]["mode"] == "dask"
    ref = nmfkit.NMF(3, init="random", random_state=0, solver="cd", max_iter=20, tol=0,
                     solver_options={"inner": False}).fit(X)
    np.testing.assert_allclose(np.load(out / "H.npy"), ref.components_, rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("loss, beta", [("frobenius", "frobenius"), ("kl", "kullback-leibler")])
def test_fit_defaults_are_the_librarys_defaults(tmp_path, loss, beta):
    # `nmfkit fit X -k K` runs what NMF(K, random_state=0) runs: the default solver "auto"
    # (accelerated cd for frobenius, Newton cd for kl), not plain cd / mu
    X = np.random.default_rng(3).random((80, 5)) @ np.random.default_rng(4).random((5, 40))
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "o"
    r = invoke("fit", tmp_path / "x.npy", "-k", 4, "--loss", loss, "--out", out, "--quiet",
               "--no-report")
    assert r.exit_code == 0, r.output
    ref = nmfkit.NMF(4, beta_loss=beta, random_state=0)
    W_ref = ref.fit_transform(X)
    s = json.loads((out / "summary.json").read_text())
    assert s["parameters"]["solver"] == "auto" and s["n_iter"] == ref.n_iter_
    np.testing.assert_allclose(np.load(out / "W.npy"), W_ref, rtol=1e-9, atol=1e-12)
    plain = nmfkit.NMF(4, beta_loss=beta, random_state=0,
                       solver="cd" if loss == "frobenius" else "mu").fit(X)
    assert plain.n_iter_ != ref.n_iter_ or not np.allclose(plain.components_, ref.components_)

