"""RcppML (R) as a peer in benchmarks/bench_cpu.py: its nmf() run through ``Rscript``.

RcppML has no callback and no custom start: its fits are timed inside R (``nmf()`` alone, not
R's start-up nor the data transfer) for a growing number of iterations from one seeded random
start, so each fit is a prefix of one trajectory. Its factors are written to files and scored
in Python by the same objective function as every other tool. The time to a target objective
is then bracketed: the longest fit that has not reached it (lower bound) and the first that
has (upper bound). Needs R with RcppML (Debian: ``apt-get install r-cran-rcppml``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
import scipy.sparse as sp

SCRIPT = pathlib.Path(__file__).with_name("rcppml_nmf.R")
GRID = (4, 6, 9, 14, 21, 32, 48, 72, 108, 162, 243)  # iterations, ×1.5 apart


def unavailable() -> str | None:
    """None when Rscript and RcppML are installed, else why RcppML is skipped."""
    if shutil.which("Rscript") is None:
        return "RcppML skipped: no Rscript (apt-get install r-cran-rcppml)"
    r = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('RcppML')))"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "RcppML skipped: R has no RcppML package (apt-get install r-cran-rcppml)"
    return None


def versions() -> str:
    r = subprocess.run(["Rscript", "-e", "cat(R.version$major, R.version$minor, "
                        "as.character(packageVersion('RcppML')))"], capture_output=True, text=True)
    major, minor, pkg = r.stdout.split()
    return f"R {major}.{minor}, RcppML {pkg}"


class RcppML:
    """One data set written once for R; ``fits(maxits)`` → [(maxit, seconds, W, H)]."""

    def __init__(self, X, k: int, threads: int = 2, seed: int = 0):
        self.dir = tempfile.mkdtemp(prefix="rcppml-")
        self.k, self.threads, self.seed = k, threads, seed
        self.n, self.m = X.shape
        self.path = os.path.join(self.dir, "X.bin")
        with open(self.path, "wb") as f:
            if sp.issparse(X):
                C = sp.csc_matrix(X, dtype=np.float64)
                C.sort_indices()
                self.kind, self.nnz = "sparse", C.nnz
                f.write(C.indptr.astype(np.int32).tobytes())
                f.write(C.indices.astype(np.int32).tobytes())
                f.write(C.data.tobytes())
            else:
                self.kind, self.nnz = "dense", X.size
                f.write(np.ascontiguousarray(X, dtype=np.float64).tobytes())

    def fits(self, maxits):
        out = os.path.join(self.dir, "fit")
        cmd = ["Rscript", str(SCRIPT), self.path, self.kind, str(self.n), str(self.m),
               str(self.nnz), str(self.k), str(self.seed), str(self.threads), out,
               ",".join(str(int(i)) for i in maxits)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"Rscript failed: {r.stderr.strip()[-500:]}")
        res = []
        for line in r.stdout.splitlines():
            if not line.startswith("fit "):
                continue
            _, it, secs, _ = line.split()
            it = int(it)
            W = np.fromfile(f"{out}_{it}_w.bin").reshape(self.n, self.k)
            H = np.fromfile(f"{out}_{it}_h.bin").reshape(self.k, self.m)
            res.append((it, float(secs), W, H))
        return res

    def time_to_target(self, score, target, budget_s: float = 90.0, bracket=None):
        """Fits along GRID (or only the two iteration counts of ``bracket``) until one scores
        ≤ target. Returns dict(lo=(it, s) not reached or None, hi=(it, s) reached or None,
        f=score of the last fit, spent=R's nmf() seconds in all)."""
        grid = list(bracket) if bracket else list(GRID)
        lo = hi = None
        f, spent = np.inf, 0.0
        while grid and hi is None and spent < budget_s:
            batch, grid = grid[:2], grid[2:]  # two fits per R start: few wasted long fits
            for it, secs, W, H in self.fits(batch):
                spent += secs
                if hi is not None:
                    continue
                f = score(W, H)
                if f <= target:
                    hi = (it, secs)
                else:
                    lo = (it, secs)
        return {"lo": lo, "hi": hi, "f": f, "spent": spent}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)
