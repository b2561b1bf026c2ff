"""Which path DAIN's ops take on a device: the CUDA kernels or the PyTorch references.

The choice is made once, when a network is built or loaded (or when an op is called with an
explicit ``backend``), and kept in an :class:`OpPath`; nothing reads a process-wide switch on
each call. The rule for ``"auto"``: tensors on a CUDA device, with CuPy importable, use the
kernels; everything else uses the references. ``"reference"`` always uses the references (the
escape hatch if kernels misbehave); ``"cuda"`` always uses the kernels, and an op that cannot
run them raises :class:`OpsBackendError` instead of quietly falling back.

The environment variable ``VSDAIN_OPS`` (``auto``, ``reference`` or ``cuda``) gives the request
for networks built without one (:meth:`vsdain.model.DAIN.use_ops`); it is read then, not per call.

Kernels are trusted only after a check: on first use per op and dtype, each kernel runs on a
tiny input and is compared with its reference. Under ``"auto"`` a kernel that fails to compile
or disagrees is reported once as a warning and that op uses its reference from then on; under
``"cuda"`` the failure raises. Each op module declares its own check as a
:class:`SelfCheckCase` (``SELF_CHECK``) and hands it to :meth:`OpPath.kernel_launcher`, so this
module knows no op by name and imports none of them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

from . import cupy_backend
from .kernel_source import KernelLauncher

log = logging.getLogger(__name__)

OPS_ENV = "VSDAIN_OPS"
BACKENDS = ("auto", "reference", "cuda")
CUDA_EXTRAS_HINT = "install CuPy for your CUDA: pip install 'vsdain[cuda12]' or 'vsdain[cuda13]'"

WarpForm = Literal["kernel", "inference", "reference"]


class OpsBackendError(RuntimeError):
    """The requested op path cannot run here, or the request itself is invalid."""


@dataclass(eq=False)
class OpPath:
    """The op path for tensors on ``device``.

    kernels: whether the CUDA kernels run (each op still falls back to its reference if its
    self-check fails under ``"auto"``); reason: one line saying why, for ``vsdain info``;
    forced: the kernels were demanded (``"cuda"``), so failures raise; launch: what runs a
    kernel (default CuPy on PyTorch's current stream; the tests pass their CPU build).
    """

    device: torch.device
    kernels: bool
    reason: str
    forced: bool = False
    launch: KernelLauncher = cupy_backend.launch_on_current_stream
    _verdicts: dict[tuple[str, torch.dtype], bool] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def kernel_launcher(self, case: SelfCheckCase, dtype: torch.dtype) -> KernelLauncher | None:
        """The launcher for the kernels of ``case.op`` on ``dtype`` tensors, or None where its
        reference runs. The first call per (op, dtype) runs ``case`` (see the module
        docstring)."""
        if not self.kernels:
            return None
        key = (case.op, dtype)
        with self._lock:
            if key not in self._verdicts:
                self._verdicts[key] = self._check(case, dtype)
            return self.launch if self._verdicts[key] else None

    def warp_form(self, differentiable: bool) -> WarpForm:
        """How the adaptive warp runs: the kernel, the CPU inference form (which reads images
        channels-last and has no autograd), or the differentiable reference. The one place
        that rule is written; :func:`vsdain.ops.warping.warp_layout` follows it."""
        if self.kernels:
            return "kernel"
        if self.device.type == "cpu" and not differentiable:
            return "inference"
        return "reference"

    def _check(self, case: SelfCheckCase, dtype: torch.dtype) -> bool:
        problem = self_check(case, dtype, self.device, self.launch)
        if problem is None:
            return True
        message = f"the {case.op} CUDA kernel for {dtype} on {self.device} {problem}"
        if self.forced:
            raise OpsBackendError(f"{message}; {OPS_ENV}=cuda forbids falling back")
        log.warning("%s; using the PyTorch reference for %s from now on", message, case.op)
        return False


def resolve_op_path(device: torch.device | str, backend: str | None = None) -> OpPath:
    """The :class:`OpPath` for tensors on ``device``.

    backend: "auto", "reference" or "cuda"; None reads ``VSDAIN_OPS`` (unset: "auto").
    Raises :class:`OpsBackendError` for an unknown request, and for "cuda" where the kernels
    cannot run (a CPU device, or CuPy not importable). Paths are remembered per (device,
    request), so a kernel's self-check runs once per process.
    """
    return _resolved(torch.device(device), requested_backend(backend))


def requested_backend(backend: str | None = None) -> str:
    """``backend`` checked, or the ``VSDAIN_OPS`` request when it is None."""
    if backend is None:
        raw = os.environ.get(OPS_ENV, "")
        requested = raw.strip().lower() or "auto"
        if requested not in BACKENDS:
            raise OpsBackendError(f"{OPS_ENV}={raw!r} is not one of {', '.join(BACKENDS)}")
        return requested
    if backend not in BACKENDS:
        raise OpsBackendError(
            f"backend must be None or one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    return backend


def describe_backend(device: torch.device | str, backend: str | None = None) -> tuple[str, str]:
    """Which op path runs for tensors on ``device``, and why, for ``vsdain info``.

    Returns ``(path, reason)``: path is "cuda" (the CuPy kernels), "reference" (the PyTorch
    references) or "error" (a request that makes every op call on this device raise); reason
    is one line of plain text. Never raises for a bad setting: the info command reports it.
    Checking CuPy imports it (about a second, once).
    """
    try:
        path = resolve_op_path(device, backend)
    except OpsBackendError as error:
        return "error", str(error)
    if not path.kernels:
        return "reference", path.reason
    return "cuda", f"{path.reason} ({cupy_backend.cupy_description()})"


@functools.lru_cache(maxsize=16)
def _resolved(device: torch.device, requested: str) -> OpPath:
    source = f"{requested!r} requested"
    if requested == "reference":
        return OpPath(device, kernels=False, reason=f"forced ({source})")
    forced = requested == "cuda"
    if device.type != "cuda":
        if forced:
            raise OpsBackendError(
                f"the CUDA kernels were demanded ({source}), but the tensors are on {device}; "
                "move them to a CUDA device or use the references"
            )
        return OpPath(device, False, f"the kernels are CUDA-only and tensors are on {device}")
    unavailable = cupy_backend.cupy_unavailable_reason()
    if unavailable is not None:
        if forced:
            raise OpsBackendError(
                f"the CUDA kernels were demanded ({source}), but CuPy does not import "
                f"({unavailable}); {CUDA_EXTRAS_HINT}"
            )
        return OpPath(device, False, f"slower, as CuPy does not import ({unavailable}); "
                      f"{CUDA_EXTRAS_HINT}")  # fmt: skip
    why = f"forced ({source})" if forced else "CUDA device and CuPy importable"
    return OpPath(device, True, f"{why}; kernels compiled at run time", forced=forced)


# --- self-check ------------------------------------------------------------------------------

# The self-check's input: (1, C, 5, 7) tensors, small enough to compile and run in moments, and
# with an odd width so that no op's indexing happens to work only on square or even sizes.
SELF_CHECK_SIZE = (5, 7)
# Agreement a kernel must reach with its reference on the self-check's tiny input, by the
# dtype the kernel computes in (float16 stores results in half precision).
_SELF_CHECK_TOLERANCE = {torch.float16: 1e-2, torch.float32: 1e-4, torch.float64: 1e-8}


class SelfCheckInput(Protocol):
    """Makes one (1, channels, *SELF_CHECK_SIZE) input of the self-check, uniform in [low,
    high), in the dtype and on the device being checked."""

    def __call__(self, channels: int, *, low: float = -1.0, high: float = 1.0) -> torch.Tensor: ...


@dataclass(frozen=True)
class SelfCheckCase:
    """One op's self-check, declared beside the op (its module's ``SELF_CHECK``).

    op: the op's name, as in its kernel file ``<op>.cu`` and in the warnings; inputs: makes the
    inputs from a :class:`SelfCheckInput`; kernel: ``kernel(*inputs, launch=launch)`` runs the
    kernels; reference: ``reference(*inputs)`` runs the reference (float16 inputs are given
    to it in float32).
    """

    op: str
    inputs: Callable[[SelfCheckInput], tuple[torch.Tensor, ...]]
    kernel: Callable[..., torch.Tensor]
    reference: Callable[..., torch.Tensor]


def self_check(
    case: SelfCheckCase, dtype: torch.dtype, device: torch.device, launch: KernelLauncher
) -> str | None:
    """Run ``case``'s kernel on its tiny fixed input on ``device`` through ``launch`` and
    compare it with the reference; None when they agree, else what went wrong (as a phrase)."""
    generator = torch.Generator().manual_seed(0)
    height, width = SELF_CHECK_SIZE

    def tensor(channels: int, *, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
        shape = (1, channels, height, width)
        values = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low)
        return (values + low).to(device=device, dtype=dtype)

    inputs = case.inputs(tensor)
    try:
        with torch.no_grad():
            actual = case.kernel(*inputs, launch=launch)
    except Exception as error:  # a compile or launch failure is what this check is for
        return f"failed to run ({type(error).__name__}: {' '.join(str(error).split())[:300]})"
    with torch.no_grad():
        expected = case.reference(*[value.float() if dtype == torch.float16 else value
                                    for value in inputs])  # fmt: skip
    difference = (actual.double() - expected.double()).abs().nan_to_num(nan=float("inf"))
    largest = difference.max().item()
    if largest > _SELF_CHECK_TOLERANCE.get(dtype, 1e-2):
        return f"disagrees with its reference (largest difference {largest:.3g})"
    return None
