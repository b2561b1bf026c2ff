"""``vsdain train DATA --out DIR``: train or fine-tune DAIN with the recipe of the
paper and its reference code (Charbonnier loss, AdaMax, per-network learning rates, flips
and temporal reversal, the reference's plateau schedule).

Writes ``DIR/last.pth`` (a checkpoint that ``--resume`` continues and that
``vsdain.load_model`` loads), ``DIR/best.pth`` (the network at its best validation loss),
``DIR/log.csv`` and ``DIR/epochs.csv``. Progress goes to stderr; stdout stays empty.
"""

from __future__ import annotations

import argparse
import sys

from ..evaluation.datasets import LAYOUTS
from ..training import recipe
from ..training.config import TrainingConfig as Defaults
from . import UsageError

GROUP_HELP = {
    "kernel": "the kernel-estimation networks (initScaleNets_filter*)",
    "context": "the context extractor (ctxNet)",
    "synthesis": "the frame-synthesis network (rectifyNet)",
    "flow": "the flow network (flownets, PWC-Net)",
    "depth": "the depth network (depthNet, MegaDepth)",
}


def _rates(preset: str) -> str:
    rates = recipe.LR_PRESETS[preset]
    return f"{rates['kernel']:g} kernel/context/synthesis, {rates['flow']:g} flow, " + (
        f"{rates['depth']:g} depth"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder holding the training triplets")
    parser.add_argument(
        "--layout",
        default=Defaults.layout,
        choices=LAYOUTS,
        help="vimeo90k: sequences/ with tri_trainlist.txt (training) and tri_testlist.txt "
        "(validation); triplets: every folder with exactly three images, sorted by name "
        "(first, ground truth, second); ucf101 and middlebury as for `evaluate` "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for checkpoints and logs"
    )

    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--weights",
        metavar="PATH",
        help="start from these weights (fine-tuning; default: the released best.pth)",
    )
    start.add_argument(
        "--from-scratch",
        action="store_true",
        help="start from the reference initialisation. The reference initialises the flow and "
        "depth networks from pretrained PWC-Net and MegaDepth files, which are no longer "
        "downloadable; here they start random too, so expect a long training",
    )
    start.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a run from its last.pth: weights, optimiser state, current learning "
        "rates, schedule, step and data order come from the checkpoint; give the other "
        "options as before (--steps and --epochs count from the start of the run)",
    )

    group = parser.add_argument_group("recipe")
    group.add_argument(
        "--depth",
        default=Defaults.depth,
        choices=recipe.DEPTH_MODES,
        help="the paper's depth ablations: joint = pretrained depth optimised jointly "
        "(released model); frozen = pretrained depth not updated, BatchNorm in eval mode; "
        "scratch = depth network re-initialised and trained (at the kernel rate unless "
        "--lr-depth); none = DA-None, projection without depth (default: %(default)s)",
    )
    group.add_argument(
        "--lr-preset",
        default=Defaults.lr_preset,
        choices=tuple(recipe.LR_PRESETS),
        help=f"paper: {_rates('paper')}; code (the reference README's command): "
        f"{_rates('code')} (default: %(default)s)",
    )
    for name, description in GROUP_HELP.items():
        group.add_argument(
            f"--lr-{name}",
            type=float,
            metavar="LR",
            help=f"learning rate of {description}; 0 freezes it",
        )
    group.add_argument(
        "--schedule",
        default=Defaults.schedule,
        choices=recipe.SCHEDULES,
        help=f"plateau: the reference's x{recipe.PLATEAU_FACTOR:g} after "
        f"{recipe.PLATEAU_PATIENCE} epochs without a lower validation loss; paper: "
        f"x{recipe.PLATEAU_FACTOR:g} once after {recipe.PAPER_DECAY_EPOCH} epochs; constant "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--factor", type=float, default=Defaults.factor, help="schedule factor (%(default)g)"
    )
    group.add_argument(
        "--patience", type=int, default=Defaults.patience, help="plateau patience (%(default)d)"
    )
    group.add_argument(
        "--decay-epoch",
        type=int,
        default=Defaults.decay_epoch,
        help="paper schedule: epoch of the decay (%(default)d)",
    )
    group.add_argument(
        "--alpha",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("BLEND", "OUTPUT"),
        help="loss weights of the warped blend and the synthesised frame (default: 0 1)",
    )
    group.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random flips, temporal reversal and crop position (default: on)",
    )

    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--epochs",
        type=int,
        help="epochs (default: "
        + "; ".join(
            f"{count} with --schedule {name}" for name, count in recipe.DEFAULT_EPOCHS.items()
        )
        + ")",
    )
    run_group.add_argument("--steps", type=int, help="stop after this many steps in all")
    run_group.add_argument(
        "--batch-size", type=int, default=2, help="triplets per step (default: 2, the paper's)"
    )
    run_group.add_argument(
        "--crop",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="random crop, multiples of 64 (default: the largest multiple-of-64 window; "
        "Vimeo90K's 256x448 frames are used whole)",
    )
    run_group.add_argument("--seed", type=int, default=1, help="seed (default: %(default)d)")
    run_group.add_argument(
        "--device", default="auto", help="cpu, cuda or cuda:N (default: cuda when available)"
    )
    run_group.add_argument("--workers", type=int, default=0, help="data-loading processes (0)")
    run_group.add_argument(
        "--val-fraction",
        type=float,
        default=0.05,
        help="share of the triplets held out for validation, except with vimeo90k, which "
        "validates on tri_testlist.txt (0 turns validation off) (default: %(default)g)",
    )
    run_group.add_argument(
        "--val-limit", type=int, metavar="N", help="at most N validation triplets"
    )
    run_group.add_argument("--limit", type=int, metavar="N", help="only the first N triplets")
    run_group.add_argument(
        "--save-every", type=int, default=1000, metavar="N", help="checkpoint every N steps (1000)"
    )
    run_group.add_argument(
        "--log-every",
        type=int,
        default=10,
        metavar="N",
        help="average the shown loss over N steps; without a terminal, print every N (10)",
    )


