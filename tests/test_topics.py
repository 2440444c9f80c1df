"""Topics as text: NMF.top_features, explained_variance_, feature names through model files,
the CLI's text options (stop words, document frequencies, separators, encodings), the
top_features.csv / summary.json outputs and the stage messages."""

import csv
import json
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import NMF
from nmfkit.metrics import explained_variance
from nmfkit.text import ENGLISH_STOP_WORDS, read_documents, vectorize

THEMES = {
    "fruit": "apple pear plum cherry peach mango banana grape melon lemon".split(),
    "cars": "engine wheel brake clutch gear tyre piston exhaust bonnet axle".split(),
    "music": "guitar drum violin piano melody chord rhythm tempo choir trumpet".split(),
}
FILLER = "the and of to is it you that was for on are with as this be at".split()


def corpus(n_per_theme=40, seed=0, sep=None):
    """Documents that each talk about one theme, padded with many stop words."""
    rng = np.random.RandomState(seed)
    docs = []
    for words in THEMES.values():
        for _ in range(n_per_theme):
            body = list(rng.choice(words, 6)) + list(rng.choice(FILLER, 12))
            rng.shuffle(body)
            docs.append(" ".join(body))
    order = rng.permutation(len(docs))
    docs = [docs[i] for i in order]
    return docs if sep is None else ("\n" + sep + "\n").join(docs) + "\n" + sep + "\n"


def run_cli(args):
    """Run ``nmfkit ARGS`` in-process (the CLI needs click: those tests skip without it)."""
    testing = pytest.importorskip("click.testing")
    from nmfkit.cli._app import cli

    return testing.CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def invoke(*args):
    return run_cli(args)


def _theme_of(words):
    hits = {t: len(set(words) & set(ws)) for t, ws in THEMES.items()}
    return max(hits, key=hits.get), max(hits.values())


# ----------------------------------------------------------------------------- library
def test_top_features_recovers_planted_topics():
    docs = corpus()
    X, vocab, _ = vectorize(docs, stop_words="english")
    model = NMF(3, init="nndsvda", random_state=0, max_iter=400).fit(X)
    top = model.top_features(5, feature_names=vocab)
    assert len(top) == 15 and top.columns == ("component", "rank", "feature", "weight")
    themes = set()
    for c in range(3):
        theme, hits = _theme_of(top.words(c))
        assert hits == 5, top  # every top word of a component belongs to one theme
        themes.add(theme)
    assert themes == set(THEMES)
    rows = list(top)
    assert [r.rank for r in rows[:5]] == [1, 2, 3, 4, 5]
    for c in range(3):  # weights are the entries of components_, heaviest first
        w = [r.weight for r in rows if r.component == c]
        assert w == sorted(w, reverse=True)
        assert w[0] == pytest.approx(model.components_[c].max())
    d = top.to_dict()
    assert d["n_top"] == 5 and d["components"][0]["features"] == top.words(0)


def test_top_features_without_stop_words_is_dominated_by_them():
    """The reason stop words are on by default: without them the top words are fillers."""
    docs = corpus()
    X, vocab, _ = vectorize(docs, stop_words=None, weighting="counts")
    model = NMF(3, init="nndsvda", random_state=0, max_iter=300).fit(X)
    top = model.top_features(5, feature_names=vocab)
    with_stop = sum(any(w in ENGLISH_STOP_WORDS for w in top.words(c)) for c in range(3))
    assert with_stop >= 2
    X, vocab, _ = vectorize(docs, stop_words="english", weighting="counts")
    top = NMF(3, init="nndsvda", random_state=0, max_iter=300).fit(X).top_features(
        5, feature_names=vocab)
    assert not any(w in ENGLISH_STOP_WORDS for c in range(3) for w in top.words(c))


def test_top_features_names_sources_and_errors(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(1)
    X = rng.rand(20, 4)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = NMF(2, random_state=0, max_iter=300).fit(df)
    assert set(model.top_features(4).words(0)) <= {"a", "b", "c", "d"}
    assert model.top_features(2, feature_names=list("wxyz")).words(1)[0] in "wxyz"
    plain = NMF(2, random_state=0, max_iter=300).fit(X)
    assert plain.top_features(1).words(0)[0].startswith("feature_")
    with pytest.raises(ValueError, match="feature_names has 3 entries but the model has 4"):
        plain.top_features(2, feature_names=list("abc"))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        plain.top_features(0)
    with pytest.raises(IndexError, match="component 5 does not exist"):
        plain.top_features(2).words(5)
    frame = plain.top_features(3).to_pandas()
    assert list(frame.columns) == ["component", "rank", "feature", "weight"] and len(frame) == 6


def test_top_features_leaves_out_zero_weights():
    model = NMF(2, init="custom", max_iter=1)
    H = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 3.0]])
    model.fit(np.array([[1.0, 2, 3], [1, 0, 0]]), W=np.ones((2, 2)), H=H.copy())
    model.components_ = H
    top = model.top_features(3)
    assert top.words(0) == ["feature_0"] and top.words(1) == ["feature_2", "feature_1"]


