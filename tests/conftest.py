"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real frames and clips beside the checkout; tests using it skip only where it is
    absent (a user's machine), never in CI here."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real evaluation data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def random_dain():
    """A DAIN network in eval mode with the reference initialisation and a fixed seed.
    Random weights: outputs are checked for structure and exactness, never for quality."""
    from vsdain.model import DAIN

    torch.manual_seed(1234)
    return DAIN().eval()


# --- op backends: the references, the kernels compiled as C++ on the CPU, CuPy on a GPU ----

OP_BACKENDS = ["reference", "host", pytest.param("cuda", marks=pytest.mark.cuda)]
KERNEL_BACKENDS = ["host", pytest.param("cuda", marks=pytest.mark.cuda)]


def cuda_unavailable_reason() -> str | None:
    """Why the tests marked ``cuda`` cannot run here, or None where they can."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    from vsdain.ops import cupy_backend

    unavailable = cupy_backend.cupy_unavailable_reason()
    return None if unavailable is None else f"CuPy does not import: {unavailable}"


def pytest_collection_modifyitems(config, items):
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    reason = cuda_unavailable_reason() if cuda_items else None
    for item in cuda_items if reason is not None else []:
        item.add_marker(pytest.mark.skip(reason=f"needs CUDA with CuPy: {reason}"))


@pytest.fixture(scope="session")
def host_kernels(tmp_path_factory):
    """The kernel sources compiled as C++ on first use per (op, dtype), for the session."""
    from host_kernels import HostKernels

    return HostKernels(tmp_path_factory.mktemp("host_kernels"))


def _op_backend(name: str, request):
    from op_inputs import OpBackend

    if name == "reference":
        return OpBackend(name, torch.device("cpu"))
    if name == "host":
        return OpBackend(name, torch.device("cpu"), request.getfixturevalue("host_kernels"))
    from vsdain.ops import cupy_backend

    return OpBackend(name, torch.device("cuda"), cupy_backend.launch_on_current_stream)


@pytest.fixture(params=OP_BACKENDS)
def backend(request):
    """An op backend (tests/op_inputs.py OpBackend): "reference" (the PyTorch references on the
    CPU), "host" (the kernels through the *_kernel functions, compiled as C++ on the CPU) or
    "cuda" (the CuPy kernels on a GPU; skipped where there is none)."""
    return _op_backend(request.param, request)


@pytest.fixture(params=KERNEL_BACKENDS)
def kernel_backend(request):
    """As ``backend``, the kernels only: for tests that compare a kernel with the reference."""
    return _op_backend(request.param, request)
