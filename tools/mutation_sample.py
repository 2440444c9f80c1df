"""Pick the mutants a bounded mutmut run tests: every mutant of the functions named in full,
plus a seeded random sample of the rest of the mutated modules.

Run inside the mutmut work tree after mutmut has generated the mutants and collected its
test statistics (``mutants/*.meta`` and ``mutants/mutmut-stats.json``). Prints the names to
test, one a line; names of mutants that no selected test executes are written to
``--untested`` (mutmut would report them as "no tests": they count as survivors).

Usage::

    python tools/mutation_sample.py --full 'nmfkit.losses.*' --fraction 0.3 --seed 20 \
        --untested untested.txt > names.txt
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import re
import sys
from pathlib import Path


def all_mutant_names(mutants_dir: Path) -> list[str]:
    """Every mutant name mutmut generated, from its per-file ``.meta`` records."""
    names: list[str] = []
    for meta in sorted(mutants_dir.rglob("*.meta")):
        names.extend(json.loads(meta.read_text())["exit_code_by_key"])
    return sorted(set(names))


def function_of(name: str) -> str:
    """The mangled function a mutant belongs to (its name without ``__mutmut_<n>``)."""
    return re.sub(r"__mutmut_\d+$", "", name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", default="mutants", type=Path)
    parser.add_argument("--full", nargs="*", default=[],
                        help="name patterns (fnmatch) whose mutants are all tested")
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="share of the other mutants to test, drawn per module")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--untested", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 0.0 <= args.fraction <= 1.0:
        parser.error("--fraction must lie in [0, 1]")

    stats = json.loads((args.mutants / "mutmut-stats.json").read_text())
    covered = {f for f, tests in stats["tests_by_mangled_function_name"].items() if tests}
    names = all_mutant_names(args.mutants)
    full = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in args.full)]
    rest = sorted(set(names) - set(full))
    # the sample is drawn per module (the name up to its function), so that each module is
    # represented in proportion to its mutants, reproducibly for a given seed
    by_module: dict[str, list[str]] = {}
    for n in rest:
        module = function_of(n).rsplit(".", 1)[0]
        by_module.setdefault(module, []).append(n)
    rng = random.Random(args.seed)
    sampled: list[str] = []
    for module in sorted(by_module):
        group = by_module[module]
        sampled.extend(rng.sample(group, round(args.fraction * len(group))))
    chosen = sorted(set(full) | set(sampled))
    untested = [n for n in chosen if function_of(n) not in covered]
    if args.untested is not None:
        args.untested.write_text("".join(n + "\n" for n in untested))
    for n in chosen:
        if function_of(n) in covered:
            print(n)
    print(f"{len(names)} mutants, {len(full)} in full, {len(sampled)} sampled, "
          f"{len(untested)} without a test", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