def test_load_restores_feature_names(tmp_path):
    docs = corpus(10)
    X, vocab, _ = vectorize(docs)
    model = NMF(3, random_state=0, max_iter=200).fit(X)
    model.save(tmp_path / "m.npz", feature_names=vocab)
    again = nmfkit.load(tmp_path / "m.npz")
    assert again.feature_names_ == vocab
    assert again.top_features(4).rows == model.top_features(4, feature_names=vocab).rows


@pytest.mark.parametrize("loss, solver", [("frobenius", "cd"), ("kullback-leibler", "mu")])
@pytest.mark.parametrize("sparse", [False, True])
def test_explained_variance_attribute_matches_metric(loss, solver, sparse):
    rng = np.random.RandomState(0)
    X = rng.rand(30, 3) @ rng.rand(3, 12) + 0.05 * rng.rand(30, 12)
    X = sp.csr_matrix(X) if sparse else X
    model = NMF(3, beta_loss=loss, solver=solver, random_state=0, max_iter=400, tol=1e-6)
    W = model.fit_transform(X)
    assert model.explained_variance_ == pytest.approx(
        explained_variance(X, W, model.components_), rel=1e-9, abs=1e-12)
    assert 0.9 < model.explained_variance_ <= 1.0


def test_explained_variance_float32_close_to_float64():
    rng = np.random.RandomState(2)
    X = rng.rand(40, 10)
    ev64 = NMF(4, random_state=0, max_iter=200).fit(X).explained_variance_
    ev32 = NMF(4, random_state=0, max_iter=200).fit(X.astype(np.float32)).explained_variance_
    assert ev32 == pytest.approx(ev64, abs=1e-3)


# ----------------------------------------------------------------------------- reading text
def test_doc_sep_and_fortune_format(tmp_path):
    text = "first fortune\nstill first\n%\nsecond one\n%\n\n%\nthird\n"
    f = tmp_path / "f.txt"
    f.write_text(text)
    docs, names = read_documents(f, doc_sep="%")
    assert docs == ["first fortune still first", "second one", "third"]
    assert names == ["doc0", "doc1", "doc2"]
    assert read_documents(f, doc_sep="auto")[0] == docs  # fortune format is recognised
    assert len(read_documents(f)[0]) == 7  # default: one document per non-empty line
    plain = tmp_path / "lines.txt"
    plain.write_text("a b\n100%\nc d\n")
    assert read_documents(plain, doc_sep="auto")[0] == ["a b", "100%", "c d"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x").write_text("one\n%\ntwo\n%\n")
    (folder / "y").write_text("whole file\nis one document\n")
    docs, names = read_documents(folder, doc_sep="auto")
    assert names == ["x:0", "x:1", "y"] and docs[2] == "whole file\nis one document\n"
    with pytest.raises(ValueError, match="must be a non-empty line"):
        read_documents(f, doc_sep=" ")


def test_encodings_and_binary_files(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème brûlée\nnaïve façade\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt' is not valid UTF-8 text \(byte 0xe9 "
                                         r"at offset 3\); pass the file's encoding"):
        read_documents(latin)
    docs, _ = read_documents(latin, encoding="latin-1")
    assert docs[0] == "café crème brûlée"
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhello world\n".encode("utf-8"))
    assert read_documents(bom)[0] == ["hello world"]
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.txt").write_text("words here")
    (folder / "b.bin").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ValueError, match=r"b\.bin' is a binary file, not text"):
        read_documents(folder)
    with pytest.raises(ValueError, match="unknown text encoding 'klingon'"):
        read_documents(latin, encoding="klingon")


def test_min_df_max_df_and_their_error():
    docs = ["apple pear", "apple plum", "apple cherry", "kiwi pear"]
    _, vocab, _ = vectorize(docs, stop_words=None, min_df=2)
    assert vocab == ["apple", "pear"]
    _, vocab, _ = vectorize(docs, stop_words=None, max_df=0.5)
    assert "apple" not in vocab and "pear" in vocab
    with pytest.raises(ValueError, match="cannot build a vocabulary from .*; lower --min-df "
                                         "or raise --max-df"):
        vectorize(docs, stop_words=None, min_df=4, max_df=0.5)


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture()
def fortune_file(tmp_path):
    p = tmp_path / "sayings"
    p.write_text(corpus(sep="%"))
    return p


