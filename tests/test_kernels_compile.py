"""Every CUDA kernel source compiles to GPU machine code for the architectures users have.

Compiles with NVRTC, the run-time compiler CuPy uses on users' machines, from the
``nvidia-cuda-nvrtc`` wheel through ``cuda-bindings``; neither needs a GPU. Each build goes all
the way to a cubin (ptxas included) for a real ``sm_XX`` target, and the cubin must define every
``extern "C"`` kernel that the launcher looks up by name.
"""

from __future__ import annotations

import pytest
import torch

from vsdain.ops import kernel_source
from vsdain.ops.kernel_source import COMPILE_OPTIONS, KERNEL_TYPES, OPS, kernel_names, render_source

# Turing (GTX 16xx, RTX 20xx, T4), Ampere (A100; RTX 30xx), Ada (RTX 40xx), Hopper (H100).
# sm_75 is also the oldest target CUDA 13 supports. CuPy compiles for whatever GPU it finds, so
# newer ones are covered at run time; these are the ones the source must certainly build for.
ARCHITECTURES = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
ELF_MAGIC = b"\x7fELF"
# The fast tier builds every kernel for the oldest architecture only; the full suite for all.
ARCHITECTURE_PARAMS = [
    pytest.param(arch, marks=() if index == 0 else pytest.mark.slow)
    for index, arch in enumerate(ARCHITECTURES)
]


class NvrtcError(RuntimeError):
    pass


def nvrtc():
    try:
        from cuda.bindings import nvrtc as module
    except ImportError as error:  # fail, do not skip: this proof must run everywhere
        pytest.fail(
            f"NVRTC is not importable ({error}); install the dev extra, which brings "
            "cuda-bindings and nvidia-cuda-nvrtc"
        )
    return module


def _check(result, what: str) -> None:
    if result != nvrtc().nvrtcResult.NVRTC_SUCCESS:
        raise NvrtcError(f"{what} failed: {result}")


def compile_to_cubin(source: str, name: str, architecture: str) -> tuple[bytes, str]:
    """(cubin, compiler log) for ``source`` on ``architecture``; NvrtcError with the log when
    the compilation fails."""
    api = nvrtc()
    result, program = api.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    _check(result, "nvrtcCreateProgram")
    try:
        options = [option.encode() for option in COMPILE_OPTIONS]
        options.append(f"--gpu-architecture={architecture}".encode())
        (compiled,) = api.nvrtcCompileProgram(program, len(options), options)
        result, log_size = api.nvrtcGetProgramLogSize(program)
        _check(result, "nvrtcGetProgramLogSize")
        # A fresh, writable buffer: NVRTC writes into it. (Never b" " * n: CPython shares the
        # one-byte and empty bytes objects, and writing into them corrupts the interpreter.)
        log = bytearray(log_size)
        (result,) = api.nvrtcGetProgramLog(program, log)
        _check(result, "nvrtcGetProgramLog")
        log_text = log.rstrip(b"\0").decode(errors="replace").strip()
        if compiled != api.nvrtcResult.NVRTC_SUCCESS:
            raise NvrtcError(f"{name} for {architecture}: {compiled}\n{log_text}")
        result, cubin_size = api.nvrtcGetCUBINSize(program)
        _check(result, "nvrtcGetCUBINSize")
        cubin = bytearray(cubin_size)
        (result,) = api.nvrtcGetCUBIN(program, cubin)
        _check(result, "nvrtcGetCUBIN")
        return bytes(cubin), log_text
    finally:
        api.nvrtcDestroyProgram(program)


def test_nvrtc_targets_every_listed_architecture():
    result, supported = nvrtc().nvrtcGetSupportedArchs()
    _check(result, "nvrtcGetSupportedArchs")
    missing = [arch for arch in ARCHITECTURES if int(arch.removeprefix("sm_")) not in supported]
    assert not missing, f"this NVRTC cannot target {missing}; it supports {supported}"


@pytest.mark.parametrize("architecture", ARCHITECTURE_PARAMS)
@pytest.mark.parametrize("dtype", list(KERNEL_TYPES), ids=lambda dtype: str(dtype)[6:])
@pytest.mark.parametrize("op", OPS)
def test_kernel_source_compiles_to_a_cubin(op, dtype, architecture):
    source = render_source(op, dtype)
    cubin, log = compile_to_cubin(source, f"{op}.cu", architecture)
    assert cubin.startswith(ELF_MAGIC) and len(cubin) > 1000
    assert "warning" not in log.lower(), log
    names = kernel_names(source)
    assert names, "no kernels found in the source"
    for name in names:
        # extern "C" keeps the symbol unmangled, which is how CuPy looks the kernel up.
        assert name.encode() in cubin, f"{name} missing from the {architecture} cubin"


def test_every_op_defines_its_forward_and_backward_kernels():
    expected = {
        "correlation": {
            "correlation_forward",
            "correlation_backward_first",
            "correlation_backward_second",
        },
        "projection": {
            "project_flow_splat",
            "project_flow_average",
            "project_flow_fill_holes",
            "project_flow_fill_holes_backward",
            "project_flow_backward",
        },
        "warping": {"adaptive_warp_forward", "adaptive_warp_backward"},
    }
    for op in OPS:
        assert set(kernel_names(render_source(op, torch.float32))) == expected[op]


def test_a_syntax_error_fails_and_is_reported_in_the_original_file(tmp_path, monkeypatch):
    """The compile check can fail: a broken kernel file is rejected, and the #line markers
    make the message name that file and line."""
    # The kernels sit beside the op modules in vsdain/ops; only the CUDA files are copied.
    for pattern in ("*.cu", "*.cuh"):
        for path in kernel_source.KERNEL_DIR.glob(pattern):
            (tmp_path / path.name).write_text(path.read_text())
    assert (tmp_path / "warping.cu").is_file() and (tmp_path / "device.cuh").is_file()
    lines = (tmp_path / "warping.cu").read_text().splitlines()
    broken_line = len(lines) + 1
    (tmp_path / "warping.cu").write_text("\n".join([*lines, "this is not CUDA;", ""]))
    monkeypatch.setattr(kernel_source, "KERNEL_DIR", tmp_path)
    monkeypatch.setattr(kernel_source, "DEVICE_PRELUDE", tmp_path / "device.cuh")
    monkeypatch.setattr(kernel_source, "COMMON_HEADER", tmp_path / "common.cuh")

    source = kernel_source.render_source("warping", torch.float32)
    with pytest.raises(NvrtcError, match=rf"warping\.cu\({broken_line}\): error"):
        compile_to_cubin(source, "warping.cu", ARCHITECTURES[0])


def test_render_source_rejects_unknown_ops_and_dtypes():
    with pytest.raises(ValueError, match="unknown op"):
        render_source("softsplat", torch.float32)
    with pytest.raises(ValueError, match=r"no kernels for torch\.bfloat16"):
        render_source("warping", torch.bfloat16)
