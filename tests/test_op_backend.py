"""Which path the ops take (vsdain.ops.backend): resolution rules, the kernels' self-check and
its fallback, and how a DAIN network holds its path.

Runs without a GPU: the CUDA branches are reached by standing in for CuPy's availability, and
the kernel paths run through the CPU build of the kernel sources (tests/host_kernels.py),
including deliberately broken builds of one op.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import logging
import pickle
import pkgutil
from pathlib import Path

import pytest
import torch
from filter_clips import pattern, random_network
from host_kernels import HostKernels
from op_inputs import uniform
from tolerances import assert_close

import vsdain.ops
from vsdain.ops import backend, cupy_backend
from vsdain.ops.backend import (
    OPS_ENV,
    OpPath,
    OpsBackendError,
    SelfCheckCase,
    describe_backend,
    resolve_op_path,
    self_check,
)
from vsdain.ops.correlation import correlation_reference
from vsdain.ops.kernel_source import KERNEL_DIR, KERNEL_TYPES, OPS
from vsdain.ops.projection import project_flow_reference
from vsdain.ops.warping import adaptive_warp_inference, adaptive_warp_reference

# Each op module's declared self-check, by op name.
SELF_CHECKS = {op: importlib.import_module(f"vsdain.ops.{op}").SELF_CHECK for op in OPS}

NO_CUPY = "ModuleNotFoundError: No module named 'cupy'"
CPU = torch.device("cpu")
# The one line of warping.cu that writes a result; doubling it breaks the kernel's arithmetic
# while it still compiles.
WARP_STORE = "store(warped_plane + c * out_pixels + p.out_pixel, sum);"


@pytest.fixture(autouse=True)
def default_setting(monkeypatch):
    """No VSDAIN_OPS, and no path remembered from another test (paths are cached per
    (device, request), and some tests stand in for CuPy)."""
    monkeypatch.delenv(OPS_ENV, raising=False)
    backend._resolved.cache_clear()
    yield
    backend._resolved.cache_clear()


def op_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(2, 2, 3, 8, 9, generator=g)
    flow = torch.rand(2, 2, 8, 9, generator=g) * 4 - 2
    weight = torch.rand(2, 1, 8, 9, generator=g) + 0.5
    image = torch.rand(2, 3, 8, 9, generator=g)
    kernel = torch.rand(2, 16, 8, 9, generator=g)
    return features[0], features[1], flow, weight, image, kernel


def run_all_ops(**options):
    first, second, flow, weight, image, kernel = op_inputs()
    return (
        vsdain.ops.correlation(first, second, 4, **options),
        vsdain.ops.project_flow(flow, weight, fill_holes=True, **options),
        vsdain.ops.adaptive_warp(image, flow, kernel, differentiable=False, **options),
    )


def reference_results(warp=adaptive_warp_inference):
    """What the reference path gives. For the warp without gradients that is its CPU
    inference form (tested against the reference in test_op_warping.py)."""
    first, second, flow, weight, image, kernel = op_inputs()
    return (
        correlation_reference(first, second, 4),
        project_flow_reference(flow, weight, fill_holes=True),
        warp(image, flow, kernel),
    )


def kernel_path(launch, *, forced: bool = False) -> OpPath:
    return OpPath(CPU, kernels=True, reason="the CPU build of the kernels", forced=forced,
                  launch=launch)  # fmt: skip


# --- resolution rules --------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [None, "auto", "reference", " Reference "])
def test_cpu_tensors_use_the_references(monkeypatch, setting):
    if setting is not None:
        monkeypatch.setenv(OPS_ENV, setting)
    path = resolve_op_path("cpu")  # None reads VSDAIN_OPS
    assert not path.kernels
    for options in ({"backend": path}, {}):
        for actual, expected in zip(run_all_ops(**options), reference_results(), strict=True):
            assert torch.equal(actual, expected)
    assert describe_backend("cpu")[0] == "reference"


def test_backend_argument_reference_works_on_cpu():
    for actual, expected in zip(run_all_ops(backend="reference"), reference_results(), strict=True):
        assert torch.equal(actual, expected)


def test_paths_are_resolved_once_per_device_and_request(monkeypatch):
    assert resolve_op_path("cpu") is resolve_op_path(CPU, "auto")
    assert resolve_op_path("cpu", "reference") is not resolve_op_path("cpu", "auto")
    monkeypatch.setenv(OPS_ENV, "reference")
    assert resolve_op_path("cpu") is resolve_op_path("cpu", "reference")
    assert "'reference' requested" in resolve_op_path("cpu").reason


def test_forcing_cuda_for_cpu_tensors_raises_a_clear_error(monkeypatch):
    first, second, *_ = op_inputs()
    with pytest.raises(
        OpsBackendError, match=r"demanded \('cuda' requested\).* tensors are on cpu"
    ):
        vsdain.ops.correlation(first, second, backend="cuda")
    with pytest.raises(OpsBackendError, match="tensors are on cpu"):
        resolve_op_path("cpu", "cuda")
    monkeypatch.setenv(OPS_ENV, "cuda")
    with pytest.raises(
        OpsBackendError, match=r"demanded \('cuda' requested\).* tensors are on cpu"
    ):
        resolve_op_path("cpu")
    # The argument wins over the environment: the public ops never read it.
    assert torch.equal(
        vsdain.ops.correlation(first, second, backend="reference"),
        correlation_reference(first, second),
    )
    assert torch.equal(vsdain.ops.correlation(first, second), correlation_reference(first, second))
    assert not resolve_op_path("cpu", "auto").kernels


def test_forcing_cuda_without_cupy_names_the_remedy(monkeypatch):
    monkeypatch.setattr(cupy_backend, "cupy_unavailable_reason", lambda: NO_CUPY)
    with pytest.raises(OpsBackendError, match=r"CuPy does not import .*vsdain\[cuda12\]"):
        resolve_op_path(torch.device("cuda", 0), "cuda")


def test_invalid_settings_raise(monkeypatch):
    first, second, *_ = op_inputs()
    with pytest.raises(OpsBackendError, match="backend must be None or one of"):
        vsdain.ops.correlation(first, second, backend="gpu")
    with pytest.raises(OpsBackendError, match="backend must be None or one of"):
        resolve_op_path("cpu", "kernels")
    monkeypatch.setenv(OPS_ENV, "kernels")
    with pytest.raises(OpsBackendError, match="VSDAIN_OPS='kernels' is not one of"):
        resolve_op_path("cpu")


def test_describe_backend_never_raises_for_a_bad_setting(monkeypatch):
    monkeypatch.setenv(OPS_ENV, "kernels")
    path, reason = describe_backend(torch.device("cpu"))
    assert path == "error" and "auto, reference, cuda" in reason
    monkeypatch.setenv(OPS_ENV, "cuda")
    path, reason = describe_backend("cpu")
    assert path == "error" and "tensors are on cpu" in reason
    assert describe_backend("cpu", "gpu")[0] == "error"


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
    assert (path, reason) == ("reference", "forced ('reference' requested)")
    monkeypatch.setenv(OPS_ENV, "cuda")
    assert "forced ('cuda' requested)" in describe_backend("cuda:1")[1]
    assert describe_backend("cuda:1", "reference")[0] == "reference"  # the argument wins


def test_warp_form_follows_the_path_and_the_need_for_gradients(host_kernels):
    references = OpPath(CPU, kernels=False, reason="test")
    assert references.warp_form(differentiable=False) == "inference"
    assert references.warp_form(differentiable=True) == "reference"
    gpu_references = OpPath(torch.device("cuda", 0), kernels=False, reason="test")
    assert gpu_references.warp_form(differentiable=False) == "reference"
    assert kernel_path(host_kernels).warp_form(differentiable=False) == "kernel"
    assert kernel_path(host_kernels).warp_form(differentiable=True) == "kernel"
    assert references.kernel_launcher(SELF_CHECKS["warping"], torch.float32) is None


def test_cupy_launcher_checks_its_arguments_without_cupy():
    with pytest.raises(ValueError, match="one CUDA device"):
        cupy_backend._launch_device("k", (torch.zeros(1), torch.zeros(1)))
    with pytest.raises(ValueError, match="contiguous"):
        cupy_backend._kernel_argument("k", torch.zeros(2, 2).t())
    with pytest.raises(TypeError, match="unsupported"):
        cupy_backend._kernel_argument("k", 1.5)
    assert cupy_backend._kernel_argument("k", None) == 0
    assert cupy_backend._kernel_argument("k", 7).dtype.itemsize == 4


# --- an OpPath with kernels runs the kernels -------------------------------------------------


def test_a_kernel_path_passed_as_backend_runs_the_kernels(host_kernels):
    """Where a path has kernels, the public ops run them through its launcher; here the
    launcher is the CPU build, so the whole path runs on CPU tensors."""
    before = len(host_kernels.launches)
    results = run_all_ops(backend=kernel_path(host_kernels))
    for actual, expected in zip(results, reference_results(adaptive_warp_reference), strict=True):
        assert_close(actual, expected)
    launched = {kernel for kernel, _, _ in host_kernels.launches[before:]}
    assert {"correlation_forward", "project_flow_splat", "adaptive_warp_forward"} <= launched
    # A window through the public function reaches the kernel with its origin.
    _, _, flow, _, image, kernel = op_inputs()
    window = (slice(None), slice(None), slice(2, 7), slice(3, 8))
    part = vsdain.ops.adaptive_warp(
        image, flow[window], kernel[window], (2, 3), backend=kernel_path(host_kernels)
    )
    assert torch.equal(part, vsdain.ops.adaptive_warp(
        image, flow, kernel, backend=kernel_path(host_kernels))[window])  # fmt: skip


@pytest.mark.parametrize("dtype", list(KERNEL_TYPES), ids=str)
@pytest.mark.parametrize("op", OPS)
def test_correct_kernels_pass_the_self_check(host_kernels, op, dtype, caplog):
    case = SELF_CHECKS[op]
    assert self_check(case, dtype, CPU, host_kernels) is None
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        assert kernel_path(host_kernels, forced=True).kernel_launcher(case, dtype) is host_kernels
    assert not caplog.records


def takes_a_launcher(function) -> bool:
    launch = inspect.signature(function).parameters.get("launch")
    return launch is not None and launch.kind is inspect.Parameter.KEYWORD_ONLY


def op_modules_with_kernels() -> dict[str, object]:
    """The modules of vsdain.ops that run kernels: those with a ``<name>.cu`` beside them and
    those defining a function that takes a KernelLauncher as the keyword ``launch``."""
    found = {}
    for info in pkgutil.iter_modules(vsdain.ops.__path__):
        module = importlib.import_module(f"vsdain.ops.{info.name}")
        functions = [
            function
            for _, function in inspect.getmembers(module, inspect.isfunction)
            if function.__module__ == module.__name__
        ]
        if (KERNEL_DIR / f"{info.name}.cu").is_file() or any(map(takes_a_launcher, functions)):
            found[info.name] = module
    return found


def test_every_op_module_with_kernels_declares_its_self_check():
    modules = op_modules_with_kernels()
    assert set(modules) == set(OPS) == {path.stem for path in KERNEL_DIR.glob("*.cu")}
    for name, module in modules.items():
        case = getattr(module, "SELF_CHECK", None)
        assert isinstance(case, SelfCheckCase), f"vsdain.ops.{name} declares no SELF_CHECK"
        assert case.op == module.OP == name


def test_the_backend_imports_none_of_the_ops():
    """The ops import the backend; the backend knows them only through the cases they pass."""
    tree = ast.parse(Path(backend.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.removeprefix("vsdain.ops.") for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = "." * node.level + (node.module or "")
            if package in (".", "vsdain.ops"):  # from . import correlation
                imported |= {alias.name for alias in node.names}
            else:  # from .correlation import ..., from vsdain.ops.correlation import ...
                imported.add(package.removeprefix("vsdain.ops.").lstrip("."))
    assert imported, "no imports found: the parse went wrong"
    assert not imported & set(op_modules_with_kernels())


# --- broken kernels: the self-check and its fallback -----------------------------------------


def broken_warping(kind: str) -> str:
    source = (KERNEL_DIR / "warping.cu").read_text(encoding="utf-8")
    assert source.count(WARP_STORE) == 1, "the warp kernel's store changed; update WARP_STORE"
    if kind == "wrong":
        return source.replace(WARP_STORE, WARP_STORE.replace(", sum)", ", 2 * sum)"))
    return source + "\nthis is not CUDA;\n"


BROKEN = {
    "wrong": "disagrees with its reference",
    "uncompilable": "failed to run (HostCompileError",
}


def warp_launches(launcher: HostKernels) -> int:
    return sum(kernel.startswith("adaptive_warp") for kernel, _, _ in launcher.launches)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_kernel_falls_back_to_the_reference_under_auto(tmp_path, caplog, kind):
    broken = HostKernels(tmp_path, kernels={"warping": broken_warping(kind)})
    path = kernel_path(broken)
    image, flow, kernel = (
        uniform(1, c, 6, 7, seed=90 + c, dtype=torch.float32) for c in (3, 2, 16)
    )
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        first = vsdain.ops.adaptive_warp(image, flow, kernel, backend=path)
    assert torch.equal(first, adaptive_warp_reference(image, flow, kernel))
    (record,) = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "the warping CUDA kernel for torch.float32 on cpu" in message and BROKEN[kind] in message
    assert "using the PyTorch reference for warping from now on" in message
    assert warp_launches(broken) == 1  # the self-check's, and none since

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        again = vsdain.ops.adaptive_warp(image, flow, kernel, backend=path)
        vsdain.ops.adaptive_warp(
            image, flow[..., :3, :4], kernel[..., :3, :4], (1, 2), backend=path
        )
    assert torch.equal(again, first)
    assert warp_launches(broken) == 1
    assert not caplog.records  # reported once
    # The other ops' kernels are unaffected and still run.
    first_features, second_features = image[:, :2], flow
    correlation = vsdain.ops.correlation(first_features, second_features, 2, backend=path)
    assert any(kernel == "correlation_forward" for kernel, _, _ in broken.launches)
    assert_close(correlation, correlation_reference(first_features, second_features, 2))


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_kernel_raises_when_the_kernels_are_forced(tmp_path, kind):
    broken = HostKernels(tmp_path, kernels={"warping": broken_warping(kind)})
    path = kernel_path(broken, forced=True)
    image, flow, kernel = (
        uniform(1, c, 6, 7, seed=90 + c, dtype=torch.float32) for c in (3, 2, 16)
    )
    expected = rf"the warping CUDA kernel for torch\.float32 on cpu {BROKEN[kind][:12]}"
    with pytest.raises(OpsBackendError, match=expected) as raised:
        vsdain.ops.adaptive_warp(image, flow, kernel, backend=path)
    assert "VSDAIN_OPS=cuda forbids falling back" in str(raised.value)


# --- a network holds its path ----------------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    """One network for the module, not copied per test (a copy costs seconds): each test sets
    the path it starts from."""
    return random_network()


@pytest.fixture(scope="module")
def frames():
    first, second = (torch.from_numpy(pattern(n)).unsqueeze(0) for n in (0, 1))
    return first, second


def interpolate(model, frames):
    with torch.no_grad():
        return model.interpolate(*frames, [0.5])[0]


def test_network_reads_the_environment_when_use_ops_is_called(monkeypatch, network):
    model = network
    monkeypatch.setenv(OPS_ENV, "reference")
    model.use_ops()
    monkeypatch.setenv(OPS_ENV, "kernels")  # read again only by the next use_ops()
    assert model.op_path is resolve_op_path(CPU, "reference")
    with pytest.raises(OpsBackendError, match="VSDAIN_OPS='kernels' is not one of"):
        model.use_ops()
    assert model.use_ops("auto").op_path is resolve_op_path(CPU, "auto")  # the argument wins
    monkeypatch.setenv(OPS_ENV, "cuda")
    with pytest.raises(OpsBackendError, match="tensors are on cpu"):
        model.use_ops().op_path  # noqa: B018 - resolving the path is what raises
    with pytest.raises(OpsBackendError, match="backend must be None or one of"):
        model.use_ops("gpu")


def test_network_runs_on_a_resolved_cpu_path(network, frames):
    model = network.use_ops("auto")
    assert model.op_path is resolve_op_path(CPU, "auto") and not model.op_path.kernels
    middle = interpolate(model, frames)
    assert middle.shape == frames[0].shape and torch.isfinite(middle).all()
    assert model.use_ops("reference").op_path is resolve_op_path(CPU, "reference")


def test_network_copies_and_pickles_with_a_resolved_path(network):
    model = network.use_ops("reference")
    assert model.op_path is not None  # resolved: it holds a lock, which cannot be copied
    first, second, *_ = op_inputs()
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone._ops_request == "reference"
        assert clone.op_path is resolve_op_path(CPU, "reference")
        copied = clone.state_dict()
        assert copied.keys() == model.state_dict().keys()
        assert all(torch.equal(value, copied[key]) for key, value in model.state_dict().items())
        assert torch.equal(
            vsdain.ops.correlation(first, second, backend=clone.op_path),
            correlation_reference(first, second),
        )


# --- on a GPU ----------------------------------------------------------------------------------


@pytest.mark.cuda
def test_auto_chooses_the_kernels_for_cuda_tensors():
    path, reason = describe_backend(torch.device("cuda"))
    assert path == "cuda", reason
    assert resolve_op_path("cuda").kernels


@pytest.mark.cuda
def test_compiled_kernels_are_reused():
    from vsdain.ops.correlation import correlation_kernel

    launch = cupy_backend.launch_on_current_stream
    first = uniform(1, 4, 8, 8, seed=24, dtype=torch.float32).cuda()
    correlation_kernel(first, first, 4, launch=launch)
    modules = cupy_backend._compiled_module.cache_info()
    functions = cupy_backend._kernel_function.cache_info()
    correlation_kernel(first, first, 4, launch=launch)
    assert cupy_backend._compiled_module.cache_info().misses == modules.misses
    assert cupy_backend._kernel_function.cache_info().misses == functions.misses
    assert cupy_backend._kernel_function.cache_info().hits > functions.hits
