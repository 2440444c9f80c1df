"""Hostile files for the readers (``nmfkit.io.read_matrix``) and model files (``nmfkit.load``):
each is read correctly or refused with a ValueError that names the file and what is wrong —
never a silently dropped column, a mangled label, an unpickling hint or a memory bomb."""

import gzip
import json
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.io import mmwrite

import nmfkit
from nmfkit.io import read_matrix


def _npy_header(shape, descr="<f8") -> bytes:
    h = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    h += b" " * (118 - len(h)) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h


# ------------------------------------------------------------------------------ tables
def test_bad_cell_in_first_column_is_an_error_not_row_labels(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("a,b,c\n1,2,3\nx,5,6\n7,8,9\n")
    with pytest.raises(ValueError, match=r"cell 'x' at line 3, column 1 of .*a\.csv.*--row-names"):
        read_matrix(p)
    # a real label column is still detected
    p.write_text("id,b,c\nr1,2,3\nr2,5,6\nr3,8,9\n")
    ds = read_matrix(p)
    assert ds.row_names == ["r1", "r2", "r3"] and ds.X.shape == (3, 2)
    # and asked for explicitly, a label column with a number in it is kept as labels
    p.write_text("id,b\n1,2\nx,5\n")
    assert read_matrix(p, row_names=True).row_names == ["1", "x"]


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffa,b\n1,2\n3,4\n".encode("utf-8"))
    assert read_matrix(p).feature_names == ["a", "b"]


def test_semicolon_csv_with_decimal_commas(tmp_path):
    p = tmp_path / "eu.csv"
    p.write_text("a;b;c\n1,5;2;3\n4;5;6,25\n")
    ds = read_matrix(p)
    assert ds.feature_names == ["a", "b", "c"]
    np.testing.assert_array_equal(ds.X, [[1.5, 2, 3], [4, 5, 6.25]])


@pytest.mark.parametrize("suffix, kind", [(".gz", "gzip"), (".bz2", "bzip2"), (".xz", "xz")])
def test_compressed_name_without_compressed_content(tmp_path, suffix, kind):
    p = tmp_path / f"x.csv{suffix}"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=rf"x\.csv\{suffix}' is named \{suffix} but is not a "
                                         rf"{kind} file"):
        read_matrix(p)


def test_gzip_csv_and_truncated_gzip(tmp_path):
    p = tmp_path / "x.csv.gz"
    data = gzip.compress(b"a,b\n" + b"1,2\n3,4\n" * 50)
    p.write_bytes(data)
    assert read_matrix(p).X.shape == (100, 2)
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"x\.csv\.gz.*damaged or truncated"):
        read_matrix(p)


def test_non_utf8_and_binary_tables_are_named(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("café,b\n1,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv' is not UTF-8 text \(byte 0xe9"):
        read_matrix(p)
    q = tmp_path / "bin.csv"
    q.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"bin\.csv' is a binary file"):
        read_matrix(q)


def test_complex_cells_are_refused(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,b\n1,2+3j\n")
    with pytest.raises(ValueError, match=r"'2\+3j' at line 2, column 2 of .*c\.csv' is a "
                                         "complex number"):
        read_matrix(p)


# ------------------------------------------------------------------------------ .npy / .npz
def test_npy_random_bytes_truncated_and_object(tmp_path):
    p = tmp_path / "r.npy"
    p.write_bytes(os.urandom(300))
    with pytest.raises(ValueError, match=r"r\.npy' is not a NumPy \.npy array") as e:
        read_matrix(p)
    assert "allow_pickle" not in str(e.value)
    np.save(tmp_path / "ok.npy", np.ones((6, 4)))
    data = (tmp_path / "ok.npy").read_bytes()
    for cut, what in ((5, "is not a NumPy .npy array"), (60, "is truncated inside its .npy header"),
                      (len(data) - 8, "declares an array of shape .* truncated")):
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"r\.npy' {what}"):
            read_matrix(p)
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays are refused") as e:
        read_matrix(p)
    assert "allow_pickle" not in str(e.value)


def test_header_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    p = tmp_path / "bomb.npy"
    p.write_bytes(_npy_header((10**6, 10**6)) + b"\0" * 64)
    with pytest.raises(ValueError, match=r"bomb\.npy' declares an array of shape "
                                         r"\(1000000, 1000000\).*holds only 64 bytes"):
        read_matrix(p)
    # the same inside an .npz archive
    import zipfile

    q = tmp_path / "bomb.npz"
    with zipfile.ZipFile(q, "w") as z:
        z.writestr("X.npy", _npy_header((10**6, 10**6)) + b"\0" * 64)
    with pytest.raises(ValueError, match=r"member 'X\.npy' of .*bomb\.npz' declares"):
        read_matrix(q)


