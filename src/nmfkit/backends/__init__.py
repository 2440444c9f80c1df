"""The backend seam: resolve once per public call which array framework the solvers use.

``get_backend(X)`` reads the framework from the input (as POT does); an explicit name
(``backend="torch"``) overrides it. Backends are registered in ``_REGISTRY`` by name with a
factory, so the torch backend is imported only when asked for or when a tensor is seen.
"""

from __future__ import annotations

from typing import Callable

from ._numpy import NumpyBackend, row_blocks
from ._stats import remembered as remembered_statistics

__all__ = ["get_backend", "register_backend", "available_backends", "is_tensor", "NumpyBackend",
           "remembered_statistics", "row_blocks"]

_NUMPY = NumpyBackend()

# name -> (factory(device) -> backend, detector(array) -> bool)
_REGISTRY: dict[str, tuple[Callable, Callable]] = {
    "numpy": (lambda device=None: _NUMPY, lambda a: True),
}


def register_backend(name: str, factory: Callable, detector: Callable) -> None:
    """Register a backend: ``factory(device)`` builds it, ``detector(a)`` recognises its arrays."""
    _REGISTRY[name] = (factory, detector)


def is_tensor(a) -> bool:
    """Whether ``a`` is a torch tensor (read from its type: torch is never imported here)."""
    return type(a).__module__.startswith("torch")



def _torch_factory(device=None):
    try:
        from ._torch import TorchBackend
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='torch' needs PyTorch, which is not installed. "
            'Install it with: pip install "nmfkit[torch]"'
        ) from exc
    return TorchBackend(device=device)


def available_backends() -> list[str]:
    """Names of the backends that can be used in this environment."""
    names = ["numpy"]
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            names.append("torch")
    except Exception:  # pragma: no cover
        pass
    return names


def get_backend(*arrays, backend: str | None = None, device=None):
    """Resolve the backend for a public call.

    Parameters
    ----------
    *arrays : the inputs (X, W, H); a torch tensor among them selects torch.
    backend : None, "numpy" or "torch"; None reads it from the inputs.
    device : torch device string, used with backend="torch".
    """
    has_tensor = any(is_tensor(a) for a in arrays if a is not None)
    if backend is None:
        backend = "torch" if has_tensor else "numpy"
    if backend == "numpy":
        if has_tensor:
            raise ValueError(
                "backend='numpy' was given torch tensors; pass numpy arrays (X.cpu().numpy()) "
                "or use backend='torch' (or None, which follows the input)."
            )
        if device is not None and str(device).strip().lower() != "cpu":
            # a GPU asked for must be honoured or refused, never silently run on the CPU
            raise ValueError(
                f"device={str(device)!r} needs the torch backend, but the fit runs on numpy "
                "(numpy/scipy input and backend not 'torch'); pass backend='torch' "
                '(pip install "nmfkit[torch]"), or drop device.'
            )
        return _NUMPY
    if backend == "torch":
        if "torch" in _REGISTRY:
            return _REGISTRY["torch"][0](device)
        return _torch_factory(device)
    if backend in _REGISTRY:
        return _REGISTRY[backend][0](device)
    raise ValueError(
        f"Unknown backend {backend!r}. Known backends: "
        f"{sorted(set(_REGISTRY) | {'torch'})}."
    )
