"""``nmfkit info``: versions, backends and solvers available, and the GPUs PyTorch sees."""

from __future__ import annotations

import importlib.util
import platform
import sys

import click



def _version(name: str):
    if importlib.util.find_spec(name) is None:
        return None
    try:
        from importlib.metadata import version

        return version({"sklearn": "scikit-learn"}.get(name, name))
    except Exception:  # noqa: BLE001 - a package without metadata
        return "installed"


def versions() -> dict:
    """Versions of nmfkit, Python and the packages it uses (None when absent)."""
    from .._version import __version__

    out = {"nmfkit": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "sklearn", "click", "matplotlib", "tqdm", "torch", "dask"):
        out["scikit-learn" if name == "sklearn" else name] = _version(name)
    return out


def gpus() -> list:
    """Names of the CUDA devices PyTorch sees ([] without torch or GPU)."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return []
    try:
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken CUDA install must not break `info`
        return []


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(as_json: bool):
    """Show versions, available backends and solvers, and the GPUs seen."""
    from ..backends import available_backends
    from ..solvers import solver_table

    table = solver_table()
    data = {"versions": versions(), "backends": available_backends(), "gpus": gpus(),
            "solvers": table if isinstance(table, (list, dict)) else str(table)}
    if as_json:
        import json

        from ..io import json_safe

        click.echo(json.dumps(json_safe(data), indent=2))
        return
    for name, v in data["versions"].items():
        click.echo(f"{name:<13}{v or '-'}")
    click.echo(f"{'backends':<13}{', '.join(data['backends'])}")
    click.echo(f"{'GPUs':<13}{', '.join(data['gpus']) or 'none seen'}")
    from ..solvers import SOLVERS

    click.echo(f"{'solvers':<13}{', '.join(sorted(SOLVERS))}")
