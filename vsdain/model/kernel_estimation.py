"""4x4 kernel estimation: a U-Net trunk on both frames and one head per frame.

The reference builds the trunk as one flat ``nn.ModuleList`` whose indices count the ReLU,
pooling and upsampling layers too (checkpoint keys ``initScaleNets_filter.{0,2,5,...}``), so it is
kept flat here and walked with the reference's skip stack: the input of each max-pool is pushed,
and each upsample adds the popped tensor.
"""

from __future__ import annotations

import torch
from torch import nn

KERNEL_SIZE = 4
KERNEL_TAPS = KERNEL_SIZE * KERNEL_SIZE
TRUNK_CHANNELS = 16
# Encoder widths after the stem; the decoder mirrors them back down to 16 channels.
# Five 2x poolings: the trunk needs H and W divisible by 32 (the padding to 64 covers it).
ENCODER_WIDTHS = (32, 64, 128, 256, 512)


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def _relu() -> nn.ReLU:
    # In place: its input is always a fresh convolution output, which nothing else reads.
    return nn.ReLU(inplace=True)


def build_trunk() -> nn.ModuleList:
    layers: list[nn.Module] = [_conv(6, TRUNK_CHANNELS), _relu()]
    channels = TRUNK_CHANNELS
    for width in ENCODER_WIDTHS:
        layers += [_conv(channels, width), _relu(), nn.MaxPool2d(2)]
        channels = width
    # Upsample has no align_corners argument in the reference (PyTorch >= 0.4: False).
    for width in (512, 256, 128, 64, 32):
        layers += [_conv(channels, width), _relu(), nn.Upsample(scale_factor=2, mode="bilinear")]
        channels = width
    layers += [_conv(channels, TRUNK_CHANNELS), _relu()]
    return nn.ModuleList(layers)


def build_head() -> nn.ModuleList:
    # No output activation or normalisation: the raw 16 values are the kernel taps.
    return nn.ModuleList(
        [_conv(TRUNK_CHANNELS, KERNEL_TAPS), _relu(), _conv(KERNEL_TAPS, KERNEL_TAPS)]
    )


def run_trunk(trunk: nn.ModuleList, pair: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) both frames -> (B, 16, H, W) shared kernel features."""
    skips: list[torch.Tensor] = []
    x = pair
    for layer in trunk:
        if isinstance(layer, nn.MaxPool2d):
            skips.append(x)
        x = layer(x)
        if isinstance(layer, nn.Upsample):
            x = x + skips.pop()
    return x


def run_head(head: nn.ModuleList, features: torch.Tensor) -> torch.Tensor:
    """(B, 16, H, W) trunk features -> (B, 16, H, W) kernel, tap k = row * 4 + column."""
    x = features
    for layer in head:
        x = layer(x)
    return x
