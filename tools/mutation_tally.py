"""Per-module mutation scores from one or more mutmut work trees (tools/mutation.sh), as the
markdown table docs/testing.md records.

A later tree overrides an earlier one for the mutants it ran (a re-run of survivors with the
tests written since); mutants a tree did not run keep their earlier result. Only the mutants
named in ``--names`` files count (a sampled run's draw); without them, every mutant of the
first tree counts.

Usage::

    python tools/mutation_tally.py TREE [TREE ...] [--names FILE ...] [--list survived]
        [--equivalent tools/mutation_equivalent.txt]

With ``--equivalent``, the survivors listed there (equivalent on numpy) are left out of a
second score, "score w/o eq.".
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

# mutmut 3's exit codes: pytest's own, and the ones its runner adds
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not run",
          2: "not run", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", -11: "crash", -9: "crash", 34: "skipped"}
DETECTED = ("killed", "timeout", "crash")


def results(tree: Path) -> dict[str, str]:
    """mutant name -> status, for the mutants this tree ran."""
    out = {}
    for meta in (tree / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = STATUS.get(code, "crash")
            if status != "not run":
                out[name] = status
            else:
                out.setdefault(name, status)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--names", nargs="*", type=Path, default=[])
    parser.add_argument("--list", default=None, help="print the mutants with this status")
    parser.add_argument("--equivalent", type=Path, default=None,
                        help="survivors that are equivalent, one name a line ('#' comments)")
    args = parser.parse_args(argv)

    final: dict[str, str] = {}
    for tree in args.trees:
        for name, status in results(tree).items():
            if status != "not run" or name not in final:
                final[name] = status
    if args.names:
        chosen = set()
        for f in args.names:
            chosen |= set(f.read_text().split())
        final = {n: s for n, s in final.items() if n in chosen}
    equivalent = set()
    if args.equivalent is not None:
        equivalent = {line.strip() for line in args.equivalent.read_text().splitlines()
                      if line.strip() and not line.startswith("#")}
    by_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, status in final.items():
        module = name.partition("__mutmut_")[0].rsplit(".", 1)[0]
        by_module[module][status] += 1
        if status == "survived" and name in equivalent:
            by_module[module]["equivalent"] += 1
    total: collections.Counter = collections.Counter()
    print("| module | mutants | killed | timeout | crash | survived (equivalent) | no tests "
          "| not run | score | score w/o eq. |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for module in sorted(by_module):
        c = by_module[module]
        total.update(c)
        print(_row(f"`{module}`", c))
    print(_row("**total**", total))
    if args.list:
        for name in sorted(n for n, s in final.items() if s == args.list):
            print(name, file=sys.stderr)
    return 0


def _row(label, c) -> str:
    n = sum(v for k, v in c.items() if k != "equivalent")
    run = n - c["not run"]
    detected = sum(c[s] for s in DETECTED)
    score = f"{100 * detected / run:.1f} %" if run else "-"
    rest = run - c["equivalent"]
    score_ne = f"{100 * detected / rest:.1f} %" if rest else "-"
    return (f"| {label} | {n} | {c['killed']} | {c['timeout']} | {c['crash']} | {c['survived']} "
            f"({c['equivalent']}) | {c['no tests']} | {c['not run']} | {score} | {score_ne} |")


if __name__ == "__main__":
    sys.exit(main())
