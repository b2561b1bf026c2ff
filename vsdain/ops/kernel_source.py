"""The ops' CUDA kernel sources, how they are put together for a compiler, and what every op's
autograd Function needs to launch them.

Each op's kernels live beside its Python module, in ``<op>.cu``, as plain CUDA C++ that includes
nothing. A compiler gets one translation unit per (op, dtype)::

    runtime prelude   device.cuh on the GPU; the tests' host_runtime.h on the CPU
    common.cuh        half_t, load/store, clamp_index, GRID_STRIDE_LOOP
    typedefs          scalar_t (storage type of the op's tensors), accum_t (arithmetic type)
    <op>.cu           the kernels, each ``extern "C" __global__``

Only the prelude differs between the GPU build and the tests' CPU build, so the CPU tests run
the very source the GPU compiles. A :class:`KernelLauncher` runs one kernel: CuPy's on the GPU
(:func:`vsdain.ops.cupy_backend.launch_on_current_stream`), the tests' C++ build on the CPU.
Nothing here needs CuPy or a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import torch

KernelArgument = torch.Tensor | int | None


class KernelLauncher(Protocol):
    """Runs one kernel of ``<op>.cu`` compiled for ``dtype`` (the scalar_t of the build).

    ``work_items`` is the trip count of the kernel's grid-stride loop (>= 1). ``args`` follow
    the kernel's C signature: a tensor passes its data pointer (it must be contiguous and on
    the launch's device), None passes a null pointer, and an int passes a C ``int``.
    """

    def __call__(
        self, op: str, kernel: str, dtype: torch.dtype, work_items: int, *args: KernelArgument
    ) -> None: ...


KERNEL_DIR = Path(__file__).resolve().parent
DEVICE_PRELUDE = KERNEL_DIR / "device.cuh"
COMMON_HEADER = KERNEL_DIR / "common.cuh"
OPS = ("correlation", "projection", "warping")

# NVRTC options for every build. The defaults are kept on purpose: no fast math, so NaN and
# infinite flow compare exactly as in the references.
COMPILE_OPTIONS: tuple[str, ...] = ("--std=c++17",)

THREADS_PER_BLOCK = 256
# Grid-stride loops cover any size, so the grid is capped; 4096 blocks of 256 threads already
# fill the largest GPUs many times over.
MAX_BLOCKS = 4096


@dataclass(frozen=True)
class KernelTypes:
    """How a torch dtype is spelled inside the kernels."""

    scalar: str  # C type of the op's input and output tensors
    accum: str  # C type sums are kept in, and of gradients and intermediate buffers
    accum_dtype: torch.dtype  # torch dtype of the accum_t buffers


# float16 is stored as half but summed in float32, never in half precision.
KERNEL_TYPES = MappingProxyType(
    {
        torch.float16: KernelTypes("half_t", "float", torch.float32),
        torch.float32: KernelTypes("float", "float", torch.float32),
        torch.float64: KernelTypes("double", "double", torch.float64),
    }
)

_KERNEL_NAME = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')


def kernel_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in for inputs of ``dtypes``: their promotion when kernels
    exist for it, else float32 (bfloat16, which the kernels do not store, is exact in it)."""
    promoted = dtypes[0]
    for dtype in dtypes[1:]:
        promoted = torch.promote_types(promoted, dtype)
    return promoted if promoted in KERNEL_TYPES else torch.float32


def render_source(
    op: str, dtype: torch.dtype, prelude: Path = DEVICE_PRELUDE, *, kernels: str | None = None
) -> str:
    """The translation unit for ``op``'s kernels on ``dtype`` tensors (see the module doc).

    ``#line`` markers keep compiler messages pointing at the original files. ``kernels``
    replaces the text of ``<op>.cu`` (the tests build deliberately broken kernels with it).
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    if dtype not in KERNEL_TYPES:
        raise ValueError(
            f"no kernels for {dtype}; expected one of {', '.join(map(str, KERNEL_TYPES))}"
        )
    types = KERNEL_TYPES[dtype]
    parts = [
        _with_line_marker(prelude),
        _with_line_marker(COMMON_HEADER),
        f'#line 1 "<{op} types>"\n'
        f"typedef {types.scalar} scalar_t;\ntypedef {types.accum} accum_t;\n",
        _with_line_marker(KERNEL_DIR / f"{op}.cu")
        if kernels is None
        else f'#line 1 "{op}.cu"\n' + kernels,
    ]
    return "\n".join(parts)


def kernel_names(source: str) -> tuple[str, ...]:
    """Names of the ``extern "C" __global__`` kernels defined in ``source``."""
    return tuple(_KERNEL_NAME.findall(source))


def launch_blocks(
    work_items: int, threads: int = THREADS_PER_BLOCK, max_blocks: int = MAX_BLOCKS
) -> int:
    """Blocks for a grid-stride launch over ``work_items`` (>= 1) with ``threads`` per block."""
    if work_items < 1:
        raise ValueError(f"a launch needs at least one work item, got {work_items}")
    return min(-(-work_items // threads), max_blocks)


def _with_line_marker(path: Path) -> str:
    return f'#line 1 "{path.name}"\n' + path.read_text(encoding="utf-8")


class OpKernels:
    """The kernels of one op built for one dtype: ``kernels(name, work_items, *args)``."""

    def __init__(self, launch: KernelLauncher, op: str, dtype: torch.dtype) -> None:
        self.launch = launch
        self.op = op
        self.dtype = dtype

    def __call__(self, kernel: str, work_items: int, *args: KernelArgument) -> None:
        self.launch(self.op, kernel, self.dtype, work_items, *args)


def accum_empty(shape, like: torch.Tensor) -> torch.Tensor:
    """Uninitialised accum_t buffer on ``like``'s device, for kernels that write every element."""
    return torch.empty(shape, dtype=KERNEL_TYPES[like.dtype].accum_dtype, device=like.device)


def accum_zeros(shape, like: torch.Tensor) -> torch.Tensor:
    """Zeroed accum_t buffer on ``like``'s device, for kernels that accumulate."""
    return torch.zeros(shape, dtype=KERNEL_TYPES[like.dtype].accum_dtype, device=like.device)
