"""Replicate padding to the sizes the network accepts, and the exact crop back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The demo pads each side up to a multiple of 128; the network itself needs a multiple of 64
# (flow.FLOW_NET_DIVISOR: PWC-Net's six stride-2 levels; the kernel U-Net needs 32 and the
# depth net 16).
PAD_MULTIPLE = 128
# A side that is already a multiple of 128 still gets this much on each side in the reference.
ALIGNED_MARGIN = 32


def _split(size: int) -> tuple[int, int]:
    if size % PAD_MULTIPLE == 0:
        return ALIGNED_MARGIN, ALIGNED_MARGIN
    total = PAD_MULTIPLE - size % PAD_MULTIPLE
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Padding:
    """Where a (height, width) frame sits inside the padded network input."""

    height: int
    width: int
    left: int
    right: int
    top: int
    bottom: int

    @classmethod
    def for_size(cls, height: int, width: int) -> Padding:
        """The reference demo's rule: pad to the next multiple of 128, centred (left/top get
        the smaller half); a side already a multiple of 128 gets 32 on each side."""
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        left, right = _split(width)
        top, bottom = _split(height)
        return cls(height, width, left, right, top, bottom)

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.height + self.top + self.bottom, self.width + self.left + self.right

    def pad(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, C, height, width) -> (B, C, padded height, padded width), border replicated."""
        if frames.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"expected frames of {self.width}x{self.height}, got "
                f"{frames.shape[-1]}x{frames.shape[-2]}"
            )
        return F.pad(frames, (self.left, self.right, self.top, self.bottom), mode="replicate")

    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pad`: the original (height, width) window."""
        return frames[..., self.top : self.top + self.height, self.left : self.left + self.width]
