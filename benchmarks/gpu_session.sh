#!/usr/bin/env bash
# Every GPU measurement the docs quote as "not yet measured", in one script, so that a short
# session on a GPU machine (no package registry, a few minutes) gets them in a few runs. Each
# part fits one device command (at most 10 minutes even if every step times out); run them in
# this order of importance, as far as the session's device time goes:
#
#   mkdir -p .devdata && cp ~/.cache/nnjax/mnist.pkl.gz .devdata/    # the data travels along
#   pip install --target .devdata/pylib pytest    # for the test steps, if the machine lacks it
#   bash benchmarks/gpu_session.sh sweeps     # ~5 min: sweep_speed float32, TF32 and bfloat16
#                                             # images, flax_speed
#   bash benchmarks/gpu_session.sh pallas     # ~3 min: the Pallas epoch's GPU tests, its
#                                             # timings (1-8 programs), chapter 1 with it
#   bash benchmarks/gpu_session.sh runs       # ~6 min: GPU tests, chapter 1 (plain, blocked)
#                                             # and the 99.60% run
#
# Each step's output is appended to $OUT/gpu_session.txt (default /tmp) as it finishes, with
# the time it started, so a run cut short still reports what it did. Steps run in order of
# importance; each is limited to the seconds set below, which add up to under 10 minutes a
# part (the step before them, the versions, to $STEP_SECONDS, default 240).
set -uo pipefail
cd "$(dirname "$0")/.."
export NNJAX_DATA_DIR=${NNJAX_DATA_DIR:-$PWD/.devdata}
export XLA_PYTHON_CLIENT_PREALLOCATE=false
log=${OUT:-/tmp}/gpu_session.txt
part=${1:-sweeps}
if [[ $part != sweeps && $part != pallas && $part != runs ]]; then
  echo "usage: bash benchmarks/gpu_session.sh sweeps|pallas|runs" >&2
  exit 2
fi

# pytest for the test steps: the machine's own, else the copy carried in .devdata/pylib, on
# the path of those steps only (its packages would shadow the machine's elsewhere).
pytest=(python -m pytest)
if ! python -c "import pytest" 2>/dev/null; then
  pytest=(env "PYTHONPATH=$PWD/.devdata/pylib${PYTHONPATH:+:$PYTHONPATH}" python -m pytest)
fi

step() {
  echo "=== $* (started $(date +%T))" | tee -a "$log"
  timeout "${STEP_SECONDS:-240}" "$@" 2>&1 | tee -a "$log"
  echo "=== exit ${PIPESTATUS[0]} (ended $(date +%T))" | tee -a "$log"
}

step python -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())"
case "$part" in
  sweeps)
    sweep="python -m benchmarks.sweep_speed --strategies=vmap --kernels=jax,blocked --epochs=2 --bandwidth=4800"
    STEP_SECONDS=180 step $sweep --k=1,64,256,1024,4096 --block=4,8,16 --matmul_precision=highest
    STEP_SECONDS=90 step $sweep --k=1024,4096 --block=8,16 --matmul_precision=default
    # Training images stored as bfloat16 (exact for the book's pixels): half the data's bytes.
    STEP_SECONDS=90 step $sweep --k=1024,4096 --block=8,16 --data_dtype=float32,bfloat16 --matmul_precision=highest --epochs=1
    STEP_SECONDS=120 step python -m benchmarks.flax_speed --k=1,64,1024,4096 --flax_steps=200
    # The largest K that fits: one process per K, so that running out of memory ends one step.
    STEP_SECONDS=50 step $sweep --k=16384 --block=16 --epochs=1 --matmul_precision=highest
    STEP_SECONDS=50 step $sweep --k=32768 --block=16 --epochs=1 --matmul_precision=highest
    ;;
  pallas)
    # A program that waits too long for the others gives up (about a second) and is counted.
    STEP_SECONDS=120 step "${pytest[@]}" -q -m gpu tests/test_gpu.py -k pallas
    STEP_SECONDS=90 step "${pytest[@]}" -q tests/test_gpu_kernel.py
    STEP_SECONDS=150 step python -m benchmarks.epoch_speed --numpy_epochs=0 --epochs=3 --unroll=1 --programs=2,4,8
    STEP_SECONDS=120 step python -m experiments.mnist --hidden=30 --kernel=pallas
    ;;
  runs)
    STEP_SECONDS=150 step "${pytest[@]}" -q -m gpu tests/test_gpu.py -k "not pallas"
    STEP_SECONDS=150 step "${pytest[@]}" -q -x tests/test_blocked.py tests/test_epoch.py
    STEP_SECONDS=60 step python -m experiments.mnist --hidden=30
    STEP_SECONDS=60 step python -m experiments.mnist --hidden=30 --kernel=blocked
    STEP_SECONDS=170 step python -m experiments.conv --preset=dropout --matmul_precision=auto
    ;;
esac
