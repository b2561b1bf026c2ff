"""PWC-Net optical flow (the "PWC-DC" variant DAIN ships as ``flownets``).

The feature pyramid depends on one frame only, so it is exposed separately: a frame that
belongs to two consecutive pairs, and to both flow directions of a pair, is encoded once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import OpPath, correlation

FLOW_SCALE = 20.0  # PWC-Net predicts flow / 20 (the reference's div_flow)
FLOW_RESOLUTION = 4  # the finest prediction is at 1/4 of the input size
MAX_DISPLACEMENT = 4  # correlation search radius: 9x9 = 81 cost channels
COST_CHANNELS = (2 * MAX_DISPLACEMENT + 1) ** 2
PYRAMID_WIDTHS = (16, 32, 64, 96, 128, 196)
# Six stride-2 levels: the input must be divisible by 64.
FLOW_NET_DIVISOR = 2 ** len(PYRAMID_WIDTHS)
# DenseNet-style decoder: each conv's output is prepended to its input.
DENSE_WIDTHS = (128, 128, 96, 64, 32)
DENSE_TOTAL = sum(DENSE_WIDTHS)
# Decoder inputs: cost volume, then (below level 6) the frame's features, the upsampled flow
# and the two upsampled decoder features.
DECODER_INPUTS = {6: COST_CHANNELS} | {
    level: COST_CHANNELS + PYRAMID_WIDTHS[level - 1] + 2 + 2 for level in (5, 4, 3, 2)
}
REFINEMENT_WIDTHS = (128, 128, 128, 96, 64, 32)
REFINEMENT_DILATIONS = (1, 2, 4, 8, 16, 1)


def _conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.1, inplace=True),  # in place on the convolution's fresh output
    )


def _predict_flow(in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, 2, 3, padding=1)


def _upsample(in_channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, 2, 4, stride=2, padding=1)


def backward_warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Samples ``features`` at (x + u, y + v), zeroing every sample that touches the outside.

    features: (B, C, h, w); flow: (B, 2, h, w) in pixels of this level, channel 0 = x.
    The reference normalises by (size - 1) (PyTorch 1.0's align_corners=True behaviour) and
    masks with a warped ones image thresholded at 0.9999, so a partial border sample is 0.
    """
    batch, _, height, width = features.shape
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    grid_x = 2.0 * (xs + flow[:, 0]) / max(width - 1, 1) - 1.0
    grid_y = 2.0 * (ys + flow[:, 1]) / max(height - 1, 1) - 1.0
    grid = torch.stack([grid_x, grid_y], dim=3)
    warped = F.grid_sample(
        features, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    ones = torch.ones((batch, 1, height, width), device=features.device, dtype=features.dtype)
    coverage = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped * (coverage >= 0.9999).to(features.dtype)


class PWCNet(nn.Module):
    """Flow from frame 0 to frame 1 at 1/4 resolution, in units of full-resolution pixels / 20.

    Attribute names are the checkpoint's (``conv1a`` ... ``dc_conv7``); note the reference's
    name swap at level 6, where the strided conv is ``conv6aa``.
    """

    def __init__(self) -> None:
        super().__init__()
        in_channels = 3
        for level, width in enumerate(PYRAMID_WIDTHS, start=1):
            strided, middle = ("6aa", "6a") if level == 6 else (f"{level}a", f"{level}aa")
            setattr(self, f"conv{strided}", _conv(in_channels, width, stride=2))
            setattr(self, f"conv{middle}", _conv(width, width))
            setattr(self, f"conv{level}b", _conv(width, width))
            in_channels = width
        for level in (6, 5, 4, 3, 2):
            channels = DECODER_INPUTS[level]
            for index, width in enumerate(DENSE_WIDTHS):
                setattr(self, f"conv{level}_{index}", _conv(channels, width))
                channels += width
            setattr(self, f"predict_flow{level}", _predict_flow(channels))
            # deconv2 exists in the checkpoint but the reference never uses it.
            setattr(self, f"deconv{level}", _upsample(2))
            if level > 2:
                setattr(self, f"upfeat{level}", _upsample(channels))
        channels = DECODER_INPUTS[2] + DENSE_TOTAL
        for index, (width, dilation) in enumerate(
            zip(REFINEMENT_WIDTHS, REFINEMENT_DILATIONS, strict=True), start=1
        ):
            setattr(self, f"dc_conv{index}", _conv(channels, width, dilation=dilation))
            channels = width
        self.dc_conv7 = _predict_flow(channels)

    def _level_layers(self, level: int) -> tuple[nn.Module, nn.Module, nn.Module]:
        if level == 6:
            return self.conv6aa, self.conv6a, self.conv6b
        return (
            getattr(self, f"conv{level}a"),
            getattr(self, f"conv{level}aa"),
            getattr(self, f"conv{level}b"),
        )

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, 3, H, W) in [0, 1], H and W divisible by 64 -> pyramid levels 1..6 (1/2 .. 1/64)."""
        pyramid = []
        x = image
        for level in range(1, len(PYRAMID_WIDTHS) + 1):
            for layer in self._level_layers(level):
                x = layer(x)
            pyramid.append(x)
        return tuple(pyramid)

    def _dense(self, level: int, x: torch.Tensor) -> torch.Tensor:
        for index in range(len(DENSE_WIDTHS)):
            x = torch.cat([getattr(self, f"conv{level}_{index}")(x), x], dim=1)
        return x

    def decode(
        self,
        first: tuple[torch.Tensor, ...],
        second: tuple[torch.Tensor, ...],
        ops: OpPath | str = "auto",
    ) -> torch.Tensor:
        """Flow first -> second (B, 2, H/4, W/4), full-resolution pixels / FLOW_SCALE.
        ``ops``: the op path for the correlations (see :mod:`vsdain.ops.backend`)."""
        cost = F.leaky_relu(correlation(first[5], second[5], MAX_DISPLACEMENT, backend=ops), 0.1)
        x = self._dense(6, cost)
        flow = self.predict_flow6(x)
        for level in (5, 4, 3, 2):
            up_flow = getattr(self, f"deconv{level + 1}")(flow)
            up_features = getattr(self, f"upfeat{level + 1}")(x)
            # up_flow is in full-resolution pixels / 20; this level is 1/2**level of full size.
            warp_scale = FLOW_SCALE / 2**level
            warped = backward_warp(second[level - 1], up_flow * warp_scale)
            cost = F.leaky_relu(
                correlation(first[level - 1], warped, MAX_DISPLACEMENT, backend=ops), 0.1
            )
            x = self._dense(level, torch.cat([cost, first[level - 1], up_flow, up_features], 1))
            flow = getattr(self, f"predict_flow{level}")(x)
        refinement = x
        for index in range(1, len(REFINEMENT_WIDTHS) + 1):
            refinement = getattr(self, f"dc_conv{index}")(refinement)
        return flow + self.dc_conv7(refinement)

    def forward(self, first_image: torch.Tensor, second_image: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(first_image), self.features(second_image))
