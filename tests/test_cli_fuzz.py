"""The command line on damaged files: valid CSV, .npy, .npz (dense and sparse), .mtx and
model.npz files truncated at random offsets and with random bytes flipped (seeded).

Every run must end with exit 0 and valid outputs (finite, non-negative W and a loadable
model), or with exit 2 and exactly one ``error:`` line that names the file — never a
traceback, never an unexpected-error line, never a hang (each run is bounded by a timer).
"""

import os
import pathlib
import signal

import numpy as np
import pytest
import scipy.sparse as sp

click = pytest.importorskip("click")
from click.testing import CliRunner  # noqa: E402
from scipy.io import mmwrite  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit.cli._app import cli  # noqa: E402

# damaged copies per file and kind of damage (raise it for a deeper search)
N_CASES = int(os.environ.get("NMFKIT_FUZZ_CASES", "20"))
RUN_SECONDS = 30  # a run that takes longer is a hang


class _Hang(BaseException):
    """Raised by the timer; a BaseException so that no handler in the CLI swallows it."""


def _on_alarm(signum, frame):
    raise _Hang


def _invoke(args):
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, RUN_SECONDS)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _data(n=12, m=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.rand(n, 3) @ rng.rand(3, m)


def _valid_files(d: pathlib.Path) -> dict:
    X = _data()
    lines = ["," + ",".join(f"f{j}" for j in range(X.shape[1]))]
    lines += [f"r{i}," + ",".join(f"{v:.6g}" for v in row) for i, row in enumerate(X)]
    (d / "data.csv").write_text("\n".join(lines) + "\n")
    np.save(d / "data.npy", X)
    np.savez(d / "dense.npz", X=X)
    S = sp.random(12, 6, density=0.5, format="csr", random_state=0)
    sp.save_npz(d / "sparse.npz", S)
    mmwrite(str(d / "data.mtx"), S)
    nmfkit.NMF(2, random_state=0, max_iter=50).fit(X).save(d / "model.npz")
    return {p: p.read_bytes() for p in (d / "data.csv", d / "data.npy", d / "dense.npz",
                                        d / "sparse.npz", d / "data.mtx", d / "model.npz")}


def _damaged(data: bytes, kind: str, rng) -> bytes:
    if kind == "truncated":
        return data[: int(rng.randint(0, len(data)))]
    out = bytearray(data)
    for pos in rng.randint(0, len(out), size=int(rng.randint(1, 6))):
        out[pos] ^= int(rng.randint(1, 256))
    return bytes(out)


def _check(r, path, out):
    text = f"exit {r.exit_code}\nstderr: {r.stderr}\nexception: {r.exception!r}"
    assert not isinstance(r.exception, _Hang), f"hang on {path}: " + text
    assert "Traceback" not in r.stderr, text
    if r.exit_code == 0:
        W = nmfkit.io.read_matrix(next(out.glob("W.*"))).X
        W = W.toarray() if sp.issparse(W) else W
        assert np.all(np.isfinite(W)) and W.min() >= 0, text
        if (out / "model.npz").exists():
            nmfkit.load(out / "model.npz")
        return
    assert r.exit_code == 2, text
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert path.name in errors[0], text


@pytest.mark.parametrize("kind", ["truncated", "flipped"])
@pytest.mark.parametrize("name", ["data.csv", "data.npy", "dense.npz", "sparse.npz",
                                  "data.mtx", "model.npz", "streamed.npy"])
def test_damaged_file_exit_0_or_one_error_line(tmp_path, name, kind):
    files = _valid_files(tmp_path)
    streamed = name == "streamed.npy"  # the same .npy, read block by block (--max-memory)
    original = files[tmp_path / ("data.npy" if streamed else name)]
    rng = np.random.RandomState(sum(map(ord, name + kind)))  # seeded: the same damage
    for case in range(N_CASES):
        path = tmp_path / f"case{case}_{name}"
        path.write_bytes(_damaged(original, kind, rng))
        out = tmp_path / f"out{case}"
        if name == "model.npz":
            args = ["transform", path, tmp_path / "data.csv", "--out", out, "-q"]
        else:
            args = ["fit", path, "-k", 2, "--max-iter", 30, "--out", out, "--no-report", "-q"]
            if streamed:
                args += ["--max-memory", "64MB"]
        _check(_invoke(args), path, out)


def test_undamaged_files_fit(tmp_path):
    """The control: every original file runs to exit 0."""
    files = _valid_files(tmp_path)
    for path in files:
        out = tmp_path / f"out_{path.stem}_{path.suffix[1:]}"
        if path.name == "model.npz":
            args = ["transform", path, tmp_path / "data.csv", "--out", out, "-q"]
        else:
            args = ["fit", path, "-k", 2, "--max-iter", 30, "--out", out, "--no-report", "-q"]
        r = _invoke(args)
        assert r.exit_code == 0, (path, r.stderr, r.exception)