def test_complex_arrays_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((3, 2)) + 1j)
    with pytest.raises(ValueError, match=r"c\.npy' holds complex numbers"):
        read_matrix(tmp_path / "c.npy")
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(np.eye(3) * (1 + 1j)))
    with pytest.raises(ValueError, match=r"s\.npz' holds complex numbers"):
        read_matrix(tmp_path / "s.npz")
    mmwrite(str(tmp_path / "c.mtx"), sp.csr_matrix(np.eye(3) * (1 + 1j)))
    with pytest.raises(ValueError, match=r"c\.mtx' holds complex numbers"):
        read_matrix(tmp_path / "c.mtx")


def test_npz_truncated_or_flipped(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.random.RandomState(0).rand(20, 5))
    data = (tmp_path / "ok.npz").read_bytes()
    p = tmp_path / "t.npz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.npz"):
        read_matrix(p)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    p.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"t\.npz.*damaged"):
        read_matrix(p)


# ------------------------------------------------------------------------------ Matrix Market
def test_mtx_round_trip_every_layout(tmp_path):
    rng = np.random.RandomState(0)
    S = sp.random(12, 6, density=0.5, format="csr", random_state=0)
    A = sp.random(5, 5, density=0.5, random_state=1)
    A = A + A.T
    D = rng.rand(4, 3)
    cases = {"g.mtx": (S, {}), "s.mtx": (A, {"symmetry": "symmetric"}), "a.mtx": (D, {}),
             "p.mtx": (sp.coo_matrix(S.toarray() > 0.5), {"field": "pattern"})}
    for name, (M, kw) in cases.items():
        mmwrite(str(tmp_path / name), M, **kw)
        dense = M.toarray() if sp.issparse(M) else M
        np.testing.assert_allclose(read_matrix(tmp_path / name).X.toarray(),
                                   dense.astype(float))


def test_mtx_truncated_and_bombs(tmp_path):
    S = sp.random(12, 6, density=0.5, format="csr", random_state=0)
    mmwrite(str(tmp_path / "ok.mtx"), S)
    data = (tmp_path / "ok.mtx").read_bytes()
    p = tmp_path / "t.mtx"
    lines = data.splitlines(keepends=True)
    p.write_bytes(b"".join(lines[:20]))  # scipy's reader crashed on a file cut like this
    with pytest.raises(ValueError, match=r"t\.mtx' declares 36 entries but holds"):
        read_matrix(p)
    p.write_text("%%MatrixMarket matrix array real general\n1000000 1000000\n1\n2\n")
    with pytest.raises(ValueError, match=r"t\.mtx' declares a 1000000×1000000 matrix"):
        read_matrix(p)
    p.write_text("%%MatrixMarket matrix coordinate real general\n3 3 1\n7 1 1.0\n")
    with pytest.raises(ValueError, match=r"t\.mtx' has an entry whose row or column"):
        read_matrix(p)


