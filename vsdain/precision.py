"""What the network computes in: the ``precision`` names, the default rule, and the one rule
for bfloat16 on the CPU (:func:`cpu_bfloat16_problem`), which rests on whether this CPU does
bfloat16 arithmetic natively (:func:`native_bfloat16`).

Pure torch (no VapourSynth), so the filter, the benchmark and ``python -m vsdain info`` share
one answer.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

PRECISIONS: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# /proc/cpuinfo flags of the x86 instructions that compute with bfloat16 (dot products into
# float32), and the aarch64 feature name of the same.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
NATIVE_BFLOAT16_ARM = "bf16"
CPUINFO = Path("/proc/cpuinfo")
# Measured on one Zen 5 core without AVX512-BF16 (flags up to AVX2), network input 128x128:
# two frames' features 1.25 s in float32, 9.8 s in bfloat16; one pair 0.32 s and 19 s; one
# synthesised timestamp 1.6 s and more than 370 s (stopped there). Without the instructions
# PyTorch leaves oneDNN for a generic bfloat16 convolution path.
EMULATED_BFLOAT16_SLOWDOWN = 60


def precision_name(dtype: torch.dtype) -> str:
    for name, candidate in PRECISIONS.items():
        if candidate == dtype:
            return name
    raise ValueError(f"no precision name for {dtype}")


def default_dtype(device: torch.device, half_input: bool) -> torch.dtype:
    """precision=None: float16 on CUDA for 16-bit float input (RGBH, YUV...PH), else float32.
    bfloat16 is never a default: it is a choice of speed over exactness."""
    return torch.float16 if device.type == "cuda" and half_input else torch.float32


# What native_bfloat16() answers instead of reading the CPU: None (the value outside the tests)
# reads it. The test suite's one place to pin the answer (tests/conftest.py), read on every
# call so that a caller holding the function by name still sees it.
NATIVE_BFLOAT16_OVERRIDE: bool | None = None


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions: :func:`read_native_bfloat16`,
    unless ``NATIVE_BFLOAT16_OVERRIDE`` is set."""
    if NATIVE_BFLOAT16_OVERRIDE is not None:
        return NATIVE_BFLOAT16_OVERRIDE
    return read_native_bfloat16()


@functools.cache
def read_native_bfloat16() -> bool:
    """What this CPU reports: bfloat16 dot-product instructions (x86 AVX512-BF16 or AMX-BF16,
    aarch64 BF16) or not. Read from /proc/cpuinfo on Linux; elsewhere PyTorch's own test for
    its oneDNN bfloat16 path (AVX-512 class x86 or ARM BF16), which is the best available."""
    flags = _cpu_flags()
    if flags is not None:
        return any(flag in flags for flag in NATIVE_BFLOAT16_FLAGS) or (
            _is_arm() and NATIVE_BFLOAT16_ARM in flags
        )
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_bfloat16_problem(device: torch.device | str, dtype: torch.dtype) -> str | None:
    """Why a network in ``dtype`` on ``device`` would crawl, or None when nothing stands in
    its way. bfloat16 on a CPU without native bfloat16 is the one such case: the filter
    refuses ``precision='bfloat16'`` there, warns about a bfloat16 ``model=``, and
    ``vsdain bench --bfloat16`` refuses to run. The answer is a clause that can follow a
    colon, e.g. ``f"precision='bfloat16' is refused: {problem}"``."""
    if dtype != torch.bfloat16 or torch.device(device).type != "cpu" or native_bfloat16():
        return None
    return (
        "this CPU has no native bfloat16 (AVX512-BF16, AMX-BF16 or ARM BF16), without which "
        f"the network runs 8x (per-frame work) to more than {EMULATED_BFLOAT16_SLOWDOWN}x "
        "(synthesis) slower than in float32"
    )


def describe_native_bfloat16() -> str:
    """One line for ``python -m vsdain info``."""
    problem = cpu_bfloat16_problem(torch.device("cpu"), torch.bfloat16)
    if problem is None:
        return "yes: precision='bfloat16' runs natively on the CPU"
    return f"no: {problem}; precision='bfloat16' is refused on this CPU, use float32"


def _cpu_flags() -> set[str] | None:
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


def _is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")
