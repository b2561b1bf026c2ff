"""Checkpoints in the released ``best.pth`` layout, filled with seeded random values.

A full one is 954 tensors, ~24M float32 values (~96 MB on disk, well under a second to
make): cache it per session with a fixture in the test file that needs it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch


def released_shapes() -> dict[str, torch.Size]:
    """Key -> shape of every entry of :class:`vsdain.model.DAIN`'s state dict, in order."""
    from vsdain.model import DAIN

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return {key: value.shape for key, value in DAIN().state_dict().items()}


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with DAIN's keys and shapes and values a network can run with:
    convolution weights scaled by 1/sqrt(fan-in), BatchNorm variances positive, and
    ``num_batches_tracked`` int64 zeros."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for key, shape in released_shapes().items():
        name = key.rsplit(".", 1)[-1]
        if name == "num_batches_tracked":
            value = torch.zeros(shape, dtype=torch.long)
        elif name == "running_var":
            value = 1 + 0.1 * torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        elif name == "weight":
            value = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        state_dict[key] = value
    return state_dict


def write_random_checkpoint(
    path: str | Path, seed: int = 0, *, state_dict: dict[str, torch.Tensor] | None = None
) -> Path:
    """Save ``state_dict`` (default: :func:`random_state_dict` of ``seed``) the way
    ``best.pth`` was saved, a plain dict of tensors; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict if state_dict is not None else random_state_dict(seed), path)
    return path
