#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one run of at most 8 minutes on one GPU, on a machine
# that has only Python 3.12 with PyTorch and CuPy (cupy-cuda12x or cupy-cuda13x): nothing is
# installed from a package registry and no virtual environment is made; the package is used
# from this checkout. Steps (each in a process of its own, under a time limit):
#   environment  the GPU, PyTorch, CUDA, CuPy and VapourSynth found;
#   cuda-tests   the CUDA-marked tests (pytest -m cuda);
#   kernels      each CUDA kernel against its PyTorch reference at 720p: max difference, time;
#   frames       time and peak memory per output frame at 720p and 1080p, float32 and float16,
#                untiled and with 512-pixel tiles;
#   batch        one pair's three timestamps (multi=4) one by one and as one batch, 720p float16;
#   busy         the GPU's busy fraction while the filter runs, 1080p multi=2 float16 (kernel
#                time from PyTorch's profiler over wall time). Needs VapourSynth.
# Writes summary.txt (also printed), report.md, results.json, tests.txt and steps.log into OUT.
#
# Usage, from a checkout:  bench/gpu_check.sh OUT [--dry-run] [--no-vapoursynth]
#   --dry-run   the same steps on the CPU at a tiny size, CUDA-only parts reported as skipped.
#   PYTHON=...  the interpreter (default: python3, the one that has PyTorch).
#
# VapourSynth is optional: the filter-level step (busy) needs it, the others do not. On an
# offline machine, carry its wheel in the folder wheels/ of the checkout (git ignores it; or
# name another folder in VSDAIN_WHEELS). Prepare it on any machine with a registry:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 -d wheels vapoursynth==81
# This script installs whatever wheels that folder holds into a temporary folder with
# `pip install --no-index --no-deps --target` (no network) and puts it on PYTHONPATH.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
if [[ $# -lt 1 || $1 == -* ]]; then
    echo "usage: bench/gpu_check.sh OUT [--dry-run] [--no-vapoursynth]" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift

site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
wheels=${VSDAIN_WHEELS:-$repo/wheels}
if compgen -G "$wheels/*.whl" >/dev/null; then
    echo "gpu_check: installing the wheels in $wheels (offline)" >&2
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
        --target "$site" "$wheels"/*.whl >&2
elif ! "$python" -c 'import vapoursynth' 2>/dev/null; then
    echo "gpu_check: no VapourSynth and no wheels in $wheels: the filter-level step is skipped" >&2
fi
export PYTHONPATH="$repo:$site${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"
# The whole run is bounded too, in case the runner itself hangs (it stops its steps sooner).
status=0
timeout --kill-after=10 480 "$python" -m vsdain.benchmark.gpu_check "$out" --tests "$repo/tests" "$@" \
    || status=$?
exit "$status"
