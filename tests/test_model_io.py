"""Safe model files: round trip, pickle, and tampered files rejected with clear errors."""

import json
import pickle
import zipfile

import numpy as np
import pytest

import nmfkit
from nmfkit import NMF
from nmfkit.model_io import FORMAT_VERSION, read_metadata


@pytest.fixture
def fitted():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 12)
    model = NMF(n_components=3, init="nndsvda", max_iter=50, random_state=0).fit(X)
    return model, X


def _rewrite(src, dst, change):
    """Copy a model file, letting ``change(arrays, meta)`` alter its content."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__metadata__")))
    change(arrays, meta)
    np.savez(dst, __metadata__=np.array(json.dumps(meta)), **arrays)
    return dst


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_transform_identical(tmp_path, dtype):
    X = np.random.RandomState(1).rand(20, 8).astype(dtype)
    model = NMF(n_components=3, max_iter=30, random_state=0, solver="mu").fit(X)
    path = model.save(tmp_path / "m")
    assert path.suffix == ".npz"
    loaded = nmfkit.load(path)
    assert type(loaded) is NMF
    assert loaded.components_.dtype == dtype
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.get_params() == model.get_params()
    assert loaded.n_iter_ == model.n_iter_ and loaded.stop_reason_ == model.stop_reason_
    assert loaded.history_["n_iter"] == model.history_["n_iter"]
    np.testing.assert_allclose(loaded.loss_curve_, model.loss_curve_)


def test_feature_names_and_metadata_kept(tmp_path, fitted):
    model, _ = fitted
    names = [f"g{i}" for i in range(12)]
    path = model.save(tmp_path / "m.npz", feature_names=names, metadata={"image_shape": [3, 4]})
    meta = read_metadata(path)
    assert meta["feature_names"] == names
    assert meta["metadata"] == {"image_shape": [3, 4]}
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["shapes"]["components_"] == [3, 12]
    with pytest.raises(ValueError, match="feature_names has 2 names but the model has 12"):
        model.save(tmp_path / "x.npz", feature_names=["a", "b"])


def test_pickle_still_works(fitted):
    model, X = fitted
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))


def test_unfitted_model_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NMF(2).save(tmp_path / "m.npz")


def test_callback_param_not_saved(tmp_path, fitted):
    model, X = fitted
    model.set_params(callback=lambda info: None)
    meta = read_metadata(model.save(tmp_path / "m.npz"))
    assert meta["params_not_saved"] == ["callback"]
    assert nmfkit.load(tmp_path / "m.npz").callback is None


def test_newer_version_rejected(tmp_path, fitted):
    model, _ = fitted
    src = model.save(tmp_path / "m.npz")
    bad = _rewrite(src, tmp_path / "new.npz", lambda a, m: m.update(format_version=99))
    with pytest.raises(ValueError, match=r"format version 99, newer than this nmfkit reads.*upgrade"):
        nmfkit.load(bad)


@pytest.mark.parametrize("version", [0, "1", None, 1.5])
def test_unknown_version_rejected(tmp_path, fitted, version):
    model, _ = fitted
    src = model.save(tmp_path / "m.npz")
    bad = _rewrite(src, tmp_path / "v.npz", lambda a, m: m.update(format_version=version))
    with pytest.raises(ValueError, match="unknown format version"):
        nmfkit.load(bad)


def test_wrong_shapes_rejected(tmp_path, fitted):
    model, _ = fitted
    src = model.save(tmp_path / "m.npz")
    bad = _rewrite(src, tmp_path / "s.npz",
                   lambda a, m: a.update(components_=a["components_"][:, :5]))
    with pytest.raises(ValueError, match=r"components_ has shape \(3, 5\) but the metadata says"):
        nmfkit.load(bad)
    bad2 = _rewrite(src, tmp_path / "s2.npz", lambda a, m: (
        m["shapes"].update(components_=[3, 5]), a.update(components_=a["components_"][:, :5])))
    with pytest.raises(ValueError, match="n_features_in_ = 12 disagrees"):
        nmfkit.load(bad2)
    bad3 = _rewrite(src, tmp_path / "s3.npz", lambda a, m: m.update(feature_names=["a"]))
    with pytest.raises(ValueError, match="feature_names has 1 entries for 12 features"):
        nmfkit.load(bad3)


def test_object_array_rejected(tmp_path, fitted):
    model, _ = fitted
    src = model.save(tmp_path / "m.npz")
    bad = _rewrite(src, tmp_path / "o.npz",
                   lambda a, m: a.update(evil=np.array([{"x": 1}], dtype=object)))
    with pytest.raises(ValueError, match="object array"):
        nmfkit.load(bad)


@pytest.mark.parametrize("change, match", [
    (lambda a, m: m.update({"class": "os.system"}), "unknown estimator class"),
    (lambda a, m: m.update(format="other"), "its format is 'other'"),
    (lambda a, m: a.update(components_=-a["components_"]), "negative or non-finite"),
    (lambda a, m: m["params"].update(solver="nope"), "its parameters are invalid"),
])
def test_tampered_content_rejected(tmp_path, fitted, change, match):
    model, _ = fitted
    bad = _rewrite(model.save(tmp_path / "m.npz"), tmp_path / "t.npz", change)
    with pytest.raises(ValueError, match=match):
        nmfkit.load(bad)


def test_not_a_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nmfkit.load(tmp_path / "missing.npz")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(ValueError, match="not an .npz archive"):
        nmfkit.load(tmp_path / "t.npz")
    np.savez(tmp_path / "plain.npz", X=np.ones(3))
    with pytest.raises(ValueError, match="no nmfkit metadata"):
        nmfkit.load(tmp_path / "plain.npz")
    assert zipfile.is_zipfile(tmp_path / "plain.npz")


def test_minibatch_round_trip(tmp_path):
    MiniBatchNMF = getattr(nmfkit, "MiniBatchNMF", None)
    if MiniBatchNMF is None:
        pytest.skip("no MiniBatchNMF in this tree")
    X = np.random.RandomState(2).rand(60, 10)
    model = MiniBatchNMF(n_components=3, batch_size=16, max_iter=20, random_state=0).fit(X)
    path = nmfkit.model_io.save(model, tmp_path / "mb.npz")
    loaded = nmfkit.load(path)
    assert type(loaded) is MiniBatchNMF and loaded.batch_size == 16
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_non_finite_parameters_round_trip_as_floats(tmp_path):
    """missing_values=np.nan is saved as a tagged float, not the string 'nan'."""
    import numpy as np

    import nmfkit

    X = np.abs(np.random.RandomState(0).rand(20, 8))
    X[0, 0] = np.nan
    model = nmfkit.NMF(3, missing_values=np.nan, random_state=0, max_iter=50).fit(X)
    loaded = nmfkit.load(model.save(tmp_path / "m"))
    assert isinstance(loaded.missing_values, float) and np.isnan(loaded.missing_values)
    np.testing.assert_array_equal(model.transform(X), loaded.transform(X))


def test_robust_model_keeps_its_outlier_scores(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3) @ rng.rand(3, 15)  # rank 3
    X[3, :6] += 20.0  # gross corruption in one sample
    model = NMF(n_components=3, loss="huber", max_iter=60, random_state=0).fit(X)
    loaded = nmfkit.load(model.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(loaded.outlier_scores_, model.outlier_scores_)
    top = int(np.argmax(model.outlier_scores_))
    assert model.outlier_scores_[top] > 0
    assert loaded.loss_scale_ == model.loss_scale_ and loaded.loss == "huber"
    from nmfkit.report import outlier_tables

    caption, table = outlier_tables(loaded)[0]
    assert "most outlying samples" in caption and f"<td>row {top}</td>" in table


@pytest.mark.parametrize("scores", [np.array([0.1, np.nan]), np.array([0.5, 1.5]),
                                    np.zeros((2, 2)), np.array([1, 0])])
def test_tampered_outlier_scores_rejected(tmp_path, fitted, scores):
    model, _ = fitted
    bad = _rewrite(model.save(tmp_path / "m.npz"), tmp_path / "o.npz",
                   lambda a, m: a.update(outlier_scores_=scores))
    with pytest.raises(ValueError, match="outlier_scores_ is not a 1-D series"):
        nmfkit.load(bad)


def test_tampered_loss_scale_rejected(tmp_path, fitted):
    model, _ = fitted
    bad = _rewrite(model.save(tmp_path / "m.npz"), tmp_path / "s.npz",
                   lambda a, m: m["attributes"].update(loss_scale_=-1.0))
    with pytest.raises(ValueError, match="loss_scale_ is -1.0"):
        nmfkit.load(bad)
