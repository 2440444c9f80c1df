"""Real signals to a running ``nmfkit fit`` in each fit mode: Ctrl-C (SIGINT) and SIGTERM (what
``timeout``, ``kill`` and batch schedulers send) must both stop the fit and leave an output
folder with a loadable model of the last complete iterate and ``stop_reason: interrupted``."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("click")

import nmfkit  # noqa: E402

# a shell may start children with SIGINT ignored; restore Python's default handler
_CODE = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from nmfkit.cli import main; main()")

# mode → (options, the stderr text that shows the fit is iterating): the "fitting" stage
# line, or the streamed fits' iteration log (a Dask cluster takes a while to start; the log
# needs tol > 0). A random start (no SVD) makes "fitting" mean the loop is about to begin;
# --tol 0 also turns off MiniBatchNMF's no-improvement stop.
_LONG = ["--tol", "1e-300"]
MODES = {
    "plain": (["--init", "random", *_LONG], "fitting"),
    "n-init": (["--n-init", "3", "--init", "random", *_LONG], "fitting"),
    "batch-size": (["--batch-size", "5", "--init", "random", "--tol", "0"], "fitting"),
    "max-memory": (["--max-memory", "64MB", *_LONG], "iteration"),
    "dask": (["--dask", "local", *_LONG], "iteration"),
}


def _start(tmp_path, extra):
    np.save(tmp_path / "x.npy", np.random.RandomState(0).rand(1000, 30))
    out = tmp_path / "o"
    args = [sys.executable, "-c", _CODE, "fit", str(tmp_path / "x.npy"), "-k", "5",
            "--max-iter", "10000000", "--out", str(out), "--no-report", "-v",
            *extra]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            bufsize=1), out


def _wait_until_fitting(p, marker, seconds=120):
    """Read stderr until the fit is iterating (``marker``), then let it run a little.

    A reader thread feeds a queue, so a child that stops writing without exiting cannot
    block the test past ``seconds``; the thread keeps draining stderr afterwards (the child
    never blocks on a full pipe), and what it reads later is returned by ``rest()``.
    """
    import queue
    import threading

    lines: queue.Queue = queue.Queue()

    def pump():
        for line in iter(p.stderr.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            time.sleep(0.3)  # a streamed fit of this X converges (stops) after ~2 s
            return seen, lines
    raise AssertionError(f"the fit did not start within {seconds} s: {''.join(seen)}")


def _rest(lines, p, seconds=120):
    """The child's remaining stderr once it has exited (bounded by ``seconds``)."""
    p.wait(timeout=seconds)
    out, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except Exception:
            break
        if line is None:
            break
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("mode", list(MODES))
def test_signal_writes_last_iterate(tmp_path, mode, sig):
    if mode == "dask":
        pytest.importorskip("dask.distributed")
    options, marker = MODES[mode]
    p, out = _start(tmp_path, options)
    try:
        seen, lines = _wait_until_fitting(p, marker)
        assert p.poll() is None, "".join(seen)  # still fitting: the signal interrupts it
        p.send_signal(sig)
        err = _rest(lines, p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
    err = "".join(seen) + err
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    assert "wrote the factors of the last complete iteration" in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted", summary
    model = nmfkit.load(out / "model.npz")
    assert model.components_.shape == (5, 30)
    assert np.all(np.isfinite(model.components_)) and model.components_.min() >= 0
    W = np.load(out / "W.npy")
    assert W.shape == (1000, 5) and np.all(np.isfinite(W)) and W.min() >= 0
