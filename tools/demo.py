"""The demo behind tools/demo.sh: a real clip through vsdain.Interpolate via vspipe.

Writes ``<out>/interpolated.y4m`` (the output video) and ``<out>/before_after.png``: the two
source frames around one synthesised frame, side by side. Needs the released weights
(``vsdain download``); ``--random-weights`` runs a labelled smoke test instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "clips" / "chaplin.mp4"
SMOKE_LABEL = "RANDOM WEIGHTS - SMOKE TEST, NOT A QUALITY RESULT"
# An untrained synthesis network outputs values near zero, so its frames come out almost black.
SMOKE_NOTE = "a near-black middle frame is what random weights give"
DESCRIPTION = (
    "Interpolate a few frames of a real clip with vsdain.Interpolate through vspipe, and "
    "write OUT/interpolated.y4m and OUT/before_after.png (source frame, synthesised frame, "
    "next source frame). Needs the released weights; --random-weights runs a labelled smoke "
    "test without them, whose frames say nothing about quality."
)


def demo_script() -> str:
    """tools/demo.sh as the user can type it from the current folder."""
    script = REPO / "tools" / "demo.sh"
    relative = os.path.relpath(script)
    if relative.startswith(".."):
        return shlex.quote(str(script))
    return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=demo_script(), description=DESCRIPTION)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video file to read")
    parser.add_argument("--first", type=int, default=0, help="first source frame")
    parser.add_argument("--frames", type=int, default=6, help="source frames to interpolate")
    parser.add_argument("--multi", type=int, default=2, help="frame-rate multiplier")
    parser.add_argument("--width", type=int, default=0, help="resize to this width (0: keep)")
    parser.add_argument("--weights", type=Path, help="best.pth (default: the usual places)")
    parser.add_argument("--random-weights", action="store_true", help="smoke test, no weights")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "demo-output",
        help="output folder (default: %(default)s)",
    )
    return parser.parse_args()


def fail(message: str) -> int:
    print(f"demo: {message}", file=sys.stderr)
    return 2


def main() -> int:
    args = parse_args()
    if not args.clip.is_file():
        return fail(f"clip not found: {args.clip} (pass --clip PATH)")
    for option, value, least in (
        ("--first", args.first, 0),
        ("--frames", args.frames, 2),
        ("--multi", args.multi, 2),
        ("--width", args.width, 0),
    ):
        if value < least:
            return fail(f"{option} must be >= {least}, got {value}")
    if args.width % 2:
        return fail(f"--width must be even (4:2:0 output), got {args.width}")
    if args.random_weights:
        print(f"demo: {SMOKE_LABEL}; {SMOKE_NOTE}", file=sys.stderr)
    else:
        from vsdain.weights import WeightsNotFoundError, find_weights

        try:
            args.weights = find_weights(str(args.weights) if args.weights else None)
        except WeightsNotFoundError as error:
            return fail(
                f"{error}\n(or run the labelled smoke test: {demo_script()} --random-weights)"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / "interpolated.y4m"
    vspipe = Path(sys.executable).with_name("vspipe")
    command = [
        str(vspipe),
        "-c",
        "y4m",
        str(REPO / "examples" / "demo.vpy"),
        str(video),
        "-a",
        f"clip={args.clip}",
        "-a",
        f"first={args.first}",
        "-a",
        f"frames={args.frames}",
        "-a",
        f"multi={args.multi}",
        "-a",
        f"width={args.width}",
        "-a",
        f"weights={args.weights or ''}",
        "-a",
        f"random_weights={int(args.random_weights)}",
        "--progress",
    ]
    print("demo: " + " ".join(command), file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=sys.stderr)
    print(f"demo: wrote {video} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    picture = write_before_after(video, args)
    print(f"demo: wrote {picture}", file=sys.stderr)
    return 0


def write_before_after(video: Path, args: argparse.Namespace) -> Path:
    """Source frame, the first synthesised frame after it, next source frame, side by side."""
    import numpy as np
    import vapoursynth as vs
    from PIL import Image, ImageDraw

    core = vs.core
    clip = core.bs.VideoSource(str(video)).resize.Bicubic(format=vs.RGB24, matrix_in_s="709")
    panels = []
    for index, caption in (
        (0, "source frame"),
        (1, f"interpolated t=1/{args.multi}"),
        (args.multi, "next source frame"),
    ):
        frame = clip.get_frame(index)
        rgb = np.stack([np.asarray(frame[plane]) for plane in range(3)], axis=-1)
        panel = Image.fromarray(rgb)
        ImageDraw.Draw(panel).text((8, 8), caption, fill=(255, 255, 0))
        panels.append(panel)
    width, height = panels[0].size
    banner = 40 if args.random_weights else 0
    picture = Image.new("RGB", (3 * width, height + banner), (160, 0, 0))
    for position, panel in enumerate(panels):
        picture.paste(panel, (position * width, banner))
    if args.random_weights:
        draw = ImageDraw.Draw(picture)
        draw.text((8, 6), SMOKE_LABEL, fill=(255, 255, 255))
        draw.text((8, 22), SMOKE_NOTE, fill=(255, 255, 255))
    path = args.out / "before_after.png"
    picture.save(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
