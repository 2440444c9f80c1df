"""What a model file says, checked before any of it is used.

A model file is data from elsewhere: every field of its JSON metadata has a type, the arrays
must agree with it, the fitted attributes must be what a fit produces, and the parameters must
be ones that cannot hang ``transform`` or reach a device this machine lacks. Each check raises
the ``ValueError`` of :func:`nmfkit.model_io.load` (through ``bad(why, fix)``), naming the
field; a device that is missing here is replaced by the CPU with a warning.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["check_layout", "check_attributes", "check_params", "check_history",
           "MAX_FILE_ITER"]

#: the iterations a loaded model's transform may run (a file asking 10¹² with tol=0 would
#: never return): larger limits are lowered to this, with a warning
MAX_FILE_ITER = 1_000_000
#: parameters holding Python objects that a model file cannot carry (they are not saved)
_NOT_FROM_FILES = ("callback", "penalties")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_layout(meta: dict, bad) -> None:
    """The types of the metadata's top-level fields."""
    for key, kind, what in (("params", dict, "an object"), ("attributes", dict, "an object"),
                            ("shapes", dict, "an object"), ("metadata", dict, "an object"),
                            ("class", str, "a string"), ("dtype", str, "a string"),
                            ("params_not_saved", list, "a list")):
        value = meta.get(key)
        if value is not None and not isinstance(value, kind):
            raise bad(f"its metadata field {key!r} is {type(value).__name__}, not {what}")
    shape = (meta.get("shapes") or {}).get("components_")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(s) for s in shape)):
        raise bad(f"shapes.components_ is {shape!r}, not two integers")
    if shape[0] < 1 or shape[1] < 1:
        raise bad(f"the model has shape {shape}: it needs at least one component and one "
                  "feature", "fit it again with n_components >= 1")
    for key in ("feature_names", "feature_names_in"):
        names = meta.get(key)
        if names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise bad(f"{key} is not a list of strings")
        if len(names) != shape[1]:
            raise bad(f"{key} has {len(names)} entries for {shape[1]} features",
                      "the file was altered or truncated")
    image = (meta.get("metadata") or {}).get("image_shape")
    if image is not None:
        if not (isinstance(image, list) and len(image) == 2 and all(_is_int(s) and s > 0
                                                                      for s in image)):
            raise bad(f"metadata.image_shape is {image!r}, not [height, width] with positive "
                      "integers")
        if image[0] * image[1] != shape[1]:
            raise bad(f"metadata.image_shape {image} has {image[0] * image[1]} pixels for "
                      f"{shape[1]} features")


def check_attributes(attrs: dict, k: int, m: int, bad) -> None:
    """Fitted attributes: integers where integers belong, a finite error ≥ 0."""
    for name in ("n_components_", "n_features_in_", "n_iter_"):
        if name in attrs and not (_is_int(attrs[name]) and attrs[name] >= 0):
            raise bad(f"attribute {name} is {attrs[name]!r}, not an integer >= 0")
    for attr, expected in (("n_components_", k), ("n_features_in_", m)):
        if attr in attrs and attrs[attr] != expected:
            raise bad(f"{attr} = {attrs[attr]!r} disagrees with components_ of shape ({k}, {m})",
                      "the file was altered or truncated")
    err = attrs.get("reconstruction_err_")
    if err is not None and not (_is_num(err) and math.isfinite(err) and err >= 0):
        raise bad(f"attribute reconstruction_err_ is {err!r}, not a finite number >= 0")
    scale = attrs.get("loss_scale_")
    if scale is not None and not (_is_num(scale) and math.isfinite(scale) and scale >= 0):
        raise bad(f"attribute loss_scale_ is {scale!r}, not a finite number >= 0")
    reason = attrs.get("stop_reason_")
    if reason is not None and not isinstance(reason, str):
        raise bad(f"attribute stop_reason_ is {reason!r}, not a string")


def check_params(params: dict, k: int, m: int, bad) -> dict:
    """Parameters that disagree with the arrays are refused; iteration limits that would hang
    ``transform`` are lowered and a device this machine lacks is replaced (with warnings)."""
    rank = params.get("n_components", "auto")
    if not (rank == "auto" or (rank is None and k == m) or (_is_int(rank) and rank == k)):
        raise bad(f"parameter n_components = {rank!r} disagrees with components_ of shape "
                  f"({k}, {m})", "the file was altered or damaged")
    for name in _NOT_FROM_FILES:
        if params.get(name) is not None:
            raise bad(f"parameter {name!r} is {params[name]!r}; model files never carry it")
    params = dict(params)
    for name in ("max_iter", "transform_max_iter", "fresh_restarts_max_iter"):
        value = params.get(name)
        if _is_int(value) and value > MAX_FILE_ITER:
            warnings.warn(f"the model file sets {name}={value}; transform runs at most "
                          f"{MAX_FILE_ITER:,} iterations of a loaded model (with tol=0 it "
                          "would otherwise run for days)", UserWarning, stacklevel=3)
            params[name] = MAX_FILE_ITER
    return _device_here(params)


def _device_here(params: dict) -> dict:
    """A model fitted on a GPU loads on a machine without one: it then runs on the CPU."""
    backend, device = params.get("backend"), params.get("device")
    try:
        import torch
    except ImportError:
        torch = None
    if backend == "torch" and torch is None:
        warnings.warn("this model was fitted with backend='torch', which is not installed "
                      "here; it runs on numpy (pip install \"nmfkit[torch]\" for the GPU)",
                      UserWarning, stacklevel=3)
        return {**params, "backend": None, "device": None}
    if device is None or str(device).lower().startswith("cpu"):
        return params
    if backend != "torch":  # the device followed the input's tensors; new input decides
        return {**params, "device": None}
    if torch is None or not torch.cuda.is_available():
        warnings.warn(f"this model was fitted on device={device!r}, which this machine does not "
                      "have; it runs on the CPU", UserWarning, stacklevel=3)
        return {**params, "device": "cpu"}
    return params


def check_outlier_scores(scores, bad) -> np.ndarray:
    """A robust fit's per-sample outlier scores: a 1-D float series in [0, 1]."""
    a = np.asarray(scores)
    if a.ndim != 1 or a.dtype.kind != "f" or not np.all((a >= 0) & (a <= 1)):
        raise bad("outlier_scores_ is not a 1-D series of scores in [0, 1]")
    return a


def check_history(history: dict, bad) -> dict:
    """The convergence history: 1-D finite float series of one length."""
    lengths = set()
    for key, values in history.items():
        a = np.asarray(values)
        if a.ndim != 1 or a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)):
            raise bad(f"history_{key} is not a 1-D series of finite numbers")
        lengths.add(a.size)
    if len(lengths) > 1:
        raise bad(f"the history series have different lengths {sorted(lengths)}")
    return {k: np.asarray(v).tolist() for k, v in history.items()}
