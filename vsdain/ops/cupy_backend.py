"""Compiles the ops' CUDA kernels with CuPy at run time and launches them on PyTorch's stream.

Nothing is compiled ahead of time, so there is no extension to build against a particular
CUDA, PyTorch or compiler: CuPy's NVRTC turns ``<op>.cu`` into code for the GPU at hand on
first use (CuPy also caches the binaries on disk across runs). Works with cupy-cuda12x and
cupy-cuda13x alike; the kernels include no CUDA headers.

CuPy is imported only when a kernel is first needed, so this module imports without it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy
import torch

from .kernel_source import COMPILE_OPTIONS, THREADS_PER_BLOCK, launch_blocks, render_source

if TYPE_CHECKING:
    from .kernel_source import KernelArgument


class KernelCompileError(RuntimeError):
    """NVRTC could not compile a kernel for the current GPU."""


@functools.cache
def cupy_unavailable_reason() -> str | None:
    """Why CuPy cannot be used (the import error, as text), or None when it imports.

    Remembered for the process: whether a package imports does not change while it runs.
    """
    try:
        import cupy  # noqa: F401
    except Exception as error:  # a broken CUDA install raises more than ImportError
        return f"{type(error).__name__}: {' '.join(str(error).split())}"
    return None


def cupy_description() -> str:
    """CuPy's version and the CUDA runtime it was built for, for ``python -m vsdain info``."""
    import cupy

    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return f"CuPy {cupy.__version__}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}"


def launch_on_current_stream(
    op: str, kernel: str, dtype: torch.dtype, work_items: int, *args: KernelArgument
) -> None:
    """Run ``kernel`` of ``<op>.cu`` built for ``dtype`` over ``work_items`` grid-stride
    iterations, on PyTorch's current stream of the arguments' device, so it is ordered with the
    surrounding PyTorch work without any synchronisation.

    Implements :class:`vsdain.ops.kernel_source.KernelLauncher`.
    """
    import cupy

    device = _launch_device(kernel, args)
    function = _kernel_function(op, kernel, dtype, device.index)
    arguments = tuple(_kernel_argument(kernel, value) for value in args)
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream, device.index)
    with cupy.cuda.Device(device.index), stream:
        function((launch_blocks(work_items),), (THREADS_PER_BLOCK,), arguments)


# Bounded caches: 3 ops x 3 dtypes = 9 modules per GPU and 10 kernels x 3 dtypes = 30 kernels
# per GPU, so these hold everything for a few GPUs without growing without limit.
@functools.lru_cache(maxsize=32)
def _compiled_module(op: str, dtype: torch.dtype, device_index: int):
    import cupy

    source = render_source(op, dtype)
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=source, options=COMPILE_OPTIONS)
        try:
            module.compile()
        except Exception as error:
            raise KernelCompileError(
                f"compiling the {op} kernels for {dtype} on cuda:{device_index} failed "
                f"({type(error).__name__}: {error}); set VSDAIN_OPS=reference to run the "
                "PyTorch references instead"
            ) from error
    return module


@functools.lru_cache(maxsize=128)
def _kernel_function(op: str, kernel: str, dtype: torch.dtype, device_index: int):
    import cupy

    module = _compiled_module(op, dtype, device_index)
    with cupy.cuda.Device(device_index):
        return module.get_function(kernel)


def _launch_device(kernel: str, args) -> torch.device:
    devices = {value.device for value in args if isinstance(value, torch.Tensor)}
    if len(devices) != 1 or next(iter(devices)).type != "cuda":
        raise ValueError(
            f"{kernel}: all tensor arguments must be on one CUDA device, got "
            f"{sorted(map(str, devices))}"
        )
    device = devices.pop()
    return torch.device("cuda", torch.cuda.current_device()) if device.index is None else device


def _kernel_argument(kernel: str, value):
    """CuPy passes NumPy scalars by their size, so pointers become uintp and ints int32."""
    if value is None:
        return numpy.uintp(0)
    if isinstance(value, torch.Tensor):
        if not value.is_contiguous():
            raise ValueError(f"{kernel}: tensor arguments must be contiguous")
        return numpy.uintp(value.data_ptr())
    if isinstance(value, int) and not isinstance(value, bool):
        return numpy.int32(value)
    raise TypeError(f"{kernel}: unsupported kernel argument {type(value).__name__}")
