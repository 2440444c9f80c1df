#!/usr/bin/env bash
# Mutation testing of nmfkit's math and solver modules with mutmut, on a copy of the repository.
#
# What it does: exports the committed tree (git archive HEAD) to a scratch folder, builds a
# virtual environment there with the README's test install (numpy, scipy, scikit-learn, pytest,
# hypothesis; no numba, no torch — the numpy code paths a README user runs) plus mutmut, adds a
# [tool.mutmut] section to the *copy's* pyproject.toml and runs mutmut on one CPU core at low
# priority. The working tree is never mutated. Not part of CI: a full run takes about half an
# hour on one core. Results: docs/testing.md records the last measured score.
#
# Usage:  tools/mutation.sh [SCRATCH_DIR]      (default /tmp/nmfkit-mutation)
# Env:    MUTMUT_VERSION (default 3.8.1), MUTATION_CHILDREN (default 1),
#         MUTATION_MODULES (space-separated paths under src/, default: the list below; all
#         the math and solver modules together give ~6,000 mutants, several hours on a core),
#         MUTATION_TESTS (the test files mutmut may run),
#         MUTATION_NAMES (mutmut name patterns to run, default: the functions below; "" = all
#         mutants of MUTATION_MODULES)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/nmfkit-mutation}"
version="${MUTMUT_VERSION:-3.8.1}"
children="${MUTATION_CHILDREN:-1}"
modules="${MUTATION_MODULES:-src/nmfkit/_fit.py src/nmfkit/nnls.py src/nmfkit/solvers/_kl_kernels.py}"
# the functions that fit a ~40-minute run on one core of a busy 2-core machine: both NNLS
# kernels (HALS sweep, block principal pivoting), the fit loop, KL coordinate descent's numpy
# kernel (the compiled numba twin cannot be mutated: numba does not compile mutmut's wrapper)
names="${MUTATION_NAMES-nmfkit.nnls.* nmfkit._fit.x_run__mutmut_* \
nmfkit.solvers._kl_kernels.x__kl_rows_numpy__mutmut_*}"
# the numpy-side tests of those modules; the tracemalloc memory checks are left out (slow, and
# they test the footprint, not the arithmetic)
tests="${MUTATION_TESTS:-tests/test_oracles.py tests/test_losses.py tests/test_solvers_core.py \
tests/test_fit_loop.py tests/test_init.py tests/test_masked.py}"

mkdir -p "$work"
rm -rf "$work/tree"
mkdir "$work/tree"
git -C "$repo" archive HEAD | tar -x -C "$work/tree"
if [ ! -x "$work/venv/bin/mutmut" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q "$repo[test]" "mutmut==$version"
fi

cd "$work/tree"
{
    echo
    echo "[tool.mutmut]"
    echo 'source_paths = ["src"]'
    printf 'only_mutate = ['
    for m in $modules; do printf '"%s", ' "$m"; done
    echo ']'
    printf 'pytest_add_cli_args_test_selection = ['
    for t in $tests; do printf '"%s", ' "$t"; done
    echo '"-k", "not memory and not working_memory"]'
    echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]'
    # a mutant that makes the loop run on is cut at 3x the tests' own time (default 15x)
    echo 'timeout_multiplier = 3.0'
} >> pyproject.toml

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
start=$(date +%s)
# the name patterns are separate arguments, passed to mutmut unexpanded (set -f: no globbing)
set -f
# shellcheck disable=SC2086
nice -n 15 "$work/venv/bin/mutmut" run --max-children "$children" $names || true
set +f
end=$(date +%s)
"$work/venv/bin/mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$work/venv/bin/mutmut" results --all true > "$work/results.txt" 2>/dev/null \
    || "$work/venv/bin/mutmut" results > "$work/results.txt"
echo "mutmut $version, $((end - start)) s wall, results in $work/results.txt"
if [ -f mutants/mutmut-cicd-stats.json ]; then cat mutants/mutmut-cicd-stats.json; fi
