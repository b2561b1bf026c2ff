"""Frame <-> tensor conversion, round-tripped on BlankClip frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs
from filter_clips import pattern, planes

from vsdain.filter.frames import frame_to_tensor, tensor_to_frame, tensor_to_planes

core = vs.core


@pytest.mark.parametrize(("format", "dtype"), [(vs.RGBS, torch.float32), (vs.RGBH, torch.float16)])
def test_round_trip_is_exact_and_keeps_properties(format, dtype):
    # An odd width checks that row padding (stride) is handled on both sides.
    width, height = 37, 21
    blank = core.std.BlankClip(format=format, width=width, height=height, length=1)
    template = blank.std.SetFrameProps(Kept=5).get_frame(0)
    image = torch.from_numpy(pattern(3, width, height)).to(dtype)[None]

    written = tensor_to_frame(image, template)
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
        tensor_to_frame(torch.rand(1, 3, 4, 9), template)
