"""``python -m vsdain bench``: time and memory of the filter against the naive path and MVTools.

Prints the report (markdown) on stdout and saves it, with a chart, under ``--out``. The work
itself lives in :mod:`vsdain.benchmark`; this module only reads options and writes files.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from . import UsageError

log = logging.getLogger(__name__)

DEFAULT_SIZES = "448x256,1280x720"
QUICK_SIZES = "448x256"
DEFAULT_MULTIS = "2,4,8"
TILING_SIZES = "448x256,1280x720,1920x1080"
SYNTHETIC = "synthetic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a run of about two minutes on two CPU cores: {QUICK_SIZES} only, one pair "
        "per configuration, one naive frame timed per configuration",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        help=f"comma-separated WIDTHxHEIGHT list (default {DEFAULT_SIZES}; --quick: {QUICK_SIZES})",
    )
    parser.add_argument(
        "--multis",
        type=_multis,
        default=_multis(DEFAULT_MULTIS),
        help=f"comma-separated output-rate multipliers, each >= 2 (default {DEFAULT_MULTIS})",
    )
    parser.add_argument(
        "--frames",
        type=_positive,
        help="output frames timed per configuration, rounded up to whole pairs (default: "
        "two pairs' worth, one at sizes above 640x480 on the CPU and with --quick)",
    )
    parser.add_argument(
        "--naive-samples",
        type=_positive,
        help="synthesised frames the naive path times per configuration; their mean stands "
        "for the others (default 2; --quick: 1)",
    )
    parser.add_argument(
        "--device", help="cpu, cuda or cuda:<index> (default: CUDA when PyTorch sees a GPU)"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help="best.pth or its folder (default: the usual places; random weights if none)",
    )
    parser.add_argument(
        "--clip",
        default=SYNTHETIC,
        help="video to read with BestSource, or 'synthetic' (default: a synthetic moving "
        "pattern; DAIN's cost does not depend on content, MVTools' does)",
    )
    parser.add_argument(
        "--clip-start",
        type=_non_negative,
        default=0,
        metavar="N",
        help="first frame of --clip to use (default 0; e.g. 96 skips the opening fade of the "
        "Big Buck Bunny clip the project's figures use)",
    )
    parser.add_argument("--no-mvtools", action="store_true", help="skip the MVTools reference")
    parser.add_argument(
        "--precision",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="what the network computes in (float16 needs --device cuda; default %(default)s)",
    )
    parser.add_argument(
        "--tiling",
        nargs="?",
        const=TILING_SIZES,
        type=_sizes,
        metavar="SIZES",
        help="also measure memory and time untiled, with automatic tiling under a cap and with "
        f"a forced small tile, at these sizes (default {TILING_SIZES}; 1080p untiled needs "
        "about 16 GiB and is skipped where that is not available)",
    )
    parser.add_argument(
        "--tiling-only",
        action="store_true",
        help="only the --tiling table (no per-size timings, naive path or MVTools)",
    )
    parser.add_argument(
        "--bfloat16",
        action="store_true",
        help="also time the filter in bfloat16 against float32 (first multi, each size) and "
        "measure bfloat16's difference from float32 on one frame pair (see --pair)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        type=Path,
        metavar=("FIRST", "SECOND"),
        help="with --bfloat16: the two image files (8-bit, one size) bfloat16's difference "
        "from float32 is measured on, at t = 0.5 (default: two frames of the synthetic moving "
        "pattern, 640x360)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for latest.md, <date>-<device>.md and latest.png (default: bench/results "
        "in a source checkout, else the current folder)",
    )


def run(args: argparse.Namespace) -> int:
    # Arguments first: the benchmark modules import the whole network.
    device = _device(args.device)
    _check_pair(args)
    if args.bfloat16:
        import torch

        from ..precision import cpu_bfloat16_problem

        problem = cpu_bfloat16_problem(device, torch.bfloat16)
        if problem is not None:
            raise UsageError(f"--bfloat16 on the CPU: {problem}")
    if args.clip != SYNTHETIC and not Path(args.clip).is_file():
        raise UsageError(f"--clip {args.clip}: no such file")

    from ..benchmark import chart, report, runner

    clip = None if args.clip == SYNTHETIC else Path(args.clip)
    if args.tiling_only and not args.tiling:
        args.tiling = _sizes(TILING_SIZES)
    main_sizes = args.sizes or _sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    settings = runner.RunSettings(
        sizes=() if args.tiling_only else main_sizes,
        multis=args.multis,
        device=device,
        frames=args.frames,
        single_pair=args.quick,
        naive_samples=args.naive_samples or (1 if args.quick else 2),
        weights=args.weights,
        clip=clip,
        clip_start=args.clip_start,
        mvtools=not args.no_mvtools,
        bfloat16=args.bfloat16,
        pair=tuple(args.pair) if args.pair is not None else None,
        tiling=args.tiling or (),
        dtype=_dtype(args.precision, device),
    )
    from ..weights import WeightsError, WeightsNotFoundError

    try:
        results = runner.run(settings)
    except (WeightsError, WeightsNotFoundError) as error:
        raise UsageError(str(error)) from None
    command = "python -m vsdain bench" + "".join(f" {shlex.quote(a)}" for a in sys.argv[2:])
    text = report.render(results, command)
    print(text, end="")
    out = args.out or _default_out()
    out.mkdir(parents=True, exist_ok=True)
    # A tiling-only run has its own files, so the full report in latest.md stays.
    stem = "tiling" if args.tiling_only else "latest"
    suffix = "-tiling" if args.tiling_only else ""
    dated = out / f"{results.started:%Y-%m-%d}-{results.machine.short_name}{suffix}.md"
    for path in (out / f"{stem}.md", dated):
        path.write_text(text, encoding="utf-8")
    try:
        if results.sizes:
            chart.draw(results, out / "latest.png")
    except ImportError:
        log.warning("Pillow is not installed: no chart (pip install pillow)")
    log.info("wrote %s and %s in %s", f"{stem}.md", dated.name, out)
    return 0


def _check_pair(args: argparse.Namespace) -> None:
    """Both images of --pair exist and decode to one size: a bad one stops the run before the
    network is built, not after the timings."""
    if args.pair is None:
        return
    if not args.bfloat16:
        raise UsageError("--pair is the frame pair of the --bfloat16 comparison: add --bfloat16")
    for path in args.pair:
        if not path.is_file():
            raise UsageError(f"--pair {path}: no such file")
    from ..benchmark.precision import PairError, read_pair

    try:
        read_pair(*args.pair)
    except PairError as problem:
        raise UsageError(f"--pair: {problem}") from None


def _dtype(precision: str, device):
    import torch

    if precision == "float16" and device.type != "cuda":
        raise UsageError("--precision float16 needs --device cuda (half precision is CUDA-only)")
    return getattr(torch, precision)


def _default_out() -> Path:
    from ..weights import checkout_dir

    checkout = checkout_dir()
    return checkout / "bench" / "results" if checkout is not None else Path.cwd()


def _device(name: str | None):
    from ..devices import resolve_device

    try:
        return resolve_device(name, name="--device")
    except ValueError as problem:
        raise UsageError(str(problem)) from None


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = []
    for item in text.split(","):
        width, _, height = item.strip().lower().partition("x")
        try:
            size = int(width), int(height)
        except ValueError:
            raise argparse.ArgumentTypeError(f"sizes are WIDTHxHEIGHT, got {item!r}") from None
        if min(size) < 1 or size[0] % 2 or size[1] % 2:
            raise argparse.ArgumentTypeError(
                f"sizes must be positive and even (MVTools needs 4:2:0), got {item!r}"
            )
        sizes.append(size)
    return tuple(sizes)


def _multis(text: str) -> tuple[int, ...]:
    try:
        multis = tuple(int(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"multis are integers, got {text!r}") from None
    if any(multi < 2 for multi in multis):
        raise argparse.ArgumentTypeError(f"each multi must be >= 2, got {text!r}")
    return multis


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
