#!/usr/bin/env bash
# GPU check of the torch backend (issue 7), one call on a GPU machine, under 5 minutes.
#
#   bash benchmarks/gpu_check.sh                 # on the card: table to $OUT/gpu_check.md
#   bash benchmarks/gpu_check.sh --docs          # ... and append it to docs/benchmarks.md
#   bash benchmarks/gpu_check.sh --device cpu --small   # smoke test on CPU torch (seconds)
#
# Uses $PYTHON (default: python3) with numpy, scipy, scikit-learn and torch installed; nmfkit is
# taken from this checkout (src/) so no install is needed. Extra arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" - <<'PYEOF'
import sys
try:
    import numpy, scipy, sklearn, torch  # noqa: F401
except ImportError as exc:
    sys.exit(f"gpu_check: missing dependency ({exc}); pip install numpy scipy scikit-learn torch")
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}; CUDA available: {cuda}"
      + (f"; {torch.cuda.get_device_name(0)}" if cuda else ""))
PYEOF
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 290 "$PY" benchmarks/gpu_check.py "$@"
