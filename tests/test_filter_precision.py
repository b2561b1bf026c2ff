"""precision=: the default rule, the native-bfloat16 check, and bfloat16 through the filter close
to float32 on a real frame pair (random weights: closeness, not quality).

Whatever this CPU answers, both answers of the native-bfloat16 check are tested: the tests that
depend on it pin it (the ``native_bf16`` and ``pin_native_bfloat16`` fixtures of conftest.py).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import vapoursynth as vs
from filter_clips import clip_from_arrays, planes, random_network

import vsdain
from vsdain import precision
from vsdain.benchmark.precision import PrecisionTiming, compare, report_lines
from vsdain.benchmark.timing import Measurement
from vsdain.filter.arguments import check_precision

core = vs.core

# bfloat16 keeps 8 significant bits (relative step 2**-8 = 0.0039 of a value in [0, 1]); a few
# such steps through the network's layers stay well inside these bounds, while bfloat16 running
# where it must not (an overflow, an unclamped residual) gives differences of order 1.
BFLOAT16_ATOL = 0.05
BFLOAT16_MEAN = 0.01
# A window of the 640x360 reference pair with texture and motion; 112x64 pads to the network's
# smallest input, 128x128.
CROP = (slice(140, 204), slice(260, 372))


def blank(format: int) -> vs.VideoNode:
    return core.std.BlankClip(format=format, width=64, height=48, length=2)


@pytest.mark.parametrize(
    ("format", "device", "expected"),
    [
        (vs.RGBH, "cuda", torch.float16),
        (vs.YUV420PH, "cuda", torch.float16),
        (vs.RGBS, "cuda", torch.float32),
        (vs.YUV420P10, "cuda", torch.float32),
        (vs.RGBH, "cpu", torch.float32),
    ],
)
def test_default_precision(format, device, expected):
    # The rule only; no CUDA device is touched.
    assert check_precision(None, torch.device(device), blank(format)) == expected


# (device, dtype, whether the rule objects where the CPU has no native bfloat16)
CPU_ONLY_REFUSES_BFLOAT16 = [
    pytest.param(device, dtype, device == "cpu" and name == "bfloat16", id=f"{device}-{name}")
    for device in ("cpu", "cuda")
    for name, dtype in precision.PRECISIONS.items()
]


@pytest.mark.parametrize(("device", "dtype", "refused"), CPU_ONLY_REFUSES_BFLOAT16)
def test_the_cpu_bfloat16_rule(native_bf16, device, dtype, refused):
    problem = precision.cpu_bfloat16_problem(torch.device(device), dtype)
    if refused and not native_bf16:
        assert "no native bfloat16" in problem and "slower than in float32" in problem
    else:
        assert problem is None
    assert precision.describe_native_bfloat16().startswith("yes" if native_bf16 else "no")


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
def test_cpu_precisions_with_native_bfloat16(pin_native_bfloat16, name):
    pin_native_bfloat16(True)
    cpu = torch.device("cpu")
    assert check_precision(name, cpu, blank(vs.RGB24)) == precision.PRECISIONS[name]


def test_bfloat16_is_refused_on_a_cpu_without_native_bfloat16(pin_native_bfloat16):
    pin_native_bfloat16(False)
    with pytest.raises(vs.Error, match="'bfloat16' is refused: this CPU has no native") as raised:
        vsdain.Interpolate(blank(vs.RGBS), device="cpu", precision="bfloat16")
    assert "precision='float32'" in str(raised.value)


def test_float16_is_fine_on_cuda():
    assert check_precision("float16", torch.device("cuda"), blank(vs.RGBS)) == torch.float16


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n", True),
        ("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n", True),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n", False),
        ("flags\t\t: fpu sse2 avx2\n", False),
    ],
)
def test_native_bfloat16_reads_the_cpu_flags(
    tmp_path, monkeypatch, pin_native_bfloat16, cpuinfo, native
):
    fake = tmp_path / "cpuinfo"
    fake.write_text(f"processor\t: 0\n{cpuinfo}")
    monkeypatch.setattr(precision, "CPUINFO", fake)
    pin_native_bfloat16(None)  # the CPU's answer, even where the session pins one
    precision.read_native_bfloat16.cache_clear()
    try:
        assert precision.read_native_bfloat16() is native
        assert precision.native_bfloat16() is native
        assert precision.describe_native_bfloat16().startswith("yes" if native else "no")
    finally:
        precision.read_native_bfloat16.cache_clear()


def test_a_pinned_answer_wins_over_the_cpu_flags(tmp_path, monkeypatch, native_bf16):
    fake = tmp_path / "cpuinfo"
    flags = "avx2" if native_bf16 else "avx2 avx512_bf16"  # the CPU says the opposite
    fake.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n")
    monkeypatch.setattr(precision, "CPUINFO", fake)
    precision.read_native_bfloat16.cache_clear()
    try:
        assert precision.read_native_bfloat16() is not native_bf16
        assert precision.native_bfloat16() is native_bf16
    finally:
        precision.read_native_bfloat16.cache_clear()


def test_the_session_answer_is_what_everyone_reads(session_native_bfloat16):
    """VSDAIN_TEST_NATIVE_BFLOAT16 (see conftest.py) reaches the rule; unset, the CPU answers."""
    if session_native_bfloat16 is None:
        assert precision.native_bfloat16() is precision.read_native_bfloat16()
    else:
        assert precision.native_bfloat16() is session_native_bfloat16
    problem = precision.cpu_bfloat16_problem("cpu", torch.bfloat16)
    assert (problem is None) is precision.native_bfloat16()


def test_compare_measures_max_mean_and_psnr():
    reference = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    test = reference.clone()
    test[0, 0, 0, 0] = 0.1
    result = compare(test, reference)
    assert result.max_abs == pytest.approx(0.1)
    assert result.mean_abs == pytest.approx(0.1 / 48)
    assert result.psnr == pytest.approx(10 * np.log10(48 / 0.01))
    assert "PSNR" in "\n".join(report_lines([], result))


def test_report_rows_give_both_times_and_their_ratio():
    timing = PrecisionTiming(2, Measurement(2.0, 4, None), Measurement(1.1, 4, None), True)
    assert timing.ratio == pytest.approx(0.55)
    text = "\n".join(report_lines([("448x256", timing)], None))
    assert "| 448x256 | 2 | 2.00 s | 1.10 s | 0.55x |" in text
    assert "has native bfloat16" in text


@pytest.fixture(scope="module")
def real_pair(shared_data):
    from vsdain.evaluation.datasets import read_rgb

    folder = shared_data / "dain-reference-output"
    return [
        read_rgb(folder / f"{k}.png")[CROP].transpose(2, 0, 1).astype(np.float32) / 255
        for k in (0, 1)
    ]


# The CPU's real answer, not a pinned one: this test needs bfloat16's real speed.
@pytest.mark.skipif(
    not precision.read_native_bfloat16(),
    reason="no native bfloat16 on this CPU: emulated, one 128x128 synthesis takes minutes",
)
def test_bfloat16_through_the_filter_is_close_to_float32(real_pair):
    clip = clip_from_arrays(real_pair)
    full = planes(vsdain.Interpolate(clip, sc=False, model=random_network(), tile=0).get_frame(1))
    # The same seeded network, in bfloat16; tile=0 in both: tiling is not the subject.
    model = random_network().to(torch.bfloat16)
    output = vsdain.Interpolate(clip, sc=False, model=model, tile=0)
    half = planes(output.get_frame(1))
    assert output.format.id == vs.RGBS and half.dtype == np.float32
    difference = np.abs(half.astype(np.float64) - full)
    assert np.isfinite(half).all()
    assert difference.max() <= BFLOAT16_ATOL
    assert difference.mean() <= BFLOAT16_MEAN
    # bfloat16 really ran: its rounding shows somewhere.
    assert difference.max() > 0


# -- the ops take bfloat16 ----------------------------------------------------------------------
# torch.testing's own bfloat16 rtol (one step of bfloat16's 8-bit significand, with margin).
OPS_BFLOAT16 = {"rtol": 1.6e-2, "atol": 1e-2}


def bfloat16_inputs(*shapes, scale: float = 1.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return [(torch.rand(shape, generator=generator) * scale).bfloat16() for shape in shapes]


def test_correlation_takes_bfloat16():
    from vsdain.ops import correlation

    first, second = bfloat16_inputs((1, 8, 12, 10), (1, 8, 12, 10))
    result = correlation(first, second, 4)
    assert result.dtype == torch.bfloat16
    expected = correlation(first.float(), second.float(), 4)
    torch.testing.assert_close(result.float(), expected, **OPS_BFLOAT16)


def test_adaptive_warp_takes_bfloat16_in_the_inference_layout():
    from vsdain.ops import adaptive_warp

    image, flow, kernel = bfloat16_inputs((1, 5, 12, 10), (1, 2, 12, 10), (1, 16, 12, 10))
    flow = (flow.float() - 0.5) * 6  # a few pixels each way, some pointing off the image
    kernel = kernel / 8
    with torch.inference_mode():
        result = adaptive_warp(image.contiguous(memory_format=torch.channels_last), flow, kernel)
        expected = adaptive_warp(image.float(), flow, kernel.float())
    assert result.dtype == torch.bfloat16
    torch.testing.assert_close(result.float(), expected, **OPS_BFLOAT16)


def test_projection_of_bfloat16_flow_accumulates_in_float32():
    from vsdain.ops import project_flow

    (flow,) = bfloat16_inputs((1, 2, 12, 10), scale=4.0)
    weight = torch.rand(1, 1, 12, 10, generator=torch.Generator().manual_seed(3)) + 0.1
    result = project_flow(flow, weight, fill_holes=True)
    assert result.dtype == torch.bfloat16
    expected = project_flow(flow.float(), weight, fill_holes=True)
    torch.testing.assert_close(result.float(), expected, **OPS_BFLOAT16)


def test_a_bfloat16_model_on_the_cpu_warns_only_without_native_bfloat16(native_bf16, caplog):
    model = random_network().to(torch.bfloat16)
    with caplog.at_level(logging.WARNING, logger="vsdain"):
        output = vsdain.Interpolate(blank(vs.RGBS), sc=False, model=model)
    assert output.format.id == vs.RGBS
    problem = precision.cpu_bfloat16_problem(torch.device("cpu"), torch.bfloat16)
    if native_bf16:
        assert problem is None and "native bfloat16" not in caplog.text
    else:
        assert problem in caplog.text
