#!/usr/bin/env bash
# The one prepared GPU check (issue 14): simulate, ingest from disk (cold cache where possible) and
# score with the JAX backend on Dask-CUDA, printing objects/s per stage against its ceilings.
#
# On a lent GPU machine (16 cores, one H100/H200, Python 3.12 without TensorFlow, Keras, Dask, Zarr
# or astropy), from the repository root, with the wheels built by bench/gpu_wheels.sh carried:
#     run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=540)
# Dry run on a CPU machine (no install, --cluster local, JAX on the CPU, a tiny set):
#     GPU_CHECK_N=200 GPU_CHECK_DRY=1 bash bench/gpu_check.sh
#
# Environment: GPU_CHECK_N objects (default 24000), GPU_CHECK_BUDGET_S seconds for the whole check
# (default 450: stages that would not fit are skipped and said so), GPU_CHECK_WORK scratch folder
# (default /tmp/lenshunt-gpu-check), GPU_CHECK_PYTHON (default python3; .venv/bin/python when dry).
# Results: printed, and gpu_check.md / gpu_check.json under $OUT (the device tool brings them back).
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")/.."
N=${GPU_CHECK_N:-24000}
DRY=${GPU_CHECK_DRY:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-450}
WORK=${GPU_CHECK_WORK:-/tmp/lenshunt-gpu-check}
RESULTS=${OUT:-$WORK/out}
if [ "$DRY" = 1 ]; then PY=${GPU_CHECK_PYTHON:-.venv/bin/python}; else PY=${GPU_CHECK_PYTHON:-python3}; fi
JOBS=$(nproc)
mkdir -p "$WORK" "$RESULTS"
echo "== gpu_check: n=$N dry=$DRY jobs=$JOBS budget=${BUDGET}s python=$($PY -c 'import sys; print(sys.version.split()[0])')"

# 1. The carried wheels (no network there); numpy, pandas, scipy, xarray, pyarrow, JAX come with the machine.
if [ "$DRY" != 1 ]; then
    if [ ! -d .whl ] || ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "no wheels in .whl/: build them with bench/gpu_wheels.sh and carry .whl" >&2
        exit 2
    fi
    # Into a folder of their own (no clash with the system's packages, no PEP 668 refusal).
    if [ ! -d "$WORK/site/keras" ]; then
        $PY -m pip install --quiet --no-index --no-deps --disable-pip-version-check \
            --target "$WORK/site" .whl/*.whl
    fi
    echo "== wheels installed after $(( $(date +%s) - started )) s"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
export PYTHONPATH=$PWD${WORK:+:$WORK/site} KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
export PREFECT_SERVER_ANALYTICS_ENABLED=false

# 2. Simulate a Euclid-like set in the challenge layout with every core (bench/othersim: NumPy + fitsio).
SET=$WORK/set-$N
if [ ! -f "$SET/image_catalog_othersim.csv" ]; then
    rm -rf "$SET"
    s0=$SECONDS
    $PY -m bench.othersim "$SET" --n "$N" --seed 14 --jobs "$JOBS" > "$WORK/simulate.log"
    echo "== simulated $N objects in $(( SECONDS - s0 )) s with $JOBS processes"
fi

# 3. Ingest, score and their ceilings, inside what is left of the budget.
left=$(( BUDGET - ( $(date +%s) - started ) ))
extra=()
if [ "$DRY" = 1 ]; then extra+=(--dry); fi
$PY -m bench.gpu_check --source "$SET" --work "$WORK" --out "$RESULTS" --budget-s "$left" --workers "$JOBS" "${extra[@]}"
echo "== gpu_check done in $(( $(date +%s) - started )) s; results in $RESULTS"
