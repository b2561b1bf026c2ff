"""Learned hierarchical context: a 7x7 conv and two dilated residual blocks (``ctxNet``)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DilatedResidualBlock

CONTEXT_FEATURES = 64
# What the extractor returns: the image (3) + block1 + block2 + block3 (64 each) = 195.
EXTRACTED_CHANNELS = 3 + 3 * CONTEXT_FEATURES
# What DAIN warps per frame: the extracted channels + log-depth = 196.
CONTEXT_CHANNELS = EXTRACTED_CHANNELS + 1


class ContextExtractor(nn.Module):
    """Maps an RGB frame (B, 3, H, W) to (B, EXTRACTED_CHANNELS, H, W) context features at
    full resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(3, CONTEXT_FEATURES, 7, padding=3, bias=False), nn.ReLU(inplace=True)
        )
        self.block2 = DilatedResidualBlock(CONTEXT_FEATURES, dilation=4)
        self.block3 = DilatedResidualBlock(CONTEXT_FEATURES, dilation=8)

    def levels(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The three learned (B, 64, H, W) levels, without the image in front."""
        level1 = self.block1(image)
        level2 = self.block2(level1)
        return [level1, level2, self.block3(level2)]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, *self.levels(image)], dim=1)
