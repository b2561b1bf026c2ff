"""The training loss of the reference (``loss_function.py``): Charbonnier on the synthesised
frame's difference from the ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..model import Synthesis

# The reference's --epsilon: small enough that the loss is an L1 loss everywhere but at 0.
CHARBONNIER_EPSILON = 1e-6
# Weights of (blend, output): the reference's --alpha 0.0 1.0 penalises only the synthesised
# (rectified) frame; the blend of the two warped frames gets no direct loss.
DEFAULT_ALPHA = (0.0, 1.0)


def charbonnier(difference: torch.Tensor, epsilon: float = CHARBONNIER_EPSILON) -> torch.Tensor:
    """mean(sqrt(difference^2 + epsilon^2)) over all elements; a scalar."""
    return torch.sqrt(difference * difference + epsilon * epsilon).mean()


def interpolation_loss(
    synthesis: Synthesis,
    truth: torch.Tensor,
    alpha: Sequence[float] = DEFAULT_ALPHA,
    epsilon: float = CHARBONNIER_EPSILON,
) -> torch.Tensor:
    """alpha[0] * Charbonnier(blend - truth) + alpha[1] * Charbonnier(output - truth).

    truth: (B, 3, H, W) in [0, 1], the same size as the synthesis. Terms whose weight is 0
    are not computed, as in the reference.
    """
    if len(alpha) != 2 or min(alpha) < 0 or max(alpha) <= 0:
        raise ValueError(f"alpha must be two weights >= 0, not both 0, got {tuple(alpha)}")
    terms = [
        weight * charbonnier(prediction - truth, epsilon)
        for weight, prediction in zip(alpha, (synthesis.blend, synthesis.output), strict=True)
        if weight > 0
    ]
    return torch.stack(terms).sum()
