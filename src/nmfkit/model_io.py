"""Safe model files: ``save(model, path)`` and ``load(path)`` without pickle.

A model file is a ``.npz`` archive read with ``allow_pickle=False``: the fitted arrays
(``components_``, and the convergence history) as plain float arrays, plus one string array
``__metadata__`` holding JSON — the format name and version, the nmfkit version, the estimator
class and its parameters, the shapes, the feature names and free user metadata. A crafted file
cannot execute code: object arrays are refused by NumPy, only classes from a fixed list are
built, and every shape is checked against the metadata before the model is returned.

Pickle (``pickle.dumps(model)``) keeps working for scikit-learn users who want it; this format
is the one to share.
"""

from __future__ import annotations

import json
import math
import pathlib
import warnings
import zipfile
import zlib

import numpy as np

from ._file_checks import check_npz
from ._model_checks import (
    check_attributes,
    check_history,
    check_layout,
    check_outlier_scores,
    check_params,
)

__all__ = ["save", "load", "read_metadata", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "nmfkit-model"
FORMAT_VERSION = 1
_META_KEY = "__metadata__"
_ATTRS = ("n_components_", "n_features_in_", "reconstruction_err_", "n_iter_", "stop_reason_",
          "loss_scale_")


_SAVABLE: dict = {}


def savable(cls):
    """Class decorator: ``save`` writes fitted instances of ``cls`` and ``load`` rebuilds them,
    found by class name (the estimator modules register themselves; this module imports none)."""
    _SAVABLE[cls.__name__] = cls
    return cls


def _classes() -> dict:
    return dict(_SAVABLE)


def _jsonable(value):
    """A parameter value as JSON, or raise TypeError (callables, arrays, RandomState...)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # JSON has no NaN/inf: tag them so they load back as floats, not strings
        return float(value) if math.isfinite(value) else {_FLOAT_TAG: str(float(value))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        return [int(v) for v in value]  # integer labels (outlier_groups) load as a list
    raise TypeError(type(value).__name__)


_FLOAT_TAG = "__float__"


def _from_json(value):
    """Inverse of ``_jsonable`` for the tagged non-finite floats."""
    if isinstance(value, dict):
        if set(value) == {_FLOAT_TAG} and value[_FLOAT_TAG] in ("nan", "inf", "-inf"):
            return float(value[_FLOAT_TAG])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save(model, path, *, feature_names=None, metadata: dict | None = None) -> pathlib.Path:
    """Write a fitted estimator to ``path`` (``.npz`` is appended when missing).

    Parameters
    ----------
    model : fitted NMF (or another nmfkit estimator with ``components_``)
    path : str or Path
    feature_names : sequence of str, length n_features, optional labels kept in the file
        (defaults to ``model.feature_names_in_`` when the model was fitted on a DataFrame)
    metadata : dict, optional JSON-serialisable extras (e.g. ``{"image_shape": [8, 8]}``)

    Returns
    -------
    Path of the file written.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._version import __version__

    name = type(model).__name__
    if name not in _classes():
        raise TypeError(f"cannot save a {name}; nmfkit.save handles {sorted(_classes())}")
    check_is_fitted(model)
    H = np.asarray(model.components_)
    params, dropped = {}, []
    for key, value in model.get_params(deep=False).items():
        try:
            params[key] = _jsonable(value)
        except TypeError:
            dropped.append(key)
    if feature_names is None and hasattr(model, "feature_names_in_"):
        feature_names = model.feature_names_in_
    if feature_names is not None:
        feature_names = [str(f) for f in feature_names]
        if len(feature_names) != H.shape[1]:
            raise ValueError(f"feature_names has {len(feature_names)} names but the model has "
                             f"{H.shape[1]} features; pass one name per column of X")
    attrs = {a: _jsonable(getattr(model, a)) for a in _ATTRS if hasattr(model, a)}
    try:
        extra = _jsonable(dict(metadata or {}))
    except TypeError as exc:
        raise TypeError(f"metadata must be JSON-serialisable; it holds a {exc}") from None
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nmfkit_version": __version__,
        "class": name,
        "params": params,
        "params_not_saved": dropped,
        "attributes": attrs,
        "shapes": {"components_": list(H.shape)},
        "dtype": str(H.dtype),
        "feature_names": feature_names,
        "feature_names_in": ([str(f) for f in model.feature_names_in_]
                             if hasattr(model, "feature_names_in_") else None),
        "metadata": extra,
    }
    arrays = {"components_": H, _META_KEY: np.array(json.dumps(meta))}
    for key, values in (getattr(model, "history_", None) or {}).items():
        arrays[f"history_{key}"] = np.asarray(values, dtype=np.float64)
    scores = getattr(model, "outlier_scores_", None)
    if scores is not None:  # a robust fit's per-sample scores (the per-entry ones are X-sized)
        from .backends import get_backend

        arrays["outlier_scores_"] = np.asarray(get_backend(scores).to_numpy(scores),
                                               dtype=np.float64)
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **arrays)
    return path


