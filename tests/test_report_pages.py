"""What a reader of report.html sees: a contents list that links to every block, a glossary
entry for every quantity in the tables, one name per quantity, no empty rows, top features as
text (none for pixels), sampled heat maps said to be sampled, spectra as one panel per
component, labels that are literal text (a ``$`` in a name), and a ``nmfkit fit`` that still
says what it wrote when the report fails late."""

import json
import re

import numpy as np
import pytest
from _helpers import fitted_toy

pytest.importorskip("matplotlib")

from nmfkit import NMF  # noqa: E402
from nmfkit.plot import (figure_to_png, plot_component_profiles,  # noqa: E402
                         plot_top_features)
from nmfkit.report import GLOSSARY, model_section, render_report  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    return fitted_toy(400)


def _rows(html):
    return re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", html)


def test_every_table_row_is_in_the_glossary_once(fitted):
    model, X = fitted
    names = [f"f{j}" for j in range(16)]
    html = render_report([model_section(model, title="a", X=X, feature_names=names,
                                        extra_metrics={"seconds": 1.5})])
    rows = _rows(html)
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels))  # one name per quantity
    assert "reconstruction_err" not in html and "reconstruction error" in labels
    assert all(v not in ("None", "nan", "") for _, v in rows)  # no empty rows (init=None)
    assert "initialisation" not in labels
    glossary = html.split('id="glossary"')[1]
    defined = re.findall(r"<dt>([^<]*)</dt>", glossary)
    known = {label for label, _ in GLOSSARY.values()}
    for label in labels:
        assert label in known and label in defined, label
    assert 'class="top"' in html


def test_contents_link_to_every_block(fitted):
    model, X = fitted
    sec = model_section(model, title="first", X=X)
    html = render_report([sec, model_section(model, title="second")])
    targets = set(re.findall(r'href="#([^"]+)"', html))
    ids = set(re.findall(r'id="([^"]+)"', html))
    assert targets and targets <= ids
    assert len(targets) == 2 + 1 + len(sec.tables) + len(sec.figures) + 1 + 1


def test_sampled_heat_map_says_so(fitted):
    model, X = fitted
    sec = model_section(model, title="t", X=X)
    caption = [c for c, _ in sec.figures if c.startswith("Coefficients")][0]
    assert "300 of 400 samples shown" in caption
    small = model_section(model, title="t", X=X[:50])
    assert not any("samples shown" in c for c, _ in small.figures)


def test_images_show_parts_not_pixel_names(fitted):
    model, X = fitted
    sec = model_section(model, title="t", X=X, image_shape=(4, 4),
                        feature_names=[f"px{i}" for i in range(16)])
    html = render_report([sec])
    assert sec.tables == [] and "px3" not in html
    assert any(c.startswith("Parts: the rows of H shown as images") for c, _ in sec.figures)


def test_spectra_get_one_panel_per_component():
    rng = np.random.RandomState(1)
    wl = np.linspace(400, 2500, 60)
    peaks = np.exp(-((wl[None, :] - np.array([[700], [1400], [2100]])) / 150.0) ** 2)
    X = rng.rand(50, 3) @ peaks
    model = NMF(3, random_state=0, max_iter=200).fit(X)
    sec = model_section(model, title="s", X=X, feature_names=[f"{w:.1f}" for w in wl])
    assert any("one panel per component" in c for c, _ in sec.figures)
    fig = plot_component_profiles(model.components_, x=wl)
    assert len([ax for ax in fig.axes if ax.lines]) == 3
    figure_to_png(fig)
    plain = model_section(model, title="s", X=X, feature_names=[f"b{j}" for j in range(60)])
    assert not any("one panel" in c for c, _ in plain.figures)
    with pytest.raises(ValueError, match="x has shape"):
        plot_component_profiles(model.components_, x=wl[:5])


def test_dollar_signs_in_labels_are_text(fitted):
    model, X = fitted
    names = ["price $bn^$"] + [f"cost ${j}" for j in range(15)]
    rows = [f"r{i} $bn^$" for i in range(30)]
    sec = model_section(model, title="money $x^$", X=X[:30], feature_names=names,
                        row_names=rows, n_top=16)
    html = render_report([sec])
    assert "price $bn^$" in html  # as written, in the top-features table
    figure_to_png(plot_top_features(model.components_, names))


def test_integer_iteration_ticks(fitted):
    from nmfkit.plot import plot_convergence

    model, _ = fitted
    fig = plot_convergence({"n_iter": [0, 1, 2, 3], "objective": [4.0, 3.0, 2.5, 2.4]})
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 0 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


# ----------------------------------------------------------------------------- the CLI
def _cli():
    testing = pytest.importorskip("click.testing")
    from nmfkit.cli._app import cli

    return testing.CliRunner(), cli


def test_fit_with_math_like_column_names(tmp_path):
    runner, cli = _cli()
    rng = np.random.RandomState(0)
    X = rng.rand(20, 3) @ rng.rand(3, 4)
    lines = [",price $bn^$,cost $,a_b^c,$x$"] + [
        f"r{i} $bn^$," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(X)]
    path = tmp_path / "money.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    r = runner.invoke(cli, ["fit", str(path), "-k", "2", "--out", str(out), "--tol", "0",
                                 "--max-iter", "20"])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert "price $bn^$" in html
    summary = json.loads((out / "summary.json").read_text())
    assert str(out / "report.html") in summary["files"]


def test_late_report_failure_is_said_and_the_rest_kept(tmp_path, monkeypatch):
    runner, cli = _cli()
    import nmfkit.cli._outputs as outputs

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(outputs, "_report", broken)
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,10\n")
    out = tmp_path / "o"
    r = runner.invoke(cli, ["fit", str(path), "-k", "2", "--out", str(out), "--tol", "0",
                                 "--max-iter", "20"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "could not write the report" in r.stderr and "renderer exploded" in r.stderr
    assert "the other outputs" in r.stderr and "model.npz" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "renderer exploded" in summary["report_error"]
    assert (out / "model.npz").exists() and (out / "top_features.csv").exists()


def test_early_write_failure_lists_what_the_folder_holds(tmp_path, monkeypatch):
    runner, cli = _cli()
    import nmfkit.model_io as model_io

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io, "save", full_disk)
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,10\n")
    r = runner.invoke(cli, ["fit", str(path), "-k", "2", "--out", str(tmp_path / "o"),
                                 "--tol", "0", "--max-iter", "20"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "No space left on device" in r.stderr
    assert "the folder is incomplete: it holds W.csv, H.csv but not model.npz" in r.stderr


def test_rank_criteria_in_figures_are_in_the_glossary(fitted):
    model, X = fitted
    sec = model_section(model, title="r", rank_curves={"ks": [2, 3, 4],
                                                        "cophenetic": [0.9, 0.99, 0.8],
                                                        "cv_error": [3.0, 1.0, 0.9]})
    glossary = render_report([sec]).split('id="glossary"')[1]
    assert "<dt>cophenetic</dt>" in glossary and "<dt>cv_error</dt>" in glossary
