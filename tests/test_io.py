"""Readers and writers: CSV/TSV labels, .npy, .npz dense/sparse, .mtx, text, transpose."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.io import mmwrite

from nmfkit.io import parse_image_shape, read_matrix, write_factors, write_matrix


def test_csv_with_header_and_row_names(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(",s1,s2,s3\ng1,1,2,3\ng2,4,5,6\n")
    ds = read_matrix(p)
    assert ds.fmt == "csv"
    np.testing.assert_array_equal(ds.X, [[1, 2, 3], [4, 5, 6]])
    assert ds.row_names == ["g1", "g2"] and ds.feature_names == ["s1", "s2", "s3"]
    t = read_matrix(p, transpose=True)
    np.testing.assert_array_equal(t.X, [[1, 4], [2, 5], [3, 6]])
    assert t.row_names == ["s1", "s2", "s3"] and t.feature_names == ["g1", "g2"]


def test_header_without_corner_cell_and_plain_numbers(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("a\tb\nr1\t1\t2\nr2\t3\t4\n")
    ds = read_matrix(p)
    assert ds.fmt == "tsv" and ds.feature_names == ["a", "b"] and ds.row_names == ["r1", "r2"]
    q = tmp_path / "plain.csv"
    q.write_text("1,2\n3,4.5\n")
    ds = read_matrix(q)
    assert ds.row_names is None and ds.feature_names is None
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4.5]])
    w = tmp_path / "ws.txt"
    w.write_text("1 2\n3 4\n")
    np.testing.assert_array_equal(read_matrix(w).X, [[1, 2], [3, 4]])


def test_unparsable_cell_named(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n3,x7\n")
    with pytest.raises(ValueError, match=r"cannot read cell 'x7' at line 3, column 2"):
        read_matrix(p)


def test_na_cells_become_nan(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,NA\n,4\n")
    X = read_matrix(p).X
    assert np.isnan(X[0, 1]) and np.isnan(X[1, 0]) and X[1, 1] == 4


def test_ragged_and_empty(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="line 2 .* has 1 cells but line 1 has 2"):
        read_matrix(p)
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        read_matrix(e)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_matrix(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_matrix(e.rename(tmp_path / "e.xyz"))


def test_npy_2d_3d_and_object(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(2, 3))
    assert read_matrix(tmp_path / "a.npy").X.shape == (2, 3)
    np.save(tmp_path / "img.npy", np.ones((5, 4, 3)))
    ds = read_matrix(tmp_path / "img.npy")
    assert ds.X.shape == (5, 12) and ds.image_shape == (4, 3)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays are refused"):
        read_matrix(tmp_path / "o.npy")


def test_npz_dense_sparse_and_mtx_stay_sparse(tmp_path):
    S = sp.random(10, 7, density=0.3, format="csr", random_state=0)
    sp.save_npz(tmp_path / "s.npz", S)
    ds = read_matrix(tmp_path / "s.npz")
    assert sp.issparse(ds.X) and ds.fmt == "npz"
    np.testing.assert_allclose(ds.X.toarray(), S.toarray())
    mmwrite(str(tmp_path / "s.mtx"), S)
    ds = read_matrix(tmp_path / "s.mtx", dtype=np.float32)
    assert sp.issparse(ds.X) and ds.X.dtype == np.float32
    assert read_matrix(tmp_path / "s.mtx", transpose=True).X.shape == (7, 10)
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), feature_names=np.array(["u", "v"]))
    ds = read_matrix(tmp_path / "d.npz")
    assert ds.X.shape == (3, 2) and ds.feature_names == ["u", "v"]
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(ValueError, match="name the data matrix 'X'"):
        read_matrix(tmp_path / "two.npz")


def test_text_folder_and_lines(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("apples and pears")
    (folder / "b.txt").write_text("pears and plums and pears")
    ds = read_matrix(folder, text_weighting="counts")
    assert ds.fmt == "text" and sp.issparse(ds.X)
    assert ds.row_names == ["a.txt", "b.txt"]
    j = ds.feature_names.index("pears")
    assert ds.X[1, j] == 2
    lines = tmp_path / "corpus.txt"
    lines.write_text("the cat sat\nthe dog ran\n\nthe cat ran\n")
    ds = read_matrix(lines, stop_words="english")
    assert ds.X.shape == (3, 4) and "the" not in ds.feature_names
    with pytest.raises(ValueError, match="unknown text weighting"):
        read_matrix(lines, text_weighting="bm25")


def test_write_factors_styles(tmp_path):
    W, H = np.ones((2, 3)), np.full((3, 4), 0.5)
    paths = write_factors(tmp_path, W, H, fmt="csv", row_names=["r1", "r2"],
                          feature_names=list("abcd"))
    assert [p.name for p in paths] == ["W.csv", "H.csv"]
    back = read_matrix(paths[1])
    assert back.row_names == ["component_0", "component_1", "component_2"]
    assert back.feature_names == list("abcd")
    np.testing.assert_array_equal(back.X, H)
    assert read_matrix(paths[0]).row_names == ["r1", "r2"]
    paths = write_factors(tmp_path, W, H, fmt="mtx")
    assert [p.name for p in paths] == ["W.npz", "H.npz"]
    np.testing.assert_array_equal(read_matrix(paths[1]).X, H)
    p = write_matrix(tmp_path / "x", W, fmt="npy")
    assert p.name == "x.npy"


def test_parse_image_shape():
    assert parse_image_shape("28x28") == (28, 28)
    assert parse_image_shape("112×92") == (112, 92)
    assert parse_image_shape(None) is None
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_image_shape("28")
