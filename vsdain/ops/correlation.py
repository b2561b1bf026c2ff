"""PWC-Net's correlation (cost volume) layer as plain PyTorch.

Mirrors DAIN's ``correlation_package_pytorch1_0`` CUDA op with the settings PWC-Net uses
(pad = max displacement, kernel size 1, both strides 1); see spec section 3.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_correlation_arguments(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int
) -> None:
    """The checks both correlation paths make: ValueError/TypeError naming the argument."""
    if first.dim() != 4 or first.shape != second.shape:
        raise ValueError(
            "correlation: first and second must both be (B, C, H, W) with equal shapes, "
            f"got {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if isinstance(max_displacement, bool) or not isinstance(max_displacement, int):
        raise TypeError(f"correlation: max_displacement must be an int, got {max_displacement!r}")
    if max_displacement < 0:
        raise ValueError(f"correlation: max_displacement must be >= 0, got {max_displacement}")


def correlation_reference(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int = 4
) -> torch.Tensor:
    """Cost volume between two feature maps, one channel per displacement.

    Args:
        first: (B, C, H, W) features of the reference frame.
        second: (B, C, H, W) features of the other frame, same shape, dtype and device.
        max_displacement: d >= 0, the largest shift in pixels along each axis; PWC-Net uses 4.

    Returns:
        (B, (2d+1)**2, H, W) tensor in the dtype of ``first``, where
        ``out[b, (dy+d)*(2d+1) + (dx+d), y, x] = mean_c first[b,c,y,x] * second[b,c,y+dy,x+dx]``
        for dy, dx in [-d, d]; dy is the major (slow) index. ``second`` reads as zero outside
        the image. float16/bfloat16 inputs are computed in float32 and the result cast back,
        because the products would otherwise be summed in half precision.

    Works on any device and is differentiable by autograd in both inputs.
    """
    check_correlation_arguments(first, second, max_displacement)

    compute_dtype = torch.promote_types(first.dtype, torch.float32)
    d = max_displacement
    height, width = first.shape[-2:]
    reference = first.to(compute_dtype)
    # Padding once by d turns every displacement into a plain slice of the padded map.
    padded = F.pad(second.to(compute_dtype), (d, d, d, d))
    costs = [
        (reference * padded[:, :, d + dy : d + dy + height, d + dx : d + dx + width]).mean(dim=1)
        for dy in range(-d, d + 1)
        for dx in range(-d, d + 1)
    ]
    return torch.stack(costs, dim=1).to(first.dtype)
