"""Training checkpoints: one file that both ``vsdain.load_model`` (strict, ``weights_only``)
and ``train --resume`` read.

Layout (plain tensors, numbers, strings, lists and dicts only, so ``torch.load(...,
weights_only=True)`` reads it without running pickled code)::

    {"state_dict": the network's 954 tensors (as best.pth),
     "optimizer": AdaMax state, "scheduler": schedule state ({} for none),
     "progress": {"step", "epoch", "step_in_epoch", "best_validation"},
     "rng": {"torch": CPU generator state, "cuda": [one state per GPU]},
     "config": the run's settings, "format": CHECKPOINT_FORMAT}
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..weights import PROJECTION_KEY

CHECKPOINT_FORMAT = "vsdain-training-1"


@dataclass
class TrainingProgress:
    step: int = 0  # optimiser steps taken
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps taken in the current, unfinished epoch
    best_validation: float = math.inf
    epoch_loss_sum: float = 0.0  # sum of the training losses of the current epoch


def rng_state() -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_rng(state: dict[str, Any]) -> None:
    # Generator states must be CPU byte tensors, wherever the checkpoint was mapped to.
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([cuda_state.cpu() for cuda_state in state["cuda"]])


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    progress: TrainingProgress,
    config: dict[str, Any],
) -> Path:
    """Writes the checkpoint atomically (a partial file never replaces a good one)."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "progress": asdict(progress),
        "rng": rng_state(),
        "config": config,
        PROJECTION_KEY: model.projection,
    }
    return _atomic_save(checkpoint, Path(path))


def save_weights(path: str | os.PathLike[str], model: torch.nn.Module) -> Path:
    """The network alone: a plain state dict in the layout of the released ``best.pth``, or,
    for a network without depth-aware projection (DA-None), ``{"state_dict": ...,
    "projection": "average"}`` so that :func:`vsdain.load_model` restores that projection."""
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    if model.projection != "depth":
        return _atomic_save(
            {"state_dict": state_dict, PROJECTION_KEY: model.projection}, Path(path)
        )
    return _atomic_save(state_dict, Path(path))


def _atomic_save(content: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(content, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(path: str | os.PathLike[str], device: torch.device | str) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, tensors mapped to ``device``.

    Raises ValueError for a file that is not one (e.g. a plain ``best.pth``: use
    ``--weights`` for those).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a vsdain training checkpoint (no optimiser state to resume); "
            "to start from its weights, pass it as --weights"
        )
    return checkpoint


def progress_of(checkpoint: dict[str, Any]) -> TrainingProgress:
    return TrainingProgress(**checkpoint["progress"])
