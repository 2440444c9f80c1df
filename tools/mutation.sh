#!/usr/bin/env bash
# Mutation testing of nmfkit's math and solver modules with mutmut, on a copy of the repository.
#
# What it does: exports a committed tree (git archive, HEAD by default) to a scratch folder,
# builds a virtual environment there with the README's test install plus mutmut, then removes
# numba from it (numba is a dependency, but mutmut cannot mutate compiled kernels: without it
# every kernel runs its numpy twin, which is what gets mutated), adds a [tool.mutmut] section
# to the *copy's* pyproject.toml and runs mutmut on one CPU core at the lowest priority. The
# working tree is never mutated. Not part of CI. docs/testing.md records the measured scores.
#
# Usage:  tools/mutation.sh [SCRATCH_DIR]      (default /tmp/nmfkit-mutation)
# Env:    MUTMUT_VERSION (default 3.8.1), MUTATION_CHILDREN (default 1),
#         MUTATION_REF (the commit to mutate, default HEAD; written to SCRATCH_DIR/commit.txt),
#         MUTATION_TESTS_FROM (a later commit whose tests/test_mutants_*.py are added, to
#           re-run a run's survivors against the tests written since),
#         MUTATION_MODULES (space-separated paths under src/, default: the list below),
#         MUTATION_TESTS (the test files mutmut may run),
#         MUTATION_NAMES (mutmut name patterns to run; with MUTATION_FRACTION="" and no names:
#           every mutant of MUTATION_MODULES),
#         MUTATION_FRACTION with MUTATION_FULL and MUTATION_SEED: instead of MUTATION_NAMES,
#           every mutant matching the MUTATION_FULL patterns plus a seeded random sample of
#           MUTATION_FRACTION of the other mutants of each module (tools/mutation_sample.py),
#         MUTATION_EXTRA_PIP (extra requirements for the venv, e.g. "torch==2.13.0" for CI's
#           install: the torch backend's branches then run; that exact spec installs the CPU
#           build, another may fetch a CUDA build of several GB)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/nmfkit-mutation}"
version="${MUTMUT_VERSION:-3.8.1}"
children="${MUTATION_CHILDREN:-1}"
ref="${MUTATION_REF:-HEAD}"
tests_from="${MUTATION_TESTS_FROM:-}"
extra_pip="${MUTATION_EXTRA_PIP:-}"
# the math and solver modules not covered by the first recorded run (that one: _fit.py,
# nnls.py, solvers/_kl_kernels.py; pass them here to run them again)
modules="${MUTATION_MODULES:-src/nmfkit/losses.py src/nmfkit/init.py src/nmfkit/masked.py \
src/nmfkit/solvers/mu.py src/nmfkit/solvers/cd.py src/nmfkit/solvers/anls.py \
src/nmfkit/solvers/_auto.py src/nmfkit/solvers/masked_mu.py src/nmfkit/solvers/masked_cd.py \
src/nmfkit/solvers/masked_als.py}"
# default: losses, init and the observed-entries layer in full, a 30 % sample of the solvers
names="${MUTATION_NAMES-}"
full="${MUTATION_FULL-nmfkit.losses.* nmfkit.init.* nmfkit.masked.*}"
fraction="${MUTATION_FRACTION-0.3}"
seed="${MUTATION_SEED:-20}"
# the numpy-side tests of those modules; the tracemalloc memory checks are left out (slow, and
# they test the footprint, not the arithmetic)
tests="${MUTATION_TESTS:-tests/test_oracles.py tests/test_losses.py tests/test_solvers_core.py \
tests/test_fit_loop.py tests/test_init.py tests/test_masked.py tests/test_properties.py \
tests/test_solvers_fast.py tests/test_impute.py tests/test_penalties.py tests/test_stopping.py \
tests/test_estimator.py tests/test_capability_matrix.py \
$( { git -C "$repo" ls-tree --name-only "${tests_from:-$ref}" tests/ \
| grep /test_mutants_ || true; } | tr '\n' ' ')}"

mkdir -p "$work"
rm -rf "$work/tree"
mkdir "$work/tree"
git -C "$repo" archive "$ref" | tar -x -C "$work/tree"
git -C "$repo" rev-parse "$ref" > "$work/commit.txt"
if [ -n "$tests_from" ]; then
    # the mutation tests of a later commit on the mutated commit's code: re-running the
    # survivors of a run with the tests written since, mutant names unchanged
    git -C "$repo" archive "$tests_from" tests/ | tar -x -C "$work/tree" --wildcards \
        'tests/test_mutants_*.py'
    echo "tests/test_mutants_*.py from $(git -C "$repo" rev-parse "$tests_from")" >> "$work/commit.txt"
fi
if [ ! -x "$work/venv/bin/mutmut" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q "$work/tree[test]" "mutmut==$version"
    if [ -n "$extra_pip" ]; then
        # shellcheck disable=SC2086
        "$work/venv/bin/pip" install -q $extra_pip
    fi
    "$work/venv/bin/pip" uninstall -q -y numba llvmlite
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
    # the torch tests run benchmarks/gpu_check.py on the CPU device: copied next to the mutants
    echo 'also_copy = ["benchmarks"]'
    # a mutant that makes the loop run on is cut at 3x the tests' own time (default 15x)
    echo 'timeout_multiplier = 3.0'
} >> pyproject.toml

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
start=$(date +%s)
# the name patterns are separate arguments, passed to mutmut unexpanded (set -f: no globbing)
set -f
if [ -n "$fraction" ] && [ -z "$names" ]; then
    # generate the mutants and collect which tests run which function (no mutant runs yet),
    # then draw the names to test
    nice -n 19 "$work/venv/bin/mutmut" run --max-children "$children" \
        "nmfkit.no_such_function__mutmut_*" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    "$work/venv/bin/python" "$repo/tools/mutation_sample.py" --full $full \
        --fraction "$fraction" --seed "$seed" --untested "$work/untested.txt" > "$work/names.txt"
    names="$(cat "$work/names.txt")"
fi
# shellcheck disable=SC2086
nice -n 19 "$work/venv/bin/mutmut" run --max-children "$children" $names || true
set +f
end=$(date +%s)
"$work/venv/bin/mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$work/venv/bin/mutmut" results --all true > "$work/results.txt" 2>/dev/null \
    || "$work/venv/bin/mutmut" results > "$work/results.txt"
"$work/venv/bin/pip" freeze 2>/dev/null | grep -i '^torch==' >> "$work/commit.txt" || true
echo "mutmut $version on $(cat "$work/commit.txt"), $((end - start)) s wall, results in $work/results.txt"
if [ -f mutants/mutmut-cicd-stats.json ]; then cat mutants/mutmut-cicd-stats.json; fi