# ------------------------------------------------------------------------------ model files
@pytest.fixture
def model_file(tmp_path):
    X = np.random.RandomState(0).rand(10, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nmfkit.NMF(2, max_iter=30, random_state=0).fit(X).save(tmp_path / "m.npz")
    return tmp_path / "m.npz", X


def _rewrite(path, edit=None, meta_text=None, **arrays_override):
    z = np.load(path)
    arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__metadata__"]))
    if edit is not None:
        edit(meta)
    arrays["__metadata__"] = np.array(meta_text if meta_text is not None else json.dumps(meta))
    arrays.update(arrays_override)
    out = path.with_name("bad.npz")
    np.savez(out, **arrays)
    return out


def test_model_metadata_nested_deep_or_of_the_wrong_type(model_file):
    path, _ = model_file
    deep = '{"format": "nmfkit-model", "format_version": 1, "x": ' + "[" * 100000 + \
           "]" * 100000 + "}"
    with pytest.raises(ValueError, match=r"bad\.npz.*nested too deeply"):
        nmfkit.load(_rewrite(path, meta_text=deep))
    with pytest.raises(ValueError, match=r"metadata field 'params' is list"):
        nmfkit.load(_rewrite(path, lambda m: m.update(params=[1, 2])))
    with pytest.raises(ValueError, match=r"attribute n_iter_ is .*not an integer"):
        nmfkit.load(_rewrite(path, lambda m: m["attributes"].update(
            n_iter_={"__float__": "nan"})))
    with pytest.raises(ValueError, match=r"feature_names is not a list of strings"):
        nmfkit.load(_rewrite(path, lambda m: m.update(feature_names=list(range(6)))))
    with pytest.raises(ValueError, match=r"image_shape .* not \[height, width\]"):
        nmfkit.load(_rewrite(path, lambda m: m.update(metadata={"image_shape": [-1, "a"]})))


def test_model_with_zero_components_or_a_hanging_transform(model_file):
    path, _ = model_file

    def zero(m):
        m["shapes"]["components_"] = [0, 6]
        m["attributes"] = {}

    with pytest.raises(ValueError, match=r"at least one component"):
        nmfkit.load(_rewrite(path, zero, components_=np.zeros((0, 6))))
    with pytest.warns(UserWarning, match=r"sets max_iter=1000000000000; transform runs at "
                                         r"most 1,000,000 iterations"):
        model = nmfkit.load(_rewrite(path, lambda m: m["params"].update(max_iter=10**12, tol=0)))
    assert model.max_iter == 10**6
    with pytest.raises(ValueError, match=r"'callback'.*never carry"):
        nmfkit.load(_rewrite(path, lambda m: m["params"].update(callback="print")))


def test_model_fitted_on_a_gpu_loads_and_transforms_here(model_file):
    torch = pytest.importorskip("torch")
    path, X = model_file
    bad = _rewrite(path, lambda m: m["params"].update(backend="torch", device="cuda"))
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the model would run there")
    with pytest.warns(UserWarning, match="fitted on device='cuda'.*runs on the CPU"):
        model = nmfkit.load(bad)
    W = model.transform(X)
    W = W.numpy() if hasattr(W, "numpy") else W
    assert W.shape == (10, 2) and np.all(np.isfinite(W))


def test_transform_refuses_repeated_column_names(tmp_path):
    click = pytest.importorskip("click")  # noqa: F841
    from click.testing import CliRunner

    from nmfkit.cli._app import cli

    (tmp_path / "fit.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    (tmp_path / "new.csv").write_text("b,a,b\n1,2,3\n4,5,6\n")
    r = CliRunner().invoke(cli, ["fit", str(tmp_path / "fit.csv"), "-k", "1", "--out",
                                 str(tmp_path / "o"), "-q", "--no-report"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["transform", str(tmp_path / "o" / "model.npz"),
                                 str(tmp_path / "new.csv"), "--out", str(tmp_path / "t"), "-q"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "new.csv' names several columns ['b']" in r.stderr


def test_damaged_checkpoints_are_named(tmp_path):
    from nmfkit.checkpoint import load_checkpoint, save_checkpoint

    rng = np.random.RandomState(0)
    p = save_checkpoint(tmp_path / "c.npz", rng.rand(6, 2), rng.rand(2, 4), 7, 1.5)
    assert load_checkpoint(p).n_iter == 7
    data = p.read_bytes()
    bad = tmp_path / "bad.npz"
    for damaged in (data[: len(data) // 2], data[:10] + bytes(20) + data[30:]):
        bad.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"bad\.npz"):
            load_checkpoint(bad)
    np.savez(bad, W=-rng.rand(6, 2), H=rng.rand(2, 4), meta=np.array('{"n_iter": 3}'))
    with pytest.raises(ValueError, match=r"W is not a 2-D array of finite non-negative"):
        load_checkpoint(bad)
    np.savez(bad, W=rng.rand(6, 2), H=rng.rand(2, 4), meta=np.array('{"n_iter": "3"}'))
    with pytest.raises(ValueError, match=r"n_iter is '3', not an integer"):
        load_checkpoint(bad)


def test_compressed_npy_is_named_and_compressed_mtx_is_read(tmp_path):
    np.save(tmp_path / "z.npy", np.ones((3, 2)))
    (tmp_path / "z.npy.gz").write_bytes(gzip.compress((tmp_path / "z.npy").read_bytes()))
    with pytest.raises(ValueError, match=r"z\.npy\.gz' is a compressed \.npy.*decompress it"):
        read_matrix(tmp_path / "z.npy.gz")
    S = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    mmwrite(str(tmp_path / "g.mtx"), S)
    (tmp_path / "g.mtx.gz").write_bytes(gzip.compress((tmp_path / "g.mtx").read_bytes()))
    np.testing.assert_allclose(read_matrix(tmp_path / "g.mtx.gz").X.toarray(), S.toarray())
