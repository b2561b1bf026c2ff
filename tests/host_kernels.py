"""Runs the ops' CUDA kernel sources on the CPU, for the tests.

Each (op, dtype) translation unit is rendered exactly as for the GPU except for the runtime
prelude (``host_runtime.h`` instead of ``vsdain/ops/device.cuh``), compiled with the system C++
compiler into a shared library, and loaded with ctypes. :class:`HostKernels` is a
:class:`vsdain.ops.kernel_source.KernelLauncher`, so the real autograd Functions run on CPU
tensors through it; it can also build an op from replacement kernel text, to test what happens
when a kernel is wrong or does not compile.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import torch

from vsdain.ops.kernel_source import kernel_names, launch_blocks, render_source

HOST_PRELUDE = Path(__file__).resolve().with_name("host_runtime.h")

# Few threads and blocks, so that tiny images leave simulated threads idle and anything larger
# than 5 x 8 work items takes the grid-stride loop round more than once.
HOST_THREADS_PER_BLOCK = 8
HOST_MAX_BLOCKS = 5

# No -ffast-math: NaN comparisons must behave as on the GPU. -ffp-contract=off keeps the
# compiler from fusing multiply-adds on machines that have them, so results do not depend on
# the build machine.
CXX_FLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off")


class HostCompileError(RuntimeError):
    pass


def find_cxx() -> str:
    """The C++ compiler: $CXX, else g++, c++ or clang++ on PATH."""
    for candidate in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    raise HostCompileError(
        "no C++ compiler found (tried $CXX, g++, c++, clang++); the CPU kernel tests need one"
    )


def host_source(op: str, dtype: torch.dtype, kernels: str | None = None) -> str:
    """The GPU translation unit with the host prelude, plus one C entry point per kernel that
    runs its whole grid: ``launch_<kernel>(blocks, threads, arguments)``. ``kernels`` replaces
    the text of ``<op>.cu``."""
    source = render_source(op, dtype, prelude=HOST_PRELUDE, kernels=kernels)
    entry_points = [
        f'extern "C" void launch_{name}(unsigned int blocks, unsigned int threads, '
        f"void** arguments) {{ host_launch({name}, blocks, threads, arguments); }}"
        for name in kernel_names(source)
    ]
    return "\n".join([source, '#line 1 "<host entry points>"', *entry_points, ""])


def build_library(source: str, directory: Path, name: str) -> Path:
    """Compile ``source`` into ``directory/name.so``; raises HostCompileError with the
    compiler's output on failure."""
    source_path = directory / f"{name}.cpp"
    library_path = directory / f"{name}.so"
    source_path.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [find_cxx(), *CXX_FLAGS, "-o", str(library_path), str(source_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise HostCompileError(f"compiling {source_path} failed:\n{result.stderr}")
    return library_path


class HostKernels:
    """Launcher that runs the kernels on CPU tensors; each (op, dtype) library is built on
    first use into ``build_dir`` and kept for the life of the object.

    ``kernels`` maps an op to replacement text for its ``<op>.cu`` (deliberately broken
    kernels). ``launches`` records every launch asked for, (kernel, blocks, work items), also
    those whose library then fails to build.
    """

    def __init__(self, build_dir: Path, kernels: Mapping[str, str] | None = None) -> None:
        self.build_dir = build_dir
        self.kernels = dict(kernels or {})
        self._libraries: dict[tuple[str, torch.dtype], ctypes.CDLL] = {}
        self.launches: list[tuple[str, int, int]] = []

    def library(self, op: str, dtype: torch.dtype) -> ctypes.CDLL:
        key = (op, dtype)
        if key not in self._libraries:
            name = f"{op}_{str(dtype).removeprefix('torch.')}"
            source = host_source(op, dtype, self.kernels.get(op))
            path = build_library(source, self.build_dir, name)
            self._libraries[key] = ctypes.CDLL(str(path))
        return self._libraries[key]

    def __call__(self, op: str, kernel: str, dtype: torch.dtype, work_items: int, *args) -> None:
        blocks = launch_blocks(work_items, HOST_THREADS_PER_BLOCK, HOST_MAX_BLOCKS)
        self.launches.append((kernel, blocks, work_items))
        entry_point = getattr(self.library(op, dtype), f"launch_{kernel}")
        entry_point.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
        entry_point.restype = None
        values = [_host_argument(kernel, value) for value in args]
        pointers = (ctypes.c_void_p * max(len(values), 1))(
            *(ctypes.cast(ctypes.pointer(value), ctypes.c_void_p) for value in values)
        )
        entry_point(blocks, HOST_THREADS_PER_BLOCK, pointers)


def _host_argument(kernel: str, value):
    if value is None:
        return ctypes.c_void_p(None)
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu" or not value.is_contiguous():
            raise ValueError(f"{kernel}: host kernels take contiguous CPU tensors")
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**31:
            raise OverflowError(f"{kernel}: {value} does not fit a C int")
        return ctypes.c_int32(value)
    raise TypeError(f"{kernel}: unsupported kernel argument {type(value).__name__}")
