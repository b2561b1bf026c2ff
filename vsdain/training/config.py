"""What a training run depends on, and the pieces of setting it up: device, data, the
weights it starts from."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .. import devices
from ..evaluation.datasets import find_triplets
from . import recipe
from .data import split_validation
from .loss import DEFAULT_ALPHA

log = logging.getLogger("vsdain.training")


class TrainingError(RuntimeError):
    """Training cannot go on (a diverging loss, a checkpoint from a different run)."""


@dataclass
class TrainingConfig:
    """Everything a run depends on; see ``python -m vsdain train --help`` for each."""

    data: str
    layout: str = "vimeo90k"
    out: str = "training"
    weights: str | None = None  # None: the released best.pth (unless from_scratch)
    from_scratch: bool = False
    resume: str | None = None
    depth: str = "joint"
    lr_preset: str = "paper"
    lr_overrides: dict[str, float | None] = field(default_factory=dict)
    schedule: str = "plateau"
    factor: float = recipe.PLATEAU_FACTOR
    patience: int = recipe.PLATEAU_PATIENCE
    decay_epoch: int = recipe.PAPER_DECAY_EPOCH
    epochs: int | None = None  # None: recipe.DEFAULT_EPOCHS[schedule]
    steps: int | None = None  # stop after this many optimiser steps in all
    batch_size: int = 2  # the paper's; the reference README uses 1
    crop: tuple[int, int] | None = None
    augment: bool = True
    alpha: tuple[float, float] = DEFAULT_ALPHA
    seed: int = 1  # the reference's default
    device: str = "auto"
    workers: int = 0
    val_fraction: float = 0.05
    val_limit: int | None = None
    limit: int | None = None
    save_every: int = 1000
    log_every: int = 10


def resolve_device(name: str) -> torch.device:
    """``--device``: "auto" or a device :func:`vsdain.devices.resolve_device` accepts."""
    try:
        return devices.resolve_device(None if name == "auto" else name, name="--device")
    except ValueError as problem:
        raise TrainingError(str(problem)) from None


def load_data(config: TrainingConfig):
    """(training triplets, validation triplets) for the layout: Vimeo90K's own lists, else a
    held-out fraction of the folder."""
    if config.layout == "vimeo90k":
        training = find_triplets(config.data, "vimeo90k", split="train")[: config.limit]
        validation = find_triplets(config.data, "vimeo90k", split="test")
        if config.val_fraction == 0:
            validation = []
    else:
        every = find_triplets(config.data, config.layout)[: config.limit]
        training, validation = split_validation(every, config.val_fraction)
    return training, validation[: config.val_limit]


def load_initial_weights(model: torch.nn.Module, config: TrainingConfig) -> None:
    from ..weights import check_layout, find_weights, load_state_dict_file

    if config.from_scratch:
        log.info(
            "starting from scratch: reference initialisation everywhere (the reference starts "
            "flow and depth from pretrained PWC-Net and MegaDepth files, which are not available)"
        )
        return
    path = find_weights(config.weights)
    state_dict = load_state_dict_file(path)
    check_layout(state_dict, model)
    model.load_state_dict(state_dict, strict=True)
    log.info("starting from the weights in %s", path)


def config_record(config: TrainingConfig) -> dict[str, Any]:
    record = asdict(config)
    record["crop"] = list(config.crop) if config.crop else None
    record["alpha"] = list(config.alpha)
    return record
