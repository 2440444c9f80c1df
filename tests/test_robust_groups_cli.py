"""``nmfkit fit --outlier-tiles HxW --image-shape HxW``: group-structured outliers from the CLI;
bad tile sizes are one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("click")
from click.testing import CliRunner  # noqa: E402

from nmfkit.cli._app import cli  # noqa: E402


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((30, 3)) @ rng.random((3, 144))
    X[:5].reshape(5, 12, 12)[:, :6, :6] = X.max()  # five images with a bright block
    src = tmp_path / "X.npy"
    np.save(src, X)
    return src


def _run(tmp_path, src, *extra):
    return CliRunner().invoke(cli, ["fit", str(src), "-k", "3", "--max-iter", "30", "--quiet",
                                    "--out", str(tmp_path / "o"), *extra])


def test_outlier_tiles_fit_groups_and_report_them(tmp_path, images):
    import nmfkit

    res = _run(tmp_path, images, "--outlier-tiles", "3x3", "--image-shape", "12x12")
    assert res.exit_code == 0, res.output
    model = nmfkit.load(tmp_path / "o" / "model.npz")
    assert model.outliers == "groups" and len(model.outlier_groups) == 144
    assert max(model.outlier_groups) == 15  # 4 × 4 tiles
    # the loaded model keeps its groups: transform runs the same robust fit
    assert np.isfinite(model.transform(np.load(images)[:3])).all()
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["parameters"]["outliers"] == "groups"
    html = (tmp_path / "o" / "report.html").read_text()
    assert "most outlying samples" in html and "groups: S removes whole groups" in html
    # the five blocked images score above the others
    scores = model.outlier_scores_
    assert scores[:5].mean() > 2 * scores[5:].mean()


@pytest.mark.parametrize("extra,words", [
    (["--outlier-tiles", "3x0", "--image-shape", "12x12"], "--outlier-tiles"),
    (["--outlier-tiles", "abc", "--image-shape", "12x12"], "not a tile size"),
    (["--outlier-tiles", "13", "--image-shape", "12x12"], "larger than the image"),
    (["--outlier-tiles", "3x3"], "--image-shape"),
    (["--outlier-tiles", "3", "--outliers", "sparse", "--image-shape", "12x12"],
     "--outliers sparse"),
    (["--outlier-tiles", "3", "--batch-size", "8", "--image-shape", "12x12"], "--batch-size"),
], ids=["zero", "text", "too-large", "no-shape", "with-sparse", "minibatch"])
def test_bad_outlier_tiles_are_one_line_errors(tmp_path, images, extra, words):
    res = CliRunner().invoke(cli, ["fit", str(images), "-k", "3", "--max-iter", "5", "--quiet",
                                   "--no-report", "--out", str(tmp_path / "o"), *extra],
                             standalone_mode=True)
    assert res.exit_code == 2, res.output
    assert words in res.output
