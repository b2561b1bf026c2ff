"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest_plugins = ["pytester"]  # tests/test_suite_guard.py runs a tiny suite under these rules

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# "0" or "1" pins vsdain.precision.native_bfloat16()'s answer for the whole session, so that CI
# runs the precision tests under both answers whatever its CPU says (.ci/run); unset, the CPU's.
NATIVE_BFLOAT16_ENV = "VSDAIN_TEST_NATIVE_BFLOAT16"
# Set by CI services and by .ci/run: there the real data must be present (its absence fails
# instead of skipping).
CI_ENV = "CI"
# Seconds a test outside the slow tier may take, its setup and its call each: tools/test.sh
# --fast sets TIME_LIMIT; 0 or unset, no guard. CI runs without it: a shared machine that
# stalls now and then would fail a submission for its own noise (one run here saw a 2.5 s test
# take 21.9 s), while the fast loop on one's own machine is where the guard does its work.
TIME_LIMIT_ENV = "VSDAIN_TEST_TIME_LIMIT"
TIME_LIMIT = 5.0  # on two quiet CPU cores


def running_in_ci() -> bool:
    return os.environ.get(CI_ENV, "").strip().lower() not in ("", "0", "false", "no")


def time_limit() -> float | None:
    """Seconds the guard allows each phase of a test outside the slow tier; None: no guard."""
    raw = os.environ.get(TIME_LIMIT_ENV, "").strip()
    if not raw:
        return None
    try:
        limit = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"{TIME_LIMIT_ENV} must be a number of seconds, got {raw!r}"
        ) from None
    return limit if limit > 0 else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real frames and clips beside the checkout; tests using it skip where it is absent
    (a user's machine) and fail in CI, where it must be present."""
    if not SHARED_DATA.is_dir():
        if running_in_ci():
            pytest.fail(
                f"the real evaluation data is missing at {SHARED_DATA}, and in CI "
                f"(${CI_ENV}={os.environ[CI_ENV]}) its tests must run, not skip"
            )
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
    _session_answer()  # bad values stop the run before any test
    time_limit()


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


@pytest.fixture
def blended(monkeypatch) -> list:
    """The filter's synthesised frames become blends of their two source frames for the test
    (``filter_clips.blend_instead_of_network``); the list of (first, second, t) asked for."""
    from filter_clips import blend_instead_of_network

    return blend_instead_of_network(monkeypatch)


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


# --- the time guard: outside the slow tier, no test takes more than TIME_LIMIT seconds ---------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test not marked slow whose setup or call took longer than :func:`time_limit` fails
    (an error, for a setup), naming the test, the phase and its time, so that the fast tier
    stays fast as tests are added. A module's shared fixture counts in the setup of the first
    test that uses it."""
    outcome = yield
    report = outcome.get_result()
    limit = time_limit()
    if limit is None or call.when not in ("setup", "call") or not report.passed:
        return
    if item.get_closest_marker("slow") is not None or call.duration <= limit:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid}: its {call.when} took {call.duration:.1f} s, more than the "
        f"{limit:g} s a test outside the slow tier may take (${TIME_LIMIT_ENV}). Make it "
        "cheaper, or mark it @pytest.mark.slow if it is an end-to-end check that needs the time."
    )
