"""MegaDepth hourglass (``depthNet``): one channel of log-depth per frame, full resolution.

The reference is a Torch7 model converted to nested ``nn.Sequential`` containers, so the
checkpoint keys are numeric paths (``depthNet.3.0.0.3.0.0.3.0.1.3.0.0.0.1.0.weight``). The same
nesting is rebuilt here from three container types that keep numeric child names.
"""

from __future__ import annotations

import torch
from torch import nn

# Four 2x poolings below the stem: the input must be divisible by 16 (the padding to 64
# covers it).
STEM_CHANNELS = 128


class Branches(nn.Sequential):
    """Runs every child on the same input and returns the list (Torch7 ConcatTable)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return [branch(x) for branch in self]


class ConcatBranches(nn.Sequential):
    """Runs every child on the same input and concatenates along channels (Torch7 Concat)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat([branch(x) for branch in self], dim=1)


class SumInputs(nn.Sequential):
    """Adds the tensors of a list (Torch7 CAddTable); has no children."""

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        total = inputs[0]
        for tensor in inputs[1:]:
            total = total + tensor
        return total


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    # The inception BatchNorms have affine=False: running statistics only. The ReLU works in
    # place on the BatchNorm's fresh output (BatchNorm's backward needs only its input).
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=(kernel - 1) // 2),
        nn.BatchNorm2d(out_channels, affine=False),
        nn.ReLU(inplace=True),
    ]


def inception(
    in_channels: int, direct: int, branches: tuple[tuple[int, int, int], ...]
) -> ConcatBranches:
    """A 1x1 branch of ``direct`` channels plus ``(reduce, kernel, out)`` 1x1 -> kxk branches."""
    modules = [nn.Sequential(*_conv_bn_relu(in_channels, direct, 1))]
    for reduce, kernel, out in branches:
        modules.append(
            nn.Sequential(
                *_conv_bn_relu(in_channels, reduce, 1), *_conv_bn_relu(reduce, out, kernel)
            )
        )
    return ConcatBranches(*modules)


# The eight inception configurations of the hourglass, named by in -> out channels.
def _inc_128_128() -> ConcatBranches:
    return inception(128, 32, ((32, 3, 32), (32, 5, 32), (32, 7, 32)))


def _inc_128_128_wide() -> ConcatBranches:
    return inception(128, 32, ((64, 3, 32), (64, 7, 32), (64, 11, 32)))


def _inc_128_128_mid() -> ConcatBranches:
    return inception(128, 32, ((64, 3, 32), (64, 5, 32), (64, 7, 32)))


def _inc_128_256() -> ConcatBranches:
    return inception(128, 64, ((32, 3, 64), (32, 5, 64), (32, 7, 64)))


def _inc_256_256() -> ConcatBranches:
    return inception(256, 64, ((32, 3, 64), (32, 5, 64), (32, 7, 64)))


def _inc_256_256_wide() -> ConcatBranches:
    return inception(256, 64, ((64, 3, 64), (64, 7, 64), (64, 11, 64)))


def _inc_256_128() -> ConcatBranches:
    return inception(256, 32, ((32, 3, 32), (32, 5, 32), (32, 7, 32)))


def _inc_128_64(reduce: int) -> ConcatBranches:
    return inception(128, 16, ((reduce, 3, 16), (reduce, 7, 16), (reduce, 11, 16)))


def _hourglass(first: nn.Module, second: nn.Module) -> nn.Sequential:
    return nn.Sequential(Branches(first, second), SumInputs())


def _up() -> nn.Module:
    return nn.UpsamplingNearest2d(scale_factor=2)


def build_depth_net() -> nn.Sequential:
    """The full depth network; its ``state_dict`` keys match the reference's ``depthNet.*``."""
    level4 = _hourglass(
        nn.Sequential(_inc_256_256(), _inc_256_256()),
        nn.Sequential(nn.AvgPool2d(2), _inc_256_256(), _inc_256_256(), _inc_256_256(), _up()),
    )
    # In the two innermost levels the skip path is the first branch.
    level3 = _hourglass(
        nn.Sequential(_inc_256_256(), _inc_256_256_wide()),
        nn.Sequential(
            nn.AvgPool2d(2),
            _inc_256_256(),
            _inc_256_256(),
            level4,
            _inc_256_256(),
            _inc_256_256_wide(),
            _up(),
        ),
    )
    level2 = _hourglass(
        nn.Sequential(
            nn.MaxPool2d(2),
            _inc_128_128(),
            _inc_128_256(),
            level3,
            _inc_256_256(),
            _inc_256_128(),
            _up(),
        ),
        nn.Sequential(_inc_128_128(), _inc_128_128_wide()),
    )
    level1 = _hourglass(
        nn.Sequential(
            nn.MaxPool2d(2),
            _inc_128_128(),
            _inc_128_128(),
            level2,
            _inc_128_128_mid(),
            _inc_128_64(reduce=32),
            _up(),
        ),
        nn.Sequential(_inc_128_64(reduce=64)),
    )
    return nn.Sequential(
        nn.Conv2d(3, STEM_CHANNELS, 7, padding=3),
        nn.BatchNorm2d(STEM_CHANNELS),
        nn.ReLU(inplace=True),
        level1,
        nn.Conv2d(64, 1, 3, padding=1),
    )
