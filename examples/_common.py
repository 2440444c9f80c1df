"""Helpers shared by the example scripts: find packaged data by path, the common options
(``--out``, ``--seed``, ``--quick``), save figures.

Figures go to ``--out`` (default ``nmfkit-examples/`` in the current folder). The figures in
docs/examples/ were made with ``--out docs/examples``; nothing writes there unless asked.
``--quick`` runs each example on a small share of its data or with few iterations (under a
minute each), to check that it works, not to reproduce the documented numbers."""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

FIGURES = pathlib.Path("nmfkit-examples")


def package_dir(name: str, install: str) -> pathlib.Path:
    """The folder of an installed package, found without importing it; exits with a hint."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"this example needs the data in the {name!r} package: {install}")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=pathlib.Path, default=FIGURES,
                   help=f"folder for the figures (default: ./{FIGURES}; the documented "
                        "figures: --out docs/examples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="a short run on part of the data (checks the script, not the numbers)")
    return p


def save(fig, out: pathlib.Path, name: str) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=80, bbox_inches="tight")
    print(f"wrote {path}")
    return path
