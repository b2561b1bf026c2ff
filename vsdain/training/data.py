"""Training samples: triplets read as tensors, with the reference's augmentations, in an order
that depends only on (seed, epoch) so that a resumed run sees exactly the batches an
uninterrupted one would have seen.

Augmentations (reference ``datasets/Vimeo_90K_interp.py``, each with probability 1/2):
temporal order reversal (first and second frames swapped), horizontal flip, vertical flip;
then a random crop. The reference crops Vimeo90K to its full 256x448 (no crop in effect);
here the crop size is a parameter and must be a multiple of 64, the network's divisor.
Validation samples use the centre crop and no augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..evaluation.datasets import DatasetError, Triplet, read_triplet
from ..evaluation.metrics import PEAK
from ..model.flow import FLOW_NET_DIVISOR

# Sample seeds are drawn below 2**62 so they fit an int64 tensor and a torch.Generator.
SEED_LIMIT = 2**62

# A sample key: (index into the triplets, augmentation seed or None for no augmentation).
SampleKey = tuple[int, int | None]


def split_validation(
    triplets: Sequence[Triplet], fraction: float
) -> tuple[list[Triplet], list[Triplet]]:
    """(training, validation): ``round(fraction * n)`` samples (at least one when fraction > 0)
    evenly spread over the sorted list are held out for validation."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    count = len(triplets)
    held = 0 if fraction == 0.0 else max(1, round(fraction * count))
    if held >= count:
        raise DatasetError(f"{count} triplet(s) leave nothing to train on after validation")
    chosen = set(np.linspace(0, count - 1, held).round().astype(int).tolist()) if held else set()
    training = [triplet for index, triplet in enumerate(triplets) if index not in chosen]
    validation = [triplet for index, triplet in enumerate(triplets) if index in chosen]
    return training, validation


def check_crop(crop: tuple[int, int] | None) -> None:
    if crop is None:
        return
    if min(crop) < FLOW_NET_DIVISOR or any(side % FLOW_NET_DIVISOR for side in crop):
        raise ValueError(
            f"crop must be positive multiples of {FLOW_NET_DIVISOR} (height width), got "
            f"{crop[0]} {crop[1]}"
        )


class TripletDataset(torch.utils.data.Dataset):
    """Indexed by :data:`SampleKey`; yields a (3, 3, H, W) float32 tensor in [0, 1]: first
    frame, ground-truth middle frame, second frame.

    crop: (height, width), multiples of 64, or None for the largest multiple-of-64 window
    of each frame.
    """

    def __init__(self, triplets: Sequence[Triplet], crop: tuple[int, int] | None) -> None:
        check_crop(crop)
        self.triplets = list(triplets)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, key: SampleKey) -> torch.Tensor:  # type: ignore[override]
        index, seed = key
        triplet = self.triplets[index]
        frames = np.stack(read_triplet(triplet))  # (3, H, W, 3) uint8
        height, width = frames.shape[1:3]
        crop_height, crop_width = self.crop or (
            height // FLOW_NET_DIVISOR * FLOW_NET_DIVISOR,
            width // FLOW_NET_DIVISOR * FLOW_NET_DIVISOR,
        )
        if crop_height > height or crop_width > width or crop_height == 0 or crop_width == 0:
            raise DatasetError(
                f"{triplet.name}: {width}x{height} frames are smaller than the "
                f"{crop_width}x{crop_height} crop (or than 64x64)"
            )
        if seed is None:
            top, left = (height - crop_height) // 2, (width - crop_width) // 2
            swap = flip_horizontal = flip_vertical = False
        else:
            generator = torch.Generator().manual_seed(seed)
            swap, flip_horizontal, flip_vertical = (
                torch.rand(3, generator=generator) < 0.5
            ).tolist()
            top = int(torch.randint(height - crop_height + 1, (1,), generator=generator))
            left = int(torch.randint(width - crop_width + 1, (1,), generator=generator))
        frames = frames[:, top : top + crop_height, left : left + crop_width]
        if swap:
            frames = frames[::-1]
        if flip_horizontal:
            frames = frames[:, :, ::-1]
        if flip_vertical:
            frames = frames[:, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        return tensor.float() / PEAK


def epoch_plan(
    count: int, batch_size: int, *, seed: int, epoch: int, augment: bool = True
) -> list[list[SampleKey]]:
    """The batches of one epoch: a shuffle of ``count`` samples, cut into full batches (the
    last partial batch is dropped, as the reference's epoch of len(train) / batch_size
    steps does), each sample with its own augmentation seed (None when ``augment`` is off).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if count < batch_size:
        raise DatasetError(f"{count} training triplet(s) cannot fill a batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(count, generator=generator).tolist()
    seeds = torch.randint(SEED_LIMIT, (count,), generator=generator).tolist()
    keys: list[SampleKey] = [
        (index, sample_seed if augment else None)
        for index, sample_seed in zip(order, seeds, strict=True)
    ]
    steps = count // batch_size
    return [keys[step * batch_size : (step + 1) * batch_size] for step in range(steps)]


def validation_batches(count: int, batch_size: int) -> list[list[SampleKey]]:
    """All validation samples in order, unaugmented; the last batch may be short."""
    keys: list[SampleKey] = [(index, None) for index in range(count)]
    return [keys[start : start + batch_size] for start in range(0, count, batch_size)]
