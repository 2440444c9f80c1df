"""The HTML report and its plots: self-contained, every figure present, and (when Debian's
chromium is installed) rendered by a real headless browser."""

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest
from _helpers import fitted_toy

pytest.importorskip("matplotlib")

from nmfkit.plot import (figure_to_png, plot_basis_images, plot_consensus,  # noqa: E402
                         plot_rank_curves)
from nmfkit.report import model_section, render_report, write_report  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    return fitted_toy(40)


def _pngs(html):
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_every_section_figure_is_a_valid_png(fitted):
    model, X = fitted
    C = np.kron(np.eye(2), np.ones((4, 4)))
    sec = model_section(model, title="toy <data>", X=X, image_shape=(4, 4),
                        feature_names=[f"f{j}" for j in range(16)], consensus=C,
                        rank_curves={"ks": [2, 3, 4], "cophenetic": [0.9, 0.99, 0.8],
                                     "error": [3.0, 1.0, 0.9]})
    captions = [c for c, _ in sec.figures]
    # image-shaped features: the parts as images, no table of pixel names
    assert captions == ["Objective against iteration", "Parts: the rows of H shown as images",
                        "Coefficients: which components each sample uses",
                        "Consensus over restarts (reordered)",
                        "Rank-selection criteria against k"]
    assert sec.tables == []
    html = render_report([sec], title="T")
    pngs = _pngs(html)
    assert len(pngs) == 5
    for p in pngs:
        assert base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "toy &lt;data&gt;" in html  # titles are escaped
    assert "explained variance" in html and "relative error" in html
    # self-contained: no external resource of any kind (links only to anchors in the page)
    assert not re.search(r'(src|href)="(?!data:|#)', html)


def test_without_data_only_model_figures(fitted):
    model, _ = fitted
    sec = model_section(model, title="m")
    assert [c for c, _ in sec.figures] == ["Objective against iteration"]
    assert [c for c, _ in sec.tables] == ["Top 10 features of each component (rows of H)"]
    assert "relative_error" not in sec.metrics


def test_plot_argument_errors():
    with pytest.raises(ValueError, match="image shape 3x3 has 9 pixels but H has 16"):
        plot_basis_images(np.ones((2, 16)), (3, 3))
    with pytest.raises(ValueError, match="one value per k"):
        plot_rank_curves([2, 3], {"a": [1.0]})
    fig = plot_consensus(np.eye(5), labels=list("abcde"))
    assert base64.b64decode(figure_to_png(fig))[:4] == b"\x89PNG"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path, fitted):
    model, X = fitted
    path = write_report(tmp_path / "r.html", [model_section(model, title="t", X=X,
                                                            image_shape=(4, 4))])
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1000,1400", path.as_uri()],
                   capture_output=True, timeout=90)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000  # more than a blank page
    mpl_image = pytest.importorskip("matplotlib.image")
    img = mpl_image.imread(str(shot))
    assert img[..., :3].std() > 0.05  # something was drawn, not a uniform page
