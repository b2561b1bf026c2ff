"""``vsdain evaluate DATA --layout L --method M --out DIR``: PSNR, SSIM and IE of an
interpolation method over a folder of triplets.

Writes ``DIR/metrics.csv`` (per sample, then the mean), ``DIR/metrics.md`` (a markdown table)
and ``DIR/worst.png`` (the lowest-PSNR samples: inputs, ours, ground truth, error map);
prints the mean scores to stdout. Progress goes to stderr.
"""

from __future__ import annotations

import argparse

from ..evaluation.datasets import LAYOUTS
from . import UsageError

METHOD_CHOICES = ("dain", "average")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder holding the triplets")
    parser.add_argument(
        "--layout",
        required=True,
        choices=LAYOUTS,
        help="middlebury: input/<seq>/frame10.png, frame11.png + gt/<seq>/frame10i11.png; "
        "ucf101: <id>/frame_00.png, frame_01_gt.png, frame_02.png; vimeo90k: "
        "sequences/<clip>/<part>/im1..im3.png named in tri_testlist.txt; triplets: every "
        "folder with exactly three images, sorted by name (first, ground truth, second)",
    )
    parser.add_argument(
        "--method",
        default="dain",
        choices=METHOD_CHOICES,
        help="dain: the network; average: the frame-averaging baseline (default: %(default)s)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the reports")
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="DAIN weights or a training checkpoint (default: the released best.pth, found "
        "as `vsdain info` shows)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda or cuda:N (default: cuda when available)"
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "train"),
        help="vimeo90k only: tri_testlist.txt or tri_trainlist.txt (default: %(default)s)",
    )
    parser.add_argument(
        "--ssim",
        default="rgb",
        choices=("rgb", "luma"),
        help="SSIM per RGB channel, averaged, or on BT.601 luma (default: %(default)s)",
    )
    parser.add_argument(
        "--worst",
        type=int,
        default=4,
        metavar="N",
        help="samples in the picture strip, lowest PSNR first; 0 for none (default: %(default)d)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N triplets")
    parser.add_argument(
        "--save-frames",
        action="store_true",
        help="also write each interpolated frame to DIR/frames/<sample>.png",
    )


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from ..evaluation import DatasetError, average_frames, evaluate, find_triplets
    from ..evaluation.report import markdown_table, summarise, write_csv, write_strip
    from ..progress import Progress

    log = logging.getLogger("vsdain.evaluate")
    if args.worst < 0:
        raise UsageError(f"--worst must be >= 0, got {args.worst}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    try:
        triplets = find_triplets(args.data, args.layout, split=args.split)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    if args.limit is not None:
        triplets = triplets[: args.limit]

    if args.method == "average":
        method = average_frames
        described = "frame averaging"
    else:
        method, described = _load_dain(args.weights, args.device)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("%s on %d %s triplets from %s", described, len(triplets), args.layout, args.data)
    with Progress(len(triplets), "evaluate", every=max(1, len(triplets) // 20)) as progress:
        evaluation = evaluate(
            triplets,
            method,
            ssim_channels=args.ssim,
            worst=args.worst,
            save_dir=out / "frames" if args.save_frames else None,
            on_sample=lambda result: progress.update(psnr=f"{result.scores.psnr:.2f}"),
        )

    details = [
        ("method", described),
        ("data", f"`{args.data}` ({args.layout} layout)"),
        ("SSIM", "per RGB channel, averaged" if args.ssim == "rgb" else "BT.601 luma"),
        ("frames", "8-bit RGB; IE = RMS of the RGB difference length; MAE = mean |difference|"),
    ]
    write_csv(out / "metrics.csv", evaluation.results)
    title = f"{args.method} on {Path(args.data).name or args.data}"
    (out / "metrics.md").write_text(
        markdown_table(evaluation.results, title=title, details=details)
    )
    if evaluation.worst:
        write_strip(out / "worst.png", evaluation.worst)
    summary = summarise(evaluation.results)
    print(
        f"{args.method}: {len(evaluation.results)} triplets  PSNR {summary.psnr:.2f} dB  "
        f"SSIM {summary.ssim:.4f}  IE {summary.ie:.2f}  MAE {summary.mae:.2f}"
    )
    log.info("wrote %s", ", ".join(str(out / name) for name in _written(evaluation)))
    return 0


def _written(evaluation) -> list[str]:
    return ["metrics.csv", "metrics.md", *(["worst.png"] if evaluation.worst else [])]


def _load_dain(weights: str | None, device: str):
    from ..devices import resolve_device
    from ..evaluation import dain_method
    from ..weights import WeightsError, WeightsNotFoundError, find_weights, load_model

    try:
        device = resolve_device(None if device == "auto" else device, name="--device")
    except ValueError as problem:
        raise UsageError(str(problem)) from None
    try:
        path = find_weights(weights)
        model = load_model(path, device=device)
    except (WeightsNotFoundError, WeightsError) as error:
        raise UsageError(str(error)) from None
    described = f"DAIN, {path.name} ({device})"
    if model.projection != "depth":
        described += f", {model.projection} projection (DA-None)"
    return dain_method(model, device), described
