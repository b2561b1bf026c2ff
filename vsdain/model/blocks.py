"""Small building blocks shared by several DAIN sub-networks."""

from __future__ import annotations

import torch
from torch import nn


class DilatedResidualBlock(nn.Module):
    """conv3x3 (dilated) -> ReLU -> conv3x3 -> + input -> ReLU, no bias, no normalisation.

    The reference's ``BasicBlock`` in both the context extractor and the synthesis network
    (its BatchNorm layers are commented out there, so the checkpoint has none).
    """

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            channels, channels, 3, padding=dilation, dilation=dilation, bias=False
        )
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place on the fresh convolution outputs: no full-size temporaries (on the CPU
        # each one costs page faults), and autograd needs neither convolution's output.
        residual = self.conv1(x).relu_()
        return self.conv2(residual).add_(x).relu_()
