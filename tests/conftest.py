"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# "0" or "1" pins vsdain.precision.native_bfloat16()'s answer for the whole session, so that CI
# runs the precision tests under both answers whatever its CPU says (.ci/run); unset, the CPU's.
NATIVE_BFLOAT16_ENV = "VSDAIN_TEST_NATIVE_BFLOAT16"
# Set by .ci/run: there the real data must be present, and its absence fails instead of skipping.
CI_ENV = "CI"
# Seconds a test outside the slow tier may take (its call, not its fixtures); set by
# ``tools/test.sh --fast``. Unset: no limit.
TIME_LIMIT_ENV = "VSDAIN_TEST_TIME_LIMIT"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real frames and clips beside the checkout; tests using it skip only where it is
    absent (a user's machine), never in CI here."""
    if not SHARED_DATA.is_dir():
        if os.environ.get(CI_ENV):
            pytest.fail(f"{CI_ENV} is set but the real evaluation data is missing: {SHARED_DATA}")
        pytest.skip(f"real evaluation data not present at {SHARED_DATA}")
    return SHARED_DATA


# --- whether the CPU has native bfloat16: one patch point, vsdain.precision -----------------


def _pin_native_bfloat16(monkeypatch: pytest.MonkeyPatch, answer: bool | None) -> None:
    from vsdain import precision

    monkeypatch.setattr(precision, "NATIVE_BFLOAT16_OVERRIDE", answer)


def _session_answer() -> bool | None:
    raw = os.environ.get(NATIVE_BFLOAT16_ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise pytest.UsageError(f"{NATIVE_BFLOAT16_ENV} must be 0, 1 or unset, got {raw!r}")
    return None if not raw else raw == "1"


def pytest_configure(config):
    _session_answer()  # a bad value stops the run before any test


@pytest.fixture(scope="session", autouse=True)
def session_native_bfloat16():
    """The answer ``VSDAIN_TEST_NATIVE_BFLOAT16`` pins for the session, or None (unset: the
    CPU's own)."""
    answer = _session_answer()
    if answer is None:
        yield None
        return
    with pytest.MonkeyPatch.context() as session_patch:
        _pin_native_bfloat16(session_patch, answer)
        yield answer


@pytest.fixture
def pin_native_bfloat16(monkeypatch):
    """A function that pins what ``vsdain.precision.native_bfloat16()`` answers, for every
    caller, until the test ends: True, False, or None for the CPU's own answer."""
    return lambda answer: _pin_native_bfloat16(monkeypatch, answer)


@pytest.fixture(params=[False, True], ids=["emulated-bf16", "native-bf16"])
def native_bf16(request, pin_native_bfloat16) -> bool:
    """Runs the test once as on a CPU without native bfloat16 and once as on one with it;
    the value is the answer pinned."""
    pin_native_bfloat16(request.param)
    return request.param


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


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """A best.pth with random weights in the released layout (one per session)."""
    from checkpoints import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("weights") / "best.pth", seed=3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The fast tier's guard: a test not marked slow that takes longer than
    ``$VSDAIN_TEST_TIME_LIMIT`` seconds fails, so the tier stays fast as tests are added."""
    outcome = yield
    report = outcome.get_result()
    limit = os.environ.get(TIME_LIMIT_ENV)
    if not limit or call.when != "call" or item.get_closest_marker("slow") is not None:
        return
    if report.passed and call.duration > float(limit):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} took {call.duration:.1f} s, more than the fast tier's {limit} s: "
            "make it cheaper, or mark it @pytest.mark.slow if it is an end-to-end check"
        )
