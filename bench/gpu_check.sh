#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one run of a few minutes on one GPU:
#   1. the CUDA tests (kernels against the references on the device, launches on PyTorch's
#      stream, gradients with real atomics);
#   2. the kernels against the references, op by op and for a whole pair, at 720p and 1080p
#      (part of `vsdain bench` on a GPU), float32;
#   3. time and peak memory per output frame at 720p and 1080p, untiled, automatic tiling and
#      a forced small tile, in float32 and in float16.
# Writes bench/results/gpu-tests.txt, gpu-float32.md (2 and 3) and gpu-float16-tiling.md (3).
# Usage, from a checkout: bench/gpu_check.sh [CUDA-MAJOR]   (12 or 13; default: torch's CUDA)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$repo/tools/env.sh")
cd "$repo"
out=bench/results
mkdir -p "$out"

major=${1:-$("$python" -c 'import torch; print((torch.version.cuda or "0").split(".")[0])')}
case "$major" in
12 | 13) ;;
*) echo "gpu_check: no CUDA build of torch (torch.version.cuda is unset); nothing to check" >&2; exit 2 ;;
esac
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
    echo "gpu_check: PyTorch sees no CUDA GPU" >&2
    exit 2
}
# CuPy compiles the kernels at run time; it is an optional extra of the package.
"$python" -m pip install --quiet "cupy-cuda${major}x>=14.2" >&2

started=$(date +%s)
echo "gpu_check: CUDA tests" >&2
"$python" -m pytest -q -m cuda -p no:cacheprovider tests/ 2>&1 | tee "$out/gpu-tests.txt" | tail -n 3 >&2

echo "gpu_check: kernels, time and memory in float32" >&2
"$python" -m vsdain bench --device cuda --sizes 1280x720,1920x1080 --multis 2 --frames 2 \
    --naive-samples 1 --no-mvtools --tiling 1280x720,1920x1080 --out "$out/gpu-float32" >&2
cp "$out/gpu-float32/latest.md" "$out/gpu-float32.md"

echo "gpu_check: time and memory in float16" >&2
"$python" -m vsdain bench --device cuda --precision float16 --tiling-only \
    --tiling 1280x720,1920x1080 --out "$out/gpu-float16" >&2
cp "$out/gpu-float16/tiling.md" "$out/gpu-float16-tiling.md"
rm -rf "$out/gpu-float32" "$out/gpu-float16"

echo "gpu_check: done in $(($(date +%s) - started)) s; results in $out/gpu-*.md and gpu-tests.txt" >&2
