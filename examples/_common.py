"""Helpers shared by the example scripts: find packaged data by path, save figures."""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "examples"


def package_dir(name: str, install: str) -> pathlib.Path:
    """The folder of an installed package, found without importing it; exits with a hint."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"this example needs the data in the {name!r} package: {install}")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=pathlib.Path, default=FIGURES,
                   help=f"folder for the figures (default: {FIGURES})")
    p.add_argument("--seed", type=int, default=0)
    return p


def save(fig, out: pathlib.Path, name: str) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=80, bbox_inches="tight")
    print(f"wrote {path}")
    return path