def run(args: argparse.Namespace) -> int:
    from ..evaluation.datasets import DatasetError
    from ..training import TrainingConfig, TrainingError, train
    from ..weights import WeightsError, WeightsNotFoundError

    problem = _check(args)
    if problem:
        raise UsageError(problem)
    config = TrainingConfig(
        data=args.data,
        layout=args.layout,
        out=args.out,
        weights=args.weights,
        from_scratch=args.from_scratch,
        resume=args.resume,
        depth=args.depth,
        lr_preset=args.lr_preset,
        lr_overrides={group: getattr(args, f"lr_{group}") for group in GROUP_HELP},
        schedule=args.schedule,
        factor=args.factor,
        patience=args.patience,
        decay_epoch=args.decay_epoch,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=tuple(args.crop) if args.crop else None,
        augment=args.augment,
        alpha=tuple(args.alpha),
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        val_fraction=args.val_fraction,
        val_limit=args.val_limit,
        limit=args.limit,
        save_every=args.save_every,
        log_every=args.log_every,
    )
    try:
        result = train(config)
    except (
        DatasetError,
        WeightsNotFoundError,
        WeightsError,
        ValueError,
        FileNotFoundError,
    ) as error:
        raise UsageError(str(error)) from None
    except TrainingError as error:
        print(f"vsdain train: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vsdain train: interrupted; continue with `{resume_command(args)}`", file=sys.stderr)
        return 130
    print(
        f"vsdain train: {result.progress.step} steps; checkpoint {result.checkpoint}",
        file=sys.stderr,
    )
    return 0


# Options that say where a run starts; --resume replaces them all.
_START_OPTIONS = ("--weights", "--from-scratch", "--resume")


def resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run from its ``last.pth``: the one given, with
    its start option (``--weights``, ``--from-scratch``, ``--resume``) replaced by
    ``--resume OUT/last.pth``."""
    from pathlib import Path

    from ..cli_hint import command_hint

    checkpoint = str(Path(args.out) / "last.pth")
    argv = getattr(args, "argv", None)
    if argv is None:
        return command_hint("train", args.data, "--out", args.out, "--resume", checkpoint)
    kept = []
    words = iter(argv)
    for word in words:
        name, equals, _ = word.partition("=")
        # argparse accepts unambiguous prefixes (--from, --resu), so match those too.
        option = next(
            (o for o in _START_OPTIONS if name.startswith("--") and o.startswith(name)), None
        )
        if option is None or len(name) < 3:
            kept.append(word)
        elif option != "--from-scratch" and not equals:
            next(words, None)  # the option's value
    return command_hint(*kept, "--resume", checkpoint)


def _check(args: argparse.Namespace) -> str | None:
    positive = {
        "--batch-size": args.batch_size,
        "--epochs": args.epochs,
        "--steps": args.steps,
        "--limit": args.limit,
        "--val-limit": args.val_limit,
        "--log-every": args.log_every,
        "--decay-epoch": args.decay_epoch,
    }
    for option, value in positive.items():
        if value is not None and value < 1:
            return f"{option} must be >= 1"
    for option, value in {
        "--save-every": args.save_every,
        "--workers": args.workers,
        "--patience": args.patience,
    }.items():
        if value < 0:
            return f"{option} must be >= 0"
    if not 0 < args.factor < 1:
        return f"--factor must be between 0 and 1, got {args.factor:g}"
    if not 0 <= args.val_fraction < 1:
        return f"--val-fraction must be in [0, 1), got {args.val_fraction:g}"
    return None