def _bad(path, why: str, fix: str = "re-save it with model.save(path)") -> ValueError:
    return ValueError(f"{str(path)!r} is not a valid nmfkit model file: {why}; {fix}")


def _open(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist; check the path")
    if not zipfile.is_zipfile(path):
        raise _bad(path, "it is not an .npz archive")
    try:  # zip integrity and every array's declared size, before numpy allocates
        check_npz(path)
    except ValueError as exc:
        if "object arrays" in str(exc):
            raise _bad(path, "it holds an object array, which could run code when loaded",
                       "nmfkit refuses it; only load model files you trust with pickle") from None
        raise ValueError(f"{str(path)!r} is not a valid nmfkit model file: {exc}") from None
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise _bad(path, "it holds an object array, which could run code when loaded",
                       "nmfkit refuses it; only load model files you trust with pickle") from None
        raise _bad(path, str(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _bad(path, f"it cannot be read ({exc})") from None
    if _META_KEY not in arrays:
        raise _bad(path, "it has no nmfkit metadata")
    raw = arrays.pop(_META_KEY)
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise _bad(path, "its metadata is not a JSON string")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"its metadata is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise _bad(path, "its metadata is nested too deeply to be nmfkit's") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _bad(path, f"its format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                   f"not {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad(path, f"unknown format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by nmfkit {meta.get('nmfkit_version', '?')} in model "
            f"format version {version}, newer than this nmfkit reads (version "
            f"{FORMAT_VERSION}); upgrade nmfkit (pip install -U nmfkit)")
    check_layout(meta, lambda why, fix="the file was altered or damaged": _bad(path, why, fix))
    return path, arrays, meta


def read_metadata(path) -> dict:
    """The JSON metadata of a model file (validated as :func:`load` does, arrays not built)."""
    return load(path, _metadata_only=True)


def load(path, *, _metadata_only: bool = False):
    """Read a model written by :func:`save` / ``NMF.save`` and return the fitted estimator.

    Raises
    ------
    FileNotFoundError : the file does not exist
    ValueError : not a model file, a newer format version, an object array inside, or arrays
        whose shapes disagree with each other or with the metadata
    """
    path, arrays, meta = _open(path)
    cls = _classes().get(meta.get("class"))
    if cls is None:
        raise _bad(path, f"unknown estimator class {meta.get('class')!r}",
                   f"this nmfkit builds {sorted(_classes())}")
    if "components_" not in arrays:
        raise _bad(path, "it has no components_ array")
    H = arrays["components_"]
    if H.dtype not in (np.float32, np.float64):
        raise _bad(path, f"components_ has dtype {H.dtype}, not float32/float64")
    shapes = meta.get("shapes") or {}
    if H.ndim != 2 or list(H.shape) != list(shapes.get("components_", [])):
        raise _bad(path, f"components_ has shape {H.shape} but the metadata says "
                   f"{shapes.get('components_')}", "the file was altered or truncated")
    attrs = meta.get("attributes") or {}
    k, m = H.shape

    def bad(why, fix="the file was altered or damaged"):
        return _bad(path, why, fix)

    check_attributes(attrs, k, m, bad)
    if not np.all(np.isfinite(H)) or (H.size and H.min() < 0):
        raise _bad(path, "components_ holds negative or non-finite values")
    if _metadata_only:
        return meta
    params = check_params(_from_json(dict(meta.get("params") or {})), k, m, bad)
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        warnings.warn(f"{str(path)!r} sets parameters this nmfkit does not know: {unknown}; "
                      "they are ignored", UserWarning, stacklevel=2)
    model = cls(**{p: v for p, v in params.items() if p in known})
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise _bad(path, f"its parameters are invalid ({exc})") from None
    model.components_ = H
    for attr in _ATTRS:
        if attr in attrs:
            setattr(model, attr, attrs[attr])
    model.n_components_, model.n_features_in_ = k, m
    if meta.get("feature_names_in") is not None:
        model.feature_names_in_ = np.array(meta["feature_names_in"], dtype=object)
    if meta.get("feature_names") is not None:  # e.g. a text model's vocabulary
        model.feature_names_ = [str(f) for f in meta["feature_names"]]
    if meta.get("class") == "MiniBatchNMF" and hasattr(model, "_check_params"):
        # derived settings transform needs (_n_components, _beta_loss, _transform_max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model._check_params(np.zeros((1, m), dtype=H.dtype))
    if "outlier_scores_" in arrays:
        model.outlier_scores_ = check_outlier_scores(arrays["outlier_scores_"], bad)
    history = check_history({key[len("history_"):]: arrays[key] for key in arrays
                             if key.startswith("history_")}, bad)
    if history:
        if "n_iter" in history:
            history["n_iter"] = [int(v) for v in history["n_iter"]]
        model.history_ = history
        model.loss_curve_ = list(history.get("objective", []))
    return model
