"""The optimisation recipe: which sub-networks train at which learning rate, the depth
ablations of the paper, AdaMax, and the learning-rate schedules.

Learning-rate presets:

- ``paper`` (Bao et al., section 4.1): 1e-4 for the kernel-estimation, context and synthesis
  networks, 1e-6 for the flow network and 1e-7 for the depth network (both pretrained).
- ``code``: what the reference README's training command gives (``--lr 0.0005
  --rectify_lr 0.0005 --flow_lr_coe 0.01`` and the default ``--depth_lr_coe 0.001``):
  5e-4 for kernel, context and synthesis, 5e-6 for flow, 5e-7 for depth.

Depth modes (the paper's ablation, Table 1):

- ``joint``: pretrained depth network optimised with the rest (DA-Opti, the released model);
- ``frozen``: pretrained depth network, not updated, BatchNorm kept in eval mode (DA-Pret);
- ``scratch``: depth network re-initialised (PyTorch's default initialisation) and trained
  jointly (DA-Scra); its learning rate defaults to the kernel network's, since the small
  rate of the pretrained network would leave a random one almost untouched;
- ``none``: flow projection without depth, every splat weighted equally (DA-None); the
  depth network is not trained. Note that the network still appends its (detached) log-depth
  to the context features, as :class:`vsdain.model.DAIN` does for ``projection="average"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..model import DAIN

# Parameter groups, each a list of DAIN attributes (the reference's optimiser groups).
GROUPS: dict[str, tuple[str, ...]] = {
    "kernel": ("initScaleNets_filter", "initScaleNets_filter1", "initScaleNets_filter2"),
    "context": ("ctxNet",),
    "synthesis": ("rectifyNet",),
    "flow": ("flownets",),
    "depth": ("depthNet",),
}
LR_PRESETS: dict[str, dict[str, float]] = {
    "paper": {"kernel": 1e-4, "context": 1e-4, "synthesis": 1e-4, "flow": 1e-6, "depth": 1e-7},
    "code": {"kernel": 5e-4, "context": 5e-4, "synthesis": 5e-4, "flow": 5e-6, "depth": 5e-7},
}
DEPTH_MODES = ("joint", "frozen", "scratch", "none")
SCHEDULES = ("plateau", "paper", "constant")
# AdaMax as in the paper and the reference: betas (0.9, 0.999), eps 1e-8, no weight decay.
ADAMAX_BETAS = (0.9, 0.999)
ADAMAX_EPSILON = 1e-8
# The reference README: ReduceLROnPlateau('min', factor=0.2, patience=4) on validation loss.
PLATEAU_FACTOR = 0.2
PLATEAU_PATIENCE = 4
# The paper: 30 epochs, then the learning rate x0.2 for 10 more.
PAPER_DECAY_EPOCH = 30
DEFAULT_EPOCHS = {"plateau": 100, "paper": 40, "constant": 100}  # reference numEpoch: 100


def learning_rates(
    preset: str, depth: str, overrides: Mapping[str, float | None] | None = None
) -> dict[str, float]:
    """Group name -> learning rate: the preset, the depth mode's adjustments, then any
    override that is not None. A group whose rate is 0 is frozen."""
    if preset not in LR_PRESETS:
        raise ValueError(f"lr preset must be one of {', '.join(LR_PRESETS)}, got {preset!r}")
    if depth not in DEPTH_MODES:
        raise ValueError(f"depth must be one of {', '.join(DEPTH_MODES)}, got {depth!r}")
    rates = dict(LR_PRESETS[preset])
    if depth == "scratch":
        rates["depth"] = rates["kernel"]
    elif depth in ("frozen", "none"):
        rates["depth"] = 0.0
    for group, rate in (overrides or {}).items():
        if group not in GROUPS:
            raise ValueError(f"unknown parameter group {group!r}; groups: {', '.join(GROUPS)}")
        if rate is not None:
            if rate < 0:
                raise ValueError(f"learning rate of {group} must be >= 0, got {rate}")
            if group == "depth" and depth in ("frozen", "none") and rate > 0:
                raise ValueError(f"--depth {depth} does not train the depth network")
            rates[group] = rate
    return rates


def build_model(depth: str) -> DAIN:
    """A DAIN network for the depth mode, with the reference initialisation (weights are
    loaded over it afterwards, before :func:`apply_depth_mode`)."""
    return DAIN(projection="average" if depth == "none" else "depth")


def apply_depth_mode(model: DAIN, depth: str) -> None:
    """Re-initialises the depth network for ``scratch``; call after loading weights."""
    if depth == "scratch":
        for module in model.depthNet.modules():
            if hasattr(module, "reset_parameters") and module is not model.depthNet:
                module.reset_parameters()


def set_training_mode(model: DAIN, rates: Mapping[str, float]) -> None:
    """``model.train()``, except that frozen sub-networks stay in eval mode, so BatchNorm in a
    frozen depth network keeps its running statistics."""
    model.train()
    for group, rate in rates.items():
        if rate == 0:
            for attribute in GROUPS[group]:
                getattr(model, attribute).eval()


def make_optimizer(model: DAIN, rates: Mapping[str, float]) -> torch.optim.Adamax:
    """AdaMax over the groups with a rate > 0; the others get ``requires_grad=False``. Each
    parameter group carries its name (``group["name"]``)."""
    groups = []
    for group, attributes in GROUPS.items():
        parameters = [
            parameter
            for attribute in attributes
            for parameter in getattr(model, attribute).parameters()
        ]
        trainable = rates[group] > 0
        for parameter in parameters:
            parameter.requires_grad_(trainable)
        if trainable:
            groups.append({"params": parameters, "lr": rates[group], "name": group})
    if not groups:
        raise ValueError("every learning rate is 0: nothing to train")
    return torch.optim.Adamax(groups, betas=ADAMAX_BETAS, eps=ADAMAX_EPSILON, weight_decay=0.0)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    *,
    factor: float = PLATEAU_FACTOR,
    patience: int = PLATEAU_PATIENCE,
    decay_epoch: int = PAPER_DECAY_EPOCH,
):
    """The per-epoch schedule: ``plateau`` (reference: x``factor`` after ``patience`` epochs
    without a lower validation loss), ``paper`` (x``factor`` once, after ``decay_epoch``
    epochs) or ``constant`` (None)."""
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=factor, patience=patience
        )
    if schedule == "paper":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: factor if epoch >= decay_epoch else 1.0
        )
    if schedule == "constant":
        return None
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def step_scheduler(scheduler, epoch_loss: float) -> None:
    """Advance the schedule by one epoch; ``epoch_loss`` drives the plateau schedule."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(epoch_loss)
    else:
        scheduler.step()


def current_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {group["name"]: float(group["lr"]) for group in optimizer.param_groups}


def count_trainable(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
