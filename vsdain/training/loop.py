"""The training loop: data, model, optimiser and schedule put together, with checkpoints
that resume exactly where a run stopped.

Writes into ``config.out``: ``last.pth`` (a checkpoint, every ``save_every`` steps and at the
end), ``best.pth`` (the network alone, whenever the validation loss improves, as the reference
saves it), ``log.csv`` (loss per step) and ``epochs.csv`` (losses and rates per epoch).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from ..progress import Progress
from . import recipe
from .checkpoint import (
    TrainingProgress,
    load_checkpoint,
    progress_of,
    restore_rng,
    save_checkpoint,
    save_weights,
)
from .config import (
    TrainingConfig,
    TrainingError,
    config_record,
    load_data,
    load_initial_weights,
    resolve_device,
)
from .data import TripletDataset, check_crop, epoch_plan, validation_batches
from .loss import interpolation_loss

log = logging.getLogger(__name__)
# Settings that must not change between a run and its resumption (the optimiser's groups
# and the meaning of the data order depend on them).
RESUME_INVARIANTS = ("depth", "seed", "batch_size", "layout")


@dataclass
class TrainingResult:
    progress: TrainingProgress
    checkpoint: Path
    losses: list[float]  # per step, this session only


class _CsvLog:
    def __init__(self, path: Path, columns: list[str]) -> None:
        new = not path.is_file()
        self.file = path.open("a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(columns)

    def write(self, row: list[Any]) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(config: TrainingConfig, *, stream: TextIO | None = None) -> TrainingResult:
    """Runs (or resumes) training as configured; returns where it ended."""
    check_crop(config.crop)
    if config.steps is not None and config.steps < 1:
        raise ValueError(f"steps must be >= 1, got {config.steps}")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    training, validation = load_data(config)
    rates = recipe.learning_rates(config.lr_preset, config.depth, config.lr_overrides)

    model = recipe.build_model(config.depth)
    record = config_record(config)
    checkpoint = load_checkpoint(config.resume, device) if config.resume else None
    if checkpoint is not None:
        saved = checkpoint["config"]
        changed = [key for key in RESUME_INVARIANTS if saved.get(key) != record[key]]
        if changed:
            raise TrainingError(
                f"{config.resume} was trained with different "
                + ", ".join(f"{key} ({saved.get(key)!r})" for key in changed)
            )
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    else:
        load_initial_weights(model, config)
        recipe.apply_depth_mode(model, config.depth)
    model.to(device)
    optimizer = recipe.make_optimizer(model, rates)
    scheduler = recipe.make_scheduler(
        optimizer,
        config.schedule,
        factor=config.factor,
        patience=config.patience,
        decay_epoch=config.decay_epoch,
    )
    progress = TrainingProgress()
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None and checkpoint["scheduler"]:
            scheduler.load_state_dict(checkpoint["scheduler"])
        progress = progress_of(checkpoint)
        restore_rng(checkpoint["rng"])
        log.info("resuming %s at step %d (epoch %d)", config.resume, progress.step, progress.epoch)
    del checkpoint

    epochs = config.epochs or recipe.DEFAULT_EPOCHS[config.schedule]
    steps_per_epoch = len(epoch_plan(len(training), config.batch_size, seed=0, epoch=0))
    total = epochs * steps_per_epoch
    total = min(total, config.steps) if config.steps else total
    log.info(
        "%d training / %d validation triplets; %d steps per epoch; %d steps in all; device %s; "
        "%s trainable parameters; learning rates %s",
        len(training),
        len(validation),
        steps_per_epoch,
        total,
        device,
        f"{recipe.count_trainable(model):,}",
        ", ".join(f"{name} {rate:g}" for name, rate in recipe.current_rates(optimizer).items()),
    )
    if not validation and config.schedule == "plateau":
        log.warning("no validation set: the plateau schedule follows the training loss")

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pth"
    train_set = TripletDataset(training, config.crop)
    val_set = TripletDataset(validation, config.crop)
    step_log = _CsvLog(out / "log.csv", ["step", "epoch", "loss", "seconds"])
    epoch_log = _CsvLog(
        out / "epochs.csv",
        ["epoch", "step", "train_loss", "validation_loss", "validation_psnr", *recipe.GROUPS],
    )
    losses: list[float] = []
    recent: deque[float] = deque(maxlen=max(1, config.log_every))
    started = time.monotonic()

    def save() -> None:
        save_checkpoint(last, model, optimizer, scheduler, progress, record)

    bar = Progress(total, "train", start=progress.step, every=config.log_every, stream=stream)
    try:
        while progress.step < total and progress.epoch < epochs:
            plan = epoch_plan(
                len(training),
                config.batch_size,
                seed=config.seed,
                epoch=progress.epoch,
                augment=config.augment,
            )
            loader = _loader(train_set, plan[progress.step_in_epoch :], config, device)
            recipe.set_training_mode(model, rates)
            for batch in loader:
                loss = _train_step(model, optimizer, batch.to(device), config.alpha)
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} at step {progress.step + 1}; lower the "
                        f"learning rates, or resume from {last} if it exists"
                    )
                progress.step += 1
                progress.step_in_epoch += 1
                progress.epoch_loss_sum += loss
                losses.append(loss)
                recent.append(loss)
                step_log.write([progress.step, progress.epoch, loss, time.monotonic() - started])
                bar.update(loss=f"{sum(recent) / len(recent):.5f}", epoch=progress.epoch)
                if config.save_every and progress.step % config.save_every == 0:
                    save()
                if progress.step >= total:
                    break
            if progress.step_in_epoch >= len(plan):
                _finish_epoch(model, optimizer, scheduler, progress, val_set, config, epoch_log)
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
        step_log.close()
        epoch_log.close()
    save()
    log.info("saved %s at step %d", last, progress.step)
    return TrainingResult(progress, last, losses)


def _loader(dataset, batches, config: TrainingConfig, device: torch.device):
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )


def _train_step(model, optimizer, batch: torch.Tensor, alpha) -> float:
    first, truth, second = batch.unbind(dim=1)
    # Training keeps projection holes at 0, as the reference does under autograd.
    synthesis = model(first, second, 0.5, fill_holes=False)
    loss = interpolation_loss(synthesis, truth, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def validate(model, dataset: TripletDataset, config: TrainingConfig, device) -> tuple[float, float]:
    """(mean loss, mean PSNR in dB of the clamped float output) over ``dataset``, in eval mode
    with holes filled, as at inference. (The reference validated in training mode, so its
    BatchNorm used batch statistics there; eval mode is what the released model runs in.)"""
    model.eval()
    total_loss = total_psnr = 0.0
    batches = validation_batches(len(dataset), config.batch_size)
    for batch in _loader(dataset, batches, config, device):
        first, truth, second = batch.to(device).unbind(dim=1)
        synthesis = model(first, second, 0.5, fill_holes=True)
        total_loss += float(interpolation_loss(synthesis, truth, config.alpha)) * len(batch)
        error = (synthesis.output.clamp(0, 1) - truth).pow(2).flatten(1).mean(dim=1)
        total_psnr += float((-10 * torch.log10(error.clamp_min(1e-10))).sum())
    return total_loss / len(dataset), total_psnr / len(dataset)


def _finish_epoch(
    model, optimizer, scheduler, progress: TrainingProgress, val_set, config, epoch_log
) -> None:
    """Validation, best.pth, the epoch's log row and the schedule step."""
    train_loss = progress.epoch_loss_sum / max(1, progress.step_in_epoch)
    validation_loss = validation_psnr = math.nan
    if len(val_set):
        device = next(model.parameters()).device
        validation_loss, validation_psnr = validate(model, val_set, config, device)
        if validation_loss <= progress.best_validation:
            progress.best_validation = validation_loss
            save_weights(Path(config.out) / "best.pth", model)
    rates = recipe.current_rates(optimizer)
    epoch_log.write(
        [progress.epoch, progress.step, train_loss, validation_loss, validation_psnr]
        + [rates.get(name, 0.0) for name in recipe.GROUPS]
    )
    log.info(
        "epoch %d: training loss %.5f, validation loss %.5f (%.2f dB)",
        progress.epoch,
        train_loss,
        validation_loss,
        validation_psnr,
    )
    recipe.step_scheduler(scheduler, validation_loss if len(val_set) else train_loss)
    progress.epoch += 1
    progress.step_in_epoch = 0
    progress.epoch_loss_sum = 0.0
