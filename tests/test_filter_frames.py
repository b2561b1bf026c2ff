"""Frame <-> tensor conversion, round-tripped on BlankClip frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs
from filter_clips import pattern, planes

from vsdain.filter.frames import copy_planes, frame_to_tensor, planes_to_frame, tensor_to_planes

core = vs.core


@pytest.mark.parametrize(("format", "dtype"), [(vs.RGBS, torch.float32), (vs.RGBH, torch.float16)])
def test_round_trip_is_exact_and_keeps_properties(format, dtype):
    # An odd width checks that row padding (stride) is handled on both sides.
    width, height = 37, 21
    blank = core.std.BlankClip(format=format, width=width, height=height, length=1)
    template = blank.std.SetFrameProps(Kept=5).get_frame(0)
    image = torch.from_numpy(pattern(3, width, height)).to(dtype)[None]

    written = planes_to_frame(tensor_to_planes(image, np.asarray(template[0]).dtype), template)
    assert written.props["Kept"] == 5
    assert written.format.id == format
    back = frame_to_tensor(written)
    assert back.shape == (1, 3, height, width)
    assert back.dtype == dtype
    assert torch.equal(back, image)
    # The template is untouched (the new frame is a copy).
    assert not planes(template).any()


def test_frame_to_tensor_reads_planes_in_rgb_order_and_converts():
    frame = core.std.BlankClip(format=vs.RGBH, width=8, height=4, color=[0.25, 0.5, 0.75])
    tensor = frame_to_tensor(frame.get_frame(0), dtype=torch.float32)
    assert tensor.dtype == torch.float32
    assert tensor[0, :, 0, 0].tolist() == [0.25, 0.5, 0.75]


def test_tensor_to_planes_casts_and_checks_shape():
    image = torch.rand(1, 3, 4, 5)
    planes_ = tensor_to_planes(image, np.dtype(np.float16))
    assert planes_.dtype == np.float16 and planes_.shape == (3, 4, 5)
    with pytest.raises(ValueError):
        tensor_to_planes(torch.rand(2, 3, 4, 5), np.dtype(np.float32))
    with pytest.raises(ValueError):
        tensor_to_planes(torch.rand(1, 4, 4, 5), np.dtype(np.float32))


def test_written_frame_must_match_the_template_size():
    template = core.std.BlankClip(format=vs.RGBS, width=8, height=4).get_frame(0)
    with pytest.raises(ValueError):
        planes_to_frame(tensor_to_planes(torch.rand(1, 3, 4, 9), np.dtype(np.float32)), template)


@pytest.mark.parametrize(
    ("value", "clamped"),
    [(float("nan"), 0.0), (float("inf"), 1.0), (float("-inf"), 0.0), (1e30, 1.0), (-0.25, 0.0)],
    ids=["nan", "+inf", "-inf", "1e30", "negative"],
)
@pytest.mark.parametrize("format", [vs.RGBS, vs.RGBH])
def test_network_input_is_clamped_with_nan_as_zero(format, value, clamped):
    frame = core.std.BlankClip(format=format, width=6, height=4, color=[0.5, 0.25, 0.75])
    frame = frame.get_frame(0).copy()
    with np.errstate(over="ignore"):  # 1e30 is +inf as a half
        np.asarray(frame[1])[2, 3] = value
    tensor = frame_to_tensor(frame, dtype=torch.float32)
    assert torch.isfinite(tensor).all()
    assert tensor[0, 1, 2, 3].item() == clamped
    expected = torch.tensor([0.5, 0.25, 0.75]).view(1, 3, 1, 1).expand(1, 3, 4, 6).clone()
    expected[0, 1, 2, 3] = clamped
    assert torch.equal(tensor, expected)
    # The frame itself keeps its sample.
    stored = np.asarray(frame[1])[2, 3]
    with np.errstate(over="ignore"):
        kept = np.isnan(stored) if np.isnan(value) else stored == np.array(value, stored.dtype)
    assert kept


def test_bfloat16_input_is_clamped_before_the_cast():
    frame = core.std.BlankClip(format=vs.RGBS, width=4, height=2).get_frame(0).copy()
    np.asarray(frame[0])[0, 0] = 1e30
    tensor = frame_to_tensor(frame, dtype=torch.bfloat16)
    assert tensor.dtype == torch.bfloat16 and tensor[0, 0, 0, 0].item() == 1.0


@pytest.mark.parametrize("format", [vs.YUV420P8, vs.YUV422P10, vs.RGB48, vs.YUV444PS])
def test_copy_planes_moves_pixels_and_keeps_the_template_properties(format):
    source = core.std.BlankClip(format=format, width=8, height=4, color=None, keep=True)
    source = source.std.Expr(["x 3 +"] * source.format.num_planes).get_frame(0)
    template = core.std.BlankClip(format=format, width=8, height=4).std.SetFrameProps(Kept=7)
    out = copy_planes(source, template.get_frame(0))
    assert out.props["Kept"] == 7
    for plane in range(out.format.num_planes):
        assert np.array_equal(np.asarray(out[plane]), np.asarray(source[plane]))


def test_copy_planes_refuses_another_format_or_size():
    yuv = core.std.BlankClip(format=vs.YUV420P8, width=8, height=4).get_frame(0)
    with pytest.raises(ValueError, match="cannot copy"):
        copy_planes(yuv, core.std.BlankClip(format=vs.YUV420P10, width=8, height=4).get_frame(0))
    with pytest.raises(ValueError, match="cannot copy"):
        copy_planes(yuv, core.std.BlankClip(format=vs.YUV420P8, width=8, height=6).get_frame(0))
