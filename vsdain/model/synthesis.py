"""Frame synthesis: the residual network that refines the blended warped frames (``rectifyNet``)."""

from __future__ import annotations

import torch
from torch import nn

from . import layout
from .blocks import DilatedResidualBlock
from .context import CONTEXT_CHANNELS
from .kernel_estimation import KERNEL_TAPS

SYNTHESIS_FEATURES = 128
# blend, warped frame 0 and 1 (3 each), two projected flows (2 each), two 4x4 kernels
# (16 each), two warped context stacks (196 each): the reference's 437 channels.
SYNTHESIS_INPUT_CHANNELS = 3 * 3 + 2 * 2 + 2 * KERNEL_TAPS + 2 * CONTEXT_CHANNELS
# How far an output pixel of the network sees: the 7x7 first convolution (3), three residual
# blocks of two undilated 3x3 convolutions (2 each) and the 3x3 last one (1). A window of its
# input with this much margin on every side gives the window's output exactly.
SYNTHESIS_RADIUS = 3 + 3 * 2 + 1


class FrameSynthesis(nn.Module):
    """Predicts the residual added to the blended frame: (B, 437, H, W) -> (B, 3, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(SYNTHESIS_INPUT_CHANNELS, SYNTHESIS_FEATURES, 7, padding=3),
            nn.ReLU(inplace=True),
        )
        self.block2 = DilatedResidualBlock(SYNTHESIS_FEATURES)
        self.block3 = DilatedResidualBlock(SYNTHESIS_FEATURES)
        self.block4 = DilatedResidualBlock(SYNTHESIS_FEATURES)
        self.block5 = nn.Sequential(nn.Conv2d(SYNTHESIS_FEATURES, 3, 3, padding=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.refine(self.first_layer(features))

    def first_layer(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 437, H, W) -> (B, 128, H, W). Apart from :meth:`refine` so that a caller can
        drop the wide input before the rest runs (it is most of the per-timestamp memory)."""
        # The 437-channel input stays as it is (converting it costs more than the first
        # convolution gains); its 128-channel output is converted once for the rest.
        return layout.for_convolutions(self.block1(features))

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 128, H, W) first-layer output -> (B, 3, H, W) residual."""
        x = self.block4(self.block3(self.block2(x)))
        return self.block5(x).contiguous()
