"""Folders of frame triplets (first frame, ground-truth middle frame, second frame) in the
layouts that frame-interpolation papers evaluate on, and reading their 8-bit RGB images.

Layouts (``root`` is the folder given on the command line):

- ``middlebury``: Middlebury "other" (``other-color-allframes`` + ``other-gt-interp``):
  ``input/<seq>/frame10.png``, ``input/<seq>/frame11.png``, ``gt/<seq>/frame10i11.png``.
  Sequences without a ground-truth frame are skipped.
- ``ucf101``: the UCF101 triplets DAIN is evaluated on:
  ``<id>/frame_00.png``, ``<id>/frame_01_gt.png``, ``<id>/frame_02.png``.
- ``vimeo90k``: the Vimeo90K triplet set: ``sequences/<clip>/<part>/im1.png .. im3.png``,
  the samples named one per line in ``tri_testlist.txt`` (``split="test"``) or
  ``tri_trainlist.txt`` (``split="train"``).
- ``triplets``: any folder tree in which every folder holding images holds exactly three;
  sorted by name (numbers in names compare as numbers) they are first, ground truth, second.
  This is the layout for one's own material: ``clip/0001/{a,b,c}.png``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYOUTS = ("middlebury", "ucf101", "vimeo90k", "triplets")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIMEO_LISTS = {"train": "tri_trainlist.txt", "test": "tri_testlist.txt"}
# Pillow modes that hold 8 bits per channel; anything else (16-bit, float) is refused because
# the metrics are defined on 8-bit values.
EIGHT_BIT_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "CMYK", "YCbCr"})

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A folder that does not hold triplets in the layout it was said to have."""


@dataclass(frozen=True)
class Triplet:
    """One evaluation sample: the middle frame is the ground truth at t = 0.5."""

    name: str
    first: Path
    middle: Path
    second: Path


def natural_key(text: str) -> list[int | str]:
    """Sort key in which digit runs compare as numbers: ``2`` before ``10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_triplets(
    root: str | os.PathLike[str], layout: str, *, split: str = "test"
) -> list[Triplet]:
    """The triplets under ``root`` in ``layout`` (one of :data:`LAYOUTS`), sorted by name.

    ``split`` only matters for ``vimeo90k`` ("train" or "test"). Raises :class:`DatasetError`
    when the folder is missing, a listed file is absent, or nothing is found.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"no folder at {root}")
    finders = {
        "middlebury": _middlebury,
        "ucf101": _ucf101,
        "vimeo90k": lambda folder: _vimeo90k(folder, split),
        "triplets": _generic,
    }
    if layout not in finders:
        raise DatasetError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    triplets = finders[layout](root)
    if not triplets:
        raise DatasetError(f"no triplets in the {layout} layout under {root}")
    missing = [path for triplet in triplets for path in _paths(triplet) if not path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} file(s) of the {layout} layout missing under {root}, e.g. {missing[0]}"
        )
    return triplets


def _paths(triplet: Triplet) -> tuple[Path, Path, Path]:
    return triplet.first, triplet.middle, triplet.second


def _sorted_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def _middlebury(root: Path) -> list[Triplet]:
    inputs, truths = root / "input", root / "gt"
    if not inputs.is_dir() or not truths.is_dir():
        raise DatasetError(f"the middlebury layout needs {inputs} and {truths}")
    triplets = []
    for sequence in _sorted_dirs(inputs):
        truth = truths / sequence.name / "frame10i11.png"
        if not truth.is_file():
            log.info("skipping %s: no ground truth at %s", sequence.name, truth)
            continue
        triplets.append(
            Triplet(sequence.name, sequence / "frame10.png", truth, sequence / "frame11.png")
        )
    return triplets


def _ucf101(root: Path) -> list[Triplet]:
    return [
        Triplet(
            folder.name,
            folder / "frame_00.png",
            folder / "frame_01_gt.png",
            folder / "frame_02.png",
        )
        for folder in _sorted_dirs(root)
        if (folder / "frame_01_gt.png").is_file()
    ]


def _vimeo90k(root: Path, split: str) -> list[Triplet]:
    if split not in VIMEO_LISTS:
        raise DatasetError(f"split must be one of {', '.join(VIMEO_LISTS)}, got {split!r}")
    listing = root / VIMEO_LISTS[split]
    if not listing.is_file():
        raise DatasetError(f"the vimeo90k layout needs the list {listing}")
    triplets = []
    # The reference drops the list's last line because it is empty; blank lines are skipped.
    for line in listing.read_text().splitlines():
        sample = line.strip()
        if sample:
            folder = root / "sequences" / sample
            triplets.append(
                Triplet(sample, folder / "im1.png", folder / "im2.png", folder / "im3.png")
            )
    return triplets


def _generic(root: Path) -> list[Triplet]:
    triplets = []
    for folder, _, files in os.walk(root):
        images = sorted(
            (name for name in files if Path(name).suffix.lower() in IMAGE_SUFFIXES),
            key=natural_key,
        )
        if not images:
            continue
        folder_path = Path(folder)
        if len(images) != 3:
            log.warning("skipping %s: %d images, a triplet needs 3", folder_path, len(images))
            continue
        name = folder_path.relative_to(root).as_posix()
        first, middle, second = (folder_path / image for image in images)
        triplets.append(Triplet(name if name != "." else root.name, first, middle, second))
    return sorted(triplets, key=lambda triplet: natural_key(triplet.name))


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB. Raises :class:`DatasetError` for images with
    more than 8 bits per channel."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in EIGHT_BIT_MODES:
            raise DatasetError(
                f"{path}: {image.mode} image; only 8-bit images are supported (the metrics "
                "are defined on 8-bit RGB)"
            )
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_triplet(triplet: Triplet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, second) as (H, W, 3) uint8; raises :class:`DatasetError` when the three
    differ in size."""
    frames = tuple(read_rgb(path) for path in _paths(triplet))
    if len({frame.shape for frame in frames}) != 1:
        sizes = ", ".join(f"{frame.shape[1]}x{frame.shape[0]}" for frame in frames)
        raise DatasetError(f"{triplet.name}: the three frames differ in size ({sizes})")
    return frames  # type: ignore[return-value]
