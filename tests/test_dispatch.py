"""Choosing between the CUDA kernels and the PyTorch references (vsdain.ops.dispatch).

Runs without a GPU: the CUDA branches are reached by standing in for CuPy's availability and,
for the wiring test, by launching the kernels through the CPU harness.
"""

from __future__ import annotations

import pytest
import torch
from host_kernels import HostKernels
from tolerances import assert_close

import vsdain.ops
from vsdain.ops import cupy_backend, dispatch
from vsdain.ops.correlation import correlation_reference
from vsdain.ops.dispatch import OPS_ENV, OpsBackendError, describe_backend
from vsdain.ops.projection import project_flow_reference
from vsdain.ops.warping import adaptive_warp_inference

NO_CUPY = "ModuleNotFoundError: No module named 'cupy'"


@pytest.fixture(autouse=True)
def default_setting(monkeypatch):
    monkeypatch.delenv(OPS_ENV, raising=False)


def op_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(2, 2, 3, 8, 9, generator=g)
    flow = torch.rand(2, 2, 8, 9, generator=g) * 4 - 2
    weight = torch.rand(2, 1, 8, 9, generator=g) + 0.5
    image = torch.rand(2, 3, 8, 9, generator=g)
    kernel = torch.rand(2, 16, 8, 9, generator=g)
    return features[0], features[1], flow, weight, image, kernel


def run_all_ops(**backend):
    first, second, flow, weight, image, kernel = op_inputs()
    return (
        vsdain.ops.correlation(first, second, 4, **backend),
        vsdain.ops.project_flow(flow, weight, fill_holes=True, **backend),
        vsdain.ops.adaptive_warp(image, flow, kernel, **backend),
    )


def reference_results():
    """What the reference path gives. For the warp without gradients that is its CPU
    inference form (tested against the reference in test_ops_reference.py)."""
    first, second, flow, weight, image, kernel = op_inputs()
    return (
        correlation_reference(first, second, 4),
        project_flow_reference(flow, weight, fill_holes=True),
        adaptive_warp_inference(image, flow, kernel),
    )


@pytest.mark.parametrize("setting", [None, "auto", "reference", " Reference "])
def test_cpu_tensors_use_the_references(monkeypatch, setting):
    if setting is not None:
        monkeypatch.setenv(OPS_ENV, setting)
    for actual, expected in zip(run_all_ops(), reference_results(), strict=True):
        assert torch.equal(actual, expected)
    assert describe_backend("cpu")[0] == "reference"


def test_backend_argument_reference_works_on_cpu():
    for actual, expected in zip(run_all_ops(backend="reference"), reference_results(), strict=True):
        assert torch.equal(actual, expected)


def test_forcing_cuda_for_cpu_tensors_raises_a_clear_error(monkeypatch):
    first, second, *_ = op_inputs()
    with pytest.raises(OpsBackendError, match=r"backend='cuda' forces .* tensors are on cpu"):
        vsdain.ops.correlation(first, second, backend="cuda")
    monkeypatch.setenv(OPS_ENV, "cuda")
    with pytest.raises(OpsBackendError, match=r"VSDAIN_OPS=cuda forces .* tensors are on cpu"):
        vsdain.ops.correlation(first, second)
    # The argument wins over the environment.
    assert torch.equal(
        vsdain.ops.correlation(first, second, backend="reference"),
        correlation_reference(first, second),
    )


def test_forcing_cuda_without_cupy_names_the_remedy(monkeypatch):
    monkeypatch.setattr(cupy_backend, "cupy_unavailable_reason", lambda: NO_CUPY)
    with pytest.raises(OpsBackendError, match=r"CuPy does not import .*vsdain\[cuda12\]"):
        dispatch._choose(torch.device("cuda", 0), "cuda")


def test_invalid_settings_raise(monkeypatch):
    first, second, *_ = op_inputs()
    with pytest.raises(OpsBackendError, match="backend must be None or one of"):
        vsdain.ops.correlation(first, second, backend="gpu")
    monkeypatch.setenv(OPS_ENV, "kernels")
    with pytest.raises(OpsBackendError, match="VSDAIN_OPS='kernels' is not one of"):
        vsdain.ops.correlation(first, second)


def test_describe_backend_never_raises_for_a_bad_setting(monkeypatch):
    monkeypatch.setenv(OPS_ENV, "kernels")
    path, reason = describe_backend(torch.device("cpu"))
    assert path == "error" and "auto, reference, cuda" in reason
    monkeypatch.setenv(OPS_ENV, "cuda")
    path, reason = describe_backend("cpu")
    assert path == "error" and "tensors are on cpu" in reason


def test_describe_backend_cuda_device_without_cupy(monkeypatch):
    monkeypatch.setattr(cupy_backend, "cupy_unavailable_reason", lambda: NO_CUPY)
    path, reason = describe_backend("cuda:0")
    assert path == "reference"
    assert "No module named 'cupy'" in reason and "vsdain[cuda12]" in reason


def test_describe_backend_cuda_device_with_cupy(monkeypatch):
    monkeypatch.setattr(cupy_backend, "cupy_unavailable_reason", lambda: None)
    monkeypatch.setattr(cupy_backend, "cupy_description", lambda: "CuPy 99.0, CUDA runtime 13.0")
    path, reason = describe_backend(torch.device("cuda", 1))
    assert path == "cuda"
    assert "CuPy importable" in reason and "CuPy 99.0" in reason
    monkeypatch.setenv(OPS_ENV, "reference")
    path, reason = describe_backend("cuda:1")
    assert (path, reason) == ("reference", "forced by VSDAIN_OPS=reference")
    monkeypatch.setenv(OPS_ENV, "cuda")
    assert "forced by VSDAIN_OPS=cuda" in describe_backend("cuda:1")[1]


def test_kernel_path_runs_the_kernels_through_the_cupy_launcher(monkeypatch, tmp_path):
    """Where the kernels are chosen, the ops call vsdain.ops.functions with the CuPy launcher;
    here the launcher is swapped for the CPU harness so the whole path runs on CPU tensors."""
    host = HostKernels(tmp_path)
    monkeypatch.setattr(cupy_backend, "launch_on_current_stream", host)
    monkeypatch.setattr(dispatch, "_uses_kernels", lambda device, backend: True)
    for actual, expected in zip(run_all_ops(), reference_results(), strict=True):
        assert_close(actual, expected)
    launched = {kernel for kernel, _, _ in host.launches}
    assert {"correlation_forward", "project_flow_splat", "adaptive_warp_forward"} <= launched


def test_cupy_launcher_checks_its_arguments_without_cupy():
    with pytest.raises(ValueError, match="one CUDA device"):
        cupy_backend._launch_device("k", (torch.zeros(1), torch.zeros(1)))
    with pytest.raises(ValueError, match="contiguous"):
        cupy_backend._kernel_argument("k", torch.zeros(2, 2).t())
    with pytest.raises(TypeError, match="unsupported"):
        cupy_backend._kernel_argument("k", 1.5)
    assert cupy_backend._kernel_argument("k", None) == 0
    assert cupy_backend._kernel_argument("k", 7).dtype.itemsize == 4