def test_cli_text_fit_writes_and_prints_top_words(tmp_path, fortune_file):
    out = tmp_path / "o"
    r = invoke("fit", fortune_file, "--format", "text", "-k", 3, "--out", out, "--top", 5,
               "--no-report")
    assert r.exit_code == 0, r.output
    with open(out / "top_features.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["component", "rank", "feature", "weight"] and len(rows) == 15
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["shape"][0] == 120  # fortune format: split at the % lines
    block = summary["top_features"]
    assert block["n_top"] == 5 and len(block["components"]) == 3
    found = set()
    for comp in block["components"]:
        theme, hits = _theme_of(comp["features"])
        assert hits == 5 and not set(comp["features"]) & ENGLISH_STOP_WORDS
        found.add(theme)
        assert ", ".join(comp["features"]) in r.output  # printed, as in the file
    assert found == set(THEMES)
    assert "top 5 words of each component" in r.output
    assert str(out / "top_features.csv") in summary["files"]


def test_cli_stop_words_none_keeps_them(tmp_path, fortune_file):
    out = tmp_path / "o"
    r = invoke("fit", fortune_file, "--format", "text", "-k", 3, "--out", out,
               "--stop-words", "none", "--max-df", "1.0", "--no-report", "--text", "counts")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    words = {w for c in summary["top_features"]["components"] for w in c["features"]}
    assert words & set(FILLER)


def test_cli_text_option_errors(tmp_path, fortune_file):
    r = run_cli(["fit", fortune_file, "--format", "text", "-k", "2", "--min-df", "0"])
    assert r.exit_code == 2 and "is neither a document count" in r.stderr
    r = run_cli(["fit", fortune_file, "--format", "text", "-k", "2", "--min-df", "500",
                 "--out", tmp_path / "o"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "lower --min-df or raise --max-df" in r.stderr
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me\nna\xefve fa\xe7ade\n".encode("latin-1"))
    r = run_cli(["fit", latin, "-k", "1", "--out", tmp_path / "l"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "latin.txt' is not" in r.stderr and "UTF-8 text (byte 0xe9" in r.stderr
    r = run_cli(["fit", latin, "--format", "text", "-k", "1", "--out", tmp_path / "l"])
    assert r.exit_code == 2 and "pass the file's encoding with --encoding" in r.stderr
    r = run_cli(["fit", latin, "-k", "1", "--out", tmp_path / "l", "--encoding", "latin-1",
                 "--min-df", "1", "--no-report"])
    assert r.exit_code == 0, r.output


def test_cli_stage_messages(tmp_path, fortune_file):
    args = ["fit", fortune_file, "--format", "text", "-k", "3", "--no-report",
            "--out", tmp_path / "o"]
    r = run_cli(args + ["--progress"])
    assert r.exit_code == 0, r.output
    for stage in ("reading", "fortune format", "vectorising 120 documents",
                  "read 120 ×", "sparse", "fitting k=3", "fitted:", "writing W, H"):
        assert stage in r.stderr, (stage, r.stderr)
    assert "reading" not in r.stdout
    r = run_cli(args + ["--progress", "--quiet"])
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == ""


def test_transform_reuses_model_vocabulary_with_doc_sep(tmp_path, fortune_file):
    out = tmp_path / "o"
    assert invoke("fit", fortune_file, "--format", "text", "-k", 3, "--out", out,
                  "--no-report").exit_code == 0
    new = tmp_path / "new.txt"
    new.write_text("guitar piano chord\n%\nbrake clutch gear engine\n%\n")
    r = invoke("transform", out / "model.npz", new, "--out", tmp_path / "t")
    assert r.exit_code == 0, r.output
    W = nmfkit.io.read_matrix(tmp_path / "t" / "W.csv").X
    assert W.shape == (2, 3) and np.argmax(W[0]) != np.argmax(W[1])


# ----------------------------------------------------------------------------- fortunes
FORTUNES = pathlib.Path("/usr/share/games/fortunes")


def test_fortunes_topics_are_not_stop_words(tmp_path):
    """Debian's fortunes (when installed): the CLI's defaults keep stop words out of topics."""
    files = sorted(p for p in FORTUNES.glob("*") if p.is_file() and not p.is_symlink()
                   and p.suffix != ".dat") if FORTUNES.is_dir() else []
    if not files:
        pytest.skip("Debian's fortunes package is not installed")
    corpus_file = tmp_path / "fortunes.txt"
    corpus_file.write_bytes(b"".join(p.read_bytes().rstrip(b"\n") + b"\n%\n" for p in files))
    out = tmp_path / "o"
    r = invoke("fit", corpus_file, "-k", 20, "--out", out, "--no-report", "--max-iter", 30)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["shape"][0] > 13000
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SK

    with_stop = [c["features"][:5] for c in summary["top_features"]["components"]
                 if set(c["features"][:5]) & SK]
    assert len(with_stop) <= 2, with_stop


def test_report_of_a_saved_text_model_shows_its_words(tmp_path, fortune_file):
    pytest.importorskip("matplotlib")
    out = tmp_path / "o"
    assert invoke("fit", fortune_file, "--format", "text", "-k", 3, "--out", out,
                  "--no-report").exit_code == 0
    r = invoke("report", out / "model.npz", "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    table = html.split('<table class="top">')[1].split("</table>")[0]
    summary = json.loads((out / "summary.json").read_text())
    for comp in summary["top_features"]["components"]:
        for word in comp["features"]:
            assert f">{word}<" in table


@pytest.mark.parametrize("suffix, module", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "lzma")])
def test_compressed_documents_are_read_and_a_damaged_one_is_named(tmp_path, suffix, module):
    import importlib

    comp = importlib.import_module(module)
    f = tmp_path / f"docs.txt{suffix}"
    f.write_bytes(comp.compress("apple banana\ncherry date\n".encode()))
    assert read_documents(f)[0] == ["apple banana", "cherry date"]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"docs\.txt"):
        read_documents(f)
