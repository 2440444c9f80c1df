#!/usr/bin/env bash
# The hand mutations of issue 20, each applied to an exported copy of the repository: a test
# must fail under every one of them. Never touches the working tree.
#
#   kl_halve      the KL coordinate-descent Newton step halved, in both kernels
#   kl_noguard    the KL step's safeguard (halve until the objective does not increase) removed
#   stop_invert   the fit loop's stopping comparison inverted
#   mmu_num       masked MU's numerator unweighted (M ⊙ X → X)
#   mmu_den       masked MU's denominator unweighted (M ⊙ WH → WH)
#
# Usage: tools/hand_mutations.sh [PYTHON] [TEST ...]
#   PYTHON  the interpreter whose packages run the tests (default: python3 on PATH); run it
#           from a README install (no numba) to check the numpy fallback alone
#   TEST    test files (default: tests/test_oracles.py tests/test_fit_loop.py)
# Prints one line per mutation, "caught" (some test failed) or "NOT CAUGHT"; exit status 1
# when any mutation is not caught.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-python3}"
shift || true
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/test_oracles.py tests/test_fit_loop.py)
work="$(mktemp -d /tmp/nmfkit-hand-mutations.XXXXXX)"
trap 'rm -rf "$work"' EXIT
status=0
for name in none kl_halve kl_noguard stop_invert mmu_num mmu_den; do
    rm -rf "$work/tree" && mkdir "$work/tree"
    git -C "$repo" archive HEAD | tar -x -C "$work/tree"
    (cd "$work/tree" && "$py" - "$name" <<'PY'
import sys
K, F, M = ("src/nmfkit/solvers/_kl_kernels.py", "src/nmfkit/_fit.py",
           "src/nmfkit/solvers/masked_mu.py")
EDITS = {
    "none": [],  # the baseline: the tests must pass on the unmutated copy
    "kl_halve": [(K, "s = -g / h\n", "s = -0.5 * g / h\n"),
                 (K, "-g / np.where(h > 0, h, 1.0)", "-0.5 * g / np.where(h > 0, h, 1.0)")],
    "kl_noguard": [(K, "                if s < 0:\n                    ok = False",
                    "                if False:\n                    ok = False"),
                   (K, "pending = s < 0\n", "pending = s < -np.inf\n")],
    "stop_invert": [(F, "if (e_prev - e) / e_init < tol:", "if (e_prev - e) / e_init > tol:")],
    "mmu_num": [(M, "self.wx = self.obs.weights * self.obs.values",
                 "self.wx = self.obs.values")],
    "mmu_den": [(M, "self.w = self.obs.weights\n", "self.w = self.obs.weights * 0 + 1\n")],
}
for path, old, new in EDITS[sys.argv[1]]:
    text = open(path).read()
    if text.count(old) != 1:
        sys.exit(f"{sys.argv[1]}: the line to mutate is not in {path} (the code changed)")
    open(path, "w").write(text.replace(old, new))
PY
    ) || { status=1; continue; }
    if (cd "$work/tree" && NUMBA_CACHE_DIR="$work/numba" PYTHONPATH="$work/tree/src" \
            "$py" -m pytest -q -x -p no:cacheprovider "${tests[@]}" >"$work/$name.log" 2>&1); then
        [ "$name" = none ] && { echo "baseline: the tests pass unmutated"; continue; }
        echo "$name: NOT CAUGHT"
    elif [ "$name" = none ]; then
        echo "baseline: the tests fail on the unmutated copy:" >&2
        tail -5 "$work/$name.log" >&2
        exit 2
        status=1
    else
        echo "$name: caught ($(grep -m1 -E '^FAILED' "$work/$name.log" | cut -c1-110))"
    fi
done
exit $status
